"""Whole-image samples for detectors of generated images (`PreprocessSpec.subject == "image"`).

Why not resize: the traces these detectors learn are high-frequency ones (the up-sampling
grid of a GAN or a diffusion decoder, the spectral peaks it leaves, JPEG-grid interplay):
Wang et al. (CVPR 2020, "CNN-generated images are surprisingly easy to spot... for now")
and Frank et al. (ICML 2020, "Leveraging frequency analysis for deep fake image recognition")
both train on crops at the image's own resolution, and Gragnaniello et al. (ICME 2021) show
that resizing before the detector removes much of the signal. So a large picture is never
shrunk to input_size here:

  training     a random input_size x input_size crop at native resolution, the offset drawn
               from (seed, epoch, index) like every other random choice in fakescope (exact
               resume); the albumentations list of the recipe runs on the whole native picture
               first (Wang et al. blur and JPEG-compress before cropping), so size-changing
               transforms (RandomScale: rescale augmentation) are allowed here, unlike on faces
  val / test   the deterministic centre crop (`centre_view`)
  scanning     `image_views(image, size, count)`: the centre and the corners (then a grid),
               for multi-view scoring of large pictures

A picture smaller than input_size (a 32 px CIFAKE image) is upsampled, bicubic, the shorter
side to input_size, aspect kept (`fit_min_side`). Why not reflection padding: a 32 px image
padded to 224 would be mostly mirrored copies of itself, whose seams are a strong artificial
feature; upsampling keeps one coherent picture. Its cost: the interpolation imposes its own
low-pass spectrum on every small image (real and fake alike), which hides the generator's
own high-frequency trace, and a detector trained on such inputs learns the content of
upsampled thumbnails rather than native generator fingerprints; it says little about
full-resolution images. It is also 49x the pixels (and compute) of the original at 224 px.

Everything here except `WholeImageDataset.__getitem__` is NumPy/OpenCV/PIL only, so the scanner
can import `image_views` without PyTorch.

The `image-forensics` layout (`index_image_forensics`, registered in layouts.py) merges the shared
whole-image sets into one manifest with `generator` and `family` (real | gan | diffusion) columns.
These sets are tiny (1,000 + 1,000 CIFAKE thumbnails, 40 StyleGAN2 faces, 13 faces140k images):
enough to test the pipeline and to compare recipes on CIFAKE, far too little to claim that a
detector generalises to unseen generators.
"""
from __future__ import annotations

import csv
import os
import zlib
from collections import Counter
from pathlib import Path
from typing import Callable, Optional, Sequence

import cv2
import numpy as np

from .manifest import Manifest, ManifestError, Sample

#: attribution classes in the order `family_index` numbers them
FAMILIES = ("real", "gan", "diffusion")
REAL_METHOD = "original"  # layouts.REAL_METHOD: the manifest's method for every real item

#: generator-name prefixes (lower case) -> family; first match wins
FAMILY_PREFIXES: tuple[tuple[str, str], ...] = (
    ("real", "real"), ("original", "real"),
    ("stable-diffusion", "diffusion"), ("sd-", "diffusion"), ("sdxl", "diffusion"), ("latent-diffusion", "diffusion"),
    ("glide", "diffusion"), ("dalle", "diffusion"), ("dall-e", "diffusion"), ("midjourney", "diffusion"),
    ("adm", "diffusion"), ("ddpm", "diffusion"), ("imagen", "diffusion"),
    ("stylegan", "gan"), ("progan", "gan"), ("pggan", "gan"), ("biggan", "gan"), ("cyclegan", "gan"),
    ("gaugan", "gan"), ("stargan", "gan"),
)

#: the sets the layout reads, folder name -> (required, has a `generator` column)
IMAGE_FORENSICS_SETS = ("cifake-sd14", "styleclip-stylegan2-e4e", "faces140k-sample")
CIPLAB_GENERATOR = "real-ciplab"
SPLIT_SHARES = (0.70, 0.15, 0.15)  # train / val / test


def family_of(generator: Optional[str], label: Optional[int] = None) -> Optional[str]:
    """"real", "gan" or "diffusion" from a generator name (stable-diffusion* -> diffusion,
    stylegan* -> gan, real* / original -> real); None when unknown. With no generator, a real
    (label 0) is "real"."""
    if not generator:
        return "real" if label == 0 else None
    name = generator.strip().lower()
    for prefix, family in FAMILY_PREFIXES:
        if name.startswith(prefix):
            return family
    return None


def family_index(sample: Sample, classes: Sequence[str] = FAMILIES) -> int:
    """The attribution target of a manifest row: its family's index in `classes`, -1 when the
    family is unknown or not among them (such rows should be left out of an attribution loss)."""
    family = family_of(sample.method, sample.label)
    return list(classes).index(family) if family in classes else -1


# --------------------------------------------------------------------------- views (torch-free)


def _check_image(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        got = f"{image.shape} {image.dtype}" if isinstance(image, np.ndarray) else type(image).__name__
        raise ValueError(f"expected an RGB uint8 image (H, W, 3), got {got}")
    return image


def load_image(path) -> np.ndarray:
    """An image file as RGB uint8 (H, W, 3) at its own resolution."""
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def fit_min_side(image: np.ndarray, size: int) -> np.ndarray:
    """The image as it is when both sides are >= size; else upsampled (bicubic, aspect kept) so
    the shorter side is `size`. Never downsampled (see the module docstring for why and the cost)."""
    _check_image(image)
    height, width = image.shape[:2]
    if min(height, width) >= size:
        return image
    scale = size / min(height, width)
    new_w, new_h = max(size, int(round(width * scale))), max(size, int(round(height * scale)))
    return cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_CUBIC)


def crop_at(image: np.ndarray, top: int, left: int, size: int) -> np.ndarray:
    return np.ascontiguousarray(image[top:top + size, left:left + size])


def centre_view(image: np.ndarray, size: int) -> np.ndarray:
    """The size x size centre crop at native resolution (after `fit_min_side`)."""
    image = fit_min_side(image, size)
    height, width = image.shape[:2]
    return crop_at(image, (height - size) // 2, (width - size) // 2, size)


def random_view(image: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """A size x size crop at a uniformly random offset, native resolution (after `fit_min_side`)."""
    image = fit_min_side(image, size)
    height, width = image.shape[:2]
    top = int(rng.integers(0, height - size + 1))
    left = int(rng.integers(0, width - size + 1))
    return crop_at(image, top, left, size)


def view_offsets(height: int, width: int, size: int, count: int = 5) -> list[tuple[int, int]]:
    """(top, left) of the views `image_views` cuts from a (height, width) picture (both >= size):
    the centre first, then the four corners (top-left, top-right, bottom-left, bottom-right);
    beyond 5, the centre then `count - 1` positions spread evenly over an n x n grid spanning the
    picture (the smallest n >= ceil(sqrt(count - 1)) with enough points besides the centre), in
    raster order."""
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    bottom, right = height - size, width - size
    centre = (bottom // 2, right // 2)
    if count <= 5:
        return [centre, (0, 0), (0, right), (bottom, 0), (bottom, right)][:count]
    n = int(np.ceil(np.sqrt(count - 1)))
    finest = max(bottom, right) + 2  # a grid finer than the pixels only repeats positions
    while True:  # the grid without the centre, which is already the first view
        tops = np.linspace(0, bottom, n).round().astype(int)
        lefts = np.linspace(0, right, n).round().astype(int)
        grid = list(dict.fromkeys((int(t), int(l)) for t in tops for l in lefts if (int(t), int(l)) != centre))
        if len(grid) >= count - 1 or n >= finest:
            break
        n += 1
    if not grid:  # the picture is one view: every view is the whole picture
        return [centre] * count
    picks = np.linspace(0, len(grid) - 1, count - 1).round().astype(int)  # repeats where the picture is small
    return [centre] + [grid[i] for i in picks]


def image_views(image: np.ndarray, size: int, count: int = 5) -> list[np.ndarray]:
    """`count` deterministic size x size x 3 uint8 crops of an RGB uint8 picture at its own
    resolution, for multi-view scoring (average or max the views' scores): the centre, the four
    corners, then a grid (see `view_offsets`). A picture smaller than `size` is upsampled first
    (`fit_min_side`); when it is exactly size x size, every view is the whole picture."""
    image = fit_min_side(_check_image(image), size)
    height, width = image.shape[:2]
    return [crop_at(image, top, left, size) for top, left in view_offsets(height, width, size, count)]


# --------------------------------------------------------------------------- training samples


def _augment_native(augment: Callable, image: np.ndarray) -> np.ndarray:
    """Run the recipe's augmentation on the whole native picture. A fakescope `Augmenter`
    refuses shape changes (right for face crops); here the crop comes after, so its
    albumentations pipeline is called directly and may rescale. Face-part cutout does not
    apply to whole images (the trainer refuses it for them)."""
    compose = getattr(augment, "compose", None)
    if compose is not None or hasattr(augment, "transforms"):
        out = image if compose is None else compose(image=image)["image"]
    else:
        out = augment(image)
    if not isinstance(out, np.ndarray) or out.ndim != 3 or out.shape[2] != 3 or out.dtype != np.uint8:
        raise ValueError(f"augmentation must return an RGB uint8 image, got {getattr(out, 'shape', None)} "
                         f"{getattr(out, 'dtype', None)}")
    return np.ascontiguousarray(out)


class WholeImageDataset:
    """Whole-image samples: {"image": (3, S, S) normalised tensor, "label": float tensor,
    "index": int, "family": long tensor (index into `attribution_classes`, -1 unknown)}.

    train=True: augmentation of the native picture (reseeded from (seed, epoch, index) when it
    has `reseed`), then a random S x S crop, its offset from the same key. train=False: the
    centre crop, no augmentation. A map-style dataset (DataLoader takes it) that needs PyTorch
    only in __getitem__.
    """

    def __init__(self, manifest: Manifest, preprocess, augment: Optional[Callable] = None, seed: int = 0,
                 train: bool = False, attribution_classes: Sequence[str] = FAMILIES):
        if getattr(preprocess, "subject", "image") != "image":
            raise ValueError("WholeImageDataset is for preprocess.subject == 'image'")
        self.manifest = manifest
        self.preprocess = preprocess
        self.augment = augment if train else None
        self.seed = int(seed)
        self.train = bool(train)
        self.epoch = 0
        self.attribution_classes = tuple(attribution_classes)

    def __len__(self) -> int:
        return len(self.manifest)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def labels(self) -> list[int]:
        return self.manifest.labels()

    def view(self, index: int) -> np.ndarray:
        """The S x S RGB uint8 view of item `index` this epoch (before normalisation)."""
        sample = self.manifest.samples[index]
        image = load_image(self.manifest.resolve(sample.path))
        size = self.preprocess.input_size
        if not self.train:
            return centre_view(image, size)
        if self.augment is not None:
            reseed = getattr(self.augment, "reseed", None)
            if reseed is not None:
                reseed(self.seed, self.epoch, index)
            image = _augment_native(self.augment, image)
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, self.epoch, index, 0xC60]))
        return random_view(image, size, rng)

    def __getitem__(self, index: int) -> dict:
        import torch

        from ..models.spec import normalise_crops

        sample = self.manifest.samples[index]
        return {
            "image": torch.from_numpy(normalise_crops(self.view(index), self.preprocess)),
            "label": torch.tensor(float(sample.label)),
            "index": index,
            "family": torch.tensor(family_index(sample, self.attribution_classes), dtype=torch.long),
        }


# --------------------------------------------------------------------------- the image-forensics layout


class ImageManifest(Manifest):
    """A Manifest whose CSV also carries `generator` and `family` (Sample has no such fields;
    `method` holds the generator for fakes and "original" for reals, so every reader of plain
    manifests, per-method evaluation included, sees the generator). Reading the CSV back with
    `Manifest.read` gives a plain manifest; `family_of(sample.method, sample.label)` recovers the family."""

    COLUMNS = ("path", "label", "generator", "family", "dataset", "split", "method", "source")

    def __init__(self, samples, root, generators: Sequence[str]):
        super().__init__(samples, root)
        self.generators = list(generators)
        if len(self.generators) != len(self.samples):
            raise ValueError("one generator per sample")

    def write(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(self.COLUMNS))
            writer.writeheader()
            for sample, generator in zip(self.samples, self.generators):
                writer.writerow({
                    "path": os.path.relpath(self.resolve(sample.path), path.parent),
                    "label": sample.label, "generator": generator,
                    "family": family_of(generator, sample.label) or "", "dataset": sample.dataset or "",
                    "split": sample.split or "", "method": sample.method or "", "source": sample.source or "",
                })
        return path


def _read_rows(path: Path) -> list[dict]:
    if not path.is_file():
        raise ManifestError(f"{path.parent}: no manifest.csv (is this the shared image-forensics folder?)")
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or not {"path", "label"} <= set(rows[0]):
        raise ManifestError(f"{path}: expected a CSV with at least path,label columns")
    return rows


def stratified_split(keys: Sequence[tuple], ids: Sequence[str], seed: int,
                     shares: tuple[float, float, float] = SPLIT_SHARES) -> list[str]:
    """A split name per item: within each group of equal `keys` (e.g. (dataset, label)), the
    items sorted by id, shuffled by a generator seeded with (seed, crc32 of the group), and cut
    train / val / test by `shares`; a group of 3 or more gets at least one val and one test
    item. A pure function of its inputs: the same files always land in the same split."""
    _, val_share, test_share = shares
    groups: dict[tuple, list[int]] = {}
    for i, key in enumerate(keys):
        groups.setdefault(tuple(key), []).append(i)
    out = ["train"] * len(keys)
    for key, members in groups.items():
        members = sorted(members, key=lambda i: ids[i])
        salt = zlib.crc32(repr(key).encode())
        order = np.random.default_rng(np.random.SeedSequence([int(seed), salt])).permutation(len(members))
        n = len(members)
        n_test, n_val = int(round(n * test_share)), int(round(n * val_share))
        if n >= 3:
            n_test, n_val = max(n_test, 1), max(n_val, 1)
        for rank, j in enumerate(order):
            out[members[j]] = "test" if rank < n_test else "val" if rank < n_test + n_val else "train"
    return out


def index_image_forensics(root: Path, *, ciplab: str = "auto", seed: int = 0, holdout: str | Sequence[str] = "",
                          val: float = SPLIT_SHARES[1], test: float = SPLIT_SHARES[2]) -> ImageManifest:
    """See `layouts.read_image_forensics` (the registered reader)."""
    root = Path(root)
    if not root.is_dir():
        raise ManifestError(f"{root}: no such folder (the shared image-forensics folder)")
    rows: list[tuple[str, int, str, str, Optional[str], Optional[str]]] = []  # path, label, generator, dataset, split, source
    for name in IMAGE_FORENSICS_SETS:
        for line, row in enumerate(_read_rows(root / name / "manifest.csv"), start=2):
            generator = (row.get("generator") or "").strip()
            label = int(row["label"])
            if family_of(generator, label) is None:
                raise ManifestError(f"{root / name / 'manifest.csv'}:{line}: generator {generator!r} has no known "
                                    f"family (add its prefix to fakescope.data.images.FAMILY_PREFIXES)")
            rows.append((f"{name}/{row['path']}", label, generator, name, None, row.get("source") or None))
    ciplab_root = _ciplab_root(root, ciplab)
    if ciplab_root is not None:
        for line, row in enumerate(_read_rows(ciplab_root / "manifest.csv"), start=2):
            if int(row["label"]) != 0:
                continue  # the Photoshop edits are face tampering, not generated images
            split = (row.get("split") or "").strip() or None
            if split not in ("train", "val", "test"):
                raise ManifestError(f"{ciplab_root / 'manifest.csv'}:{line}: split {split!r} is none of train, val, test")
            path = os.path.relpath(ciplab_root / row["path"], root)
            rows.append((Path(path).as_posix(), 0, CIPLAB_GENERATOR, "ciplab-faces", split, None))
    missing = [r[0] for r in rows if not (root / r[0]).is_file()]
    if missing:
        raise ManifestError(f"{root}: {len(missing)} listed file(s) missing, e.g. {missing[0]}")
    held = {h.strip() for h in (holdout.split(",") if isinstance(holdout, str) else holdout) if h.strip()}
    unknown = held - {r[3] for r in rows}
    if unknown:
        raise ManifestError(f"holdout: no dataset named {sorted(unknown)}; datasets: {sorted({r[3] for r in rows})}")
    val, test = float(val), float(test)
    if not (0 <= val < 1 and 0 <= test < 1 and val + test < 1):
        raise ManifestError(f"val {val} and test {test}: each in [0, 1), together below 1")
    free = [i for i, r in enumerate(rows) if r[4] is None and r[3] not in held]
    drawn = stratified_split([(rows[i][3], rows[i][1]) for i in free], [rows[i][0] for i in free], int(seed),
                             (1 - val - test, val, test))
    splits = [r[4] if r[4] is not None else ("test" if r[3] in held else None) for r in rows]
    for i, split in zip(free, drawn):
        splits[i] = split
    samples = [Sample(path, label, method=REAL_METHOD if label == 0 else generator, split=split, source=source,
                      dataset=dataset)
               for (path, label, generator, dataset, _, source), split in zip(rows, splits)]
    paths = Counter(s.path for s in samples)
    twice = [p for p, n in paths.items() if n > 1]
    if twice:
        raise ManifestError(f"{root}: {len(twice)} path(s) listed twice, e.g. {twice[0]}")
    return ImageManifest(samples, root, [r[2] for r in rows])


def _ciplab_root(root: Path, ciplab: str) -> Optional[Path]:
    text = str(ciplab).strip()
    if text.lower() in ("none", "false", "no", "off", ""):
        return None
    if text.lower() == "auto":
        guess = root.parent / "ciplab-faces"
        return guess if (guess / "manifest.csv").is_file() else None
    folder = Path(text).expanduser()
    folder = folder if folder.is_absolute() else Path.cwd() / folder
    if not (folder / "manifest.csv").is_file():
        raise ManifestError(f"ciplab={ciplab}: no manifest.csv in {folder}")
    return folder
