"""`fakescope train CONFIG [key=value ...] [--resume]`."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from ..errors import FakescopeError

EXIT_OK, EXIT_USAGE, EXIT_STOPPED = 0, 2, 130


def register(app: typer.Typer) -> None:
    @app.command("train")
    def train_command(
        config: Path = typer.Argument(..., help="Training recipe (YAML); see configs/ for examples."),
        overrides: Optional[List[str]] = typer.Argument(
            None, help="dotted.key=value overrides, values as YAML, e.g. optim.lr=3e-4 train.epochs=5."),
        resume: bool = typer.Option(False, "--resume", help="Continue the run in the config's output folder from last.pt."),
    ) -> None:
        """Train a detector. Writes best.pt (best validation AUC; use with scan --model),
        last.pt (to --resume), metrics.csv and TensorBoard logs into the output folder.
        Works under torchrun for several processes."""
        from rich.markup import escape

        from ..console import err
        from .config import load_config

        try:
            cfg = load_config(config, overrides or [])
            from .trainer import train

            result = train(cfg, resume=resume, console=err)
        except FakescopeError as exc:  # config, manifest and checkpoint problems: one line, no traceback
            err.print(f"[red]error:[/red] {escape(exc.message)}", highlight=False)
            raise typer.Exit(EXIT_USAGE)
        # max_steps is a planned stop (exit 0); a SIGINT/SIGTERM stop exits 130 like any interrupt.
        raise typer.Exit(EXIT_STOPPED if result.stop_requested else EXIT_OK)
