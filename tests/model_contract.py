"""Checks every registered detector must pass; each model's test file calls them.

- ``check_outputs``: the DetectorModel contract (shapes, finiteness, the mask's shape).
- ``check_parameter_count``: within ``tolerance`` of a published reference count.
- ``check_one_step_lowers_loss``: one optimiser step on a fixed batch lowers the
  training loss the trainer would compute (BCE + the model's own ``training_losses``).
- ``check_onnx_matches``: exports with fakescope's exporter (`fakescope export`) and compares
  ONNX Runtime's logits with PyTorch's.
"""
from __future__ import annotations


import numpy as np
import torch
import torch.nn.functional as F


def parameter_count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def check_outputs(model, batch: int, size: int, feature_dim: int | None = None, mask_shape: tuple | None = None):
    """Forward a random (batch, 3, size, size) input in eval mode; returns the output dict."""
    model.eval()
    with torch.no_grad():
        out = model(torch.randn(batch, 3, size, size))
    assert out["logits"].shape == (batch,), out["logits"].shape
    assert torch.isfinite(out["logits"]).all()
    if feature_dim is not None:
        assert out["features"].shape == (batch, feature_dim), out["features"].shape
    if mask_shape is None:
        assert "mask" not in out
    else:
        assert tuple(out["mask"].shape) == (batch, 1, *mask_shape), out["mask"].shape
        assert torch.isfinite(out["mask"]).all()
    return out


def check_parameter_count(model, reference: int, tolerance: float = 0.05) -> int:
    count = parameter_count(model)
    assert abs(count - reference) <= tolerance * reference, f"{count:,} parameters, reference {reference:,}"
    return count


def training_loss(model, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The loss `fakescope train` minimises with loss.mask_weight 0: BCE on the fake
    logit plus the architecture's own terms."""
    out = model(images)
    loss = F.binary_cross_entropy_with_logits(out["logits"].float(), labels)
    for term in model.training_losses(out, labels).values():
        loss = loss + term.float()
    return loss


def check_one_step_lowers_loss(model, size: int, batch: int = 4, lr: float = 1e-3, seed: int = 0) -> tuple[float, float]:
    """One AdamW step on a fixed batch (half real, half fake) must lower the loss
    measured on that batch. Dropout is off (eval) for both measurements so they
    are comparable; the step itself runs in train mode, as in training."""
    torch.manual_seed(seed)
    images = torch.randn(batch, 3, size, size)
    labels = torch.tensor([0.0, 1.0] * (batch // 2))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)

    model.train()
    _freeze_dropout(model)
    with torch.no_grad():
        before = training_loss(model, images, labels).item()
    optimizer.zero_grad()
    training_loss(model, images, labels).backward()
    optimizer.step()
    with torch.no_grad():
        after = training_loss(model, images, labels).item()
    assert np.isfinite(before) and np.isfinite(after)
    assert after < before, f"loss {before:.5f} -> {after:.5f} after one step"
    return before, after


def _freeze_dropout(model: torch.nn.Module) -> None:
    """Dropout off, batch norm still in train mode (it then normalises by the
    batch's own statistics, the same way in all three passes)."""
    for module in model.modules():
        if isinstance(module, torch.nn.modules.dropout._DropoutNd) or module.__class__.__name__ == "DropPath":
            module.eval()


def check_onnx_matches(model, size: int, batch: int = 2, atol: float = 1e-4, tmp_dir=None) -> float:
    """Export ``model`` (eval) with fakescope's own exporter (what `fakescope export` runs), load it
    as an OnnxDetector, run it with ONNX Runtime on CPU and return the largest absolute logit
    difference from PyTorch, asserting it is within ``atol``."""
    import tempfile
    from pathlib import Path

    from fakescope.models.base import LoadedDetector, PreprocessSpec
    from fakescope.models.onnx import OnnxDetector, export_onnx

    model.eval()
    detector = LoadedDetector(model, "contract", PreprocessSpec(input_size=size), {}, name="contract")
    torch.manual_seed(1)
    x = torch.randn(batch, 3, size, size)
    with tempfile.TemporaryDirectory(dir=tmp_dir) as folder:
        path = Path(folder) / "model.onnx"
        export_onnx(detector, path)
        onnx_logits = OnnxDetector(path).run(x.numpy())["logits"]
    with torch.no_grad():
        torch_logits = model(x)["logits"].numpy()
    diff = float(np.abs(onnx_logits - torch_logits).max())
    assert diff <= atol, f"ONNX logits differ from PyTorch's by {diff:.2e}"
    return diff
