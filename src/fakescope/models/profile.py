"""Size and cost of an architecture: parameters and GFLOPs at its input size.

GFLOPs follow the convention of the papers and of fvcore/timm tables: one
multiply-accumulate counts as one FLOP (ResNet-50 at 224 px: 4.1). They are
counted by `torch.utils.flop_counter` on the "meta" device, so no arithmetic
runs and no memory is allocated for weights; only matrix products and
convolutions count (element-wise work is not included, as in those tables).

`fakescope models` does not call this: it reads the table `models/catalog.py` stores from it.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any, Optional

import torch
from torch.utils.flop_counter import FlopCounterMode

from .base import MODELS, build_model


@lru_cache(maxsize=None)
def profile(arch: str, input_size: Optional[int] = None) -> dict[str, Any]:
    """{"parameters", "input_size", "gflops"} of ``arch`` built with its default arguments.

    ``gflops`` is None if the forward cannot run on the meta device (an operator
    without a meta kernel); the parameter count is always given.
    """
    size = int(input_size or MODELS.get(arch).default_preprocess.input_size)
    with torch.device("meta"):
        model = build_model(arch).eval()
    parameters = sum(p.numel() for p in model.parameters())
    try:
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            model(torch.empty(1, 3, size, size, device="meta"))
        gflops: Optional[float] = counter.get_total_flops() / 2e9
    except (NotImplementedError, RuntimeError):
        gflops = None
    return {"parameters": int(parameters), "input_size": size, "gflops": gflops}


__all__ = ["profile"]
