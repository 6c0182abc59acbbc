"""`fakescope export MODEL -o model.onnx`: a detector as a self-describing ONNX file."""
from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("export")
    def export_command(
        model: str = typer.Argument(..., help="Shipped model name or checkpoint file (see `fakescope models`)."),
        output: Path = typer.Option(..., "--output", "-o", help="Where to write the .onnx file."),
    ) -> None:
        """Export a detector to ONNX for ONNX Runtime (`scan --model FILE.onnx`, no PyTorch needed).

        The file carries the checkpoint's preprocessing, provenance and calibration; the export is
        checked against PyTorch on a random batch and refused if P(fake) differs by more than 1e-4."""
        from ..console import fail, out
        from ..errors import FakescopeError

        if output.suffix != ".onnx":
            fail(f"--output {output}: name the file .onnx")
        if output.is_dir():
            fail(f"--output {output} is a folder; give a file name")
        try:
            from ..data.fingerprints import sha256_of
            from .onnx import export_onnx
            from .zoo import load_detector

            metadata = export_onnx(load_detector(model), output)
        except FakescopeError as exc:
            fail(exc.message)
        except ImportError as exc:
            fail(f"export needs PyTorch and onnx ({exc.name} is missing): pip install \"fakescope[train]\"")
        parity = ", ".join(f"{k} {v:.1e}" for k, v in metadata["parity"].items())
        out.print(f"wrote {output} ({output.stat().st_size / 1e6:.1f} MB, sha256 {sha256_of(output)[:12]}); "
                  f"outputs {', '.join(metadata['outputs'])}; largest difference from PyTorch: {parity}",
                  highlight=False, soft_wrap=True)
