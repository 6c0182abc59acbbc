"""Training: `fakescope train CONFIG.yaml` (see config.py for the recipe format).

Names load lazily, so registering the CLI command (and `fakescope --help`) imports neither
PyTorch nor the training stack.
"""
from __future__ import annotations

import importlib

_EXPORTS = {"ConfigError": "config", "TrainConfig": "config", "load_config": "config", "TrainResult": "trainer"}
__all__ = ["ConfigError", "TrainConfig", "TrainResult", "load_config", "train"]


def train(config, resume: bool = False, console=None):
    """Run (or continue) the training `config` describes; returns a TrainResult."""
    from .trainer import train as _train

    return _train(config, resume=resume, console=console)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
