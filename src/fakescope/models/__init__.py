"""Detector architectures, one module per family, each registered in `base.MODELS`.

The families (and PyTorch) are imported on the registry's first lookup, not here, so the
torch-free parts (`spec`, `calibration`, `onnx`, `predictor`, `zoo`) import cheaply.
"""
from __future__ import annotations

import importlib

#: the modules whose decorators register the architectures (base.MODELS imports them on first use)
FAMILIES = ("asrid", "efficientnet", "f3net", "gramnet", "image_forensics", "m2tr", "mat", "mesonet", "timm_classifiers",
            "y_autoencoder")

_FROM_BASE = ("MODELS", "DetectorModel", "LoadedDetector", "PreprocessSpec", "build_model", "load_checkpoint",
              "save_checkpoint")
__all__ = list(_FROM_BASE)


def import_families() -> None:
    for family in FAMILIES:
        importlib.import_module(f"{__name__}.{family}")


def __getattr__(name: str):
    if name in _FROM_BASE:
        return getattr(importlib.import_module(f"{__name__}.base"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
