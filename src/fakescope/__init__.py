"""fakescope: find face forgeries (deepfakes) in images and videos.

    from fakescope import scan
    report = scan("clip.mp4")
    report.score, report.verdict, report.to_dict()
"""
__version__ = "0.1.0"

from .media import MediaLimits  # noqa: E402
from .models.zoo import load_detector  # noqa: E402
from .results import FileResult, ScanReport  # noqa: E402
from .scanner import Scanner, ScanSettings, scan  # noqa: E402

__all__ = ["scan", "Scanner", "ScanSettings", "ScanReport", "FileResult", "MediaLimits", "load_detector", "__version__"]
