"""`fakescope extract`: the command over data.extract.extract_faces.

Kept beside its subsystem and added to the app by `register(app)`, so cli.py
needs one line. Importing it loads only typer and light modules (see fakescope/cli.py);
the rest load inside the command.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..console import fail as _fail
from ..errors import FakescopeError
from ..scan.results import EXIT_ALL_SCORED, EXIT_NOTHING_SCORED, EXIT_SOME_FAILED


def extract(
    manifest_path: Path = typer.Argument(..., metavar="MANIFEST_OR_DIR",
                                         help="Manifest CSV of videos (e.g. from `fakescope index`), or a folder with manifest.csv."),
    out_dir: Path = typer.Argument(..., help="Where the crops, manifest.csv and extraction_report.json go."),
    frames: int = typer.Option(32, "--frames", "-n", min=1, max=1024, help="Frames sampled evenly over each video."),
    run_length: int = typer.Option(
        1, "--run-length", min=1, max=1024,
        help="Sample runs of this many consecutive frames (--frames / run-length runs spread over the video), "
             "for training temporal models on clips (data.sequence.frames)."),
    margin: float = typer.Option(1.3, min=0.5, max=4.0, help="Crop side = margin x the longer face-box side."),
    size: int = typer.Option(256, min=8, max=2048, help="Crop side in pixels (PNG)."),
    min_face: int = typer.Option(64, "--min-face", min=1, help="Smallest face side in pixels to keep."),
    workers: int = typer.Option(1, min=1, max=256, help="Videos processed in parallel, one process (and MTCNN) each."),
    split: Optional[str] = typer.Option(None, help="Only the manifest rows of this split (train, val, test ...)."),
    all_faces: bool = typer.Option(False, "--all-faces",
                                   help="Keep every face, named <frame>_t<track>.png (default: the largest face per frame)."),
    device: str = typer.Option("cpu", help="Device for MTCNN: cpu, cuda, cuda:1 ... or auto."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Crop faces from videos into a PNG face-crop dataset with its manifest.csv.

    A fake whose `source` names a real video of the manifest is cropped with that video's boxes.

    Re-running the same command skips the videos already done.
    """
    from rich.markup import escape
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)

    from ..console import err as _err
    from .extract import extract_faces
    from .manifest import Manifest

    try:
        manifest = Manifest.read(manifest_path)
        if split is not None:
            splits = sorted({s.split for s in manifest if s.split})
            manifest = manifest.filter(split=split)
            if not len(manifest):
                _fail(f"{manifest_path}: no rows with split {split!r} (splits here: {', '.join(splits) or 'none'})")
    except FakescopeError as exc:
        _fail(exc.message)
    if out_dir.exists() and not out_dir.is_dir():
        _fail(f"{out_dir}: exists and is not a folder")

    show_progress = not quiet and _err.is_terminal
    with Progress(
        TextColumn("[bold]extracting"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
        TextColumn("{task.description}"), console=_err, transient=True, disable=not show_progress,
    ) as progress:
        task = progress.add_task("", total=len(manifest))

        def on_video(result, done, total):
            progress.update(task, completed=done, total=total, description=escape(result.video))

        try:
            report = extract_faces(
                manifest, out_dir, frames_per_video=frames, margin=margin, size=size, min_face_size=min_face,
                workers=workers, all_faces=all_faces, device=device, run_length=run_length, progress=on_video,
            )
        except FakescopeError as exc:
            _fail(exc.message)
    _print_summary(report)
    ok = sum(v.ok for v in report.videos)
    raise typer.Exit(EXIT_ALL_SCORED if ok == len(report.videos) else EXIT_SOME_FAILED if ok else EXIT_NOTHING_SCORED)


def _print_summary(report) -> None:
    from rich.markup import escape
    from rich.table import Table

    from ..console import out as _out

    if report.problems:
        table = Table(title="videos without crops", show_edge=False)
        for column in ("file", "status", "message"):
            table.add_column(column, overflow="fold")
        for v in report.problems:
            table.add_row(escape(v.path), v.status, escape(v.message or ""))
        _out.print(table)
    if report.fallbacks:
        table = Table(title="paired fakes detected on their own", show_edge=False)
        for column in ("file", "source", "why"):
            table.add_column(column, overflow="fold")
        for v in report.fallbacks:
            table.add_row(escape(v.path), escape(v.paired_with or ""), escape(v.fallback or ""))
        _out.print(table)
    ok = [v for v in report.videos if v.ok]
    resumed = sum(v.resumed for v in report.videos)
    paired = sum(v.boxes_from == "source" for v in report.videos)
    counts = ", ".join(f"{n} {k}" for k, n in sorted(report.counts().items()) if k != "ok")
    _out.print(
        f"{sum(v.crops for v in ok)} crops from {len(ok)} of {len(report.videos)} videos "
        f"({resumed} already done, {paired} fake(s) cropped with their source's boxes)"
        + (f"; reported: {counts}" if counts else "") + f"; {report.seconds:.1f} s",
        highlight=False, soft_wrap=True,
    )
    if report.rows_from_earlier_runs:
        _out.print(f"manifest.csv also lists {report.rows_from_earlier_runs} crops from earlier runs into this folder",
                   highlight=False, soft_wrap=True)
    if report.manifest_path:
        _out.print(f"wrote {report.manifest_path}", highlight=False, soft_wrap=True)
    _out.print(f"wrote {Path(report.out_dir) / 'extraction_report.json'}", highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("extract")(extract)
