"""PyTorch datasets over a manifest of face crops."""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from ..scan.faces import crop_face
from ..models.spec import PreprocessSpec, normalise_crops
from .manifest import Manifest


def load_face_crop(path, size: int) -> np.ndarray:
    """A face-crop image as the scanner's --crops mode sees it: squared around its
    centre (edge-padded, no distortion) and resized to size x size, RGB uint8."""
    with Image.open(path) as image:
        rgb = np.asarray(image.convert("RGB"))
    height, width = rgb.shape[:2]
    return crop_face(rgb, (0.0, 0.0, float(width), float(height)), 1.0, size)


def normalise(image: np.ndarray, preprocess: PreprocessSpec) -> torch.Tensor:
    return torch.from_numpy(normalise_crops(image, preprocess))


class FaceCropDataset(Dataset):
    """Yields {"image": (3,H,W) normalised tensor, "label": float tensor, "index": int}.

    For a whole-image model (preprocess.subject "image") each item is instead the picture's
    centre crop at native resolution, never a resize (fakescope.data.images), so evaluation
    scores such models as they were validated.

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
        if self.preprocess.subject == "image":  # whole-image detectors: the centre crop at native resolution
            from .images import centre_view, load_image

            image = centre_view(load_image(self.manifest.resolve(sample.path)), self.preprocess.input_size)
        else:
            image = load_face_crop(self.manifest.resolve(sample.path), self.preprocess.input_size)
        if self.augment is not None:
            image = self.augment(image)
        return {
            "image": normalise(image, self.preprocess),
            "label": torch.tensor(float(sample.label)),
            "index": index,
        }


class VideoClipDataset(Dataset):
    """Clips of K consecutive frames of one video: {"image": (K,3,H,W), "label": float tensor,
    "index": int, "video": int (index into `videos`), "rows": (K,) manifest row indices}.

    Rows are grouped into videos by `fakescope.data.splits.video_key` (dataset, label,
    method, `video`; a row without a video id is a one-frame video) and ordered by their
    `frame` column (rows without one keep their manifest order, after the numbered ones).
    A video shorter than K repeats its last frame.

    `mode` says which clips there are:
      "video"    one item per video; its start is drawn per epoch from (seed, epoch, index)
      "picture"  one item per frame row: a clip holding that frame, at an offset drawn
                 from (seed, epoch, index), so longer videos give more clips
      "tile"     fixed clips covering every frame of every video (validation): starts
                 0, K, 2K, ... and a last one ending at the video's last frame
    Clips depend on nothing but (seed, epoch, index), so they are the same in any loader
    worker and after a resume. `augment` (RGB uint8 -> RGB uint8) is applied to each
    frame; if it has `reseed(*key)` (fakescope.train.augment.Augmenter) it is reseeded
    with the same (seed, epoch, index) before each frame, so all K frames of a clip get
    the same random transform (one flip, one crop, one JPEG quality for the clip).
    """

    MODES = ("video", "picture", "tile")

    def __init__(self, manifest: Manifest, preprocess: PreprocessSpec, frames: int, mode: str = "video",
                 augment: Optional[Callable[[np.ndarray], np.ndarray]] = None, seed: int = 0):
        from .splits import video_key

        if mode not in self.MODES:
            raise ValueError(f"mode must be one of {', '.join(self.MODES)}, got {mode!r}")
        if frames < 1:
            raise ValueError(f"frames must be >= 1, got {frames}")
        self.manifest = manifest
        self.preprocess = preprocess
        self.frames = int(frames)
        self.mode = mode
        self.augment = augment
        self.seed = int(seed)
        self.epoch = 0
        grouped: dict[tuple, list[int]] = {}
        for row, sample in enumerate(manifest.samples):
            grouped.setdefault(video_key(sample), []).append(row)
        samples = manifest.samples
        #: per video, its manifest rows in frame order
        self.videos: list[list[int]] = [
            sorted(rows, key=lambda r: (samples[r].frame is None, samples[r].frame or 0, r)) for rows in grouped.values()
        ]
        self.video_labels = [int(samples[rows[0]].label) for rows in self.videos]
        if mode == "video":
            self.items = [(v, None) for v in range(len(self.videos))]
        elif mode == "picture":
            self.items = [(v, p) for v, rows in enumerate(self.videos) for p in range(len(rows))]
        else:
            self.items = [(v, start) for v, rows in enumerate(self.videos) for start in self._tiles(len(rows))]

    def _tiles(self, n: int) -> list[int]:
        k = self.frames
        if n <= k:
            return [0]
        starts = list(range(0, n - k + 1, k))
        if starts[-1] + k < n:
            starts.append(n - k)
        return starts

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.items)

    def labels(self) -> list[int]:
        """The label of every item (for class-balanced sampling)."""
        return [self.video_labels[v] for v, _ in self.items]

    @property
    def short_videos(self) -> int:
        return sum(1 for rows in self.videos if len(rows) < self.frames)

    def clip_rows(self, index: int) -> list[int]:
        """The K manifest rows of item `index` this epoch."""
        video, position = self.items[index]
        rows = self.videos[video]
        last_start = max(len(rows) - self.frames, 0)
        if self.mode == "tile":
            start = position
        else:
            rng = np.random.default_rng(np.random.SeedSequence([self.seed, self.epoch, index, 0xC1195]))
            if self.mode == "video":
                start = int(rng.integers(0, last_start + 1))
            else:  # the clip holds frame `position`, at a random place in it
                start = min(max(position - int(rng.integers(0, self.frames)), 0), last_start)
        return [rows[min(start + j, len(rows) - 1)] for j in range(self.frames)]

    def __getitem__(self, index: int) -> dict:
        rows = self.clip_rows(index)
        video = self.items[index][0]
        reseed = getattr(self.augment, "reseed", None)
        images = []
        for row in rows:
            image = load_face_crop(self.manifest.resolve(self.manifest.samples[row].path), self.preprocess.input_size)
            if self.augment is not None:
                if reseed is not None:
                    reseed(self.seed, self.epoch, index)  # the same draw for every frame of the clip
                image = self.augment(image)
            images.append(normalise(image, self.preprocess))
        return {
            "image": torch.stack(images),
            "label": torch.tensor(float(self.video_labels[video])),
            "index": index,
            "video": video,
            "rows": torch.tensor(rows, dtype=torch.long),
        }


MASK_THRESHOLD = 128  # of 255: ground-truth mask pixels at or above it are manipulated


def load_mask(path) -> np.ndarray:
    """A ground-truth manipulation mask image as a bool array (height, width): gray level
    >= 128 of 255 is manipulated (white = manipulated, as FF++ and the extracted masks have it;
    the threshold also absorbs JPEG and video-compression noise around 0 and 255)."""
    with Image.open(path) as image:
        gray = np.asarray(image.convert("L"))
    return gray >= MASK_THRESHOLD
