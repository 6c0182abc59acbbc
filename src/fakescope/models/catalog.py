"""The architecture table of `fakescope models`, stored as catalog.json beside this file.

Measuring an architecture means importing PyTorch and every model family and building each
model (`profile.profile`), about ten seconds; listing them should not. So the table is
computed once from the real registry and committed, and the command only reads it.
tests/test_cli.py regenerates it and compares, so it cannot go stale.

    python -m fakescope.models.catalog           # rewrite catalog.json after changing an architecture
    python -m fakescope.models.catalog --check   # exit 1 if catalog.json differs from the registry
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

CATALOG_PATH = Path(__file__).with_name("catalog.json")


def build_catalog() -> list[dict[str, Any]]:
    """One entry per architecture fakescope itself registers (name order): name, parameters,
    input_size, gflops, summary (the class docstring's first line). Needs PyTorch."""
    from .base import MODELS
    from .profile import profile

    entries = []
    for name, cls in MODELS.items():
        if not cls.__module__.startswith("fakescope."):  # tests and plugins register their own
            continue
        measured = profile(name)
        gflops = measured["gflops"]
        entries.append({
            "name": name, "parameters": measured["parameters"], "input_size": measured["input_size"],
            # rounded so that the committed file does not change with the last bits of a float
            "gflops": None if gflops is None else round(gflops, 4),
            "summary": ((cls.__doc__ or "").strip().splitlines() or [""])[0].strip(),
        })
    return entries


def render(entries: list[dict[str, Any]]) -> str:
    return json.dumps(entries, indent=2) + "\n"


def load_catalog(path: Path = CATALOG_PATH) -> list[dict[str, Any]]:
    """The committed table; reading it needs neither PyTorch nor the model families."""
    return json.loads(path.read_text())


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args not in ([], ["--check"]):
        print("usage: python -m fakescope.models.catalog [--check]", file=sys.stderr)
        return 2
    entries = build_catalog()
    text = render(entries)
    if args == ["--check"]:
        if not CATALOG_PATH.is_file() or CATALOG_PATH.read_text() != text:
            print(f"{CATALOG_PATH} is stale: run python -m fakescope.models.catalog", file=sys.stderr)
            return 1
        return 0
    CATALOG_PATH.write_text(text)
    print(f"wrote {CATALOG_PATH} ({len(entries)} architectures)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
