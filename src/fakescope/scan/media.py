"""Safe decoding of images and videos, and even frame sampling.

Everything that can go wrong with a user's file is turned into a `MediaError`
with a status code (see `errors.STATUS_CODES`) before any expensive work: size
and pixel limits are checked from headers, so an image bomb or an hours-long
video is refused without being decoded.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal, Optional

import numpy as np
from PIL import Image, ImageOps

from ..errors import MediaError

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif"}
VIDEO_EXTENSIONS = {
    ".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".flv", ".wmv", ".mpg", ".mpeg",
    ".ts", ".mts", ".m2ts", ".3gp", ".ogv",
}
MEDIA_EXTENSIONS = IMAGE_EXTENSIONS | VIDEO_EXTENSIONS

# FFmpeg demuxers that "open" files which are not videos (text, still-image
# pipes); a file only they accept is not media for us.
_NON_VIDEO_DEMUXERS = {"tty", "txt", "ansi", "lavfi", "data", "image2", "srt", "ass", "webvtt"}

# PIL warns and then raises on its own bomb limit; we check pixels ourselves first.
Image.MAX_IMAGE_PIXELS = None

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MediaLimits:
    """Refuse inputs beyond these before decoding them."""

    max_file_mb: float = 4096.0
    max_pixels: int = 50_000_000  # per image or video frame (50 MP; 8K video is 33 MP)
    max_duration_s: float = 3600.0  # one hour

    @property
    def max_file_bytes(self) -> int:
        return int(self.max_file_mb * 1024 * 1024)


@dataclass
class Frame:
    """One decoded RGB picture: an image, or one sampled frame of a video."""

    index: int  # position in the video (0 for an image)
    timestamp: float  # seconds from the start (0.0 for an image)
    image: np.ndarray  # H x W x 3, uint8, RGB, upright


@dataclass
class MediaInfo:
    kind: Literal["image", "video"]
    width: int
    height: int
    duration_s: float | None = None
    fps: float | None = None
    frame_count: int | None = None
    codec: str | None = None
    warnings: list[str] = field(default_factory=list)  # e.g. a truncated file scored from what decoded


def media_kind_from_extension(path: Path) -> str | None:
    suffix = path.suffix.lower()
    if suffix in IMAGE_EXTENSIONS:
        return "image"
    if suffix in VIDEO_EXTENSIONS:
        return "video"
    return None


def _amount(value: float) -> str:
    """A limit or size for a message: 4096, 12, 0.5, 0.001 (not "0" for small ones)."""
    return f"{value:.0f}" if value >= 10 else f"{value:.2g}"


def check_file(path: Path, limits: MediaLimits) -> None:
    """Existence and size checks that need no decoding."""
    if not path.exists():
        raise MediaError(f"{path}: no such file or directory", "not_found")
    if not path.is_file():
        raise MediaError(f"{path}: not a regular file", "not_media")
    size = path.stat().st_size
    if size == 0:
        raise MediaError(f"{path}: the file is empty (0 bytes)", "empty_file")
    if size > limits.max_file_bytes:
        raise MediaError(
            f"{path}: {_amount(size / 2**20)} MB is over the {_amount(limits.max_file_mb)} MB limit "
            "(raise it with --max-file-mb)",
            "too_large",
        )


def load_media(
    path: str | Path, num_frames: int = 32, limits: MediaLimits = MediaLimits(), exact_frames: bool = False,
    run_length: int = 1, on_frame: Optional[Callable[[Frame], None]] = None,
) -> tuple[MediaInfo, list[Frame]]:
    """Decode an image, or sample `num_frames` frames evenly over a whole video.

    By default frames no other frame refers to are not decoded (faster; each sample
    lands within a frame or two of its target). `exact_frames=True` decodes every
    frame, so two videos with the same timing (a fake and its source, a video and its
    mask video) give the same frame indices whatever their encoders did.

    `run_length` K > 1 samples runs of K consecutive frames instead (for temporal
    models, which look at frame-to-frame changes): num_frames / K runs (num_frames
    must be a multiple of K), each centred on one of equal slices of the video, so
    the runs still cover the whole video. Every frame of a run is decoded.

    `on_frame`, if given, receives each kept frame as soon as it is decoded (the scanner detects
    faces on them while the rest decode); the returned list holds the same objects.
    """
    if run_length < 1 or num_frames % run_length:
        raise ValueError(f"num_frames ({num_frames}) must be a multiple of run_length ({run_length})")
    path = Path(path)
    check_file(path, limits)
    image = _try_open_image(path)
    if image is not None:
        info, frames = _decode_image(path, image, limits)
        if on_frame is not None:
            on_frame(frames[0])
        return info, frames
    return _sample_video(path, num_frames, limits, exact_frames, run_length, on_frame)


# ----------------------------------------------------------------------------- images


def _try_open_image(path: Path) -> Image.Image | None:
    """PIL's lazy open reads only the header; None when PIL does not know the format."""
    try:
        return Image.open(path)
    except (Image.UnidentifiedImageError, OSError, SyntaxError, ValueError):
        if media_kind_from_extension(path) == "image":
            raise MediaError(f"{path}: not a readable image (damaged or wrong extension)", "corrupt") from None
        return None


def _check_pixels(path: Path, width: int, height: int, limits: MediaLimits) -> None:
    if width * height > limits.max_pixels:
        raise MediaError(
            f"{path}: {width}x{height} is {_amount(width * height / 1e6)} MP, over the "
            f"{_amount(limits.max_pixels / 1e6)} MP limit (raise it with --max-megapixels)",
            "too_large",
        )


def _decode_image(path: Path, image: Image.Image, limits: MediaLimits) -> tuple[MediaInfo, list[Frame]]:
    width, height = image.size
    _check_pixels(path, width, height, limits)
    try:
        image.load()
        image = ImageOps.exif_transpose(image)  # phone photos carry their rotation in EXIF
        rgb = np.asarray(image.convert("RGB"))
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise MediaError(f"{path}: the image is truncated or damaged ({exc})", "corrupt") from None
    info = MediaInfo(kind="image", width=rgb.shape[1], height=rgb.shape[0])
    return info, [Frame(index=0, timestamp=0.0, image=np.ascontiguousarray(rgb))]


# ----------------------------------------------------------------------------- videos


def _sample_video(path: Path, num_frames: int, limits: MediaLimits, exact_frames: bool,
                  run_length: int = 1, on_frame=None) -> tuple[MediaInfo, list[Frame]]:
    import av

    container = _open_container(path)
    try:
        stream = _video_stream(path, container)
        info = _video_info(path, container, stream, limits)
        stream.thread_type = "AUTO"
        if run_length > 1:
            frames = _sample_runs(container, stream, info, num_frames // run_length, run_length, on_frame)
        elif info.duration_s is not None and info.duration_s / max(num_frames, 1) > 4.0:
            frames = _sample_by_seeking(container, stream, info, num_frames, on_frame)
        else:
            frames = _sample_sequentially(path, container, stream, info, num_frames, limits, exact_frames, on_frame)
    except MediaError:
        raise
    except av.error.FFmpegError as exc:
        raise MediaError(f"{path}: the video could not be decoded ({_ffmpeg_reason(exc)})", "corrupt") from None
    finally:
        container.close()
    if not frames:
        raise MediaError(f"{path}: no frame could be decoded (truncated or damaged video)", "corrupt")
    return info, frames


def _open_container(path: Path):
    import av

    try:
        return av.open(str(path), metadata_errors="ignore")
    except av.error.FFmpegError as exc:
        code = "corrupt" if media_kind_from_extension(path) == "video" else "not_media"
        what = "a damaged or truncated video" if code == "corrupt" else "neither an image nor a video"
        raise MediaError(f"{path}: {what} ({_ffmpeg_reason(exc)})", code) from None


def _video_stream(path: Path, container):
    """The container's video stream to scan, or the MediaError that says why there is none."""
    import av

    if container.format.name in _NON_VIDEO_DEMUXERS:
        raise MediaError(f"{path}: neither an image nor a video", "not_media")
    if not container.streams.video and not container.streams.audio:
        if media_kind_from_extension(path) == "video":  # e.g. an MP4 cut inside its header
            raise MediaError(f"{path}: a damaged or truncated video (no stream could be read)", "corrupt")
        raise MediaError(f"{path}: neither an image nor a video", "not_media")
    # Cover art of an audio file (MP3, M4A, podcast MP4) shows up as a one-picture
    # video stream flagged attached_pic: it is not a video to scan.
    videos = [s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
    if not videos:
        raise MediaError(f"{path}: the file holds no video stream (audio only?)", "no_video_stream")
    return videos[0]


def probe_media(path: str | Path, limits: MediaLimits = MediaLimits()) -> MediaInfo:
    """What `load_media` would find in the file's header, without decoding a frame: the same
    MediaError for a file beyond the limits (size, pixels, duration) or one that is not media.
    Milliseconds, so a service can refuse an upload before queueing it."""
    import av

    path = Path(path)
    check_file(path, limits)
    image = _try_open_image(path)
    if image is not None:
        width, height = image.size
        image.close()
        _check_pixels(path, width, height, limits)
        return MediaInfo(kind="image", width=width, height=height)
    container = _open_container(path)
    try:
        return _video_info(path, container, _video_stream(path, container), limits)
    except av.error.FFmpegError as exc:
        raise MediaError(f"{path}: the video could not be read ({_ffmpeg_reason(exc)})", "corrupt") from None
    finally:
        container.close()


def _ffmpeg_reason(exc: Exception) -> str:
    reason = getattr(exc, "strerror", None) or str(exc)
    return reason.split(":")[0].strip() if reason else type(exc).__name__


def _video_info(path: Path, container, stream, limits: MediaLimits) -> MediaInfo:
    import av

    # PyAV gives no codec context when FFmpeg does not know the codec at all.
    codec_name = stream.codec_context.name if stream.codec_context is not None else None
    try:
        av.codec.Codec(codec_name, "r")
    except (av.error.FFmpegError, TypeError, ValueError):
        what = f"codec {codec_name!r}" if codec_name else "an unknown codec"
        raise MediaError(f"{path}: the video uses {what}, which this FFmpeg build cannot decode",
                         "unsupported_codec") from None
    width, height = stream.codec_context.width, stream.codec_context.height
    if width * height > limits.max_pixels:
        raise MediaError(
            f"{path}: frames of {width}x{height} are over the {_amount(limits.max_pixels / 1e6)} MP limit "
            "(raise it with --max-megapixels)",
            "too_large",
        )
    fps = float(stream.average_rate) if stream.average_rate else None
    duration = None
    if stream.duration is not None and stream.time_base is not None:
        duration = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        duration = container.duration / 1_000_000
    frame_count = stream.frames or (round(duration * fps) if duration and fps else None)
    if duration is not None and duration > limits.max_duration_s:
        raise MediaError(
            f"{path}: {_hms(duration)} long, over the {_hms(limits.max_duration_s)} limit "
            "(raise it with --max-duration)",
            "too_long",
        )
    return MediaInfo("video", width, height, duration, fps, frame_count, codec_name)


def _hms(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _frame_time(frame, stream, start: float) -> float:
    if frame.pts is None:
        return math.nan
    return float(frame.pts * stream.time_base) - start


def _to_rgb(frame) -> np.ndarray:
    image = frame.to_ndarray(format="rgb24")
    # The display matrix gives the counter-clockwise turn that shows the frame upright
    # (phones record portrait video as rotated landscape frames).
    rotation = getattr(frame, "rotation", 0) or 0
    if not -360 <= rotation <= 360:  # FFmpeg reports a degenerate matrix as INT_MIN
        rotation = 0
    quarter_turns = int(round(rotation / 90.0)) % 4
    if quarter_turns:
        image = np.rot90(image, k=quarter_turns)
    return np.ascontiguousarray(image)


class _FrameList(list):
    """A list of kept frames that hands each one to `on_frame` as it is appended (see load_media)."""

    def __init__(self, on_frame=None):
        super().__init__()
        self._on_frame = on_frame

    def append(self, frame: Frame) -> None:
        super().append(frame)
        if self._on_frame is not None:
            self._on_frame(frame)


def _targets(duration: float, num_frames: int) -> list[float]:
    """Centres of `num_frames` equal slices of the video: even coverage, no edge frames twice."""
    return [duration * (i + 0.5) / num_frames for i in range(num_frames)]


def _sample_sequentially(
    path: Path, container, stream, info: MediaInfo, num_frames: int, limits: MediaLimits, exact_frames: bool,
    on_frame=None,
) -> list[Frame]:
    """Decode the video once and keep the frames nearest the target times.

    Used for short videos, where seeking would decode the same GOP many times.
    Timestamps, not frame numbers, pick the frames, so variable frame rate works.
    With at least twice as many frames as wanted, frames no other frame refers
    to (most B-frames) are not decoded at all: about 3x faster on FF++ H.264, and
    the sample lands at most a frame or two from each target. Frame indices are
    then timestamp x average frame rate.
    """
    start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
    if info.duration_s is None or info.frame_count is None or info.frame_count <= num_frames:
        frames = _decode_all_then_pick(path, container, stream, start, num_frames, limits)
        for frame in frames if on_frame is not None else ():
            on_frame(frame)
        return frames
    fps = info.fps or 25.0
    skip_nonref = not exact_frames and info.frame_count >= 2 * num_frames
    if skip_nonref:
        stream.codec_context.skip_frame = "NONREF"
    targets = _targets(info.duration_s, num_frames)
    frames: list[Frame] = _FrameList(on_frame)
    previous = None  # (index, time, av frame) of the last decoded frame
    k = 0
    t = 0.0
    for position, frame in enumerate(container.decode(stream)):
        t = _frame_time(frame, stream, start)
        if math.isnan(t):
            t = position / fps
        index = int(round(t * fps)) if skip_nonref else position
        while k < len(targets) and t >= targets[k]:
            # take whichever of this frame and the previous one is nearer the target
            chosen = (index, t, frame)
            if previous is not None and abs(previous[1] - targets[k]) < abs(t - targets[k]):
                chosen = previous
            if not frames or frames[-1].index != chosen[0]:
                frames.append(Frame(chosen[0], chosen[1], _to_rgb(chosen[2])))
            k += 1
        if k >= len(targets):
            break
        previous = (index, t, frame)
    if k < len(targets) and t < 0.9 * info.duration_s - 1.0 / fps:
        info.warnings.append(
            f"truncated or damaged: frames decode only up to {t:.1f} s of the {info.duration_s:.1f} s "
            "the header announces; scored what could be decoded"
        )
    return frames


def _decode_all_then_pick(path: Path, container, stream, start: float, num_frames: int, limits: MediaLimits) -> list[Frame]:
    """For short videos or ones whose header lacks a duration: keep at most
    2 * num_frames evenly thinned frames while decoding, then pick num_frames."""
    kept: list[tuple[int, float, object]] = []
    stride = 1
    for index, frame in enumerate(container.decode(stream)):
        t = _frame_time(frame, stream, start)
        if not math.isnan(t) and t > limits.max_duration_s:
            raise MediaError(
                f"{path}: the video runs past the {_hms(limits.max_duration_s)} limit (raise it with --max-duration)",
                "too_long",
            )
        if index % stride == 0:
            kept.append((index, t, frame))
            if len(kept) > 2 * num_frames:  # thin out to bound memory
                kept = kept[::2]
                stride *= 2
    if len(kept) > num_frames:
        positions = np.linspace(0, len(kept) - 1, num_frames).round().astype(int)
        kept = [kept[p] for p in sorted(set(positions.tolist()))]
    return [Frame(i, (t if not math.isnan(t) else 0.0), _to_rgb(f)) for i, t, f in kept]


def _sample_by_seeking(container, stream, info: MediaInfo, num_frames: int, on_frame=None) -> list[Frame]:
    """For long videos: seek to the keyframe before each target and decode forward."""
    import av

    start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
    frames: list[Frame] = _FrameList(on_frame)
    fps = info.fps or 25.0
    for target in _targets(info.duration_s or 0.0, num_frames):
        try:
            container.seek(int((target + start) / stream.time_base), stream=stream, backward=True)
        except av.error.FFmpegError:
            continue
        for frame in container.decode(stream):
            t = _frame_time(frame, stream, start)
            if math.isnan(t) or t + 0.5 / fps >= target:
                index = int(round((t if not math.isnan(t) else target) * fps))
                if not frames or frames[-1].index != index:
                    frames.append(Frame(index, t if not math.isnan(t) else target, _to_rgb(frame)))
                break
    if len(frames) < num_frames // 2:
        info.warnings.append(
            f"truncated or damaged: only {len(frames)} of {num_frames} sampled positions could be decoded"
        )
    return frames


def _run_starts(duration: float, fps: float, runs: int, run_length: int) -> list[float]:
    """Start times of `runs` runs of `run_length` frames: each centred on the centre of one of
    `runs` equal slices of the video, moved inside it where it would stick out."""
    length = run_length / fps
    last = max(duration - length, 0.0)
    return [min(max(centre - length / 2, 0.0), last) for centre in _targets(duration, runs)]


def _sample_runs(container, stream, info: MediaInfo, runs: int, run_length: int, on_frame=None) -> list[Frame]:
    """`runs` runs of `run_length` consecutive decoded frames (see `load_media`).

    Short videos are decoded once from the start and frame indices are decode positions
    (exact, as `exact_frames`); long ones (over 4 s a run) seek to the keyframe before
    each run, and indices are timestamp x frame rate. Runs that overlap (a video shorter
    than all runs together) share their frames. Without a duration in the header the
    runs are the video's first frames, one after another."""
    import av

    fps = info.fps or 25.0
    start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
    if info.duration_s is None:
        info.warnings.append(f"the header gives no duration: took the first {runs * run_length} frames")
        starts = [r * run_length / fps for r in range(runs)]
    else:
        starts = _run_starts(info.duration_s, fps, runs, run_length)
    half_frame = 0.5 / fps
    frames: list[Frame] = _FrameList(on_frame)
    if info.duration_s is not None and info.duration_s / runs > 4.0:
        for run_start in starts:
            try:
                container.seek(int((run_start + start) / stream.time_base), stream=stream, backward=True)
            except av.error.FFmpegError:
                continue
            taken = 0
            for frame in container.decode(stream):
                t = _frame_time(frame, stream, start)
                if math.isnan(t) or t + half_frame >= run_start:
                    t = run_start + taken / fps if math.isnan(t) else t
                    index = int(round(t * fps))
                    if not frames or index > frames[-1].index:
                        frames.append(Frame(index, t, _to_rgb(frame)))
                    taken += 1
                    if taken == run_length:
                        break
        expected = runs * run_length
        if len(frames) < expected // 2:
            info.warnings.append(f"truncated or damaged: only {len(frames)} of {expected} run frames could be decoded")
        return frames

    still_wanted = [run_length] * runs  # per run, frames it still has to take
    first_open = 0  # the first run not yet complete
    t = 0.0
    for position, frame in enumerate(container.decode(stream)):
        t = _frame_time(frame, stream, start)
        if math.isnan(t):
            t = position / fps
        take = False
        run = first_open
        while run < runs and t + half_frame >= starts[run]:  # every run that has started by now
            if still_wanted[run]:
                still_wanted[run] -= 1
                take = True
            run += 1
        while first_open < runs and not still_wanted[first_open]:
            first_open += 1
        if take:
            frames.append(Frame(position, t, _to_rgb(frame)))
        if first_open == runs:
            break
    if first_open < runs and info.duration_s is not None and t < 0.9 * info.duration_s - 1.0 / fps:
        # (a video shorter than a run just gives all its frames)
        info.warnings.append(
            f"truncated or damaged: frames decode only up to {t:.1f} s of the {info.duration_s:.1f} s "
            "the header announces; took the runs that could be decoded"
        )
    return frames
