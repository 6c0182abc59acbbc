"""`fakescope evaluate`: metrics of a detector on labelled datasets (frame, video, per method, cross-dataset).

Names load lazily, so registering the CLI command does not import torch or scikit-learn.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "METRIC_KEYS": "metrics", "compute_metrics": "metrics", "compute_video_metrics": "metrics",
    "group_by_video": "metrics", "PixelMetrics": "metrics", "compute_pixel_metrics": "metrics",
    "DatasetResult": "runner", "EvaluationResult": "runner",
    "Prediction": "runner", "evaluate": "runner",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
