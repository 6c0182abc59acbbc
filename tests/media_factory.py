"""Small media files made on the fly for tests, so no binary fixture is committed.

Every function writes one file at `path` and returns that path. All of them are
fast (well under a second) and keep memory small, including the "bomb" and the
"hours long" inputs, whose size lives only in their headers.
"""
from __future__ import annotations

import struct
import wave
import zlib
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image


# ----------------------------------------------------------------------------- images


def gray_png(path: Path, size: int = 400, value: int = 128) -> Path:
    """A flat gray picture: a valid image with no face in it."""
    Image.new("RGB", (size, size), (value, value, value)).save(path)
    return path


def noise_png(path: Path, size: int = 400, seed: int = 0) -> Path:
    """Uniform noise: a valid image with no face in it."""
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def noise_jpeg(path: Path, size: int = 256, seed: int = 0) -> Path:
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, quality=90)
    return path


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bomb(path: Path, width: int = 30000, height: int = 30000) -> Path:
    """A PNG whose IHDR claims width x height pixels but whose IDAT is tiny.

    Written by hand (signature + IHDR + IDAT + IEND), so making it allocates
    nothing; decoding it for real would need ~2.7 GB for 30000 x 30000 RGB.
    """
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit truecolour, no interlace
    idat = zlib.compress(b"\x00" * 1024)  # a few scanline bytes; far short of the claimed size
    data = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")
    path.write_bytes(data)
    return path


def truncated(source: Path, path: Path, fraction: float = 0.5) -> Path:
    """The first `fraction` of the bytes of `source`, written to `path`."""
    data = Path(source).read_bytes()
    path.write_bytes(data[: max(1, int(len(data) * fraction))])
    return path


# ----------------------------------------------------------------------------- video and audio


def encode_video(path: Path, pts_ms: list[int] | None = None, size: int = 64, codec: str = "mpeg4", frames: int = 10) -> Path:
    """A tiny colour-changing video; `pts_ms` gives each frame's time in milliseconds
    (default 25 fps), so a few frames can make a container that claims hours."""
    import av

    if pts_ms is None:
        pts_ms = [i * 40 for i in range(frames)]
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=25)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        time_base = Fraction(1, 1000)
        stream.time_base = stream.codec_context.time_base = time_base
        for i, pts in enumerate(pts_ms):
            image = np.full((size, size, 3), (i * 37) % 256, dtype=np.uint8)
            image[: size // 2, :, 0] = 200
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = pts
            # not stream.time_base: the MP4 muxer replaces that (e.g. with 1/16000) on the first mux
            frame.time_base = time_base
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def lossless_video(path: Path, images: list[np.ndarray], fps: int = 25) -> Path:
    """H.264 at crf 0 without B-frames from RGB `images`: pixel values survive (masks stay
    masks) and every frame is a reference frame, so sampling picks the same frame indices
    in a video and in its mask video."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps, options={"crf": "0", "bframes": "0"})
        stream.width, stream.height = images[0].shape[1], images[0].shape[0]
        stream.pix_fmt = "yuv420p"
        for image in images:
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def long_video(path: Path, hours: float = 3.0) -> Path:
    """Four 64x64 frames, the last at `hours` hours: the header says it is that long."""
    end = int(hours * 3600 * 1000)
    return encode_video(path, pts_ms=[0, 40, 80, end])


def wav_audio(path: Path, seconds: float = 0.5, rate: int = 8000) -> Path:
    """A short mono 16-bit sine tone: a valid media file with no video stream."""
    t = np.arange(int(seconds * rate)) / rate
    samples = (np.sin(2 * np.pi * 440 * t) * 8000).astype("<i2")
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(samples.tobytes())
    return path


def _riff_chunk(fourcc: bytes, data: bytes) -> bytes:
    chunk = fourcc + struct.pack("<I", len(data)) + data
    return chunk + (b"\x00" if len(data) % 2 else b"")


def _riff_list(kind: bytes, body: bytes) -> bytes:
    return b"LIST" + struct.pack("<I", len(body) + 4) + kind + body


def avi_unknown_codec(path: Path, fourcc: bytes = b"ZZZZ", width: int = 64, height: int = 64, frames: int = 3) -> Path:
    """A minimal RIFF AVI whose one video stream uses a codec fourcc that no
    FFmpeg decoder knows; the frames are junk bytes of the right size."""
    frame_bytes = width * height * 3 // 2
    avih = struct.pack(
        "<14I",
        40000,  # microseconds per frame (25 fps)
        0, 0,  # max bytes per second, padding granularity
        0x10,  # flags: AVIF_HASINDEX
        frames, 0, 1,  # total frames, initial frames, streams
        frame_bytes, width, height, 0, 0, 0, 0,
    )
    strh = struct.pack(
        "<4s4sIHHIIIIIIIIhhhh",
        b"vids", fourcc, 0, 0, 0, 0,
        1, 25,  # scale, rate -> 25 fps
        0, frames, frame_bytes, 0xFFFFFFFF, 0,
        0, 0, width, height,
    )
    strf = struct.pack("<IiiHH4sIiiII", 40, width, height, 1, 12, fourcc, frame_bytes, 0, 0, 0, 0)
    hdrl = _riff_list(b"hdrl", _riff_chunk(b"avih", avih) + _riff_list(b"strl", _riff_chunk(b"strh", strh) + _riff_chunk(b"strf", strf)))
    movi_body = b""
    index = b""
    for i in range(frames):
        offset = 4 + len(movi_body)  # from the 'movi' fourcc
        movi_body += _riff_chunk(b"00dc", bytes([i * 40 % 256]) * frame_bytes)
        index += struct.pack("<4sIII", b"00dc", 0x10, offset, frame_bytes)
    movi = _riff_list(b"movi", movi_body)
    body = b"AVI " + hdrl + movi + _riff_chunk(b"idx1", index)
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path


def audio_with_cover_art(path: Path, seconds: float = 0.5) -> Path:
    """AAC audio plus a JPEG cover picture (an attached_pic stream), as music and
    podcast MP4/M4A files carry: FFmpeg lists the cover as a video stream."""
    import io

    import av

    cover = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 60, 60)).save(cover, "JPEG")
    rate = 8000
    with av.open(str(path), "w") as container:
        audio = container.add_stream("aac", rate=rate)
        audio.layout = "mono"
        picture = container.add_stream("mjpeg")
        picture.width = picture.height = 64
        picture.pix_fmt = "yuvj420p"
        picture.disposition = av.stream.Disposition.attached_pic
        silence = np.zeros((1, 1024), np.float32)
        for i in range(int(seconds * rate / 1024) + 1):
            frame = av.AudioFrame.from_ndarray(silence, format=audio.format.name, layout="mono")
            frame.sample_rate, frame.pts = rate, i * 1024
            for packet in audio.encode(frame):
                container.mux(packet)
        for packet in audio.encode():
            container.mux(packet)
        packet = av.Packet(cover.getvalue())
        packet.stream, packet.pts, packet.dts, packet.time_base = picture, 0, 0, picture.time_base
        container.mux(packet)
    return path


def faststart_mp4(path: Path, frames: int = 25, size: int = 64) -> Path:
    """An MP4 with its index ('moov') before the frame data, as web videos have."""
    import av

    with av.open(str(path), "w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        rng = np.random.default_rng(0)
        for _ in range(frames):
            image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def mp4_boxes(path: Path) -> dict[bytes, tuple[int, int]]:
    """Top-level MP4 boxes: type -> (start offset, end offset)."""
    data = Path(path).read_bytes()
    boxes, offset = {}, 0
    while offset + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        if size == 1:
            size = struct.unpack(">Q", data[offset + 8 : offset + 16])[0]
        elif size == 0:
            size = len(data) - offset
        boxes.setdefault(kind, (offset, offset + size))
        offset += size
    return boxes


def cut_at(source: Path, path: Path, length: int) -> Path:
    path.write_bytes(Path(source).read_bytes()[:length])
    return path
