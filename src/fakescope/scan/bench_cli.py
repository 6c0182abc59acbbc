"""`fakescope bench FILE...`: scan speed against the decode floor (see scan/bench.py)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command("bench")
    def bench_command(
        paths: List[Path] = typer.Argument(..., help="Images, videos or folders to time."),
        model: Optional[str] = typer.Option(None, "--model", "-m", help="Shipped model name or checkpoint file."),
        frames: int = typer.Option(32, "--frames", "-n", min=1, max=1024, help="Frames sampled per video."),
        backend: str = typer.Option("auto", "--backend", help="auto, torch or onnx (as for scan)."),
        device: str = typer.Option("auto", help="cpu, cuda, cuda:1 ... or auto."),
        crops: bool = typer.Option(False, "--crops", help="Inputs are already-cropped faces: skip face detection."),
        repeat: int = typer.Option(3, "--repeat", min=1, help="Timed runs per file (the median is reported)."),
        per_file_limit: int = typer.Option(20, "--per-file", min=0, help="Time at most this many files one by "
                                           "one (the folder-wide pipelined scan covers them all)."),
        json_path: Optional[Path] = typer.Option(None, "--json", help="Write the measurements as JSON."),
    ) -> None:
        """Time scans against the decode floor: per file the floor, the scan, their ratio, faces/s and
        the stages; over all inputs the pipelined scan's files/s and cores kept busy."""
        import os
        import platform

        from rich.table import Table

        from .. import __version__
        from ..console import err, fail, out
        from ..errors import FakescopeError
        from ..models.zoo import DEFAULT_MODEL
        from .bench import bench_file, bench_folder
        from .scanner import Scanner, ScanSettings, expand_inputs

        try:
            scanner = Scanner(ScanSettings(model=model or DEFAULT_MODEL, frames=frames, backend=backend,
                                           device=device, crops=crops))
        except FakescopeError as exc:
            fail(exc.message)
        files = [p for p, ready in expand_inputs(paths) if ready is None]
        if not files:
            fail("no image or video file among the inputs")
        machine = {"cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                   "backend": scanner.predictor.backend, "model": scanner.detector.name,
                   "face_detector": scanner.preprocess.face_detector, "frames": frames,
                   "fakescope": __version__}
        err.print(f"timing {min(len(files), per_file_limit)} file(s), {repeat} run(s) each ...", highlight=False)
        rows = [bench_file(scanner, f, repeat) for f in files[:per_file_limit]]
        table = Table(show_edge=False)
        for column in ("file", "frames", "faces", "decode floor s", "scan s", "ratio", "faces/s", "decode s",
                       "faces s", "model s"):
            table.add_column(column, justify="left" if column == "file" else "right")
        for r in rows:
            if r["status"] != "ok":
                table.add_row(r["path"], r["status"], "", "", "", "", "", "", "", "")
                continue
            s = r["stages_s"]
            table.add_row(r["path"], str(r["frames"]), str(r["faces"]), f"{r['decode_floor_s']:.3f}",
                          f"{r['scan_s']:.3f}", f"{r['ratio']:.2f}", f"{r['faces_per_s'] or 0:.0f}",
                          f"{s['decode']:.3f}", f"{s['face_detection']:.3f}", f"{s['model']:.3f}")
        out.print(table)
        summary = {"machine": machine, "files": rows}
        if len(files) > 1:
            summary["pipelined"] = folder = bench_folder(scanner, files)
            out.print(f"all {folder['files']} file(s) in one scan: {folder['seconds']:.2f} s, "
                      f"{folder['files_per_s']:.2f} files/s, {folder['cores_busy']:.2f} cores busy", highlight=False)
        out.print(f"backend {machine['backend']}, model {machine['model']}, {machine['cpus']} CPUs", highlight=False)
        if json_path:
            json_path.parent.mkdir(parents=True, exist_ok=True)
            json_path.write_text(json.dumps(summary, indent=2))
            err.print(f"wrote {json_path}", highlight=False)
