"""How a face must be prepared for a model: the part of the detector contract that needs no PyTorch.

A checkpoint (and an exported ONNX file) stores its `PreprocessSpec`, so every runtime crops
and normalises faces exactly as the model was trained. `normalise_crops` is the one
normalisation: the scanner's crops, the datasets' samples and the ONNX backend all use it.
"""
from __future__ import annotations

from typing import Literal, Sequence

import numpy as np
from pydantic import BaseModel, Field

#: the smallest crop margin: below 1 a crop is the inner part of the face box (for models trained on
#: tight face crops, such as the shared DFDC and FF++ c23 sets; see data/reframe.py)
MIN_CROP_MARGIN = 0.5


class PreprocessSpec(BaseModel):
    """How a face must be prepared for a model."""

    input_size: int = Field(256, gt=0)
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)  # applied to RGB scaled to [0, 1]
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    margin: float = Field(1.3, ge=MIN_CROP_MARGIN)  # crop side = margin x the longer face-box side
    face_detector: str = "mtcnn"
    # what the model looks at: "face" (a face crop, as above) or "image" (whole-image detectors of
    # generated images: views of input_size x input_size cut from the picture at its own resolution,
    # never a resize of the whole picture; margin and face_detector do not apply)
    subject: Literal["face", "image"] = "face"


def normalise_crops(crops: Sequence[np.ndarray] | np.ndarray, preprocess: PreprocessSpec) -> np.ndarray:
    """RGB uint8 crops (N, H, W, 3), or one (H, W, 3) -> float32 (N, 3, H, W) or (3, H, W):
    scaled to [0, 1], then (x - mean) / std per channel, in float32 as the models were trained."""
    batch = np.asarray(crops) if not isinstance(crops, np.ndarray) else crops
    single = batch.ndim == 3
    if single:
        batch = batch[None]
    scaled = batch.astype(np.float32) / np.float32(255.0)
    mean = np.asarray(preprocess.mean, np.float32).reshape(1, 1, 1, 3)
    std = np.asarray(preprocess.std, np.float32).reshape(1, 1, 1, 3)
    out = np.ascontiguousarray(((scaled - mean) / std).transpose(0, 3, 1, 2))
    return out[0] if single else out
