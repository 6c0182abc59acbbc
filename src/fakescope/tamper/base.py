"""What every tampering-localization method returns, the registry they live in, and shared helpers.

Scores: each method reduces its evidence to one statistic `s >= 0` (matched blocks, RANSAC inliers,
anomalous area, ...) and a decision threshold `s0` chosen on pristine photos (each module says how).
The score is `s / (s + s0)`: monotone in `s`, in [0, 1), and exactly 0.5 at the threshold, so
`found = score >= 0.5` means the same thing for every method. It is evidence, not a probability.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Optional

import cv2
import numpy as np

from ..registry import Registry

FOUND_AT = 0.5  # score at which every method's statistic reaches its own decision threshold


def _populate() -> None:
    from . import copy_move_block, copy_move_keypoint, jpeg_ghost, noise_residual  # noqa: F401  (they register)


TAMPER_METHODS: Registry = Registry("tamper method", populate=_populate)


@dataclass
class TamperFinding:
    method: str  # registry name
    kind: str  # "copy_move" or "splicing"
    score: float  # image-level evidence in [0, 1], monotone in the method's statistic
    found: bool  # score >= FOUND_AT
    mask: np.ndarray  # float32 HxW in [0, 1], the input's size: where the method sees tampering
    message: str  # one line for a person
    detail: dict[str, Any] = field(default_factory=dict)  # JSON-serialisable extras


def score_of(statistic: float, threshold: float) -> float:
    """s / (s + s0): 0.5 exactly at the decision threshold s0."""
    s = max(float(statistic), 0.0)
    return s / (s + float(threshold)) if s > 0 else 0.0


def as_rgb(image: np.ndarray) -> np.ndarray:
    """Validate the input (HxWx3 uint8 RGB; HxW gray and HxWx4 RGBA are accepted and converted)."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"tamper analysis needs a uint8 image, got {image.dtype}")
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim == 3 and image.shape[2] == 4:
        return np.ascontiguousarray(image[:, :, :3])
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"tamper analysis needs an HxWx3 RGB image, got shape {image.shape}")
    return np.ascontiguousarray(image)


def gray(image_rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image_rgb, cv2.COLOR_RGB2GRAY)


def downscale(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """A copy whose longest side is at most max_side (INTER_AREA), and the factor applied (<= 1)."""
    h, w = image.shape[:2]
    factor = min(1.0, max_side / max(h, w))
    if factor >= 1.0:
        return image, 1.0
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), factor


def resize_mask(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A map computed on a rescaled copy, back at (H, W) of the input, float32 in [0, 1]."""
    mask = np.asarray(mask, dtype=np.float32)
    if mask.shape != tuple(shape):
        mask = cv2.resize(mask, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
    return np.clip(mask, 0.0, 1.0).astype(np.float32)


def remove_small(binary: np.ndarray, min_area: int) -> np.ndarray:
    """Drop connected components smaller than min_area pixels."""
    binary = binary.astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    keep = np.zeros(n, bool)
    keep[1:] = stats[1:, cv2.CC_STAT_AREA] >= min_area
    return keep[labels]


def cannot_run(method: str, kind: str, shape: tuple[int, int], reason: str, **detail: Any) -> TamperFinding:
    """The finding of a method that cannot look at this input: nothing found, and why."""
    return TamperFinding(method=method, kind=kind, score=0.0, found=False,
                         mask=np.zeros(shape, np.float32), message=f"not analysed: {reason}",
                         detail={"skipped": reason, **detail})


def analyse(image_rgb: np.ndarray, methods: Optional[Iterable[str]] = None) -> list[TamperFinding]:
    """Run the named methods (None: all registered, in name order) with their defaults on one image.
    Errors propagate: a method that cannot look at an input says so in its finding instead."""
    image = as_rgb(image_rgb)
    names = list(TAMPER_METHODS) if methods is None else [methods] if isinstance(methods, str) else list(methods)
    classes = [TAMPER_METHODS.get(name) for name in names]  # every typo fails before any work
    return [cls()(image) for cls in classes]
