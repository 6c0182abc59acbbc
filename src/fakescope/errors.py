"""Errors that carry a stable status code.

A scan never shows a traceback: anything wrong with one input becomes a
`FileResult` with one of these codes and a one-line message.
"""
from __future__ import annotations


class FakescopeError(Exception):
    """Base error; `code` is the machine-readable status written to results."""

    code = "error"

    def __init__(self, message: str, code: str | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class MediaError(FakescopeError):
    """An input file that cannot be decoded or is outside the configured limits."""


class ModelLoadError(FakescopeError):
    code = "bad_model"


# Status codes a FileResult can carry, with what they mean (README documents them).
STATUS_CODES = {
    "ok": "scored",
    "not_found": "the path does not exist",
    "empty_file": "the file has 0 bytes",
    "not_media": "neither a readable image nor a video",
    "no_media": "a folder with no image or video files in it",
    "corrupt": "the file is truncated or damaged",
    "unsupported_codec": "the video codec cannot be decoded by this FFmpeg build",
    "no_video_stream": "the container holds no video stream",
    "too_large": "beyond the file-size or pixel limit",
    "too_long": "beyond the duration limit",
    "no_face": "no face was found",
    "internal_error": "an unexpected error (please report it)",
}
