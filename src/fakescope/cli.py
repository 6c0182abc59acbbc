"""`fakescope` command line: a thin layer over the Python API."""
from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .errors import FakescopeError
from .scan.results import EXIT_INTERNAL, EXIT_USAGE, FileResult, ScanReport

app = typer.Typer(
    add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
    help="Find face forgeries (deepfakes) in images and videos.",
)
from .console import err, out  # noqa: E402
from .console import fail as _fail  # noqa: E402


@app.command()
def scan(
    paths: List[Path] = typer.Argument(..., help="Images, videos or folders (searched recursively)."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Shipped model name or checkpoint file (see `fakescope models`)."),
    frames: int = typer.Option(32, "--frames", "-n", min=1, max=1024, help="Frames sampled evenly over each video."),
    run_length: int = typer.Option(
        1, "--run-length", min=1, max=1024,
        help="Sample runs of this many consecutive frames (--frames / run-length runs over the video), e.g. the "
             "clip length a --video-head temporal model was trained on."),
    crops: bool = typer.Option(False, "--crops", help="Inputs are already-cropped faces: skip face detection."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write the full result as JSON."),
    csv_path: Optional[Path] = typer.Option(None, "--csv", help="Write one row per face as CSV."),
    heatmap: Optional[Path] = typer.Option(None, "--heatmap", help="Write each face crop with its forgery map overlaid as PNG here."),
    masks: Optional[Path] = typer.Option(
        None, "--masks", help="Write each face's forgery mask here: grayscale PNG the size of the face crop, "
        "P(manipulated) x 255, from the model's mask head (Grad-CAM x P(fake) without one)."),
    aggregation: str = typer.Option("max_track_mean", help="Video score policy: max_track_mean, mean, confident, fraction_above."),
    video_head: Optional[str] = typer.Option(
        None, "--video-head", help="Score each face track with the model's video head of this name (e.g. m2tr: "
        "mean, temporal) over its faces' features in frame order, instead of the mean face P(fake); "
        "the file's score is the max over its voting tracks."),
    threshold: Optional[float] = typer.Option(
        None, min=0.0, max=1.0, help="P(fake) at or above which the verdict is FAKE [the model's own, fitted on "
        "validation data; 0.5 for a model without one]."),
    uncertain_band: Optional[float] = typer.Option(
        None, "--uncertain-band", min=0.0, max=1.0, help="Scores this close below the threshold get the verdict "
        "UNCERTAIN [the model's own; 0 = always FAKE or REAL]."),
    device: str = typer.Option("auto", help="cpu, cuda, cuda:1 ... or auto."),
    batch_size: int = typer.Option(32, min=1, help="Faces per model batch."),
    min_face: int = typer.Option(64, "--min-face", min=1, help="Smallest face side in pixels to score."),
    max_file_mb: float = typer.Option(4096.0, min=0.0, help="Refuse files larger than this."),
    max_megapixels: float = typer.Option(50.0, min=0.0, help="Refuse images or video frames larger than this."),
    max_duration: float = typer.Option(3600.0, min=0.0, help="Refuse videos longer than this many seconds."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the summary table."),
) -> None:
    """Score every face in images and videos; a verdict per face track, frame and file."""
    from .scan.media import MediaLimits
    from .models.zoo import DEFAULT_MODEL
    from .scan.scanner import Scanner, ScanSettings

    settings = ScanSettings(
        model=model or DEFAULT_MODEL, frames=frames, run_length=run_length, crops=crops, aggregation=aggregation,
        threshold=threshold, uncertain_band=uncertain_band,
        device=device, batch_size=batch_size, min_face_size=min_face,
        heatmap_dir=str(heatmap) if heatmap else None, masks_dir=str(masks) if masks else None,
        video_head=video_head,
        limits=MediaLimits(max_file_mb=max_file_mb, max_pixels=int(max_megapixels * 1e6), max_duration_s=max_duration),
    )
    try:
        scanner = Scanner(settings)
    except FakescopeError as exc:
        _fail(exc.message)

    show_progress = not quiet and err.is_terminal
    with Progress(
        TextColumn("[bold]scanning"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        TextColumn("{task.description}"), console=err, transient=True, disable=not show_progress,
    ) as progress:
        task = progress.add_task("", total=None)
        report = scanner.scan(
            paths,
            on_files_found=lambda n: progress.update(task, total=n),
            on_file_done=lambda r: progress.update(task, advance=1, description=Path(r.path).name),
        )
    if len(report.results) == 1 and not quiet:
        _print_single(report.results[0])
    else:
        _print_summary(report)
    if not quiet:
        out.print("verdicts: " + _decision_text(report.settings["threshold"], report.settings["uncertain_band"]),
                  highlight=False, soft_wrap=True)
    if json_path:
        report.write_json(json_path)
        err.print(f"wrote {json_path}", highlight=False)
    if csv_path:
        report.write_csv(csv_path)
        err.print(f"wrote {csv_path}", highlight=False)
    for folder, field in ((heatmap, "heatmap"), (masks, "mask")):
        if folder:
            count = sum(getattr(f, field) is not None for r in report.results for f in r.faces)
            err.print(f"wrote {count} {field} PNG(s) to {folder}", highlight=False)
    raise typer.Exit(report.exit_code)


def _verdict_text(result: FileResult) -> str:
    if result.verdict == "fake":
        return "[bold red]FAKE[/bold red]"
    if result.verdict == "real":
        return "[bold green]REAL[/bold green]"
    if result.verdict == "uncertain":
        return "[bold yellow]UNCERTAIN[/bold yellow]"
    return f"[yellow]{result.status}[/yellow]"


def _decision_text(threshold: float, band: float) -> str:
    uncertain = f", UNCERTAIN from {threshold - band:.3f}" if band else ""
    return f"FAKE from P(fake) {threshold:.3f}{uncertain}, REAL below"


def _print_single(result: FileResult) -> None:
    if not result.ok:
        out.print(f"{_verdict_text(result)}  {escape(result.message or result.path)}", highlight=False, soft_wrap=True)
        return
    out.print(
        f"{escape(result.path)}: {_verdict_text(result)}  P(fake) = {result.score:.3f} "
        f"({result.from_threshold:+.3f} from the threshold)   "
        f"{result.frames_analysed} frame(s) analysed, {result.faces_found} face(s), "
        f"{len(result.tracks)} track(s), {result.seconds:.2f} s",
        highlight=False, soft_wrap=True,
    )
    for warning in result.warnings:
        out.print(f"[yellow]warning:[/yellow] {escape(warning)}", highlight=False, soft_wrap=True)
    table = Table(show_edge=False)
    for column in ("track", "P(fake)", "vs threshold", "verdict", "faces", "frames", "voted"):
        table.add_column(column, justify="left" if column in ("verdict", "voted") else "right")
    for t in result.tracks:
        table.add_row(str(t.track), f"{t.score:.3f}", f"{t.from_threshold:+.3f}", t.verdict or "", str(t.faces),
                      f"{t.first_frame}-{t.last_frame}", "yes" if t.used_for_verdict else "no (seen in few frames)")
    out.print(table)
    sources = sorted({t.score_source for t in result.tracks if t.score_source != "frame_mean"})
    if sources:
        out.print(f"track P(fake) from {', '.join(sources)} (the model's video head over each track's faces)",
                  highlight=False, soft_wrap=True)


def _print_summary(report: ScanReport) -> None:
    table = Table(show_edge=False)
    for column in ("file", "verdict", "P(fake)", "vs threshold", "frames", "faces", "tracks", "seconds", "message"):
        table.add_column(column, overflow="fold")
    for r in report.results:
        table.add_row(
            escape(r.path), _verdict_text(r), "" if r.score is None else f"{r.score:.3f}",
            "" if r.from_threshold is None else f"{r.from_threshold:+.3f}", str(r.frames_analysed),
            str(r.faces_found), str(len(r.tracks)), f"{r.seconds:.2f}", escape(r.message or ""),
        )
    out.print(table)
    counts: dict[str, int] = {}
    for r in report.results:
        key = r.verdict or r.status
        counts[key] = counts.get(key, 0) + 1
    out.print(", ".join(f"{n} {k}" for k, n in sorted(counts.items())), highlight=False)


@app.command()
def models(as_json: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
    """List registered detector architectures and the models shipped with fakescope."""
    from .models import MODELS
    from .models.profile import profile
    from .models.zoo import DEFAULT_MODEL, zoo_entries

    archs = [
        {"name": name, **profile(name), "summary": ((cls.__doc__ or "").strip().splitlines() or [""])[0]}
        for name, cls in MODELS.items()
    ]
    shipped = [{"name": n, "default": n == DEFAULT_MODEL, **e} for n, e in zoo_entries().items()]
    if as_json:
        out.print_json(json.dumps({"architectures": archs, "shipped": shipped}))
        return
    table = Table(title="architectures", show_edge=False)
    for column in ("name", "parameters", "input", "GFLOPs", "summary"):
        table.add_column(column)
    for a in archs:
        gflops = "?" if a["gflops"] is None else f"{a['gflops']:.2f}"
        table.add_row(a["name"], f"{a['parameters']:,}", str(a["input_size"]), gflops, a["summary"])
    out.print(table)
    table = Table(title="shipped models (--model NAME)", show_edge=False)
    for column in ("name", "arch", "trained on", "licence and data terms", "verdicts", "sha256"):
        table.add_column(column, overflow="fold")
    for s in shipped:
        calibration = s.get("calibration") or {}
        verdicts = _decision_text(calibration.get("threshold", 0.5), calibration.get("band", 0.0))
        table.add_row(s["name"] + (" (default)" if s["default"] else ""), s["arch"], s["trained_on"], s["license"],
                      verdicts + (" (calibrated)" if calibration else ""), s["sha256"][:12])
    out.print(table)


@app.command("import-weights")
def import_weights(
    family: str = typer.Argument(..., help="Which published weights: mesonet or classnseg."),
    source: Path = typer.Argument(..., help="The published weights: mesonet: the .h5 file; classnseg: the folder "
                                            "holding them, or the encoder .pt file (the decoder file is found beside it)."),
    arch: Optional[str] = typer.Option(None, "--arch", help="mesonet (required): meso4 or mesoinception4; "
                                                            "classnseg: y_autoencoder (the only one, the default)."),
    variant: Optional[str] = typer.Option(None, "--variant", help="classnseg, when SOURCE is a folder: full "
                                                                  "(encoder_46/decoder_46, the default) or finetuned "
                                                                  "(finetune_encoder_26/finetune_decoder_26)."),
    output: Path = typer.Option(..., "--output", "-o", help="Where to write the fakescope checkpoint."),
) -> None:
    """Convert published weights into a fakescope checkpoint (with its preprocessing).

    e.g. `fakescope import-weights classnseg ../shared/weights/classnseg --variant finetuned -o cns.pt`
    """
    from .importers import IMPORTERS

    try:
        importer = IMPORTERS.get(family)
        if family == "classnseg":
            sha256 = importer(source, arch, output, variant=variant)
        else:
            if variant is not None:
                _fail(f"--variant is for classnseg weights, not {family}")
            if arch is None:
                _fail(f"{family} weights need --arch (mesonet: meso4 or mesoinception4)")
            sha256 = importer(source, arch, output)
    except FakescopeError as exc:
        _fail(exc.message)
    out.print(f"wrote {output} (sha256 {sha256})", highlight=False, soft_wrap=True)


# Commands that live beside their subsystem: each module's register(app) adds its commands.
# (one line per subsystem; keep this block together)
from .evaluate.cli import register as _register_evaluate; _register_evaluate(app)  # noqa: E402,E702
from .data.extract_cli import register as _register_extract; _register_extract(app)  # noqa: E402,E702
from .data.cli import register as _register_data; _register_data(app)  # noqa: E402,E702
from .train.cli import register as _register_train; _register_train(app)  # noqa: E402,E702
from .data.synth_cli import register as _register_synth; _register_synth(app)  # noqa: E402,E702
# -- end of registered commands --


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        app()
    except FakescopeError as exc:
        err.print(f"[red]error:[/red] {escape(exc.message)}", highlight=False)
        sys.exit(EXIT_USAGE)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except Exception as exc:  # a bug of ours: one line for the user, the traceback with FAKESCOPE_DEBUG=1
        if os.environ.get("FAKESCOPE_DEBUG"):
            raise
        err.print(f"[red]internal error:[/red] {escape(f'{type(exc).__name__}: {exc}')} (set FAKESCOPE_DEBUG=1 for details)",
                  highlight=False)
        sys.exit(EXIT_INTERNAL)


if __name__ == "__main__":
    main()
