"""Videos -> face-crop dataset: `extract_faces(manifest, out_dir)` and `fakescope extract`.

Output layout (stable, so re-runs and other tools find the same files):

    out_dir/manifest.csv                       one row per crop (Manifest contract), frame = frame index
    out_dir/extraction_report.json             every video's outcome; failures and fallbacks listed
    out_dir/<split|all>/<real|fake>/<method>/<video>/<frame:06d>.png       face crops (RGB PNG)
    out_dir/<split|all>/<real|fake>/<method>/<video>/boxes.json            per-video boxes; the done-marker
    out_dir/masks/<split|all>/<real|fake>/<method>/<video>/<frame:06d>.png mask crops (grayscale PNG)

`method` is a folder level because FF++ reuses fake ids across methods
(deepfakes/004_982 and neuraltextures/004_982 are different videos). Masks live in
their own tree so that globbing a crop folder (e.g. `fakescope scan --crops`)
never picks them up as faces. Crops are PNG: lossless, so extraction adds no
compression artefacts of its own to a forensic dataset.

Face choice: by default the largest face of each frame (FF++, DFDC and Celeb-DF
are mostly one-subject videos, and the largest face is the manipulated one).
With `all_faces=True` every face is kept, linked across frames into tracks
(faces.link_tracks), and the file is named `<frame:06d>_t<track>.png`.

Pairing: a fake whose `source` is the `video` id of exactly one real row of the
same manifest gets the SOURCE video's boxes, frame by frame (as the DFDC winner
and ASRID do), so real and fake crops are aligned and detection failures on
manipulated faces cannot bias the data. Sources therefore run before their fakes,
and fakes read the boxes from the source's `boxes.json`. When the frame size or
frame count differ, or the source failed, the fake is detected on its own and
the report says why (`fallback`).

Resume: `boxes.json` is written last, atomically, and names the settings and the
input; a video whose marker matches and whose crops all exist is not decoded
again. Anything else in its folder is treated as a partial output and replaced.
"""
from __future__ import annotations

import json
import logging
import os
import re
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field, fields, replace
from hashlib import sha1
from pathlib import Path
from typing import Callable, Optional

import cv2
import numpy as np

from .. import __version__
from ..errors import FakescopeError, MediaError
from ..scan.faces import Face, MTCNNFaceDetector, crop_face, link_tracks
from ..scan.media import MediaLimits, load_media
from ..models.base import MIN_CROP_MARGIN
from .manifest import Manifest, Sample

log = logging.getLogger(__name__)

MARKER = "boxes.json"
REPORT = "extraction_report.json"
MARKER_VERSION = 1
_PNG_FLAGS = [cv2.IMWRITE_PNG_COMPRESSION, 3]  # lossless at any level; 3 is ~2x faster to write than 9


@dataclass(frozen=True)
class ExtractSettings:
    """Everything that changes the crops; a marker made with other settings is redone."""

    frames: int = 32
    margin: float = 1.3
    size: int = 256
    min_face_size: int = 64
    all_faces: bool = False
    detection_max_side: int = 640
    run_length: int = 1  # frames come in runs of this many consecutive frames (for temporal models)


def _same_settings(marker: dict, settings: ExtractSettings) -> bool:
    """Whether a marker was written with `settings`; a setting added after the marker was
    written counts at its default (so earlier extractions are not redone)."""
    written = marker.get("settings")
    if not isinstance(written, dict):
        return False
    defaults = asdict(ExtractSettings())
    return {**defaults, **written} == asdict(settings) and set(written) <= set(defaults)


@dataclass
class VideoResult:
    """The outcome for one input video (one row of the report)."""

    path: str
    video: str
    label: int
    folder: str  # crop folder, relative to out_dir
    status: str = "ok"  # "ok", "no_face", or a MediaError code ("corrupt", "not_found", ...)
    message: Optional[str] = None
    resumed: bool = False  # done by an earlier run: nothing was decoded this time
    method: Optional[str] = None
    split: Optional[str] = None
    frames: int = 0  # frames sampled
    frames_with_face: int = 0
    crops: int = 0
    masks: int = 0
    boxes_from: Optional[str] = None  # "detected" or "source"
    paired_with: Optional[str] = None  # the source video id, where the manifest pairs one
    fallback: Optional[str] = None  # why a paired fake was detected on its own
    frames_detected_on_fake: int = 0  # paired fake frames the source had not sampled
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    pid: Optional[int] = None  # the process that extracted it (a pool worker when workers > 1)
    crop_files: list[dict] = field(default_factory=list, repr=False)  # frame, track, path, mask (not in the report)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass
class ExtractionReport:
    videos: list[VideoResult]
    settings: ExtractSettings
    out_dir: str
    manifest_path: Optional[str]
    rows: int  # crops in manifest.csv
    rows_from_earlier_runs: int = 0  # crops of videos not in this run's input, kept from earlier runs
    seconds: float = 0.0

    @property
    def problems(self) -> list[VideoResult]:
        """Videos that gave no crop: no face found, or failed to decode."""
        return [v for v in self.videos if not v.ok]

    @property
    def fallbacks(self) -> list[VideoResult]:
        return [v for v in self.videos if v.fallback]

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for v in self.videos:
            counts[v.status] = counts.get(v.status, 0) + 1
        return counts

    def to_dict(self) -> dict:
        videos = []
        for v in self.videos:
            row = asdict(v)
            row.pop("crop_files")
            videos.append(row)
        return {
            "version": __version__,
            "out_dir": self.out_dir,
            "manifest": self.manifest_path,
            "settings": asdict(self.settings),
            "totals": {
                "videos": len(self.videos), "resumed": sum(v.resumed for v in self.videos),
                "crops": sum(v.crops for v in self.videos), "rows": self.rows,
                "rows_from_earlier_runs": self.rows_from_earlier_runs,
                "fallbacks": len(self.fallbacks), "status": self.counts(),
            },
            "problems": [{"path": v.path, "status": v.status, "message": v.message} for v in self.problems],
            "seconds": round(self.seconds, 3),
            "videos": videos,
        }

    def write_json(self, path: str | Path) -> Path:
        path = Path(path)
        _write_atomic(path, json.dumps(self.to_dict(), indent=2))
        return path


ProgressCallback = Callable[[VideoResult, int, int], None]  # (result, done, total)


# ----------------------------------------------------------------------------- public API


def extract_faces(
    manifest: Manifest,
    out_dir: str | Path,
    frames_per_video: int = 32,
    margin: float = 1.3,
    size: int = 256,
    min_face_size: int = 64,
    workers: int = 1,
    all_faces: bool = False,
    device: str = "cpu",
    detection_max_side: int = 640,
    run_length: int = 1,
    limits: MediaLimits = MediaLimits(),
    progress: Optional[ProgressCallback] = None,
    detector=None,
) -> ExtractionReport:
    """Crop the faces of every video of `manifest` into `out_dir` (layout in the module doc).

    `workers` > 1 runs videos in that many processes, each with its own MTCNN.
    `detector` (any faces.FaceDetector) replaces MTCNN in this process, with its own
    thresholds (min_face_size is then only recorded); it is for callers that already
    hold one and only works with workers=1. `progress(result, done, total)` is
    called in this process after each video. `run_length` K > 1 samples
    frames_per_video / K runs of K consecutive frames (media.load_media) instead of
    single frames, for training on clips. Per-video problems are reported,
    never raised; bad arguments raise FakescopeError.
    """
    if frames_per_video < 1 or size < 8 or margin < MIN_CROP_MARGIN or min_face_size < 1 or workers < 1 or run_length < 1:
        raise FakescopeError(
            f"bad extraction settings: frames={frames_per_video} (>= 1), size={size} (>= 8), "
            f"margin={margin} (>= {MIN_CROP_MARGIN}), min_face_size={min_face_size} (>= 1), workers={workers} (>= 1), "
            f"run_length={run_length} (>= 1)"
        )
    if frames_per_video % run_length:
        raise FakescopeError(f"frames per video ({frames_per_video}) must be a multiple of the run length "
                             f"({run_length}): {frames_per_video // run_length or 1} runs of {run_length} would be "
                             f"{(frames_per_video // run_length or 1) * run_length} frames")
    if detector is not None and workers > 1:
        raise FakescopeError("a ready detector can only be used with workers=1 (each worker builds its own MTCNN)")
    from ..device import resolve_device

    device = str(resolve_device(device))  # "auto" -> cuda or cpu; a bad name fails here, not in every worker
    started = time.perf_counter()
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise FakescopeError(f"{out_dir}: exists and is not a folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    settings = ExtractSettings(frames_per_video, float(margin), size, min_face_size, all_faces, detection_max_side,
                               run_length)
    jobs = _plan(manifest)
    context = _Context(out_dir, settings, limits, device, detector)

    results: dict[int, VideoResult] = {}
    total = len(jobs)

    def done(job: _Job, result: VideoResult) -> None:
        results[job.order] = result
        if progress:
            progress(result, len(results), total)

    # Finished videos are found here, in this process: a re-run of a done folder starts
    # no worker and builds no MTCNN.
    pending, finished = [], {}
    for job in jobs:
        resumed = _resume(job, context)
        if resumed is None:
            pending.append(job)
        else:
            finished[job.folder] = resumed
            done(job, resumed)
    if workers == 1:
        _run_sequential(pending, finished, context, done)
    elif pending:
        _run_pool(pending, finished, context, workers, done)

    videos = [results[job.order] for job in jobs]
    rows = [row for job, video in zip(jobs, videos) for row in _rows(job.sample, job.video, video.crop_files)]
    earlier = _earlier_rows(out_dir, settings, {str(j.path) for j in jobs})
    manifest_path = None
    all_rows = rows + earlier
    if all_rows:
        manifest_path = str(Manifest(all_rows, out_dir).write(out_dir / "manifest.csv"))
    elif (out_dir / "manifest.csv").exists():
        (out_dir / "manifest.csv").unlink()  # a stale manifest would describe crops this run did not make
    report = ExtractionReport(
        videos=videos, settings=settings, out_dir=str(out_dir), manifest_path=manifest_path,
        rows=len(all_rows), rows_from_earlier_runs=len(earlier), seconds=time.perf_counter() - started,
    )
    report.write_json(out_dir / REPORT)
    return report


# ----------------------------------------------------------------------------- planning


@dataclass
class _Job:
    """One video to extract; picklable, sent to a worker process."""

    order: int  # position in the input manifest
    sample: Sample
    video: str  # the effective video id (the `video` column, or the file stem)
    path: Path
    mask: Optional[Path]
    folder: str  # crop folder relative to out_dir
    source_folder: Optional[str] = None  # the paired source's crop folder
    source_video: Optional[str] = None
    source_problem: Optional[str] = None  # set when the source finished without boxes
    unpaired_note: Optional[str] = None


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _safe(name: str) -> str:
    """A file-system-safe folder name (ids may hold slashes or spaces)."""
    cleaned = _UNSAFE.sub("_", name).strip("._") or "_"
    return cleaned[:120]


def _video_id(sample: Sample) -> str:
    return sample.video or Path(sample.path).stem


def _plan(manifest: Manifest) -> list[_Job]:
    """Jobs in input order with their folders and source pairing."""
    jobs: list[_Job] = []
    seen_paths: set[Path] = set()
    for sample in manifest.samples:
        path = manifest.resolve(sample.path).absolute()
        if path in seen_paths:  # the same file listed twice: extract once
            log.warning("%s is listed more than once in the manifest; extracted once", path)
            continue
        mask = manifest.resolve(sample.mask).absolute() if sample.mask else None
        video = _video_id(sample)
        method = sample.method or ("original" if sample.label == 0 else "unknown")
        folder = "/".join([
            _safe(sample.split or "all"), "fake" if sample.label == 1 else "real", _safe(method), _safe(video),
        ])
        job = _Job(order=len(jobs), sample=sample, video=video, path=path, mask=mask, folder=folder)
        seen_paths.add(path)
        jobs.append(job)
    # Two different files with the same split/label/method/id: each gets a path hash, so
    # neither overwrites the other and the names do not depend on the manifest's order.
    by_folder: dict[str, list[_Job]] = defaultdict(list)
    for job in jobs:
        by_folder[job.folder].append(job)
    for folder, group in by_folder.items():
        if len(group) > 1:
            for job in group:
                job.folder = f"{folder}-{sha1(str(job.path).encode()).hexdigest()[:8]}"
    # Pairing: the source must be exactly one real row (same dataset, where given).
    reals: dict[str, list[_Job]] = defaultdict(list)
    for job in jobs:
        if job.sample.label == 0:
            reals[job.video].append(job)
    for job in jobs:
        if job.sample.label != 1 or not job.sample.source:
            continue
        candidates = reals.get(job.sample.source, [])
        if len(candidates) > 1 and job.sample.dataset:
            candidates = [c for c in candidates if c.sample.dataset == job.sample.dataset] or candidates
        if len(candidates) == 1:
            job.source_folder, job.source_video = candidates[0].folder, job.sample.source
        elif len(candidates) > 1:
            job.unpaired_note = f"source {job.sample.source!r} matches {len(candidates)} real rows; detected on its own"
    return jobs


# ----------------------------------------------------------------------------- scheduling


@dataclass
class _Context:
    out_dir: Path
    settings: ExtractSettings
    limits: MediaLimits
    device: str
    detector: object = None  # built lazily: a fully resumed run never loads MTCNN
    load_seconds: float = 0.0  # time spent building it, charged to no video's "detect"

    def face_detector(self):
        if self.detector is None:
            started = time.perf_counter()
            self.detector = MTCNNFaceDetector(
                device=self.device, max_side=self.settings.detection_max_side,
                min_face_size=self.settings.min_face_size,
            )
            self.load_seconds = time.perf_counter() - started
        return self.detector


def _ordered(jobs: list[_Job], finished: dict[str, VideoResult]) -> tuple[list[_Job], dict[str, list[_Job]]]:
    """Jobs that can start now (sources first, so their fakes unblock early) and
    the paired fakes waiting for each source folder still to extract."""
    to_extract = {job.folder for job in jobs}
    waiting: dict[str, list[_Job]] = defaultdict(list)
    ready = []
    for job in jobs:
        if job.source_folder in to_extract:
            waiting[job.source_folder].append(job)
        else:
            source = finished.get(job.source_folder)
            if source is not None and not source.ok:
                job.source_problem = f"source {job.source_video} gave no boxes ({source.status})"
            ready.append(job)
    ready.sort(key=lambda j: (j.folder not in waiting, j.order))
    return ready, waiting


def _release(job: _Job, result: VideoResult, waiting: dict[str, list[_Job]]) -> list[_Job]:
    fakes = waiting.pop(job.folder, [])
    if not result.ok:
        for fake in fakes:
            fake.source_problem = f"source {job.video} gave no boxes ({result.status})"
    return fakes


def _run_sequential(jobs: list[_Job], finished: dict[str, VideoResult], context: _Context, done) -> None:
    ready, waiting = _ordered(jobs, finished)
    while ready:
        job = ready.pop(0)
        result = _extract_video(job, context)
        ready[:0] = _release(job, result, waiting)  # a source's fakes next, while its boxes are warm in the page cache
        done(job, result)


def _run_pool(jobs: list[_Job], finished: dict[str, VideoResult], context: _Context, workers: int, done) -> None:
    """Videos in `workers` processes; a paired fake is submitted only once its source is finished."""
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    ready, waiting = _ordered(jobs, finished)
    # spawn, not fork: forking a process that already runs torch/OpenMP threads can deadlock.
    pool_context = multiprocessing.get_context("spawn")
    worker_context = replace(context, detector=None)
    with ProcessPoolExecutor(
        max_workers=min(workers, max(1, len(jobs))), mp_context=pool_context,
        initializer=_init_worker, initargs=(worker_context,),
    ) as pool:
        running = {}

        def submit(job: _Job) -> None:
            try:
                running[pool.submit(_worker_extract, job)] = job
            except BrokenProcessPool as exc:  # a worker died earlier: report, do not crash the run
                done(job, _failed(job, "internal_error", f"{job.path}: not extracted, the worker pool broke ({exc})"))

        try:
            for job in ready:
                submit(job)
            while running:
                completed, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in completed:
                    job = running.pop(future)
                    try:
                        result = future.result()
                    except Exception as exc:  # the worker died (e.g. killed for memory)
                        result = _failed(job, "internal_error", f"{job.path}: worker failed: {type(exc).__name__}: {exc}")
                    fakes = _release(job, result, waiting)
                    done(job, result)
                    for fake in fakes:
                        submit(fake)
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise


_WORKER_CONTEXT: Optional[_Context] = None


def _init_worker(context: _Context) -> None:
    """Per worker process: one thread each (workers are the parallelism), MTCNN built on first use."""
    global _WORKER_CONTEXT
    import torch

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    _WORKER_CONTEXT = context


def _worker_extract(job: _Job) -> VideoResult:
    return _extract_video(job, _WORKER_CONTEXT)


# ----------------------------------------------------------------------------- one video


def _failed(job: _Job, status: str, message: str) -> VideoResult:
    return VideoResult(path=str(job.path), video=job.video, label=job.sample.label, folder=job.folder,
                       status=status, message=message, method=job.sample.method, split=job.sample.split)


def _extract_video(job: _Job, context: _Context) -> VideoResult:
    """Never raises: every problem becomes the result's status and message."""
    started = time.perf_counter()
    try:
        result = _extract(job, context)
    except MediaError as exc:
        result = _failed(job, exc.code, exc.message)
    except FakescopeError as exc:
        result = _failed(job, exc.code, exc.message)
    except MemoryError:
        result = _failed(job, "too_large", f"{job.path}: out of memory while extracting")
    except Exception as exc:  # a bug of ours: keep going, report it
        log.debug("unexpected error on %s", job.path, exc_info=True)
        result = _failed(job, "internal_error", f"{job.path}: {type(exc).__name__}: {exc}")
    result.seconds = time.perf_counter() - started
    return result


def _marker_input(job: _Job) -> dict:
    return {"path": str(job.path), "mask": str(job.mask) if job.mask else None}


def _resume(job: _Job, context: _Context) -> Optional[VideoResult]:
    """The earlier result when this video's marker matches these settings and input
    and all its files are there; None means (re)extract."""
    marker = _read_marker(context.out_dir / job.folder / MARKER)
    if marker is None:
        return None
    if not _same_settings(marker, context.settings) or marker.get("input") != _marker_input(job):
        return None
    try:
        result = _result_from_marker(marker, job)
    except (KeyError, TypeError, ValueError):  # a marker from a future or hand-edited version
        return None
    for crop in result.crop_files:
        for key in ("path", "mask"):
            if crop.get(key) and not (context.out_dir / crop[key]).is_file():
                return None
    result.resumed = True
    return result


def _read_marker(path: Path) -> Optional[dict]:
    try:
        marker = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) and marker.get("marker_version") == MARKER_VERSION else None


def _result_from_marker(marker: dict, job: _Job) -> VideoResult:
    known = {f.name for f in fields(VideoResult)}
    result = VideoResult(**{k: v for k, v in marker["result"].items() if k in known})
    # The sample's own fields come from this run's manifest (e.g. a corrected method name).
    result.path, result.video, result.label, result.folder = str(job.path), job.video, job.sample.label, job.folder
    result.method, result.split = job.sample.method, job.sample.split
    return result


def _clear(folder: Path) -> None:
    """Remove what an earlier, unfinished or differently-set run left in a video's folder."""
    if folder.is_dir():
        for stale in list(folder.glob("*.png")) + [folder / MARKER]:
            stale.unlink(missing_ok=True)


def _extract(job: _Job, context: _Context) -> VideoResult:
    settings, out_dir = context.settings, context.out_dir
    crop_dir = out_dir / job.folder
    mask_dir = out_dir / "masks" / job.folder
    _clear(crop_dir)
    _clear(mask_dir)
    result = _failed(job, "ok", None)
    result.pid = os.getpid()
    timings = result.timings

    t0 = time.perf_counter()
    info, frames = load_media(job.path, settings.frames, context.limits, exact_frames=True,
                              run_length=settings.run_length)
    timings["decode"] = time.perf_counter() - t0
    result.frames = len(frames)
    result.warnings.extend(info.warnings)
    if job.unpaired_note:
        result.warnings.append(job.unpaired_note)

    t0 = time.perf_counter()
    faces_per_frame, tracks = _boxes(job, context, info, frames, result)
    timings["detect"] = time.perf_counter() - t0 - context.load_seconds
    if context.load_seconds:
        timings["load_detector"], context.load_seconds = context.load_seconds, 0.0

    masks = {}
    if job.mask is not None:
        t0 = time.perf_counter()
        masks = _mask_frames(job, context, info, frames, result)
        timings["decode_mask"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    crop_dir.mkdir(parents=True, exist_ok=True)
    for frame, faces, frame_tracks in zip(frames, faces_per_frame, tracks):
        for face, track in zip(faces, frame_tracks):
            name = f"{frame.index:06d}.png" if not settings.all_faces else f"{frame.index:06d}_t{track}.png"
            crop = crop_face(frame.image, face.box, settings.margin, settings.size)
            _write_png(crop_dir / name, cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
            entry = {"frame": frame.index, "track": track, "path": f"{job.folder}/{name}", "mask": None}
            if frame.index in masks:
                mask_dir.mkdir(parents=True, exist_ok=True)
                _write_png(mask_dir / name, crop_face(masks[frame.index], face.box, settings.margin, settings.size))
                entry["mask"] = f"masks/{job.folder}/{name}"
                result.masks += 1
            result.crop_files.append(entry)
    timings["crop_write"] = time.perf_counter() - t0
    result.crops = len(result.crop_files)
    result.frames_with_face = sum(1 for faces in faces_per_frame if faces)
    if not result.crops:
        result.status = "no_face"
        result.message = (f"{job.path}: no face of at least {settings.min_face_size} px found in {len(frames)} "
                          "frame(s) sampled (smaller faces: --min-face)")
    if result.warnings and result.ok:
        result.message = "; ".join(result.warnings)

    marker = {
        "marker_version": MARKER_VERSION,
        "fakescope": __version__,
        "settings": asdict(settings),
        "input": _marker_input(job),
        "sample": asdict(job.sample),
        "media": {"width": info.width, "height": info.height, "frame_count": info.frame_count,
                  "fps": info.fps, "duration_s": info.duration_s},
        "frames": [
            {"index": frame.index, "timestamp": round(frame.timestamp, 4),
             "faces": [_face_json(face, track) for face, track in zip(faces, frame_tracks)]}
            for frame, faces, frame_tracks in zip(frames, faces_per_frame, tracks)
        ],
        "result": {k: v for k, v in asdict(result).items() if k not in ("seconds",)},
    }
    crop_dir.mkdir(parents=True, exist_ok=True)
    _write_atomic(crop_dir / MARKER, json.dumps(marker, indent=1))  # last: the video is done only now
    return result


def _write_png(path: Path, image: np.ndarray) -> None:
    if not cv2.imwrite(str(path), image, _PNG_FLAGS):
        raise FakescopeError(f"{path}: could not write the PNG (disk full or no permission?)", "write_failed")


def _write_atomic(path: Path, text: str) -> None:
    """Write then rename: a reader (or a resumed run) never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + f".tmp{os.getpid()}")
    temporary.write_text(text)
    os.replace(temporary, path)


def _face_json(face: Face, track: int) -> dict:
    return {
        "box": [round(v, 2) for v in face.box], "score": round(face.score, 5), "track": track,
        "landmarks": [[round(x, 2), round(y, 2)] for x, y in face.landmarks] if face.landmarks else None,
    }


def _face_from_json(data: dict) -> Face:
    landmarks = [tuple(p) for p in data["landmarks"]] if data.get("landmarks") else None
    return Face(box=tuple(data["box"]), score=data["score"], landmarks=landmarks)


# ----------------------------------------------------------------------------- boxes


def _boxes(job: _Job, context: _Context, info, frames, result: VideoResult):
    """Faces to crop per frame and their track ids: from the paired source where
    possible, else detected here."""
    if job.source_folder:
        result.paired_with = job.source_video
        source = _source_boxes(job, context, info)
        if isinstance(source, str):
            result.fallback = source
        else:
            result.boxes_from = "source"
            missing = [i for i, frame in enumerate(frames) if frame.index not in source]
            if missing and context.settings.all_faces:
                # Track ids of faces detected here would not match the source's: detect it all.
                result.boxes_from, result.fallback = "detected", (
                    f"{len(missing)} sampled frame(s) are not among source {job.source_video}'s; detected on the fake")
                return _choose(_detect(context, frames), True)
            detected = _detect(context, [frames[i] for i in missing]) if missing else []
            if missing:
                result.frames_detected_on_fake = len(missing)
                result.warnings.append(
                    f"{len(missing)} of {len(frames)} sampled frame(s) are not among the source's; "
                    "their faces were detected on the fake"
                )
            by_position = dict(zip(missing, detected))
            faces, tracks = [], []
            for i, frame in enumerate(frames):
                if i in by_position:
                    chosen, chosen_tracks = _choose([by_position[i]], False)
                    faces.append(chosen[0])
                    tracks.append(chosen_tracks[0])
                else:
                    faces.append([f for f, _ in source[frame.index]])
                    tracks.append([t for _, t in source[frame.index]])
            return faces, tracks
    result.boxes_from = "detected"
    return _choose(_detect(context, frames), context.settings.all_faces)


def _source_boxes(job: _Job, context: _Context, info) -> dict | str:
    """{frame index: [(Face, track)]} of the source, or why it cannot be used."""
    if job.source_problem:
        return f"{job.source_problem}; detected on the fake"
    marker = _read_marker(context.out_dir / job.source_folder / MARKER)
    if marker is None or not _same_settings(marker, context.settings):
        return f"source {job.source_video} has no boxes from this run's settings; detected on the fake"
    media = marker["media"]
    if (media["width"], media["height"]) != (info.width, info.height):
        return (f"frame size {info.width}x{info.height} differs from source {job.source_video}'s "
                f"{media['width']}x{media['height']}; detected on the fake")
    if media["frame_count"] != info.frame_count:
        return (f"{info.frame_count} frames vs {media['frame_count']} in source {job.source_video}; "
                "detected on the fake")
    if not any(frame["faces"] for frame in marker["frames"]):
        return f"source {job.source_video} has no face; detected on the fake"
    return {frame["index"]: [(_face_from_json(f), f["track"]) for f in frame["faces"]] for frame in marker["frames"]}


def _detect(context: _Context, frames) -> list[list[Face]]:
    if not frames:
        return []
    return context.face_detector().detect([frame.image for frame in frames])


def _choose(faces_per_frame: list[list[Face]], all_faces: bool) -> tuple[list[list[Face]], list[list[int]]]:
    """The largest face per frame (track 0), or every face with its track id."""
    if not all_faces:
        chosen = [[max(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))] if faces else []
                  for faces in faces_per_frame]
        return chosen, [[0] * len(faces) for faces in chosen]
    track_of = {}
    for t, track in enumerate(link_tracks(faces_per_frame)):
        for link in track.links:
            track_of[(link.frame_position, link.face_index)] = t
    tracks = [[track_of[(p, i)] for i in range(len(faces))] for p, faces in enumerate(faces_per_frame)]
    return faces_per_frame, tracks


def _mask_frames(job: _Job, context: _Context, info, frames, result: VideoResult) -> dict[int, np.ndarray]:
    """Grayscale mask frames by frame index; a mask that cannot be used is a warning, not a failure."""
    try:
        mask_info, mask_frames = load_media(job.mask, context.settings.frames, context.limits, exact_frames=True,
                                            run_length=context.settings.run_length)
    except MediaError as exc:
        result.warnings.append(f"mask not used: {exc.message}")
        return {}
    if (mask_info.width, mask_info.height) != (info.width, info.height):
        result.warnings.append(
            f"mask not used: its frames are {mask_info.width}x{mask_info.height}, the video's {info.width}x{info.height}"
        )
        return {}
    masks = {f.index: cv2.cvtColor(f.image, cv2.COLOR_RGB2GRAY) for f in mask_frames}
    unmatched = sum(1 for f in frames if f.index not in masks)
    if unmatched:
        result.warnings.append(f"{unmatched} of {len(frames)} sampled frame(s) have no mask frame at the same index")
    return masks


# ----------------------------------------------------------------------------- output manifest


def _rows(sample: Sample, video: str, crop_files: list[dict]) -> list[Sample]:
    return [
        Sample(path=c["path"], label=sample.label, video=video, method=sample.method, split=sample.split,
               mask=c.get("mask"), source=sample.source, frame=c["frame"], dataset=sample.dataset)
        for c in crop_files
    ]


def _earlier_rows(out_dir: Path, settings: ExtractSettings, this_run: set[str]) -> list[Sample]:
    """Crops of videos extracted into out_dir by earlier runs (e.g. one run per --split)
    with the same settings, so manifest.csv always describes the whole folder."""
    rows = []
    for marker_path in sorted(out_dir.rglob(MARKER)):
        marker = _read_marker(marker_path)
        if marker is None or not _same_settings(marker, settings):
            continue
        try:
            if marker["input"]["path"] in this_run:
                continue
            saved = marker["result"]
            crops = saved.get("crop_files", [])
            if all((out_dir / c["path"]).is_file() for c in crops):
                rows.extend(_rows(Sample(**marker["sample"]), saved["video"], crops))
        except (KeyError, TypeError):  # not a marker this version wrote: leave it out
            continue
    return rows
