"""Face detection, cropping with a margin, and linking faces into tracks.

Contract: a face detector takes a batch of same-sized RGB frames and returns,
per frame, a list of `Face` (box in frame pixels, confidence, 5 landmarks).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import cv2
import numpy as np

from ..registry import Registry


@dataclass
class Face:
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in frame pixels
    score: float  # detector confidence
    landmarks: list[tuple[float, float]] | None = None  # eyes, nose, mouth corners

    @property
    def size(self) -> float:
        return min(self.box[2] - self.box[0], self.box[3] - self.box[1])


class FaceDetector(Protocol):
    def detect(self, frames: list[np.ndarray]) -> list[list[Face]]: ...


FACE_DETECTORS: Registry[type] = Registry("face detector")


@FACE_DETECTORS.register("mtcnn")
class MTCNNFaceDetector:
    """MTCNN (Zhang et al., 2016) exactly as facenet-pytorch runs it, which the shipped models were
    trained on: stage thresholds 0.7 / 0.8 / 0.9, faces best first.

    Two engines give the same faces: `fakescope.scan.mtcnn_onnx`, on ONNX Runtime with the weights
    in scan/weights/ and no PyTorch, and facenet-pytorch itself (on all shared media: the same faces,
    boxes within 0.0003 px; tests/test_mtcnn_onnx.py). `backend="auto"` takes ONNX Runtime on the CPU,
    where it is 1.5-2x faster, and facenet-pytorch on a GPU when it is installed; "onnx" or "torch"
    force one.

    Large frames are downscaled before detection (MTCNN's image pyramid costs
    grow with the pixel count) and boxes are mapped back to full resolution, so
    crops keep all the detail the forgery detector needs.
    """

    THRESHOLDS = (0.7, 0.8, 0.9)  # stricter than facenet-pytorch's (0.6, 0.7, 0.7): faster, fewer false faces

    def __init__(
        self,
        device: str = "cpu",
        max_side: int = 640,
        min_face_size: int = 64,
        min_confidence: float = 0.95,
        batch_size: int = 16,
        *,
        backend: str = "auto",
    ):
        self.max_side = max_side
        self.min_face_size = min_face_size
        self.min_confidence = min_confidence
        self.batch_size = batch_size
        if backend not in ("auto", "onnx", "torch"):
            raise ValueError(f"MTCNN backend must be 'auto', 'onnx' or 'torch', not {backend!r}")
        if backend == "auto":
            backend = "torch" if str(device).startswith("cuda") and self._facenet_available() else "onnx"
        self.backend = backend
        if backend == "torch":
            from facenet_pytorch import MTCNN

            self._mtcnn = MTCNN(
                keep_all=True, device=device, select_largest=False, post_process=False,
                thresholds=list(self.THRESHOLDS),
            )
        else:
            from .mtcnn_onnx import MTCNN

            self._mtcnn = MTCNN(thresholds=self.THRESHOLDS)

    def detect(self, frames: list[np.ndarray]) -> list[list[Face]]:
        if not frames:
            return []
        results: list[list[Face]] = []
        same_size = all(f.shape == frames[0].shape for f in frames)
        groups = (
            [frames[i : i + self.batch_size] for i in range(0, len(frames), self.batch_size)]
            if same_size
            else [[f] for f in frames]
        )
        for group in groups:
            group_scale = min(1.0, self.max_side / max(group[0].shape[:2]))
            # MTCNN's smallest pyramid level finds faces of min_face_size at detection scale.
            self._mtcnn.min_face_size = max(12, int(self.min_face_size * group_scale))
            if min(group[0].shape[:2]) * group_scale < self._mtcnn.min_face_size:
                # smaller than the smallest face looked for: MTCNN's image pyramid would be empty
                results.extend([] for _ in group)
                continue
            small = np.stack([_resize(f, group_scale) for f in group])
            for frame_boxes, frame_probs, frame_points in self._detect_small(small):
                results.append(self._to_faces(frame_boxes, frame_probs, frame_points, group_scale))
        return results

    def _detect_small(self, small: np.ndarray):
        """(boxes, probs, landmarks) per frame, at detection scale."""
        if self.backend == "torch":
            return zip(*self._mtcnn.detect(small, landmarks=True))  # boxes None for no face
        return ((d.boxes, d.probs, d.landmarks) for d in self._mtcnn.detect(small))

    @staticmethod
    def _facenet_available() -> bool:
        import importlib.util

        return all(importlib.util.find_spec(name) is not None for name in ("torch", "facenet_pytorch"))

    def _to_faces(self, boxes, probs, points, scale: float) -> list[Face]:
        faces: list[Face] = []
        if boxes is None:
            return faces
        for box, prob, pts in zip(boxes, probs, points):
            if prob is None or prob < self.min_confidence:
                continue
            face = Face(
                box=tuple(float(v) / scale for v in box),
                score=float(prob),
                landmarks=[(float(x) / scale, float(y) / scale) for x, y in pts],
            )
            if face.size >= self.min_face_size:
                faces.append(face)
        return faces


def _resize(image: np.ndarray, scale: float) -> np.ndarray:
    if scale >= 1.0:
        return image
    height, width = image.shape[:2]
    return cv2.resize(image, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)


def crop_square(box, margin: float) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) in frame pixels of the square crop around `box`: centred on it,
    side = margin x the longer box side. It may reach outside the frame (`crop_face` pads there);
    a map of the crop is placed back on its frame with `explain.uncrop`."""
    x1, y1, x2, y2 = box
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    side = max(x2 - x1, y2 - y1) * margin
    left, top = int(round(cx - side / 2)), int(round(cy - side / 2))
    return left, top, left + int(round(side)), top + int(round(side))


def crop_face(image: np.ndarray, box, margin: float, size: int) -> np.ndarray:
    """The `crop_square` of `box`, padded with edge pixels where it leaves the frame, resized to
    size x size."""
    left, top, right, bottom = crop_square(box, margin)
    height, width = image.shape[:2]
    pad = max(0, -left, -top, right - width, bottom - height)
    if pad:
        image = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        left, top, right, bottom = left + pad, top + pad, right + pad, bottom + pad
    crop = image[top:bottom, left:right]
    interpolation = cv2.INTER_AREA if crop.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(crop, (size, size), interpolation=interpolation)


def iou(a, b) -> float:
    ix1, iy1, ix2, iy2 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, ix2 - ix1) * max(0.0, iy2 - iy1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@dataclass
class TrackLink:
    """A face at one sampled frame, as linked into a track."""

    frame_position: int  # position in the list of sampled frames
    face_index: int  # position in that frame's face list


@dataclass
class Track:
    links: list[TrackLink] = field(default_factory=list)
    last_box: tuple[float, float, float, float] | None = None
    last_position: int = -1


def link_tracks(faces_per_frame: list[list[Face]], min_iou: float = 0.2, max_gap: int = 4) -> list[Track]:
    """Greedy IoU linking across sampled frames: each face joins the track whose
    last box overlaps it most (one face per track per frame); a track that has
    not been seen for `max_gap` sampled frames is closed."""
    tracks: list[Track] = []
    for position, faces in enumerate(faces_per_frame):
        open_tracks = [t for t in tracks if position - t.last_position <= max_gap]
        pairs = sorted(
            ((iou(t.last_box, f.box), ti, fi) for ti, t in enumerate(open_tracks) for fi, f in enumerate(faces)),
            reverse=True,
        )
        used_tracks, used_faces = set(), set()
        for overlap, ti, fi in pairs:
            if overlap < min_iou:
                break
            if ti in used_tracks or fi in used_faces:
                continue
            used_tracks.add(ti)
            used_faces.add(fi)
            _extend(open_tracks[ti], position, fi, faces[fi])
        for fi, face in enumerate(faces):
            if fi not in used_faces:
                track = Track()
                _extend(track, position, fi, face)
                tracks.append(track)
    tracks.sort(key=lambda t: -len(t.links))
    return tracks


def _extend(track: Track, position: int, face_index: int, face: Face) -> None:
    track.links.append(TrackLink(position, face_index))
    track.last_box = face.box
    track.last_position = position

from . import face_detectors  # noqa: E402,F401  (registers the faster detectors; imports no model package)
