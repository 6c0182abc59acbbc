"""Multipart uploads streamed to disk chunk by chunk (never held whole in memory), with a byte cap
checked as the bytes arrive: an upload over the cap is cut off at the cap, not after it is all in."""
from __future__ import annotations

import re
import unicodedata
from pathlib import Path

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

FIELD = "file"  # the form field that carries the media file


class UploadError(Exception):
    """An upload refused with an HTTP status; `status` is the scan status behind it, where there is one
    (too_large, too_long, ...: the file's limits, checked from its header)."""

    def __init__(self, status_code: int, message: str, status: str | None = None):
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.status = status


def display_name(raw: str) -> str:
    """The uploaded file's name as shown to people: its last path part, printable, at most 200
    characters. It is only ever displayed, never used in a path."""
    name = re.split(r"[\\/]", raw)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip()
    return name[:200] or "upload"


async def receive_file(request, target: Path, max_bytes: int) -> tuple[str, int]:
    """Write the `file` part of a multipart/form-data request to `target`; returns the uploaded
    name and the size in bytes. Other form fields are read and ignored."""
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise UploadError(400, 'send the file as multipart/form-data, in a field named "file" '
                               "(curl -F file=@clip.mp4 ...)")
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > max_bytes + 64 * 1024:  # form overhead
        raise UploadError(413, _too_big(max_bytes))

    state = {"headers": {}, "field": b"", "value": b"", "is_file": False, "name": None, "size": 0,
             "seen": False, "complete": False, "out": None}

    def on_header_field(data, start, end):
        state["field"] += data[start:end]

    def on_header_value(data, start, end):
        state["value"] += data[start:end]

    def on_header_end():
        state["headers"][state["field"].strip().lower()] = state["value"].strip()
        state["field"] = state["value"] = b""

    def on_headers_finished():
        disposition, params = parse_options_header(state["headers"].get(b"content-disposition", b""))
        state["is_file"] = (params.get(b"name") == FIELD.encode() and not state["seen"])
        if state["is_file"]:
            state["seen"] = True
            state["name"] = display_name(params.get(b"filename", b"").decode("utf-8", "replace"))
            state["out"] = open(target, "wb")

    def on_part_data(data, start, end):
        if state["is_file"]:
            state["size"] += end - start
            if state["size"] > max_bytes:
                raise UploadError(413, _too_big(max_bytes))
            state["out"].write(data[start:end])

    def on_part_end():
        if state["is_file"] and state["out"] is not None:
            state["out"].close()
            state["out"], state["complete"] = None, True
        state["headers"], state["is_file"] = {}, False

    parser = MultipartParser(boundary, {
        "on_header_field": on_header_field, "on_header_value": on_header_value, "on_header_end": on_header_end,
        "on_headers_finished": on_headers_finished, "on_part_data": on_part_data, "on_part_end": on_part_end,
    })
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except MultipartParseError as exc:
        raise UploadError(400, f"malformed multipart/form-data body ({exc})") from None
    finally:
        if state["out"] is not None:
            state["out"].close()
    if not state["seen"]:
        raise UploadError(400, 'no file in the upload: send it in a form field named "file"')
    if not state["complete"]:
        raise UploadError(400, "the upload ended before the file did (connection cut?)")
    return state["name"], state["size"]


def _too_big(max_bytes: int) -> str:
    return f"the upload is over this server's limit of {max_bytes / 2**20:.0f} MB (fakescope serve --max-upload-mb)"
