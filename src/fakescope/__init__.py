"""fakescope: find face forgeries (deepfakes) in images and videos.

    from fakescope import scan
    report = scan("clip.mp4")
    report.score, report.verdict, report.to_dict()

Names are imported on first use, so `import fakescope` (and `fakescope --help`) stays fast
and does not load PyTorch.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> the module that defines it
_LAZY = {
    "Scanner": ".scan.scanner", "ScanSettings": ".scan.scanner",
    "ScanReport": ".scan.results", "FileResult": ".scan.results",
    "MediaLimits": ".scan.media", "load_detector": ".models.zoo",
}
__all__ = ["scan", "Scanner", "ScanSettings", "ScanReport", "FileResult", "MediaLimits", "load_detector", "__version__"]


def __getattr__(name: str):
    if name == "scan":  # the subpackage, which is callable: fakescope.scan("clip.mp4")
        return importlib.import_module(".scan", __name__)
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
