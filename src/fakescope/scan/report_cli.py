"""`fakescope report scan.json -o report.html`: the HTML report of an earlier scan (scan/report.py)."""
from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("report")
    def report_command(
        source: Path = typer.Argument(..., help="A scan's --json file, or its --jsonl file."),
        output: Path = typer.Option(..., "--output", "-o", help="Where to write the HTML file."),
    ) -> None:
        """Write a self-contained HTML report of a scan: verdicts, people, timeline, key frames and faces,
        images embedded (cut again from the media where it is still in place)."""
        import json

        from ..console import err, fail

        if not source.is_file():
            fail(f"{source}: no such file (give the file `fakescope scan --json` or --jsonl wrote)")
        if output.is_dir():
            fail(f"--output {output} is a folder; give a file name")
        from .results import read_jsonl

        try:
            if source.suffix == ".jsonl":
                scan = read_jsonl(source)
                if scan.dropped_tail:
                    err.print(f"{source}: its unfinished last line (a scan killed mid-write) is left out", highlight=False)
                report = {**(scan.header or {}), "results": list(scan.results.values())}
            else:
                report = json.loads(source.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            fail(f"{source}: not a scan's JSON ({exc})")
        if not isinstance(report, dict) or not isinstance(report.get("results"), list):
            fail(f"{source}: not a scan's JSON (no \"results\" list)")
        from .report import write_html

        try:
            write_html(report, output)
        except OSError as exc:
            fail(f"cannot write {output}: {exc.strerror or exc}")
        err.print(f"wrote {output} ({output.stat().st_size / 1e6:.1f} MB, {len(report['results'])} file(s))",
                  highlight=False)
