"""Detector architectures; importing this package registers them all."""
from . import efficientnet  # noqa: F401  (registers efficientnet_lite0, efficientnet_b4)
from . import mesonet  # noqa: F401  (registers meso4, mesoinception4)
from .base import MODELS, DetectorModel, LoadedDetector, PreprocessSpec, build_model, load_checkpoint, save_checkpoint

__all__ = ["MODELS", "DetectorModel", "LoadedDetector", "PreprocessSpec", "build_model", "load_checkpoint", "save_checkpoint"]
