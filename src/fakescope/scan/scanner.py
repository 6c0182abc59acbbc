"""The main job: media -> faces -> detector (one Predictor) -> aggregate -> ScanResult.

One `Scanner` owns the whole path; the CLI and the Python API call it. Every
failure of one input becomes a `FileResult` status, and the scan goes on.
"""
from __future__ import annotations

import hashlib
import logging
import math
import os
import re
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional, Sequence

import numpy as np

from .. import __version__
from ..device import resolve_device, torch_available
from ..errors import FakescopeError
from ..models.calibration import verdict
from ..models.predictor import Predictor, check_backend, open_detector
from ..models.video import check_video_head, frame_features, video_head_probability
from ..models.zoo import DEFAULT_MODEL
from .aggregate import AGGREGATORS
from .explain import overlay
from .face_detectors import KeyframeTracker
from .faces import FACE_DETECTORS, Face, crop_face, crop_square, link_tracks
from .media import MEDIA_EXTENSIONS, Frame, MediaInfo, MediaLimits, load_media
from .results import FaceResult, FileResult, FrameResult, ScanReport, TrackResult

log = logging.getLogger(__name__)


@dataclass
class ScanSettings:
    model: str = DEFAULT_MODEL
    frames: int = 32
    run_length: int = 1  # >1: the video frames come in runs of this many consecutive frames (temporal heads)
    crops: bool = False  # inputs are already-cropped faces: no face detection
    aggregation: str = "max_track_mean"
    # P(fake) from which a verdict is FAKE, and the width of the "uncertain" band just below it;
    # None: the model's own, fitted on validation data and stored in its checkpoint (0.5 and 0 without)
    threshold: Optional[float] = None
    uncertain_band: Optional[float] = None
    device: str = "auto"
    # which runtime scores faces: "onnx" (ONNX Runtime, fastest on CPU), "torch", or "auto" (ONNX Runtime
    # on CPU where the model has an ONNX file and needs no Grad-CAM or video head; PyTorch otherwise)
    backend: str = "auto"
    batch_size: int = 32
    min_face_size: int = 64  # pixels, in the original frame; MTCNN's cost grows fast below this
    # >1: detect faces on every K-th sampled frame only, interpolating boxes between (face_detectors.KeyframeTracker):
    # faster, but the crops shift slightly from the detector's own, so scores move (benchmarks/README.md)
    detect_every: int = 1
    detection_max_side: int = 640  # frames are downscaled to this for face detection
    min_track_fraction: float = 0.25  # shorter tracks (vs the longest) are reported, not voted
    heatmap_dir: Optional[str] = None  # each scored crop with its forgery map overlaid (PNG)
    masks_dir: Optional[str] = None  # each scored face's forgery mask, P(manipulated) x 255, crop-sized gray PNG
    # score each face track with the model's video head of this name (over its faces' features, in frame
    # order) instead of the mean face P(fake); the file's score is then the max over voting tracks
    video_head: Optional[str] = None
    limits: MediaLimits = field(default_factory=MediaLimits)
    # what to analyse (comma-separated): "faces" (the face path), "image" (the picture scored whole by
    # `image_model`, a detector of generated images), "tamper" (copy-move and splicing localization);
    # "auto": faces, and a picture with no face is scored whole where a whole-image model is at hand
    mode: str = "auto"
    image_model: Optional[str] = None  # a whole-image detector (zoo name or checkpoint); None: the shipped one, if any
    image_views: int = 5  # input-size views cut from a picture at its own resolution (scan/whole_image.py)


#: what `mode` may name
MODES = ("auto", "faces", "image", "tamper")
#: the shipped whole-image detector `auto` and `image` use without --image-model (None: none ships yet)
DEFAULT_IMAGE_MODEL: Optional[str] = None
_GRAVITY = {"real": 0, "uncertain": 1, "fake": 2}


def parse_mode(text: str) -> frozenset[str]:
    """`mode` as a set: {"auto"} or some of faces, image, tamper."""
    parts = frozenset(p.strip() for p in str(text).split(",") if p.strip())
    unknown = sorted(parts - set(MODES))
    if unknown or not parts or ("auto" in parts and len(parts) > 1):
        raise FakescopeError(f"--mode {text}: use auto, or one or more of faces, image, tamper joined by commas "
                             "(e.g. faces,image)")
    return parts


def expand_inputs(paths: Iterable[str | Path]) -> list[tuple[Path, Optional[FileResult]]]:
    """Files to scan, folders searched recursively for media; a path that yields
    nothing gets a ready failure result instead."""
    expanded: list[tuple[Path, Optional[FileResult]]] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in MEDIA_EXTENSIONS)
            if not found:
                message = f"{path}: folder holds no image or video files ({', '.join(sorted(MEDIA_EXTENSIONS))})"
                expanded.append((path, FileResult(path=str(path), status="no_media", message=message)))
            expanded.extend((p, None) for p in found)
        else:
            expanded.append((path, None))
    return expanded


class Scanner:
    def __init__(self, settings: ScanSettings | None = None, detector=None):
        """`detector`: a ready LoadedDetector or OnnxDetector instead of `settings.model`."""
        self.settings = settings or ScanSettings()
        if self.settings.run_length < 1 or self.settings.frames % self.settings.run_length:
            raise FakescopeError(f"--frames {self.settings.frames} must be a multiple of --run-length "
                                 f"{self.settings.run_length} (runs of consecutive frames)")
        check_backend(self.settings.backend)
        if not 1 <= self.settings.detect_every <= DETECTION_CHUNK:
            raise FakescopeError(f"--detect-every {self.settings.detect_every}: use 1 to {DETECTION_CHUNK} "
                                 f"(faces are detected in chunks of {DETECTION_CHUNK} frames)")
        self.device = resolve_device(self.settings.device)
        AGGREGATORS.get(self.settings.aggregation)  # fail early on a typo
        if self.settings.video_head is not None and self.settings.aggregation != "max_track_mean":
            raise FakescopeError(
                f"--aggregation {self.settings.aggregation} combines face scores; with --video-head each "
                "track has one score and a file's score is the max over its voting tracks (max_track_mean)")
        self.detector = detector or self._open_detector()
        self.predictor = Predictor(self.detector, device=self.device, batch_size=self.settings.batch_size,
                                   backend=self.settings.backend, grad_cam=self._wants_maps)
        self.preprocess = self.detector.preprocess
        self.threshold = self.detector.threshold if self.settings.threshold is None else self.settings.threshold
        self.band = self.detector.band if self.settings.uncertain_band is None else self.settings.uncertain_band
        if not 0.0 < self.threshold < 1.0 or not 0.0 <= self.band < self.threshold:
            raise FakescopeError(f"threshold {self.threshold} must be in (0, 1) and the uncertain band below it "
                                 f"({self.band}) narrower than the threshold")
        if self.settings.video_head is not None:
            check_video_head(self.detector.model, self.detector.arch, self.settings.video_head)
        self._face_detector = None
        self.modes = parse_mode(self.settings.mode)
        self.image_model = self.settings.image_model or DEFAULT_IMAGE_MODEL
        if "image" in self.modes and self.image_model is None:
            raise FakescopeError("--mode image: no whole-image model ships with this fakescope yet; give one with "
                                 "--image-model CHECKPOINT (train one with configs/image/)")
        self._image_scorer = None
        if self.image_model is not None and self.modes & {"image", "auto"}:
            self._image_scorer = self._open_image_scorer()

    def _open_image_scorer(self):
        from .whole_image import WholeImageScorer

        return WholeImageScorer(self.image_model, self.device, self.settings.backend, views=self.settings.image_views)

    @property
    def _searches_faces(self) -> bool:
        return bool(self.modes & {"auto", "faces"})

    @property
    def _wants_maps(self) -> bool:
        return bool(self.settings.heatmap_dir or self.settings.masks_dir)

    def _open_detector(self):
        """ONNX Runtime where the settings allow it (no PyTorch import); PyTorch where the scan needs
        the model itself: a video head, or Grad-CAM maps of a model without a mask head."""
        settings = self.settings
        detector = open_detector(settings.model, settings.backend, self.device,
                                 need_torch=settings.video_head is not None)
        if getattr(detector, "backend", None) == "onnx" and self._wants_maps and not detector.has_mask:
            if settings.backend == "onnx" or not torch_available():
                raise FakescopeError(f"--heatmap/--masks: model {detector.name!r} has no mask head, and its Grad-CAM "
                                     'maps need PyTorch: --backend torch or auto, with pip install "fakescope[train]"')
            detector = open_detector(settings.model, "torch", self.device)
        return detector

    @property
    def face_detector(self):
        if self._face_detector is None:  # MTCNN is only built when a scan needs it (not with --crops)
            cls = FACE_DETECTORS.get(self.preprocess.face_detector)
            detector = cls(
                device=str(self.device),
                max_side=self.settings.detection_max_side,
                min_face_size=self.settings.min_face_size,
            )
            if self.settings.detect_every > 1:
                detector = KeyframeTracker(detector, every=self.settings.detect_every)
            self._face_detector = detector
        return self._face_detector

    # ------------------------------------------------------------------ public
    def scan(
        self, paths: str | Path | Sequence[str | Path], on_file_done: Callable[[FileResult], None] | None = None,
        on_files_found: Callable[[int], None] | None = None,
    ) -> ScanReport:
        """Scan every input. The next file decodes in a thread while this one is detected and scored
        (PyAV, ONNX Runtime and PyTorch release the GIL), so both cores stay busy on a folder."""
        if isinstance(paths, (str, Path)):
            paths = [paths]
        inputs = expand_inputs(paths)
        if on_files_found:
            on_files_found(len(inputs))
        if not self.settings.crops and any(ready is None for _, ready in inputs):
            self.face_detector  # built once, before any file's clock starts
        results = []
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="fakescope-decode") as decoder:
            def start(position: int) -> Optional[_FrameStream]:
                path, ready = inputs[position]
                if ready is not None:
                    return None
                stream = _FrameStream(path)
                decoder.submit(stream.decode, self.settings)
                return stream

            upcoming = start(0) if inputs else None
            for position, (path, ready) in enumerate(inputs):
                stream = upcoming
                upcoming = start(position + 1) if position + 1 < len(inputs) else None  # decodes after this one
                result = ready or self._finish(path, stream)
                results.append(result)
                if on_file_done:
                    on_file_done(result)
        return ScanReport(results=results, model=self.model_info(), settings=self.settings_info(), version=__version__)

    def model_info(self) -> dict:
        return {
            "name": self.detector.name, "arch": self.detector.arch,
            "preprocess": self.preprocess.model_dump(), "provenance": self.detector.provenance,
            "device": str(self.device), "backend": self.predictor.backend,
        }

    def settings_info(self) -> dict:
        info = asdict(self.settings)
        info["limits"] = asdict(self.settings.limits)
        info["threshold"], info["uncertain_band"] = self.threshold, self.band  # as used (the model's unless set)
        info["backend"] = self.predictor.backend
        return info

    def scan_file(self, path: str | Path, on_progress: Callable[[int], None] | None = None,
                  on_frames: Callable[[list[Frame]], None] | None = None) -> FileResult:
        """One file. `on_progress(frames_done)` is called as face detection gets through the sampled
        frames; `on_frames(frames)` receives the decoded frames at the end (the web service cuts its
        thumbnails and key frames from them instead of decoding again)."""
        path = Path(path)
        if not self.settings.crops:
            self.face_detector  # build MTCNN before the clock starts, so timings are the file's own
        stream = _FrameStream(path)
        threading.Thread(target=stream.decode, args=(self.settings,), name="fakescope-decode", daemon=True).start()
        result = self._finish(path, stream, on_progress)
        if on_frames is not None and stream.frames:
            on_frames(stream.frames)
        return result

    # ------------------------------------------------------------------ stages
    def _finish(self, path: Path, stream: "_FrameStream", on_progress=None) -> FileResult:
        """Stages 2-5 on the frames as they decode; every failure becomes the file's status.
        `seconds` is the wall time from here (decoding may have started earlier, beside the
        previous file) to the result."""
        started = time.perf_counter()
        try:
            result = self._analyse(path, stream, on_progress)
        except FakescopeError as exc:
            result = FileResult(path=str(path), status=exc.code, message=exc.message)
        except MemoryError:
            result = FileResult(path=str(path), status="too_large", message=f"{path}: out of memory while decoding")
        except Exception as exc:  # never a traceback at the user; keep the detail in the log
            log.debug("unexpected error on %s", path, exc_info=True)
            result = FileResult(path=str(path), status="internal_error", message=f"{path}: {type(exc).__name__}: {exc}")
        result.seconds = time.perf_counter() - started
        return result

    def _analyse(self, path: Path, stream: "_FrameStream", on_progress=None) -> FileResult:
        faces_of: dict[int, list[Face]] = {}  # id(frame) -> its faces
        detecting = 0.0
        chunk: list[Frame] = []
        for frame in stream:  # face detection runs on each chunk while the next frames decode
            chunk.append(frame)
            if len(chunk) == DETECTION_CHUNK:
                detecting += self._detect_chunk(chunk, faces_of)
                chunk = []
                if on_progress is not None:
                    on_progress(len(faces_of))
        detecting += self._detect_chunk(chunk, faces_of)
        if stream.error is not None:
            raise stream.error
        info, frames = stream.info, stream.frames
        if info.kind == "video" and not self._searches_faces:  # image/tamper modes: a video gets the face path
            started = time.perf_counter()
            faces_of = {id(frame): faces for frame, faces in zip(frames, self._detect_faces(frames, always=True))}
            detecting += time.perf_counter() - started
        faces_per_frame = [faces_of[id(frame)] for frame in frames]
        timings: dict[str, float] = {"decode": stream.seconds, "face_detection": detecting}

        result = FileResult(
            path=str(path), status="ok", kind=info.kind, frames_analysed=len(frames),
            media={k: v for k, v in asdict(info).items() if k not in ("kind", "warnings")}, timings=timings,
            warnings=list(info.warnings), message="; ".join(info.warnings) or None,
        )
        t0 = time.perf_counter()
        tracks = link_tracks(faces_per_frame)
        track_of = {(link.frame_position, link.face_index): t for t, track in enumerate(tracks) for link in track.links}
        keys, crops, squares = self._crops(frames, faces_per_frame)
        scores, features, written = self._predict(path, frames, keys, crops, squares, track_of)
        timings["model"] = time.perf_counter() - t0
        score_of = dict(zip(keys, scores))
        self._pack_faces(result, frames, faces_per_frame, score_of, squares, track_of, written)
        picture = frames[0].image if info.kind == "image" else None
        self._whole_picture(result, path, picture)
        if not result.faces:
            if result.whole_image is not None:
                part = result.whole_image
                result.score, result.verdict, result.from_threshold = part.score, part.verdict, part.from_threshold
                result.score_source = "whole_image"
            if result.whole_image is None and result.tamper is None:
                result.status, result.score, result.verdict = "no_face", None, None
                result.message = (f"{path}: no face of at least {self.settings.min_face_size} px found in {len(frames)} "
                                  "frame(s) analysed (smaller faces: --min-face)")
            elif self._searches_faces:
                result.warnings.append(f"no face of at least {self.settings.min_face_size} px: the picture was "
                                       "analysed whole")
                result.message = "; ".join(result.warnings)
            return result
        feature_of = dict(zip(keys, features)) if features is not None else {}
        self._vote(result, frames, tracks, score_of, feature_of)
        result.score_source = "faces"
        whole = result.whole_image
        if whole is not None and _GRAVITY[whole.verdict] > _GRAVITY[result.verdict]:
            # the picture as a whole looks graver than its faces (a generated picture of a real-looking face)
            result.score, result.verdict, result.from_threshold = whole.score, whole.verdict, whole.from_threshold
            result.score_source = "whole_image"
        return result

    def _whole_picture(self, result: FileResult, path: Path, picture: Optional[np.ndarray]) -> None:
        """Stage 6, for a picture: the whole-image detector (mode image; auto when it found no face) and
        tampering localization (mode tamper), each into its own part of the result."""
        wants_image = "image" in self.modes or ("auto" in self.modes and not result.faces)
        asked = self.modes & {"image", "tamper"}
        if picture is None:
            if asked:
                result.warnings.append(f"--mode {','.join(sorted(asked))} analyses pictures, not videos: only the "
                                       "faces were scored")
                result.message = "; ".join(result.warnings)
            return
        masks_dir = Path(self.settings.masks_dir) if self.settings.masks_dir else None
        if masks_dir is not None:
            masks_dir.mkdir(parents=True, exist_ok=True)
        stem = media_key(path)
        started = time.perf_counter()
        if wants_image and self._image_scorer is not None:
            whole, patch_map = self._image_scorer.score(picture, want_map=masks_dir is not None)
            if patch_map is not None:
                target = masks_dir / f"{stem}_image_map.png"
                _write_gray(target, patch_map)
                whole.patch_map = str(target)
            result.whole_image = whole
            result.timings["whole_image"] = time.perf_counter() - started
        if "tamper" in self.modes:
            started = time.perf_counter()
            result.tamper = _tamper(picture, masks_dir, stem)
            result.timings["tamper"] = time.perf_counter() - started

    def _detect_chunk(self, chunk: list[Frame], faces_of: dict) -> float:
        """Faces of a chunk of frames into `faces_of`; returns the seconds it took."""
        if not chunk:
            return 0.0
        started = time.perf_counter()
        for frame, faces in zip(chunk, self._detect_faces(chunk)):
            faces_of[id(frame)] = faces
        return time.perf_counter() - started

    def _detect_faces(self, frames: list[Frame], always: bool = False) -> list[list[Face]]:
        """Stage 2, faces: each frame's faces (with --crops the whole picture is the face). Modes without
        faces skip it, except for videos (`always`), which only the face path analyses."""
        if not (self._searches_faces or always):
            return [[] for _ in frames]
        if self.settings.crops:
            return [[Face(box=(0.0, 0.0, float(f.image.shape[1]), float(f.image.shape[0])), score=1.0)]
                    for f in frames]
        return self.face_detector.detect([f.image for f in frames])

    def _crops(self, frames: list[Frame], faces_per_frame: list[list[Face]]):
        """Stage 3a: every face's crop at the model's margin and size, with its key (frame position,
        face index) and its square in frame pixels."""
        margin = 1.0 if self.settings.crops else self.preprocess.margin
        size = self.preprocess.input_size
        keys, crops, squares = [], [], {}
        for position, (frame, faces) in enumerate(zip(frames, faces_per_frame)):
            for face_index, face in enumerate(faces):
                key = (position, face_index)
                keys.append(key)
                squares[key] = crop_square(face.box, margin)
                crops.append(crop_face(frame.image, face.box, margin, size))
        return keys, crops, squares

    def _predict(self, path: Path, frames, keys, crops, squares, track_of):
        """Stage 3b, the detector: P(fake) per crop, features with a video head (else None), and per
        face key the FaceResult fields of the --heatmap/--masks PNGs written from the same pass."""
        want_features = self.settings.video_head is not None
        if not crops:
            return [], ([] if want_features else None), {}
        if not self._wants_maps:
            predicted = self.predictor.predict_crops(crops, features=want_features)
            return predicted.scores.tolist(), predicted.features, {}
        heatmap_dir = Path(self.settings.heatmap_dir) if self.settings.heatmap_dir else None
        masks_dir = Path(self.settings.masks_dir) if self.settings.masks_dir else None
        for folder in (heatmap_dir, masks_dir):
            if folder is not None:
                folder.mkdir(parents=True, exist_ok=True)
        stem = media_key(path)
        scores: list[float] = []
        features: Optional[list] = [] if want_features else None
        written: dict = {}
        for which, batch in self.predictor.crop_batches(crops):
            maps = self.predictor.maps(batch)
            if features is not None:
                features.extend(frame_features(maps.output, self.detector.name))
            self._write_maps(maps, crops[which], keys[which], stem, frames, squares, track_of,
                             heatmap_dir, masks_dir, written)
            scores.extend(float(s) for s in maps.scores)
        return scores, features, written

    def _pack_faces(self, result: FileResult, frames, faces_per_frame, score_of, squares, track_of, written) -> None:
        """Stage 4: FrameResult per sampled frame (its most suspicious face) and FaceResult per face."""
        for position, (frame, faces) in enumerate(zip(frames, faces_per_frame)):
            frame_scores = [score_of[(position, i)] for i in range(len(faces))]
            result.frames.append(FrameResult(frame.index, round(frame.timestamp, 4), len(faces),
                                             max(frame_scores) if frame_scores else None))
            for face_index, face in enumerate(faces):
                key = (position, face_index)
                result.faces.append(FaceResult(
                    frame_index=frame.index, timestamp=round(frame.timestamp, 4), track=track_of[key],
                    box=[round(v, 1) for v in face.box],
                    landmarks=[[round(x, 1), round(y, 1)] for x, y in face.landmarks] if face.landmarks else None,
                    detector_confidence=round(face.score, 4), score=score_of[key],
                    crop_box=list(squares[key]), **written.get(key, {}),
                ))
        result.faces_found = len(result.faces)

    def _vote(self, result: FileResult, frames, tracks, score_of, feature_of) -> None:
        """Stage 5, aggregate: a score and verdict per track, then the file's from the voting tracks."""
        longest = len(tracks[0].links)
        head = self.settings.video_head
        voting: list[list[float]] = []
        for t, track in enumerate(tracks):
            links = sorted(track.links, key=lambda link: link.frame_position)  # frame order, for the video head
            track_scores = [score_of[(link.frame_position, link.face_index)] for link in links]
            used = len(track.links) >= max(1, math.ceil(self.settings.min_track_fraction * longest))
            if head is None:
                score, source, windows = float(np.mean(track_scores)), "frame_mean", None
            else:
                track_features = np.stack([feature_of[(link.frame_position, link.face_index)] for link in links])
                score, windows = video_head_probability(self.detector.model, track_features, head)
                source = f"video_head:{head}"
            if used:
                # with a video head a track is one score: max_track_mean over them is the max over tracks
                voting.append(track_scores if head is None else [score])
            result.tracks.append(TrackResult(
                track=t, score=score, faces=len(track_scores),
                first_frame=frames[links[0].frame_position].index,
                last_frame=frames[links[-1].frame_position].index, used_for_verdict=used,
                score_source=source, windows=windows, verdict=verdict(score, self.threshold, self.band),
                from_threshold=round(score - self.threshold, 4),
            ))
        result.score = AGGREGATORS.get(self.settings.aggregation)(voting)
        result.verdict = verdict(result.score, self.threshold, self.band)
        result.from_threshold = round(result.score - self.threshold, 4)

    def _write_maps(self, maps, chunk, chunk_keys, stem, frames, squares, track_of, heatmap_dir, masks_dir,
                    written: dict) -> None:
        from PIL import Image

        for j, (key, crop) in enumerate(zip(chunk_keys, chunk)):
            position, face_index = key
            name = f"{stem}_f{frames[position].index:06d}_t{track_of[key]}_{face_index}"
            fields = {"mask_source": maps.source}
            if heatmap_dir is not None:
                target = heatmap_dir / f"{name}_heatmap.png"
                Image.fromarray(overlay(crop, maps.at(j, crop.shape[:2]))).save(target)
                fields["heatmap"] = str(target)
            if masks_dir is not None:
                left, top, right, bottom = squares[key]
                target = masks_dir / f"{name}_mask.png"
                _write_gray(target, maps.at(j, (bottom - top, right - left)))
                fields["mask"] = str(target)
            written[key] = fields


def _write_gray(target: Path, probability: np.ndarray) -> None:
    """A [0, 1] map as a grayscale PNG, P x 255 (2-D uint8: mode L)."""
    from PIL import Image

    Image.fromarray(np.round(np.clip(probability, 0, 1) * 255.0).astype(np.uint8)).save(target)


def _tamper(picture: np.ndarray, masks_dir: Optional[Path], stem: str):
    """Every tampering-localization method on the picture (fakescope.tamper), as a TamperResult."""
    from ..tamper import analyse
    from .results import TamperFinding, TamperResult

    findings = []
    for finding in analyse(picture):
        mask_path = None
        if masks_dir is not None:
            target = masks_dir / f"{stem}_tamper_{finding.method}.png"
            _write_gray(target, finding.mask)
            mask_path = str(target)
        findings.append(TamperFinding(method=finding.method, kind=finding.kind, score=round(float(finding.score), 6),
                                      found=bool(finding.found), message=finding.message, mask=mask_path,
                                      detail=finding.detail))
    found = [f.method for f in findings if f.found]
    return TamperResult(found=bool(found), methods_found=found, findings=findings)


#: frames per face-detection call while a video decodes (small enough to overlap decoding,
#: large enough to batch the detector)
DETECTION_CHUNK = 8


class _FrameStream:
    """Stage 1, media, on the decode thread: hands each sampled frame to the scanning thread as
    soon as it is decoded, then the media's info, the frame list and any error."""

    _END = object()

    def __init__(self, path: Path):
        self.path = path
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self.info: Optional[MediaInfo] = None
        self.frames: Optional[list[Frame]] = None
        self.error: Optional[BaseException] = None
        self.seconds = 0.0

    def decode(self, settings: ScanSettings) -> None:
        started = time.perf_counter()
        try:
            self.info, self.frames = load_media(self.path, settings.frames, settings.limits,
                                                run_length=settings.run_length, on_frame=self._queue.put)
        except BaseException as exc:  # noqa: BLE001 - re-raised on the scanning thread (see _analyse)
            self.error = exc
        finally:
            self.seconds = time.perf_counter() - started
            self._queue.put(self._END)

    def __iter__(self) -> Iterator[Frame]:
        while (item := self._queue.get()) is not self._END:
            yield item


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _safe_part(text: str, limit: int = 60) -> str:
    return (_UNSAFE.sub("_", text).strip("._") or "_")[:limit]


def media_key(path: str | Path) -> str:
    """A file-name stem for an input file's outputs (heatmaps, masks): its folder and file name
    (extension included) in safe characters, plus 8 hex digits of the SHA-1 of its absolute path.
    Stable across runs; the hash keeps inputs apart that share a file name in folders of the same
    name, or whose names differ only in characters made safe (a clash needs a 32-bit collision)."""
    absolute = os.path.abspath(path)
    path = Path(absolute)
    digest = hashlib.sha1(absolute.encode("utf-8", "surrogateescape")).hexdigest()[:8]
    readable = f"{_safe_part(path.parent.name)}_{_safe_part(path.name)}" if path.parent.name else _safe_part(path.name)
    return f"{readable}-{digest}"


def scan(paths: str | Path | Sequence[str | Path], **settings) -> ScanReport:
    """Scan images, videos or folders: `scan("clip.mp4").score` is P(fake).

    Keyword arguments are `ScanSettings` fields (model, frames, crops, aggregation,
    threshold, device, heatmap_dir, masks_dir, video_head, limits, ...).
    """
    return Scanner(ScanSettings(**settings)).scan(paths)
