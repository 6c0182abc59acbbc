"""`fakescope index` (a dataset as downloaded -> a manifest CSV), `split`, and `reframe`
(other tools' face crops -> crops framed as scan frames faces).

Registered from fakescope.cli via `register(app)`, so the data subsystem owns
its command without the main CLI importing its internals.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, List, Optional

import typer

from ..console import fail as _fail
from ..errors import FakescopeError

if TYPE_CHECKING:
    from .manifest import Manifest


def register(app: typer.Typer) -> None:
    app.command("index")(index)
    app.command("split")(split)
    app.command("reframe")(reframe)


def index(
    layout: str = typer.Argument(..., help="Dataset layout: ffpp, celebdf, dfdc, dfdcp, deepfakebench, folders, or image-forensics (whole-image sets: generated vs real)."),
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


def split(
    manifests: List[str] = typer.Argument(
        ..., help="Manifests to merge and split, each NAME=PATH (NAME becomes the dataset column) or a PATH (named after its folder).",
    ),
    output: Path = typer.Option(..., "--output", "-o", help="Merged manifest CSV to write (absolute paths, a split on every row)."),
    val: Optional[float] = typer.Option(None, "--val", min=0.0, max=0.95, help="Share of identity groups for validation [0.2]."),
    test: Optional[float] = typer.Option(
        None, "--test", min=0.0, max=0.95, help="Share of identity groups held out for testing [0.5; 0.1 with --clips]."),
    clips: bool = typer.Option(
        False, "--clips", help="For clip (sequence) training: the 7:2:1 video split, val 0.2 and test 0.1 unless given."),
    seed: int = typer.Option(0, "--seed", help="Shuffle seed (the split is a pure function of the inputs and this)."),
    assign: List[str] = typer.Option([], "--assign", help="Put a whole dataset in one split, NAME=SPLIT (repeatable)."),
    same_ids: List[str] = typer.Option(
        [], "--same-ids", help="Datasets that number the same videos, comma-separated (repeatable), e.g. ffpp-crops,ffpp-faces.",
    ),
) -> None:
    """Merge manifests and split rows without a split by video identity, so no face is on two sides.

    Rows that share a video id part (FF++ `519_515` joins `519` and `515`) form one group; groups
    are cut into train/val/test within each manipulation method. Existing splits are kept.
    """
    from .manifest import Manifest
    from .splits import SEQUENCE_SPLIT, leaks, merge, split_by_identity

    default_val, default_test = SEQUENCE_SPLIT if clips else (0.2, 0.5)
    val = default_val if val is None else val
    test = default_test if test is None else test

    try:
        named = {}
        for item in manifests:
            name, sep, path = item.partition("=")
            if not sep:
                name, path = Path(item).parent.name if Path(item).suffix == ".csv" else Path(item).name, item
            if name in named:
                raise FakescopeError(f"dataset name {name!r} is given twice; name them NAME=PATH")
            named[name] = Manifest.read(path)
        pinned = _parse_options(assign, "--assign")
        namespaces = {}
        for group in same_ids:
            names = [n.strip() for n in group.split(",") if n.strip()]
            for name in names:
                if name not in named:
                    raise FakescopeError(f"--same-ids: no dataset named {name!r}; datasets are {sorted(named)}")
                namespaces[name] = names[0]
        result = split_by_identity(merge(named), val=val, test=test, seed=seed, assign=pinned, namespaces=namespaces)
        leaked = leaks(result, namespaces)
        if leaked:  # cannot happen unless fixed input splits already leak
            raise FakescopeError(f"identity on more than one side of the split: {', '.join(leaked[:5])}")
        result.write(output)
    except FakescopeError as exc:
        _fail(exc.message)
    except OSError as exc:
        _fail(f"cannot write {output}: {exc.strerror or exc}")
    _print_summary(result, output)


def reframe(
    manifest_path: Path = typer.Argument(..., metavar="MANIFEST_OR_DIR", help="Manifest CSV of face crops, or a folder with manifest.csv."),
    out_dir: Path = typer.Argument(..., help="Where the re-framed PNG crops, manifest.csv, landmarks.json and reframe_report.json go."),
    margin: float = typer.Option(1.3, min=0.5, max=4.0, help="Crop side = margin x the longer MTCNN box side (the model's preprocess margin)."),
    size: int = typer.Option(256, min=8, max=2048, help="Output crop side in pixels."),
    landmarks: str = typer.Option("dlib", help="68 landmarks from dlib (real points) or template (fitted to MTCNN's 5)."),
    workers: int = typer.Option(1, min=1, max=64, help="Processes, one MTCNN each."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Re-detect the face in every crop and re-crop it as `fakescope scan` would (MTCNN box x margin).

    Rows without a face are dropped and listed in reframe_report.json. Re-running resumes.
    """
    from concurrent.futures import ProcessPoolExecutor

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from ..console import err, out
    from .manifest import Manifest
    from .reframe import ReframeSettings, reframe_crops

    if landmarks not in ("dlib", "template"):
        _fail(f"--landmarks {landmarks!r}: use dlib or template")
    try:
        manifest = Manifest.read(manifest_path)
        settings = ReframeSettings(margin=margin, size=size, landmarks=landmarks)
        with Progress(TextColumn("[bold]reframing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      TimeRemainingColumn(), console=err, transient=True, disable=quiet or not err.is_terminal) as bar:
            task = bar.add_task("", total=len(manifest))
            if workers > 1:
                with ProcessPoolExecutor(workers, initializer=_one_thread) as pool:
                    jobs = [pool.submit(reframe_crops, manifest, out_dir, settings, None, (i, workers))
                            for i in range(workers)]
                    for job in jobs:
                        job.result()
            report = reframe_crops(manifest, out_dir, settings,
                                   progress=lambda done, total: bar.update(task, completed=done))
    except (FakescopeError, ValueError, RuntimeError) as exc:
        _fail(getattr(exc, "message", None) or str(exc))
    out.print(f"wrote {out_dir / 'manifest.csv'}: {report['kept']} of {report['rows']} crops re-framed at margin "
              f"{margin}; {len(report['dropped'])} without a face dropped (reframe_report.json); mean share of "
              f"each crop padded: {report['mean_pad']:.3f}", highlight=False, soft_wrap=True)


def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)  # one process per core: threads inside each would only contend


def _parse_options(pairs: List[str], flag: str = "--option") -> dict[str, str]:
    options: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise FakescopeError(f"{flag} {pair!r}: expected key=value, e.g. {flag} name=value")
        if key in options:
            raise FakescopeError(f"{flag} {key} is given twice")
        options[key] = value.strip()
    return options



def _print_summary(manifest: Manifest, output: Path) -> None:
    """Counts by label, method and split: a wrong option (compression, methods) shows here at a glance."""
    from rich.table import Table

    from ..console import out

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
