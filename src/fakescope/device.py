"""The one device resolver: "auto", "cpu", "cuda", "cuda:N" -> a device, with one-line errors.

Scan, evaluate, extract and train all resolve devices here. Without PyTorch installed (a
scan-only install running on ONNX Runtime) only the CPU exists, and a `CpuDevice` stands in
for `torch.device("cpu")`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from .errors import FakescopeError


@dataclass(frozen=True)
class CpuDevice:
    """What `resolve_device` returns where PyTorch is not installed."""

    type: str = "cpu"
    index: Optional[int] = None

    def __str__(self) -> str:
        return "cpu"


def torch_available() -> bool:
    """Whether PyTorch can be imported, without importing it (that costs seconds)."""
    import importlib.util
    import sys

    if "torch" in sys.modules:  # imported already, or blocked (None)
        return sys.modules["torch"] is not None
    return importlib.util.find_spec("torch") is not None


def resolve_device(device: Any = "auto", local_rank: Optional[int] = None):
    """A `torch.device` (or `CpuDevice` without PyTorch). `local_rank`: under torchrun, the
    process's own GPU."""
    name = str(device)
    if not torch_available():
        if name in ("auto", "cpu"):
            return CpuDevice()
        raise FakescopeError(f"device {name!r} needs PyTorch, which is not installed; "
                             'use --device cpu, or pip install "fakescope[train]"')
    import torch

    if isinstance(device, torch.device):
        resolved = device
    elif name == "auto":
        resolved = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            resolved = torch.device(name)
        except RuntimeError:
            raise FakescopeError(f"unknown device {name!r}; use cpu, cuda, cuda:N or auto") from None
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise FakescopeError(f"device {name!r} asked for, but no CUDA GPU is available here; use --device cpu")
        if local_rank is not None:  # one GPU per process under torchrun
            resolved = torch.device("cuda", local_rank)
        elif resolved.index is None:
            resolved = torch.device("cuda", torch.cuda.current_device())
    return resolved
