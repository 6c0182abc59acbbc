"""Safe decoding of images and videos, and even frame sampling.

Everything that can go wrong with a user's file is turned into a `MediaError`
with a status code (see `errors.STATUS_CODES`) before any expensive work: size
and pixel limits are checked from headers, so an image bomb or an hours-long
video is refused without being decoded.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, ImageOps

from .errors import MediaError

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


def media_kind_from_extension(path: Path) -> str | None:
    suffix = path.suffix.lower()
    if suffix in IMAGE_EXTENSIONS:
        return "image"
    if suffix in VIDEO_EXTENSIONS:
        return "video"
    return None


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
            f"{path}: {size / 2**20:.0f} MB is over the {limits.max_file_mb:.0f} MB limit "
            "(raise it with --max-file-mb)",
            "too_large",
        )


def load_media(path: str | Path, num_frames: int = 32, limits: MediaLimits = MediaLimits()) -> tuple[MediaInfo, list[Frame]]:
    """Decode an image, or sample `num_frames` frames evenly over a whole video."""
    path = Path(path)
    check_file(path, limits)
    image = _try_open_image(path)
    if image is not None:
        return _decode_image(path, image, limits)
    return _sample_video(path, num_frames, limits)


# ----------------------------------------------------------------------------- images


def _try_open_image(path: Path) -> Image.Image | None:
    """PIL's lazy open reads only the header; None when PIL does not know the format."""
    try:
        return Image.open(path)
    except (Image.UnidentifiedImageError, OSError, SyntaxError, ValueError):
        if media_kind_from_extension(path) == "image":
            raise MediaError(f"{path}: not a readable image (damaged or wrong extension)", "corrupt") from None
        return None


def _decode_image(path: Path, image: Image.Image, limits: MediaLimits) -> tuple[MediaInfo, list[Frame]]:
    width, height = image.size
    if width * height > limits.max_pixels:
        raise MediaError(
            f"{path}: {width}x{height} is {width * height / 1e6:.0f} MP, over the "
            f"{limits.max_pixels / 1e6:.0f} MP limit (raise it with --max-megapixels)",
            "too_large",
        )
    try:
        image.load()
        image = ImageOps.exif_transpose(image)  # phone photos carry their rotation in EXIF
        rgb = np.asarray(image.convert("RGB"))
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise MediaError(f"{path}: the image is truncated or damaged ({exc})", "corrupt") from None
    info = MediaInfo(kind="image", width=rgb.shape[1], height=rgb.shape[0])
    return info, [Frame(index=0, timestamp=0.0, image=np.ascontiguousarray(rgb))]


# ----------------------------------------------------------------------------- videos


def _sample_video(path: Path, num_frames: int, limits: MediaLimits) -> tuple[MediaInfo, list[Frame]]:
    import av

    try:
        container = av.open(str(path), metadata_errors="ignore")
    except av.error.FFmpegError as exc:
        code = "corrupt" if media_kind_from_extension(path) == "video" else "not_media"
        what = "a damaged or truncated video" if code == "corrupt" else "neither an image nor a video"
        raise MediaError(f"{path}: {what} ({_ffmpeg_reason(exc)})", code) from None
    try:
        if container.format.name in _NON_VIDEO_DEMUXERS or (
            not container.streams.video and not container.streams.audio
        ):
            raise MediaError(f"{path}: neither an image nor a video", "not_media")
        if not container.streams.video:
            raise MediaError(f"{path}: the file holds no video stream (audio only?)", "no_video_stream")
        stream = container.streams.video[0]
        info = _video_info(path, container, stream, limits)
        stream.thread_type = "AUTO"
        if info.duration_s is not None and info.duration_s / max(num_frames, 1) > 4.0:
            frames = _sample_by_seeking(container, stream, info, num_frames)
        else:
            frames = _sample_sequentially(container, stream, info, num_frames, limits)
    except MediaError:
        raise
    except av.error.FFmpegError as exc:
        raise MediaError(f"{path}: the video could not be decoded ({_ffmpeg_reason(exc)})", "corrupt") from None
    finally:
        container.close()
    if not frames:
        raise MediaError(f"{path}: no frame could be decoded (truncated or damaged video)", "corrupt")
    return info, frames


def _ffmpeg_reason(exc: Exception) -> str:
    reason = getattr(exc, "strerror", None) or str(exc)
    return reason.split(":")[0].strip() if reason else type(exc).__name__


def _video_info(path: Path, container, stream, limits: MediaLimits) -> MediaInfo:
    import av

    codec_name = stream.codec_context.name if stream.codec_context is not None else None
    try:
        av.codec.Codec(stream.codec_context.name, "r")
    except Exception:
        raise MediaError(
            f"{path}: video codec {stream.codec_context.name if stream.codec_context else 'unknown'!r} "
            "cannot be decoded by this FFmpeg build",
            "unsupported_codec",
        ) from None
    width, height = stream.codec_context.width, stream.codec_context.height
    if width * height > limits.max_pixels:
        raise MediaError(
            f"{path}: frames of {width}x{height} are over the {limits.max_pixels / 1e6:.0f} MP limit "
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


def _targets(duration: float, num_frames: int) -> list[float]:
    """Centres of `num_frames` equal slices of the video: even coverage, no edge frames twice."""
    return [duration * (i + 0.5) / num_frames for i in range(num_frames)]


def _sample_sequentially(container, stream, info: MediaInfo, num_frames: int, limits: MediaLimits) -> list[Frame]:
    """Decode every frame once and keep those nearest the target times.

    Used for short videos, where seeking would decode the same GOP many times.
    Timestamps, not frame numbers, pick the frames, so variable frame rate works.
    """
    start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
    if info.duration_s is None or info.frame_count is None or info.frame_count <= num_frames:
        return _decode_all_then_pick(container, stream, start, num_frames, limits)
    targets = _targets(info.duration_s, num_frames)
    frames: list[Frame] = []
    previous = None  # (index, time, av frame) of the last decoded frame
    k = 0
    for index, frame in enumerate(container.decode(stream)):
        t = _frame_time(frame, stream, start)
        if math.isnan(t):
            t = index / (info.fps or 25.0)
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
    return frames


def _decode_all_then_pick(container, stream, start: float, num_frames: int, limits: MediaLimits) -> list[Frame]:
    """For short videos or ones whose header lacks a duration: keep at most
    2 * num_frames evenly thinned frames while decoding, then pick num_frames."""
    kept: list[tuple[int, float, object]] = []
    stride = 1
    for index, frame in enumerate(container.decode(stream)):
        t = _frame_time(frame, stream, start)
        if not math.isnan(t) and t > limits.max_duration_s:
            raise MediaError(
                f"video runs past the {_hms(limits.max_duration_s)} limit (raise it with --max-duration)",
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


def _sample_by_seeking(container, stream, info: MediaInfo, num_frames: int) -> list[Frame]:
    """For long videos: seek to the keyframe before each target and decode forward."""
    import av

    start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
    frames: list[Frame] = []
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
    return frames
