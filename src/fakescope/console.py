"""The consoles every command prints with, and the one way commands fail."""
from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.markup import escape

from .scan.results import EXIT_USAGE

# Piped output (files, CI logs) gets wide lines instead of rich's 80-column default.
out = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, soft_wrap=True)


def fail(message: str, code: int = EXIT_USAGE) -> None:
    """One line on stderr and a non-zero exit; messages are plain text, never markup."""
    err.print(f"[red]error:[/red] {escape(message)}", highlight=False)
    raise typer.Exit(code)
