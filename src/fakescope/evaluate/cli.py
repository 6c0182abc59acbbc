"""`fakescope evaluate CHECKPOINT DATA...`: one detector, one or more labelled datasets, one table.

Kept out of fakescope/cli.py so the subsystem owns its command; `register(app)`
is called from the marked block there. Heavy imports (torch, scikit-learn)
happen inside the command, so `fakescope --help` stays fast.
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from ..errors import FakescopeError
from ..scan.results import EXIT_USAGE


def parse_data_spec(spec: str) -> tuple[Optional[str], Path, Optional[str]]:
    """`[NAME=]PATH[:SPLIT]` -> (name or None, path, split or None).

    An argument that exists as a path is taken whole, so paths holding '=' or
    ':' (C:\\data on Windows) still work without a name or split.
    """
    name = split = None
    rest = spec
    if not Path(rest).exists() and "=" in rest:
        name, rest = rest.split("=", 1)
        if not name:
            raise FakescopeError(f"{spec!r}: empty dataset name before '='")
    if not Path(rest).exists() and ":" in rest:
        rest, split = rest.rsplit(":", 1)
        if not split:
            raise FakescopeError(f"{spec!r}: empty split after ':'")
    if not rest:
        raise FakescopeError(f"{spec!r}: no path")
    return name, Path(rest), split


def default_name(path: Path) -> str:
    """The folder's name for `folder/` or `folder/manifest.csv`, else the CSV's stem."""
    path = path.resolve()
    if path.is_dir() or path.stem == "manifest":
        return path.name if path.is_dir() else path.parent.name
    return path.stem


def load_dataset(spec: str, global_split: Optional[str]):
    """(name, Manifest, note) for one DATA argument, with its split applied."""
    from ..data.manifest import Manifest

    name, path, split = parse_data_spec(spec)
    manifest = Manifest.read(path)
    name = name or default_name(path)
    wanted = split or global_split
    note = None
    if wanted:
        splits = sorted({s.split for s in manifest if s.split is not None})
        if not splits:
            if split:
                raise FakescopeError(f"dataset {name!r} ({path}) has no split column, so it has no split {split!r}")
            note = f"{name}: no split column, so --split {global_split} does not apply; using all {len(manifest)} rows"
        else:
            chosen = manifest.filter(split=wanted)
            if len(chosen) == 0:
                raise FakescopeError(f"dataset {name!r} has no split {wanted!r}; its splits are: {', '.join(splits)}")
            manifest = chosen
    return name, manifest, note


def by_dataset_column(name: str, manifest, named: bool) -> list:
    """A merged manifest (`fakescope split`) is one table row per value of its dataset column,
    unless the user named it NAME=PATH (then it is pooled under that name)."""
    from ..data.manifest import Manifest

    values = list(dict.fromkeys(s.dataset for s in manifest))
    if named or len(values) < 2 or None in values:
        return [(name, manifest)]
    return [(value, Manifest([s for s in manifest if s.dataset == value], manifest.root)) for value in values]


def _load_datasets(data: List[str], split: Optional[str]) -> list:
    """(name, manifest) per dataset of the DATA arguments, split by a `dataset` column where unnamed."""
    from ..console import err

    datasets = []
    for spec in data:
        name, manifest, note = load_dataset(spec, split)
        if note:
            err.print(f"[yellow]note:[/yellow] {note}", highlight=False)
        datasets.extend(by_dataset_column(name, manifest, named="=" in spec))
    return datasets


def _cell(value: Optional[float]) -> str:
    return "—" if value is None else f"{value:.3f}"


def print_table(result, console=None) -> None:
    """The metrics table on `console` (a rich Console; default: stdout's)."""
    from rich.table import Table

    from ..console import out
    from .metrics import HEADLINE_KEYS

    console = out if console is None else console

    table = Table(show_edge=False, title=f"{result.model.get('name') or result.checkpoint}: frame level | video level")
    table.add_column("dataset")
    table.add_column("n", justify="right")
    for key in HEADLINE_KEYS:
        table.add_column(key.upper() if key != "logloss" else "logloss", justify="right")
    table.add_column("false alarms", justify="right")
    table.add_column("videos", justify="right")
    for key in HEADLINE_KEYS:
        table.add_column(f"v.{key}" if key == "logloss" else f"v.{key.upper()}", justify="right")
    for d in result.datasets:
        video = d.video or {}
        table.add_row(
            d.name, str(d.frame["n"]), *[_cell(d.frame[k]) for k in HEADLINE_KEYS], _cell(d.frame.get("false_alarm")),
            str(video["n"]) if video else "—", *[_cell(video.get(k)) for k in HEADLINE_KEYS],
        )
    console.print(table)
    if getattr(result, "video_head", None) is not None:
        console.print(f"video level (v.*): P(fake) from the model's video head {result.video_head!r} over each "
                      "video's frame features, not the mean frame P(fake)", highlight=False, soft_wrap=True)
    band = getattr(result, "band", 0.0)
    console.print(f"verdicts: FAKE from P(fake) {result.pooled['threshold']:.3f}"
                  + (f", UNCERTAIN from {result.pooled['threshold'] - band:.3f}" if band else "")
                  + "; false alarms: share of reals called FAKE", highlight=False, soft_wrap=True)
    if len(result.datasets) > 1:
        p = result.pooled
        console.print(
            f"pooled over {len(result.datasets)} datasets (n={p['n']}): "
            + ", ".join(f"{k.upper() if k != 'logloss' else k} {_cell(p[k])}" for k in HEADLINE_KEYS),
            highlight=False,
        )
    for d in result.datasets:
        if d.pixel is not None:
            p = d.pixel
            console.print(
                f"{d.name} pixel level ({p['source']}, {p['n']} masked: {p['n_fake']} fake, {p['n_real']} real): "
                f"pixel ACC {_cell(p['pixel_acc'])}, pixel AUC {_cell(p['pixel_auc'])}, "
                f"IoU (fakes, n={p['n_iou']}) {_cell(p['iou'])}, FP pixel rate (reals) {_cell(p['fp_pixel_rate'])}",
                highlight=False, soft_wrap=True,
            )


def register(app: typer.Typer) -> None:
    @app.command("calibrate")
    def calibrate_command(
        checkpoint: Path = typer.Argument(..., help="Checkpoint file to calibrate (e.g. a run's best.pt)."),
        data: List[str] = typer.Argument(
            ..., help="Labelled VALIDATION rows: manifest CSV or folder; NAME=PATH names it, PATH:SPLIT takes one split."),
        output: Path = typer.Option(..., "--output", "-o", help="Calibrated checkpoint to write (may be CHECKPOINT)."),
        split: Optional[str] = typer.Option(None, "--split", help="Take this split of every dataset (e.g. val)."),
        max_false_alarm: float = typer.Option(
            0.05, "--max-false-alarm", min=0.0, max=0.5,
            help="Raise the threshold above 0.5 until no dataset has more than this share of its reals called FAKE."),
        band: float = typer.Option(0.1, "--band", min=0.0, max=0.49,
                                   help="REAL below 0.5 - BAND, FAKE from 0.5 + BAND (or the false-alarm threshold "
                                        "if higher), UNCERTAIN between."),
        device: str = typer.Option("auto", help="cpu, cuda, cuda:1 ... or auto."),
        batch_size: int = typer.Option(64, min=1, help="Images per model batch."),
    ) -> None:
        """Fit P(fake) calibration (Platt scaling), the threshold and the uncertain band on validation rows."""
        from ..console import err, out
        from .calibrate import calibrate_checkpoint

        if split == "test":
            err.print("[red]error:[/red] --split test: calibrate on validation rows; the test rows judge the model",
                      highlight=False)
            raise typer.Exit(EXIT_USAGE)
        try:
            datasets = _load_datasets(data, split)
            calibration = calibrate_checkpoint(checkpoint, datasets, output, max_false_alarm=max_false_alarm,
                                               band=band, device=device, batch_size=batch_size)
        except FakescopeError as exc:
            err.print(f"[red]error:[/red] {exc.message}", highlight=False)
            raise typer.Exit(EXIT_USAGE)
        fit = calibration.fitted_on
        out.print(
            f"wrote {output}: P(fake) = sigmoid({calibration.scale:.4f} x logit {calibration.bias:+.4f}); FAKE from "
            f"{calibration.threshold:.4f}, REAL below {calibration.threshold - calibration.band:.4f}, uncertain "
            f"between ({fit['uncertain_share']:.1%} of these rows); log loss {fit['log_loss_before']:.4f} -> {fit['log_loss_after']:.4f}, ECE "
            f"{fit['ece_before']:.4f} -> {fit['ece_after']:.4f}; reals called FAKE: "
            + ", ".join(f"{k} {v:.1%}" for k, v in fit["false_alarm_at_threshold"].items()),
            highlight=False, soft_wrap=True)

    @app.command("evaluate")
    def evaluate_command(
        checkpoint: str = typer.Argument(..., help="Shipped model name (see `fakescope models`) or checkpoint file."),
        data: List[str] = typer.Argument(
            ..., help="Manifest CSV or folder with manifest.csv; NAME=PATH names it, PATH:SPLIT takes one split."),
        split: Optional[str] = typer.Option(
            None, "--split", help="Take this split of every dataset that has a split column (PATH:SPLIT overrides)."),
        json_path: Optional[Path] = typer.Option(None, "--json", help="Write all metrics as JSON."),
        markdown_path: Optional[Path] = typer.Option(None, "--markdown", help="Write a Markdown report."),
        roc_path: Optional[Path] = typer.Option(None, "--roc", help="Write the ROC curves as PNG."),
        predictions_path: Optional[Path] = typer.Option(None, "--predictions", help="Write one row per sample as CSV."),
        device: str = typer.Option("auto", help="cpu, cuda, cuda:1 ... or auto."),
        backend: str = typer.Option(
            "auto", "--backend", help="Which runtime scores faces, as for scan: onnx, torch, or auto (ONNX Runtime "
            "on the CPU for a shipped model or a .onnx file, unless Grad-CAM masks or a video head need PyTorch)."),
        batch_size: int = typer.Option(64, min=1, help="Images per model batch."),
        workers: int = typer.Option(0, min=0, help="Data-loading worker processes."),
        image_views: int = typer.Option(5, "--image-views", min=1, max=64, help="Whole-image detectors: views cut "
                                        "from each picture at its own resolution, as scan --image-views."),
        logloss_clip: Optional[float] = typer.Option(
            None, "--logloss-clip", min=0.0, max=0.49,
            help="Clip predictions to c..1-c before the log loss (e.g. 0.01); default: only the 1e-15 clip."),
        grad_cam_masks: bool = typer.Option(
            False, "--grad-cam-masks",
            help="Pixel metrics for a model without a mask head from its Grad-CAM maps x P(fake) (default: skipped)."),
        video_head: Optional[str] = typer.Option(
            None, "--video-head", help="Video-level scores from the model's video head of this name (e.g. m2tr: "
            "mean, temporal) over each video's frame features in frame order, instead of the mean frame P(fake)."),
    ) -> None:
        """Metrics of a detector on labelled face crops: frame, video, per method, one row per dataset."""
        from ..console import err
        from .report import write_json, write_markdown, write_predictions, write_roc
        from .runner import evaluate

        try:
            datasets = _load_datasets(data, split)
            result = evaluate(
                checkpoint, datasets, device=device, batch_size=batch_size, num_workers=workers,
                logloss_clip=logloss_clip, grad_cam_masks=grad_cam_masks, video_head=video_head, backend=backend,
                image_views=image_views,
            )
        except FakescopeError as exc:
            err.print(f"[red]error:[/red] {exc.message}", highlight=False)
            raise typer.Exit(EXIT_USAGE)

        for warning in result.warnings:
            err.print(f"[yellow]warning:[/yellow] {warning}", highlight=False, soft_wrap=True)
        print_table(result)
        for d in result.datasets:
            if d.pixel_note:
                err.print(f"[yellow]note:[/yellow] {d.pixel_note}", highlight=False, soft_wrap=True)
        for path, writer in ((json_path, write_json), (markdown_path, write_markdown),
                             (roc_path, write_roc), (predictions_path, write_predictions)):
            if path:
                try:
                    writer(result, path)
                except OSError as exc:
                    err.print(f"[red]error:[/red] cannot write {path}: {exc.strerror or exc}", highlight=False)
                    raise typer.Exit(EXIT_USAGE)
                err.print(f"wrote {path}", highlight=False)

    @app.command("evaluate-tamper")
    def evaluate_tamper_command(
        manifest: Path = typer.Argument(..., help="CSV with path, label, manipulation, mask (paths relative to it; "
                                        "mask white = tampered), e.g. ../shared/data/image-forensics/casia2-samples/manifest.csv"),
        methods: Optional[str] = typer.Option(None, "--methods", help="Comma-separated tampering methods (default: all)."),
        json_path: Optional[Path] = typer.Option(None, "--json", help="Write per-image rows and the summary as JSON."),
    ) -> None:
        """Tampering localization against ground-truth masks: pixel F1 / IoU / AUC and found rate, per method
        and manipulation."""
        import json

        from ..console import err, out
        from ..registry import UnknownNameError
        from .tamper import markdown_table, read_samples, score_samples, summarise

        if not manifest.is_file():
            err.print(f"[red]error:[/red] {manifest}: no such file", highlight=False)
            raise typer.Exit(EXIT_USAGE)
        try:
            rows = score_samples(read_samples(manifest), methods.split(",") if methods else None)
        except (UnknownNameError, ValueError, KeyError) as exc:
            err.print(f"[red]error:[/red] {getattr(exc, 'message', exc)}", highlight=False)
            raise typer.Exit(EXIT_USAGE)
        summary = summarise(rows)
        out.print(markdown_table(summary), highlight=False)
        if json_path:
            json_path.parent.mkdir(parents=True, exist_ok=True)
            json_path.write_text(json.dumps({"summary": summary, "rows": rows}, indent=1))
            err.print(f"wrote {json_path}", highlight=False)
