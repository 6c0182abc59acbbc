"""The main job, one stage per module: media -> faces -> (the model's predictor) -> aggregate -> results.

    media.py      decode images and videos safely, sample frames, size and duration limits
    faces.py      face detectors, crops with a margin, face tracks across frames
    aggregate.py  face scores -> one score per file
    explain.py    forgery masks and heatmaps (the model's mask head, else Grad-CAM)
    results.py    typed results, JSON and CSV
    scanner.py    `Scanner`, which owns the path; the CLI and the Python API call it

This package is also the function: `fakescope.scan("clip.mp4")` scans (see `scanner.scan`).
"""
from __future__ import annotations

import sys
import types


class _CallableScanPackage(types.ModuleType):
    """`fakescope.scan` is both this package and the scan function: the package's name is the
    verb users call, and Python binds a subpackage over a parent attribute of the same name."""

    def __call__(self, paths, **settings):
        from .scanner import scan

        return scan(paths, **settings)

    def __getattr__(self, name: str):
        if name in ("Scanner", "ScanSettings", "expand_inputs"):
            from . import scanner

            return getattr(scanner, name)
        if name in ("ScanReport", "FileResult"):
            from . import results

            return getattr(results, name)
        raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")


sys.modules[__name__].__class__ = _CallableScanPackage
