"""PyTorch datasets over a manifest of face crops."""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from ..faces import crop_face
from ..models.base import PreprocessSpec
from .manifest import Manifest


def load_face_crop(path, size: int) -> np.ndarray:
    """A face-crop image as the scanner's --crops mode sees it: squared around its
    centre (edge-padded, no distortion) and resized to size x size, RGB uint8."""
    with Image.open(path) as image:
        rgb = np.asarray(image.convert("RGB"))
    height, width = rgb.shape[:2]
    return crop_face(rgb, (0.0, 0.0, float(width), float(height)), 1.0, size)


def normalise(image: np.ndarray, preprocess: PreprocessSpec) -> torch.Tensor:
    tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div_(255.0)
    mean = torch.tensor(preprocess.mean).view(3, 1, 1)
    std = torch.tensor(preprocess.std).view(3, 1, 1)
    return (tensor - mean) / std


class FaceCropDataset(Dataset):
    """Yields {"image": (3,H,W) normalised tensor, "label": float tensor, "index": int}.

    `augment` takes and returns an RGB uint8 array (e.g. an albumentations pipeline
    wrapped by fakescope.train.augment) and runs before normalisation.
    """

    def __init__(
        self,
        manifest: Manifest,
        preprocess: PreprocessSpec,
        augment: Optional[Callable[[np.ndarray], np.ndarray]] = None,
    ):
        self.manifest = manifest
        self.preprocess = preprocess
        self.augment = augment

    def __len__(self) -> int:
        return len(self.manifest)

    def __getitem__(self, index: int) -> dict:
        sample = self.manifest.samples[index]
        image = load_face_crop(self.manifest.resolve(sample.path), self.preprocess.input_size)
        if self.augment is not None:
            image = self.augment(image)
        return {
            "image": normalise(image, self.preprocess),
            "label": torch.tensor(float(sample.label)),
            "index": index,
        }


MASK_THRESHOLD = 128  # of 255: ground-truth mask pixels at or above it are manipulated


def load_mask(path) -> np.ndarray:
    """A ground-truth manipulation mask image as a bool array (height, width): gray level
    >= 128 of 255 is manipulated (white = manipulated, as FF++ and the extracted masks have it;
    the threshold also absorbs JPEG and video-compression noise around 0 and 255)."""
    with Image.open(path) as image:
        gray = np.asarray(image.convert("L"))
    return gray >= MASK_THRESHOLD
