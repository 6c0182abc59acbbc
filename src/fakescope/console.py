"""The consoles every command prints with, and the one way commands fail.

`out` and `err` are made on first use (module `__getattr__`), so importing this module, as
every command module does, does not import rich: `fakescope --help` needs none of it.
"""
from __future__ import annotations

import sys

import typer

from .scan.results import EXIT_USAGE


def __getattr__(name: str):
    if name not in ("out", "err"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return _console(name)


def _console(name: str):
    if name not in globals():  # both at once, so `out` and `err` are always one pair
        from rich.console import Console

        # Piped output (files, CI logs) gets wide lines instead of rich's 80-column default.
        globals()["out"] = Console(width=None if sys.stdout.isatty() else 160)
        globals()["err"] = Console(stderr=True, soft_wrap=True)
    return globals()[name]


def fail(message: str, code: int = EXIT_USAGE) -> None:
    """One line on stderr and a non-zero exit; messages are plain text, never markup."""
    from rich.markup import escape

    _console("err").print(f"[red]error:[/red] {escape(message)}", highlight=False)
    raise typer.Exit(code)
