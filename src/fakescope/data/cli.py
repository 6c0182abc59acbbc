"""`fakescope index`: turn a dataset as downloaded into a manifest CSV.

Registered from fakescope.cli via `register(app)`, so the data subsystem owns
its command without the main CLI importing its internals.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, List

import typer
from rich.table import Table

from ..errors import FakescopeError

if TYPE_CHECKING:
    from .manifest import Manifest

from ..console import out  # noqa: E402
from ..console import fail as _fail  # noqa: E402


def register(app: typer.Typer) -> None:
    app.command("index")(index)


def index(
    layout: str = typer.Argument(..., help="Dataset layout: ffpp, celebdf, dfdc, dfdcp, deepfakebench or folders."),
    root: Path = typer.Argument(
        ..., help="The dataset's root folder (deepfakebench: its JSON file; folders: a folder or a manifest CSV).",
    ),
    output: Path = typer.Option(..., "--output", "-o", help="Manifest CSV to write (paths in it are relative to its folder)."),
    option: List[str] = typer.Option(
        [], "--option", help="Layout option as key=value, repeatable: e.g. compression=c40, methods=deepfakes,faceswap.",
    ),
) -> None:
    """Index a deepfake dataset's on-disk layout into a manifest CSV (path,label,video,method,split,...)."""
    from .layouts import read_layout

    try:
        options = _parse_options(option)
        manifest = read_layout(layout, root, **options)
    except FakescopeError as exc:
        _fail(exc.message)
    try:
        manifest.write(output)
    except OSError as exc:
        _fail(f"cannot write {output}: {exc.strerror or exc}")
    _print_summary(manifest, output)


def _parse_options(pairs: List[str]) -> dict[str, str]:
    options: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise FakescopeError(f"--option {pair!r}: expected key=value, e.g. --option compression=c40")
        if key in options:
            raise FakescopeError(f"--option {key} is given twice")
        options[key] = value.strip()
    return options



def _print_summary(manifest: Manifest, output: Path) -> None:
    """Counts by label, method and split: a wrong option (compression, methods) shows here at a glance."""
    videos = {(s.dataset, s.method, s.video) for s in manifest if s.video is not None}
    out.print(f"wrote {output}: {len(manifest)} rows, {len(videos)} videos", highlight=False, soft_wrap=True)
    table = Table(show_edge=False)
    for column in ("by", "value", "rows", "videos"):
        table.add_column(column, justify="right" if column in ("rows", "videos") else "left")
    groups = (
        ("label", lambda s: "fake (1)" if s.label == 1 else "real (0)"),
        ("method", lambda s: s.method or "-"),
        ("split", lambda s: s.split or "-"),
    )
    for name, key in groups:
        rows = Counter(key(s) for s in manifest)
        video_sets: dict[str, set] = {}
        for s in manifest:
            if s.video is not None:
                video_sets.setdefault(key(s), set()).add((s.dataset, s.method, s.video))
        for value, count in sorted(rows.items()):
            table.add_row(name, value, str(count), str(len(video_sets.get(value, ()))))
        table.add_section()
    out.print(table)
