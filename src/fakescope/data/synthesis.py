"""Training fakes made from real faces only: self-blended images and Face X-ray blends.

Groundwork for detectors trained without any manipulated data:

* `fit_landmarks68` turns MTCNN's 5 points into 68 face landmarks by fitting a
  mean-shape template with a similarity transform (Umeyama, least squares).
* `landmark_mask` draws a blending mask from the landmarks: convex hull of a
  region, randomly scaled/shifted, elastically deformed, eroded or dilated and
  Gaussian-blurred into a soft float mask in [0, 1].
* `self_blend` (SBI; Shiohara & Yamasaki, CVPR 2022): a face blended into
  itself after a colour/sharpness change and a small scale/shift of the source.
* `xray_blend` (Face X-ray; Li et al., CVPR 2020): a face blended onto another
  real face with similar landmarks, after warping and colour correction.
* `SyntheticFakeDataset`: real crops in, half of them turned into fakes
  (label 1 = fake, with the mask), reproducibly from (seed, epoch, index).

Every random choice draws from a `numpy.random.Generator` passed in, so a
result is a pure function of its inputs and that generator's seed.

Images are RGB uint8 HxWx3; masks float32 HxW; landmarks float (68, 2) in
pixels of the image they belong to.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from torch.utils.data import Dataset

log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------
# 1. The 68-point mean-shape template
# ---------------------------------------------------------------------------


def _arc(x0: float, x1: float, y_ends: float, y_mid: float, n: int) -> np.ndarray:
    """n points from x0 to x1 on a parabola through (x0, y_ends), (mid, y_mid), (x1, y_ends)."""
    x = np.linspace(x0, x1, n)
    t = (x - (x0 + x1) / 2) / ((x1 - x0) / 2)
    return np.stack([x, y_mid + (y_ends - y_mid) * t**2], axis=1)


def _eye(cx: float, cy: float, half_width: float, half_height: float) -> np.ndarray:
    """6 eye points in 68-point order: outer/inner corner, two upper-lid, corner, two lower-lid."""
    # Points go clockwise in the image starting at the corner on the image-left side.
    angles = np.deg2rad([180, 120, 60, 0, -60, -120])
    return np.stack([cx + half_width * np.cos(angles), cy - half_height * np.sin(angles)], axis=1)


def _build_template() -> np.ndarray:
    """The mean face in the 68-point (iBUG 300-W) order, in a unit box (x right, y down).

    Where the numbers come from: not from any landmark dataset or model file. The shape
    is drawn from textbook facial proportions and laid out so that its 5 MTCNN-style
    points match the proportions of the widely used 5-point face-alignment reference
    (eye centres ~0.40 apart, nose tip ~half-way and mouth ~1.15 eye distances below the
    eyes, mouth width ~0.83 eye distances):

        eye centres   (0.30, 0.32) and (0.70, 0.32)
        nose tip      (0.50, 0.55)    (point 30)
        mouth corners (0.334, 0.78) and (0.666, 0.78)  (points 48 and 54)

    The jaw (0-16) is a half-superellipse from ear level (y 0.30, x 0.04 / 0.96) down to
    the chin (0.5, 1.0); brows (17-26) are arcs ~0.1 above the eyes; the nose bridge
    (27-30) runs down the midline; nostrils (31-35) sit at y 0.62; eyes (36-47) are
    6-point ellipses 0.18 wide; lips (48-67) are arcs between the mouth corners.
    "Left"/"right" are as seen in the image, like MTCNN's.
    """
    theta = np.linspace(0.0, np.pi, 17)
    jaw = np.stack(
        [0.5 - 0.46 * np.sign(np.cos(theta)) * np.abs(np.cos(theta)) ** 0.8,
         0.30 + 0.70 * np.sin(theta) ** 1.3],
        axis=1,
    )
    brow_left = _arc(0.13, 0.44, 0.22, 0.17, 5)
    brow_right = _arc(0.56, 0.87, 0.22, 0.17, 5)
    bridge = np.stack([np.full(4, 0.5), np.linspace(0.32, 0.55, 4)], axis=1)
    nostrils = np.array([[0.41, 0.61], [0.45, 0.625], [0.50, 0.635], [0.55, 0.625], [0.59, 0.61]])
    eye_left = _eye(0.30, 0.32, 0.09, 0.035)
    eye_right = _eye(0.70, 0.32, 0.09, 0.035)
    # Outer lip, clockwise from the left corner: 48 corner, 49-53 upper, 54 corner, 55-59 lower.
    upper = np.array([[0.38, 0.745], [0.44, 0.725], [0.50, 0.735], [0.56, 0.725], [0.62, 0.745]])
    lower = np.array([[0.62, 0.82], [0.56, 0.845], [0.50, 0.85], [0.44, 0.845], [0.38, 0.82]])
    outer = np.concatenate([[[0.334, 0.78]], upper, [[0.666, 0.78]], lower])
    # Inner lip: 60 corner, 61-63 upper, 64 corner, 65-67 lower.
    inner = np.array([[0.36, 0.78], [0.44, 0.765], [0.50, 0.77], [0.56, 0.765],
                      [0.64, 0.78], [0.56, 0.795], [0.50, 0.80], [0.44, 0.795]])
    template = np.concatenate([jaw, brow_left, brow_right, bridge, nostrils, eye_left, eye_right, outer, inner])
    assert template.shape == (68, 2)
    return template.astype(np.float64)


TEMPLATE_68 = _build_template()

#: Named landmark regions (indices into the 68 points) used for mask shapes.
REGIONS: dict[str, np.ndarray] = {
    "face": np.arange(68),
    "lower": np.concatenate([np.arange(2, 15), np.arange(29, 36)]),  # cheeks, nose, mouth, chin
    "inner": np.arange(17, 68),  # brows, eyes, nose, mouth (no jaw line)
    "eyes_nose": np.concatenate([np.arange(17, 27), np.arange(27, 48)]),
}
#: The mask regions drawn at random, with their odds (the whole face most often, as in SBI).
REGION_CHOICES = (("face", 0.55), ("lower", 0.2), ("inner", 0.15), ("eyes_nose", 0.1))


def template_five_points(landmarks68: np.ndarray) -> np.ndarray:
    """MTCNN's 5 points (left eye, right eye, nose, left/right mouth corner) from 68 landmarks."""
    lm = np.asarray(landmarks68, dtype=np.float64)
    return np.stack([lm[36:42].mean(0), lm[42:48].mean(0), lm[30], lm[48], lm[54]])


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2x3 least-squares similarity (rotation, uniform scale, shift) taking src to dst (Umeyama, 1991)."""
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    cov = d.T @ s / len(src)
    u, sigma, vt = np.linalg.svd(cov)
    sign = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1, 1] = -1
    rotation = u @ sign @ vt
    var_s = (s**2).sum() / len(src)
    scale = (sigma * np.diag(sign)).sum() / var_s if var_s > 0 else 1.0
    shift = mu_d - scale * rotation @ mu_s
    return np.hstack([scale * rotation, shift[:, None]])


def apply_transform(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    points = np.asarray(points, dtype=np.float64)
    return points @ matrix[:, :2].T + matrix[:, 2]


_TEMPLATE_FIVE = template_five_points(TEMPLATE_68)


def fit_landmarks68(five_points: Sequence[Sequence[float]]) -> np.ndarray:
    """68 landmarks for a face from MTCNN's 5 points: the mean template placed by a similarity fit."""
    five = np.asarray(five_points, dtype=np.float64).reshape(5, 2)
    return apply_transform(similarity_transform(_TEMPLATE_FIVE, five), TEMPLATE_68)


def detect_landmarks68(
    images: Sequence[np.ndarray], detector=None, min_face_fraction: float | None = 0.3
) -> list[np.ndarray | None]:
    """68 landmarks per image (of a face crop) from MTCNN, or None where it finds no face.

    Of several faces, the one whose box centre is nearest the image centre is taken
    (face crops are centred on their face). `min_face_fraction`: the smallest face
    looked for, as a fraction of the crop's shorter side (a crop's face fills most of
    it; skipping MTCNN's small pyramid levels makes detection several times faster);
    None keeps the detector's own `min_face_size`.
    """
    if detector is None:
        from ..scan.faces import MTCNNFaceDetector

        detector = MTCNNFaceDetector(min_face_size=32, min_confidence=0.9)
    own_min = getattr(detector, "min_face_size", None)
    out: list[np.ndarray | None] = []
    for image in images:  # one at a time: crops may differ in size
        if min_face_fraction is not None and own_min is not None:
            detector.min_face_size = max(20, int(min_face_fraction * min(image.shape[:2])))
        try:
            found = detector.detect([image])[0]
        finally:
            if own_min is not None:
                detector.min_face_size = own_min
        faces = [f for f in found if f.landmarks]
        if not faces:
            out.append(None)
            continue
        centre = np.array(image.shape[1::-1], dtype=np.float64) / 2
        nearest = min(faces, key=lambda f: float(np.sum((np.add(f.box[:2], f.box[2:]) / 2 - centre) ** 2)))
        out.append(fit_landmarks68(nearest.landmarks))
    return out


# ---------------------------------------------------------------------------
# 2. Masks
# ---------------------------------------------------------------------------


def boundary_from_mask(mask: np.ndarray) -> np.ndarray:
    """Face X-ray's blending boundary B = 4 M (1 - M): 1 where the mask is half-on, 0 where 0 or 1."""
    mask = np.asarray(mask, dtype=np.float32)
    return 4.0 * mask * (1.0 - mask)


def ellipse_mask(shape: tuple[int, int], rng: np.random.Generator | None = None) -> np.ndarray:
    """Fallback hard mask where no landmarks are known: a central upright ellipse covering
    roughly where a face crop's face is (half-axes 0.30 x 0.38 of the side, centre slightly low)."""
    height, width = shape
    jitter = rng.uniform(0.9, 1.1, size=2) if rng is not None else np.ones(2)
    mask = np.zeros((height, width), np.uint8)
    centre = (round(width * 0.5), round(height * 0.54))
    axes = (max(1, int(width * 0.30 * jitter[0])), max(1, int(height * 0.38 * jitter[1])))
    cv2.ellipse(mask, centre, axes, 0, 0, 360, 1, -1)
    return mask.astype(np.float32)


def hull_mask(shape: tuple[int, int], points: np.ndarray) -> np.ndarray:
    """Hard (0/1) float mask filling the convex hull of points."""
    mask = np.zeros(shape, np.uint8)
    hull = cv2.convexHull(np.round(points).astype(np.int32).reshape(-1, 1, 2))
    cv2.fillConvexPoly(mask, hull, 1)
    return mask.astype(np.float32)


def _elastic(mask: np.ndarray, rng: np.random.Generator, amplitude: float, smoothness: float) -> np.ndarray:
    """Warp with a smooth random displacement field (Gaussian-filtered noise), so the edge wobbles."""
    height, width = mask.shape
    dx = cv2.GaussianBlur(rng.uniform(-1, 1, (height, width)).astype(np.float32), (0, 0), smoothness)
    dy = cv2.GaussianBlur(rng.uniform(-1, 1, (height, width)).astype(np.float32), (0, 0), smoothness)
    peak = max(float(np.abs(dx).max()), float(np.abs(dy).max()), 1e-6)
    dx *= amplitude / peak
    dy *= amplitude / peak
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    return cv2.remap(mask, grid_x + dx, grid_y + dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def deform_mask(hard: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A hard mask made random and soft: scale/shift about its centre, elastic wobble,
    erosion or dilation, then a Gaussian blur; the result lies in [0, 1] with a soft edge."""
    height, width = hard.shape
    side = float(min(height, width))
    ys, xs = np.nonzero(hard > 0.5)
    if len(xs) == 0:
        return hard.astype(np.float32)
    centre = (float(xs.mean()), float(ys.mean()))
    scale = rng.uniform(0.92, 1.04)
    matrix = cv2.getRotationMatrix2D(centre, rng.uniform(-4, 4), scale)
    matrix[:, 2] += rng.uniform(-0.02, 0.02, size=2) * side
    mask = cv2.warpAffine(hard.astype(np.float32), matrix, (width, height), flags=cv2.INTER_LINEAR)
    mask = _elastic(mask, rng, amplitude=rng.uniform(0.01, 0.035) * side, smoothness=0.08 * side)
    mask = (mask > 0.5).astype(np.float32)
    kernel_size = int(rng.integers(1, max(2, int(0.04 * side)) + 1))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (kernel_size, kernel_size))
    mask = cv2.erode(mask, kernel) if rng.random() < 0.5 else cv2.dilate(mask, kernel)
    sigma = rng.uniform(0.015, 0.04) * side
    mask = cv2.GaussianBlur(mask, (0, 0), sigma)
    peak = float(mask.max())
    if peak > 0:
        mask = mask / peak  # a small region blurred hard still reaches 1 inside
    # Snap the blur's far tails, so "outside the mask" is exactly 0 and "inside" exactly 1.
    mask[mask < 1e-3] = 0.0
    mask[mask > 1 - 1e-3] = 1.0
    return np.clip(mask, 0.0, 1.0).astype(np.float32)


def landmark_mask(
    shape: tuple[int, int],
    landmarks68: np.ndarray | None,
    rng: np.random.Generator,
    region: str | None = None,
) -> np.ndarray:
    """Soft blending mask: the convex hull of a landmark region (random if region is None),
    randomly deformed. Without landmarks: the central ellipse of `ellipse_mask`, deformed."""
    if landmarks68 is None:
        hard = ellipse_mask(shape, rng)
    else:
        if region is None:
            names, odds = zip(*REGION_CHOICES)
            region = str(rng.choice(names, p=np.array(odds) / sum(odds)))
        hard = hull_mask(shape, np.asarray(landmarks68)[REGIONS[region]])
        if hard.sum() < 16:  # degenerate landmarks (far off-image): fall back
            hard = ellipse_mask(shape, rng)
    return deform_mask(hard, rng)


# ---------------------------------------------------------------------------
# 3. Self-blended images
# ---------------------------------------------------------------------------

_SOURCE_PIPELINE = None


def _source_pipeline():
    """Colour, contrast, brightness and sharpness changes for SBI's source copy (albumentations)."""
    global _SOURCE_PIPELINE
    if _SOURCE_PIPELINE is None:
        import albumentations as A

        _SOURCE_PIPELINE = A.Compose([
            A.RGBShift(r_shift_limit=(-20, 20), g_shift_limit=(-20, 20), b_shift_limit=(-20, 20), p=0.3),
            A.HueSaturationValue(hue_shift_limit=(-3, 3), sat_shift_limit=(-30, 30), val_shift_limit=(-20, 20), p=0.3),
            A.RandomBrightnessContrast(brightness_limit=(-0.1, 0.1), contrast_limit=(-0.1, 0.1), p=1.0),
            A.OneOf([
                A.Downscale(scale_range=(0.5, 0.8), p=1.0),
                A.Sharpen(alpha=(0.2, 0.5), lightness=(0.5, 1.0), p=1.0),
            ], p=1.0),
        ])
    return _SOURCE_PIPELINE


def _scale_shift(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Small random zoom (0.95-1.05) about the centre and shift (up to 3% of the side)."""
    height, width = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), 0.0, rng.uniform(0.95, 1.05))
    matrix[:, 2] += rng.uniform(-0.03, 0.03, size=2) * np.array([width, height])
    return cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def _blend(source: np.ndarray, target: np.ndarray, mask: np.ndarray) -> np.ndarray:
    m = mask[..., None].astype(np.float32)
    fake = m * source.astype(np.float32) + (1.0 - m) * target.astype(np.float32)
    return np.clip(np.round(fake), 0, 255).astype(np.uint8)


def self_blend(
    image: np.ndarray,
    landmarks68: np.ndarray | None,
    rng: np.random.Generator,
    region: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """SBI: (fake uint8, mask float32 HxW) from one real face.

    The source copy gets albumentations colour/contrast/brightness and one of
    downscale/sharpen, then a small random zoom and shift; it is blended into the
    untouched target copy through a deformed landmark mask, scaled by a blend
    ratio drawn from {0.25, 0.5, 0.75, 1, 1, 1} (the returned mask includes that
    ratio, so `fake = mask * source + (1 - mask) * image` holds and pixels where the
    mask is 0 are the original's). `boundary_from_mask(mask)` gives the boundary target.
    """
    image = np.ascontiguousarray(image)
    pipeline = _source_pipeline()
    pipeline.set_random_seed(int(rng.integers(0, 2**31 - 1)))
    source = pipeline(image=image)["image"]
    source = _scale_shift(source, rng)
    mask = landmark_mask(image.shape[:2], landmarks68, rng, region)
    mask = (mask * rng.choice([0.25, 0.5, 0.75, 1.0, 1.0, 1.0])).astype(np.float32)
    # With a ratio below 1 the whole blended region is a mix of two images, so the
    # boundary B = 4 M (1 - M) covers it (B = 1 inside for ratio 0.5), as Face X-ray defines it.
    return _blend(source, image, mask), mask


# ---------------------------------------------------------------------------
# 4. Face X-ray blends
# ---------------------------------------------------------------------------


def normalise_landmarks(landmarks68: np.ndarray) -> np.ndarray:
    """Landmarks with position and scale removed (centred, unit RMS radius), for shape comparison."""
    lm = np.asarray(landmarks68, dtype=np.float64)
    centred = lm - lm.mean(0)
    return centred / max(float(np.sqrt((centred**2).sum(1).mean())), 1e-9)


def nearest_donors(target68: np.ndarray, pool68: Sequence[np.ndarray | None], exclude: Sequence[int] = ()) -> list[int]:
    """Pool indices ordered by landmark distance to the target after normalisation; entries
    without landmarks and the excluded indices are left out."""
    target = normalise_landmarks(target68)
    skip = set(exclude)
    scored = [
        (float(np.linalg.norm(normalise_landmarks(lm) - target)), i)
        for i, lm in enumerate(pool68)
        if lm is not None and i not in skip
    ]
    return [i for _, i in sorted(scored)]


def color_transfer(donor: np.ndarray, target: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Match the donor's per-channel LAB mean and std to the target's, both measured inside the mask."""
    inside = mask > 0.1
    if inside.sum() < 16:
        return donor
    donor_lab = cv2.cvtColor(donor, cv2.COLOR_RGB2LAB).astype(np.float32)
    target_lab = cv2.cvtColor(target, cv2.COLOR_RGB2LAB).astype(np.float32)
    d_mean, d_std = donor_lab[inside].mean(0), donor_lab[inside].std(0) + 1e-3
    t_mean, t_std = target_lab[inside].mean(0), target_lab[inside].std(0) + 1e-3
    out = (donor_lab - d_mean) / d_std * t_std + t_mean
    return cv2.cvtColor(np.clip(out, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)


def xray_blend(
    target: np.ndarray,
    target68: np.ndarray,
    donors: Sequence[tuple[np.ndarray, np.ndarray]],
    rng: np.random.Generator,
    top_k: int = 3,
    region: str | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Face X-ray: blend the face of a donor with similar landmarks onto target.

    donors: (image, 68 landmarks) of other real faces (the target must not be among them).
    A donor is drawn among the `top_k` nearest by normalised landmark distance, warped
    onto the target by the similarity transform between their 68 landmarks,
    colour-matched in LAB inside the mask, and blended through a deformed landmark
    mask of the target. Returns (fake uint8, mask float32, boundary float32, donor index).
    """
    if not donors:
        raise ValueError("xray_blend needs at least one donor face")
    order = nearest_donors(target68, [lm for _, lm in donors])
    if not order:
        raise ValueError("xray_blend: no donor has landmarks")
    donor_index = order[int(rng.integers(0, min(top_k, len(order))))]
    donor, donor68 = donors[donor_index]
    height, width = target.shape[:2]
    matrix = similarity_transform(donor68, target68)
    warped = cv2.warpAffine(np.ascontiguousarray(donor), matrix, (width, height), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_REFLECT)
    mask = landmark_mask((height, width), target68, rng, region)
    warped = color_transfer(warped, np.ascontiguousarray(target), mask)
    return _blend(warped, target, mask), mask, boundary_from_mask(mask), donor_index


# ---------------------------------------------------------------------------
# 5. The dataset
# ---------------------------------------------------------------------------


class LandmarkCache:
    """68 landmarks per image path, as fractions of the image width/height (size-independent).

    Loaded from / saved to a side JSON {"<path>": [[x, y] * 68] or null}; missing entries
    are computed with MTCNN on first use. null means MTCNN found no face there.
    """

    def __init__(self, path: str | Path | None = None, detector=None):
        self.path = Path(path) if path is not None else None
        self.detector = detector
        self.entries: dict[str, list | None] = {}
        if self.path is not None and self.path.is_file():
            self.entries = json.loads(self.path.read_text())

    def get(self, key: str, image: np.ndarray) -> np.ndarray | None:
        if key not in self.entries:
            if self.detector is None:
                from ..scan.faces import MTCNNFaceDetector

                self.detector = MTCNNFaceDetector(min_face_size=32, min_confidence=0.9)
            lm = detect_landmarks68([image], self.detector)[0]
            height, width = image.shape[:2]
            self.entries[key] = None if lm is None else (lm / [width, height]).round(5).tolist()
        value = self.entries[key]
        if value is None:
            return None
        height, width = image.shape[:2]
        return np.asarray(value, dtype=np.float64) * [width, height]

    def save(self) -> None:
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps(self.entries))


class SyntheticFakeDataset(Dataset):
    """Real face crops, each turned into a synthesized fake with probability `p_fake`.

    Yields {"image": (3,H,W) normalised tensor, "label": float tensor (1 = fake),
    "mask": (1,H,W) float tensor (zeros for reals), "index": int}.

    Deterministic: item `index` depends only on (seed, epoch, index); call
    `set_epoch` between epochs for fresh fakes that are still reproducible.
    kind: "sbi", "xray" or "both" (each fake picks one at random).

    Landmarks: from `landmarks_json` where it lists an image, otherwise detected
    with MTCNN on first use (and written back by `save_landmarks`). Where MTCNN
    finds no face, the mask falls back to a central ellipse and an X-ray fake
    falls back to SBI (no landmarks to pick or warp a donor with). Call
    `precompute_landmarks()` before a multi-worker DataLoader so workers share them.
    """

    def __init__(
        self,
        manifest,
        preprocess,
        kind: str = "sbi",
        seed: int = 0,
        p_fake: float = 0.5,
        landmarks_json: str | Path | None = None,
        detector=None,
        donor_pool: int = 64,
    ):
        if kind not in ("sbi", "xray", "both"):
            raise ValueError(f"kind must be sbi, xray or both, not {kind!r}")
        real = [s for s in manifest.samples if int(s.label) == 0]
        if not real:
            raise ValueError("SyntheticFakeDataset needs real faces (label 0) in the manifest")
        if len(real) != len(manifest.samples):
            log.info("SyntheticFakeDataset: %d fake rows of the manifest left out", len(manifest.samples) - len(real))
        from .manifest import Manifest

        self.manifest = Manifest(real, manifest.root)
        self.preprocess = preprocess
        self.kind = kind
        self.seed = int(seed)
        self.p_fake = float(p_fake)
        self.epoch = 0
        self.donor_pool = donor_pool
        self.landmarks = LandmarkCache(landmarks_json, detector)

    def __len__(self) -> int:
        return len(self.manifest)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _key(self, index: int) -> str:
        return self.manifest.samples[index].path

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray | None]:
        from .dataset import load_face_crop

        image = load_face_crop(self.manifest.resolve(self.manifest.samples[index].path), self.preprocess.input_size)
        return image, self.landmarks.get(self._key(index), image)

    def _landmarks_only(self, index: int) -> np.ndarray | None:
        """Landmarks of an item at input size, reading its image only if they are not cached yet."""
        value = self.landmarks.entries.get(self._key(index), "missing")
        if isinstance(value, str):
            return self.load(index)[1]
        size = self.preprocess.input_size  # load_face_crop makes every crop size x size
        return None if value is None else np.asarray(value, dtype=np.float64) * size

    def precompute_landmarks(self) -> None:
        for index in range(len(self)):
            self.load(index)

    def save_landmarks(self) -> None:
        self.landmarks.save()

    def synthesize(self, index: int, rng: np.random.Generator, kind: str):
        """(image, mask, method) for one real face made fake with `kind` ("sbi" or "xray")."""
        image, lm = self.load(index)
        if kind == "xray" and lm is not None and len(self) > 1:
            # A donor pool drawn at random (bounded, so a big manifest costs no full scan per item);
            # the nearest are found from cached landmarks and only the chosen donor's image is read.
            own_path = self.manifest.samples[index].path
            others = [i for i in range(len(self)) if self.manifest.samples[i].path != own_path]
            if len(others) > self.donor_pool:
                others = sorted(rng.choice(others, size=self.donor_pool, replace=False).tolist())
            pool = [self._landmarks_only(i) for i in others]
            order = nearest_donors(lm, pool)
            if order:
                donor = others[order[int(rng.integers(0, min(3, len(order))))]]
                fake, mask, _, _ = xray_blend(image, lm, [self.load(donor)], rng)
                return fake, mask, "xray"
        fake, mask = self_blend(image, lm, rng)
        return fake, mask, "sbi"

    def make(self, index: int) -> tuple[np.ndarray, np.ndarray, float]:
        """(RGB uint8 image, float32 HxW mask, label) of item `index` this epoch, before
        normalisation (for callers that augment first)."""
        rng = np.random.default_rng([self.seed, self.epoch, int(index)])
        if rng.random() < self.p_fake:
            kind = self.kind if self.kind != "both" else ("sbi" if rng.random() < 0.5 else "xray")
            image, mask, _ = self.synthesize(index, rng, kind)
            return image, mask, 1.0
        image, _ = self.load(index)
        return image, np.zeros(image.shape[:2], np.float32), 0.0

    def __getitem__(self, index: int) -> dict:
        import torch

        from .dataset import normalise

        image, mask, label = self.make(index)
        return {
            "image": normalise(image, self.preprocess),
            "label": torch.tensor(label),
            "mask": torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32))[None],
            "index": index,
        }
