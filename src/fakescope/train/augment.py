"""Training augmentation: albumentations transforms named in the config, then face-part cutout.

Randomness is reseeded for every sample from (run seed, epoch, sample index), so
what a sample looks like in an epoch depends on nothing else: not on the number
of loader workers, not on which worker gets it, not on whether the run was
resumed. That is what lets a resumed run match an uninterrupted one exactly.

Face-part cutout blacks out one facial region of an aligned face crop, so the
detector cannot rest on one region's artefacts alone (blending seams around the
eyes, teeth in the mouth). The regions are fixed boxes relative to the crop,
set by looking at fakescope's crops (faces centred, the scanner's 1.3 margin,
and the CIPLAB portraits squared around their centre):

    eyes   x 0.17-0.83, y 0.28-0.48   (both eyes and brows: a horizontal band)
    nose   x 0.38-0.62, y 0.40-0.66
    mouth  x 0.28-0.72, y 0.62-0.84

Each box is shifted by up to `jitter` of the crop side, at random, so the edge
of the black box is not itself a fixed feature. The boxes assume upright,
centred faces; on other crops they black out roughly the right area. Leave it
off (p 0) for data whose fakes are edits of one region (CIPLAB's Photoshop
set): blacking out the edited part leaves a real-looking face labelled fake.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from .config import AugmentSection, FacePartCutoutSpec, TransformSpec

FACE_PART_BOXES: dict[str, tuple[float, float, float, float]] = {
    "eyes": (0.17, 0.28, 0.83, 0.48),
    "nose": (0.38, 0.40, 0.62, 0.66),
    "mouth": (0.28, 0.62, 0.72, 0.84),
}


def build_transform(spec: TransformSpec):
    import albumentations as A

    return getattr(A, spec.name)(**spec.params, p=spec.p)


def face_part_cutout(
    image: np.ndarray, part: str, rng: np.random.Generator, jitter: float = 0.03, fill: int = 0,
) -> np.ndarray:
    """A copy of an (H, W, C) crop with one face part's box filled with `fill`."""
    height, width = image.shape[:2]
    x0, y0, x1, y1 = FACE_PART_BOXES[part]
    dx, dy = rng.uniform(-jitter, jitter, size=2) if jitter > 0 else (0.0, 0.0)
    left, right = int(round((x0 + dx) * width)), int(round((x1 + dx) * width))
    top, bottom = int(round((y0 + dy) * height)), int(round((y1 + dy) * height))
    out = image.copy()
    out[max(top, 0):max(bottom, 0), max(left, 0):max(right, 0)] = fill
    return out


class Augmenter:
    """RGB uint8 (H, W, 3) -> RGB uint8 of the same shape; call `reseed` before each sample."""

    def __init__(self, transforms: Sequence = (), cutout: Optional[FacePartCutoutSpec] = None):
        import albumentations as A

        self.transforms = list(transforms)
        self.compose = A.Compose(self.transforms, p=1.0) if self.transforms else None
        self.cutout = cutout if cutout is not None and cutout.p > 0 else None
        self.rng = np.random.default_rng(0)

    def reseed(self, *key: int) -> None:
        """Seed everything random from `key` (e.g. seed, epoch, index).

        Each transform gets its own stream: albumentations' Compose.set_random_seed
        would give all of them the same seed, so transforms with equal p would
        always fire together.
        """
        states = np.random.SeedSequence([int(k) for k in key]).generate_state(len(self.transforms) + 2)
        if self.compose is not None:
            self.compose.set_random_seed(int(states[0]))
            for transform, state in zip(self.transforms, states[1:]):
                transform.set_random_seed(int(state))
        self.rng = np.random.default_rng(int(states[-1]))

    def __call__(self, image: np.ndarray) -> np.ndarray:
        return self.with_mask(image, None)[0]

    def with_mask(self, image: np.ndarray, mask: Optional[np.ndarray]) -> tuple[np.ndarray, Optional[np.ndarray]]:
        """Augment an image and, where given, its (H, W) float mask alike: spatial transforms
        (flips, shifts) move the mask with the face, pixel-level ones (JPEG, blur, colour)
        leave it as is. Face-part cutout leaves the mask too."""
        if self.compose is None:
            out = image
        elif mask is None:
            out = self.compose(image=image)["image"]
        else:
            result = self.compose(image=image, mask=mask)
            out, mask = result["image"], np.ascontiguousarray(result["mask"], dtype=np.float32)
        if out.shape != image.shape or out.dtype != np.uint8:
            raise ValueError(
                f"augmentation changed the crop from {image.shape} {image.dtype} to {out.shape} {out.dtype}; "
                "transforms must keep the input size and uint8 (resize and normalisation come from preprocess)"
            )
        if self.cutout is not None and self.rng.random() < self.cutout.p:
            part = self.cutout.parts[int(self.rng.integers(len(self.cutout.parts)))]
            out = face_part_cutout(out, part, self.rng, self.cutout.jitter, self.cutout.fill)
        return out, mask


def build_augmenter(section: AugmentSection) -> Optional[Augmenter]:
    """None when the config asks for no augmentation (the loader then skips the call)."""
    transforms = [build_transform(spec) for spec in section.transforms]
    if not transforms and section.face_part_cutout.p == 0:
        return None
    return Augmenter(transforms, section.face_part_cutout)
