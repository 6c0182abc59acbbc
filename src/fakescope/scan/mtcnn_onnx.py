"""MTCNN face detection with ONNX Runtime and NumPy only: no PyTorch.

The shipped forgery detectors were trained on crops from facenet-pytorch's MTCNN, so this is a
re-implementation of *that* cascade (facenet-pytorch 2.5.3, `detect_face`), not of the original
MATLAB/Caffe one, and it reproduces its numerics wherever they decide which pixels are used:

- resampling (image pyramid and the 24 / 48 px crops) is `F.interpolate(mode="area")`, i.e. an
  adaptive average pool: output cell i averages input [floor(i*n/m), ceil((i+1)*n/m)). That is not
  cv2.INTER_AREA (which weights fractional pixels). It is computed here from a summed-area table of
  the uint8 frame: integer window sums are exact, and the division `sum / kh / kw` in float32 is the
  one torch does, so the nets' inputs are bit-identical to facenet-pytorch's;
- candidate boxes from P-Net are `floor((2 * cell + 1) / scale)` in float32 (float64 moves some by 1 px);
- crops are taken by truncating the squared boxes and clipping them to the frame (facenet-pytorch
  does not zero-pad as the original MTCNN does);
- NMS: torchvision's (IoU without +1, boxes processed by score with ties in input order, IoU > t
  suppresses) for the first two stages, facenet-pytorch's NumPy 'Min' NMS (+1 areas, IoU over the
  smaller box, np.argsort order) for the last; per image in a batch, with the same coordinate offsets.
  (Where torchvision sorts over 1,000 boxes with torch's unstable sort, equal scores keep input order here.)

What remains different is the nets' arithmetic (ONNX Runtime's kernels vs torch's, ~1e-6), which could
flip a truncation to the next pixel. Measured on all shared media (18,671 images and sampled video
frames; tests/test_mtcnn_onnx.py checks a part): the same faces in the same order, boxes and
landmarks within 0.0003 px, confidences within 3e-7.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
NET_FILES = {"pnet": "mtcnn_pnet.onnx", "rnet": "mtcnn_rnet.onnx", "onet": "mtcnn_onet.onnx"}

_CELL = 12  # P-Net's receptive field: the face size found at pyramid scale 1
_STRIDE = 2  # P-Net's output stride
_BATCH = 512  # R-/O-Net crops per run, as facenet-pytorch (bounds memory on crowded frames)
_VANILLA_NMS_ABOVE = 4000  # torchvision switches from coordinate offsets to per-image NMS above this many numbers


@dataclass
class Detections:
    """Faces found in one image, best first as facenet-pytorch orders them."""

    boxes: np.ndarray  # (K, 4) float32, x1, y1, x2, y2 in image pixels
    probs: np.ndarray  # (K,) float32, O-Net face probability
    landmarks: np.ndarray  # (K, 5, 2) float32, (x, y) of eyes, nose, mouth corners


def default_threads() -> int:
    """Cores this process may use, at most 8: the nets are small (two threads were barely faster than
    one on a 2-core machine) and video decoding wants cores too."""
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        available = os.cpu_count() or 1
    return max(1, min(8, available))


@lru_cache(maxsize=None)
def _session(net: str, threads: int, providers: tuple[str, ...]):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # NumPy work runs between the many short net calls; spinning workers would take its cores.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    available = set(ort.get_available_providers())
    chosen = [p for p in providers if p in available] or ["CPUExecutionProvider"]
    return ort.InferenceSession(str(WEIGHTS_DIR / NET_FILES[net]), sess_options=options, providers=chosen)


class MTCNN:
    """facenet-pytorch's `MTCNN(...).detect(images, landmarks=True)`, on ONNX Runtime.

    `detect` takes one H x W x 3 uint8 RGB image or a batch of same-sized ones (N x H x W x 3
    array or list) and returns one `Detections` per image.
    """

    def __init__(
        self,
        min_face_size: int = 20,
        thresholds: Sequence[float] = (0.6, 0.7, 0.7),
        factor: float = 0.709,
        threads: int | None = None,
        providers: Sequence[str] = ("CPUExecutionProvider",),
    ):
        self.min_face_size = min_face_size
        self.thresholds = tuple(float(t) for t in thresholds)
        self.factor = factor
        self.threads = threads or default_threads()
        key = (self.threads, tuple(providers))
        self.pnet, self.rnet, self.onet = (_session(n, *key) for n in ("pnet", "rnet", "onet"))

    # ------------------------------------------------------------------ cascade

    def detect(self, images) -> list[Detections]:
        images = _as_batch(images)
        count, height, width = images.shape[:3]
        sat = _summed_area(images)
        boxes, image_idx = self._propose(sat, height, width)
        boxes, image_idx = self._refine(sat, boxes, image_idx, height, width)
        boxes, image_idx, landmarks = self._output(sat, boxes, image_idx, height, width)
        return [
            Detections(boxes[image_idx == i, :4], boxes[image_idx == i, 4], landmarks[image_idx == i])
            for i in range(count)
        ]

    def scales(self, height: int, width: int) -> list[float]:
        """Pyramid scales: the smallest face looked for maps to P-Net's 12 px cell, then each level is
        `factor` smaller while the short side stays >= 12 (float64 as facenet-pytorch, so levels match)."""
        scale = 12.0 / self.min_face_size
        short = min(height, width) * scale
        out = []
        while short >= 12:
            out.append(scale)
            scale *= self.factor
            short *= self.factor
        return out

    def _propose(self, sat, height, width):
        """Stage 1: P-Net over the pyramid; NMS per level (0.5) then over all levels (0.7); the
        candidates are regressed and squared."""
        boxes, image_idx = [], []
        for scale in self.scales(height, width):
            out_h, out_w = int(height * scale + 1), int(width * scale + 1)
            rows, cols = _windows(0, height, out_h), _windows(0, width, out_w)
            level = _area_mean_grid(sat, rows, cols)
            reg, prob = _run(self.pnet, _normalise(level))
            found, idx = _cell_boxes(reg, prob[:, 1], scale, self.thresholds[0])
            keep = _batched_nms(found[:, :4], found[:, 4], idx, 0.5)
            boxes.append(found[keep])
            image_idx.append(idx[keep])
        boxes = np.concatenate(boxes) if boxes else np.zeros((0, 9), np.float32)
        image_idx = np.concatenate(image_idx) if image_idx else np.zeros(0, np.int64)
        keep = _batched_nms(boxes[:, :4], boxes[:, 4], image_idx, 0.7)
        boxes, image_idx = boxes[keep], image_idx[keep]
        # P-Net's regression is relative to the box side without the +1 of the later stages.
        side_w, side_h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        regressed = np.stack(
            [
                boxes[:, 0] + boxes[:, 5] * side_w,
                boxes[:, 1] + boxes[:, 6] * side_h,
                boxes[:, 2] + boxes[:, 7] * side_w,
                boxes[:, 3] + boxes[:, 8] * side_h,
                boxes[:, 4],
            ],
            axis=1,
        )
        return _square(regressed), image_idx

    def _refine(self, sat, boxes, image_idx, height, width):
        """Stage 2: R-Net on 24 px crops; threshold, NMS 0.7, regression, squaring."""
        crops, boxes, image_idx = _crops(sat, boxes, image_idx, height, width, 24)
        if not len(crops):
            return boxes[:, :5], image_idx
        reg, prob = _run(self.rnet, crops)
        passed = prob[:, 1] > self.thresholds[1]
        boxes = np.concatenate([boxes[passed, :4], prob[passed, 1:2]], axis=1)
        image_idx, reg = image_idx[passed], reg[passed]
        keep = _batched_nms(boxes[:, :4], boxes[:, 4], image_idx, 0.7)
        boxes, image_idx, reg = boxes[keep], image_idx[keep], reg[keep]
        return _square(_regress(boxes, reg)), image_idx

    def _output(self, sat, boxes, image_idx, height, width):
        """Stage 3: O-Net on 48 px crops; threshold, landmarks (relative to the crop box, before its
        regression), regression, 'Min' NMS 0.7."""
        crops, boxes, image_idx = _crops(sat, boxes, image_idx, height, width, 48)
        if not len(crops):
            return boxes[:, :5], image_idx, np.zeros((0, 5, 2), np.float32)
        reg, marks, prob = _run(self.onet, crops)
        passed = prob[:, 1] > self.thresholds[2]
        boxes = np.concatenate([boxes[passed, :4], prob[passed, 1:2]], axis=1)
        image_idx, reg, marks = image_idx[passed], reg[passed], marks[passed]
        side_w = (boxes[:, 2] - boxes[:, 0] + 1)[:, None]
        side_h = (boxes[:, 3] - boxes[:, 1] + 1)[:, None]
        xs = side_w * marks[:, :5] + boxes[:, 0:1] - 1
        ys = side_h * marks[:, 5:] + boxes[:, 1:2] - 1
        landmarks = np.stack([xs, ys], axis=2)
        boxes = _regress(boxes, reg)
        keep = _nms_min(boxes[:, :4], boxes[:, 4], image_idx, 0.7)
        return boxes[keep], image_idx[keep], landmarks[keep]


# ---------------------------------------------------------------------- pixels


def _as_batch(images) -> np.ndarray:
    if isinstance(images, np.ndarray) and images.ndim == 3:
        images = images[None]
    elif not isinstance(images, np.ndarray):
        images = list(images)
        if any(im.shape != images[0].shape for im in images):
            raise ValueError("MTCNN batches need images of one size")
        images = np.stack(images)
    if images.ndim != 4 or images.shape[3] != 3:
        raise ValueError(f"expected H x W x 3 RGB images, got shape {images.shape[1:]}")
    return np.ascontiguousarray(images, dtype=np.uint8)


def _summed_area(images: np.ndarray) -> np.ndarray:
    """(N, H+1, W+1, 3) summed-area table with a zero first row and column: every window sum the
    area resampling needs is four look-ups, and exact (integers; float64 only where int32 could
    overflow, above 8 megapixels)."""
    count, height, width, channels = images.shape
    wide = 255 * height * width >= 2**31
    sat = np.empty((count, height + 1, width + 1, channels), np.float64 if wide else np.int32)
    for image, out in zip(images, sat):
        cv2.integral(image, out, sdepth=cv2.CV_64F if wide else cv2.CV_32S)
    return sat


def _windows(start, length, size: int):
    """Adaptive-average-pool windows over `length` input pixels from `start` to `size` outputs:
    (lo, hi) absolute half-open bounds, torch's integer formulas. start/length: scalars or (K,)."""
    i = np.arange(size)
    length = np.asarray(length, np.int64)[..., None]
    start = np.asarray(start, np.int64)[..., None]
    lo = (i * length) // size
    hi = ((i + 1) * length + size - 1) // size
    return start + lo, start + hi


def _means(sums: np.ndarray, rows, cols) -> np.ndarray:
    """Window sums (..., rows, cols, C) -> float32 means as torch computes them: sum / kh / kw,
    rounded after each division, so the result is bit-identical (one division by kh * kw is not)."""
    *lead, n_rows, n_cols, channels = sums.shape
    kh = (rows[1] - rows[0]).astype(np.float32)[..., :, None]
    kw = np.repeat((cols[1] - cols[0]).astype(np.float32), channels, axis=-1)[..., None, :]
    # rows x (cols * C): long inner loops for NumPy's broadcasting (C = 3 alone is slow)
    out = sums.reshape(*lead, n_rows, n_cols * channels).astype(np.float32)
    np.divide(out, kh, out=out)
    np.divide(out, kw, out=out)
    return out.reshape(sums.shape)


def _area_mean_grid(sat, rows, cols) -> np.ndarray:
    """One pyramid level for every image: (N, out_h, out_w, 3) float32."""
    (r0, r1), (c0, c1) = rows, cols
    strips = np.take(sat, r1, axis=1) - np.take(sat, r0, axis=1)  # row-window sums of column prefixes
    sums = np.take(strips, c1, axis=2) - np.take(strips, c0, axis=2)
    return _means(sums, rows, cols)


def _area_mean_boxes(sat, image_idx, rows, cols) -> np.ndarray:
    """One size x size resampled crop per box: (K, size, size, 3) float32; rows/cols are (K, size)."""
    (r0, r1), (c0, c1) = rows, cols
    count, height1, width1, channels = sat.shape
    pixels = sat.reshape(-1, channels)
    base = (image_idx * height1)[:, None, None]
    r0, r1 = (base + r0[:, :, None]) * width1, (base + r1[:, :, None]) * width1
    c0, c1 = c0[:, None, :], c1[:, None, :]

    def at(r, c):
        return np.take(pixels, (r + c).ravel(), axis=0)

    sums = at(r1, c1) - at(r1, c0) - at(r0, c1) + at(r0, c0)
    size = rows[0].shape[1]
    return _means(sums.reshape(len(image_idx), size, size, channels), rows, cols)


def _normalise(pixels: np.ndarray) -> np.ndarray:
    """NHWC float pixels -> NCHW net input, (x - 127.5) / 128 as facenet-pytorch."""
    return np.ascontiguousarray(((pixels - np.float32(127.5)) * np.float32(0.0078125)).transpose(0, 3, 1, 2))


def _crops(sat, boxes, image_idx, height, width, size):
    """Net inputs for the squared boxes: each box truncated to integers and clipped to the image (no
    padding), area-resampled to size x size. Boxes with nothing inside the image are dropped
    (facenet-pytorch fails on them)."""
    ints = np.trunc(boxes[:, :4]).astype(np.int64)
    x1, y1 = np.maximum(ints[:, 0], 1), np.maximum(ints[:, 1], 1)
    x2, y2 = np.minimum(ints[:, 2], width), np.minimum(ints[:, 3], height)
    valid = (y2 > y1 - 1) & (x2 > x1 - 1)
    if not valid.all():
        boxes, image_idx = boxes[valid], image_idx[valid]
        x1, y1, x2, y2 = x1[valid], y1[valid], x2[valid], y2[valid]
    # facenet-pytorch's crop is rows y1-1 .. y2-1 and columns x1-1 .. x2-1 (1-based boxes)
    rows = _windows(y1 - 1, y2 - y1 + 1, size)
    cols = _windows(x1 - 1, x2 - x1 + 1, size)
    crops = _area_mean_boxes(sat, image_idx, rows, cols)
    return _normalise(crops), boxes, image_idx


def _run(session, x: np.ndarray) -> list[np.ndarray]:
    name = session.get_inputs()[0].name
    if len(x) <= _BATCH:
        return session.run(None, {name: x})
    parts = [session.run(None, {name: x[i : i + _BATCH]}) for i in range(0, len(x), _BATCH)]
    return [np.concatenate(p) for p in zip(*parts)]


# ----------------------------------------------------------------------- boxes


def _cell_boxes(reg, face_prob, scale: float, threshold: float):
    """P-Net cells at or above the threshold -> (K, 9) float32 [x1, y1, x2, y2, score, 4 x reg] in
    image pixels, and each one's image index; row-major order as torch's nonzero."""
    n, y, x = np.nonzero(face_prob >= threshold)
    score = face_prob[n, y, x]
    offsets = reg.transpose(0, 2, 3, 1)[n, y, x]
    cell = np.stack([x, y], axis=1).astype(np.float32)
    s = np.float32(scale)  # float32 division, as torch: in float64 some boxes move by one pixel
    top_left = np.floor((_STRIDE * cell + 1) / s)
    bottom_right = np.floor((_STRIDE * cell + _CELL) / s)
    boxes = np.concatenate([top_left, bottom_right, score[:, None], offsets], axis=1).astype(np.float32)
    return boxes, n.astype(np.int64)


def _regress(boxes: np.ndarray, reg: np.ndarray) -> np.ndarray:
    """R-/O-Net box regression: offsets in units of the (+1) box side."""
    side_w = boxes[:, 2] - boxes[:, 0] + 1
    side_h = boxes[:, 3] - boxes[:, 1] + 1
    out = boxes.copy()
    out[:, 0] = boxes[:, 0] + reg[:, 0] * side_w
    out[:, 1] = boxes[:, 1] + reg[:, 1] * side_h
    out[:, 2] = boxes[:, 2] + reg[:, 2] * side_w
    out[:, 3] = boxes[:, 3] + reg[:, 3] * side_h
    return out


def _square(boxes: np.ndarray) -> np.ndarray:
    """Square on the longer side around the centre (facenet-pytorch's rerec, same float32 steps)."""
    out = boxes.copy()
    h = boxes[:, 3] - boxes[:, 1]
    w = boxes[:, 2] - boxes[:, 0]
    side = np.maximum(w, h)
    out[:, 0] = boxes[:, 0] + w * np.float32(0.5) - side * np.float32(0.5)
    out[:, 1] = boxes[:, 1] + h * np.float32(0.5) - side * np.float32(0.5)
    out[:, 2] = out[:, 0] + side
    out[:, 3] = out[:, 1] + side
    return out


def _nms(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
    """torchvision.ops.nms on CPU: greedy by score (stable for ties), IoU from float32 areas without
    +1, a box is dropped when its IoU with a kept one is > threshold. Kept indices, best first."""
    order = np.argsort(-scores, kind="stable")
    x1, y1, x2, y2 = (boxes[order, i] for i in range(4))
    area = (x2 - x1) * (y2 - y1)
    alive = np.ones(len(order), bool)
    keep = []
    for i in range(len(order)):
        if not alive[i]:
            continue
        keep.append(i)
        rest = np.flatnonzero(alive[i + 1 :]) + i + 1
        if not len(rest):
            break
        w = np.maximum(np.float32(0), np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]))
        h = np.maximum(np.float32(0), np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]))
        inter = w * h
        iou = inter / (area[i] + area[rest] - inter)
        alive[rest[iou.astype(np.float64) > threshold]] = False
    return order[np.asarray(keep, np.int64)]


def _batched_nms(boxes, scores, image_idx, threshold: float) -> np.ndarray:
    """torchvision.ops.batched_nms: NMS within each image; results best first."""
    if len(boxes) == 0:
        return np.zeros(0, np.int64)
    if boxes.size > _VANILLA_NMS_ABOVE:
        parts = []
        for i in np.unique(image_idx):
            members = np.flatnonzero(image_idx == i)
            parts.append(members[_nms(boxes[members], scores[members], threshold)])
        keep = np.sort(np.concatenate(parts))  # torch.where order, then by score
        return keep[np.argsort(-scores[keep], kind="stable")]
    # Below the size limit torchvision shifts each image's boxes apart and runs one NMS: the float32
    # shift can round the IoU of non-integer boxes, so do the same.
    shift = image_idx.astype(np.float32) * (boxes.max() + np.float32(1))
    return _nms(boxes + shift[:, None], scores, threshold)


def _nms_min(boxes, scores, image_idx, threshold: float) -> np.ndarray:
    """facenet-pytorch's final NumPy NMS, 'Min' variant: overlap = intersection over the smaller box,
    areas with +1, boxes taken from the top of np.argsort(scores), kept while overlap <= threshold."""
    if len(boxes) == 0:
        return np.zeros(0, np.int64)
    shifted = boxes + (image_idx.astype(np.float32) * (boxes.max() + np.float32(1)))[:, None]
    x1, y1, x2, y2 = (shifted[:, i] for i in range(4))
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(scores)
    keep = []
    while order.size:
        best, rest = order[-1], order[:-1]
        keep.append(best)
        w = np.maximum(0.0, np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest]) + 1)
        h = np.maximum(0.0, np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest]) + 1)
        overlap = (w * h) / np.minimum(area[best], area[rest])
        order = rest[overlap <= threshold]
    return np.asarray(keep, np.int64)
