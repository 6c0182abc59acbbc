"""Detector architectures; importing this package registers them all."""
from . import asrid  # noqa: F401  (asrid)
from . import efficientnet  # noqa: F401  (efficientnet_lite0, efficientnet_b4)
from . import f3net  # noqa: F401  (f3net)
from . import gramnet  # noqa: F401  (gramnet)
from . import m2tr  # noqa: F401  (m2tr)
from . import mat  # noqa: F401  (mat)
from . import mesonet  # noqa: F401  (meso4, mesoinception4)
from . import timm_classifiers  # noqa: F401  (resnet50, xception, vit_b16)
from . import y_autoencoder  # noqa: F401  (y_autoencoder)
from .base import MODELS, DetectorModel, LoadedDetector, PreprocessSpec, build_model, load_checkpoint, save_checkpoint

__all__ = ["MODELS", "DetectorModel", "LoadedDetector", "PreprocessSpec", "build_model", "load_checkpoint", "save_checkpoint"]
