"""Evidence maps: the model's own mask where it has one, Grad-CAM otherwise."""
from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from .models.base import DetectorModel


def evidence_maps(model: DetectorModel, batch: torch.Tensor) -> np.ndarray:
    """(B, H, W) maps in [0, 1] at the input size; high = where the model sees forgery."""
    size = batch.shape[-2:]
    with torch.no_grad():
        out = model(batch)
    if out.get("mask") is not None:
        mask = torch.sigmoid(F.interpolate(out["mask"].float(), size=size, mode="bilinear", align_corners=False))
        return mask[:, 0].cpu().numpy()
    return grad_cam(model, batch)


def grad_cam(model: DetectorModel, batch: torch.Tensor) -> np.ndarray:
    """Grad-CAM (Selvaraju et al., ICCV 2017) of the fake logit at `model.cam_layer()`."""
    captured: dict[str, torch.Tensor] = {}

    def keep(_module, _inputs, output):
        output.retain_grad()
        captured["activation"] = output

    handle = model.cam_layer().register_forward_hook(keep)
    try:
        with torch.enable_grad():
            batch = batch.detach().requires_grad_(True)  # so activations carry gradients even if weights are frozen
            logits = model(batch)["logits"]
            logits.sum().backward()
    finally:
        handle.remove()
    activation = captured["activation"]
    weights = activation.grad.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((weights * activation).sum(1, keepdim=True))
    cam = F.interpolate(cam, size=batch.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    peak = cam.flatten(1).max(1).values.clamp_min(1e-8)[:, None, None]
    model.zero_grad(set_to_none=True)
    return (cam / peak).detach().cpu().numpy()


def overlay(face_rgb: np.ndarray, heat: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """Blend a [0, 1] map over an RGB crop as a JET colour map."""
    heat = cv2.resize(heat.astype(np.float32), (face_rgb.shape[1], face_rgb.shape[0]))
    colour = cv2.applyColorMap(np.uint8(255 * np.clip(heat, 0, 1)), cv2.COLORMAP_JET)[..., ::-1]
    return np.uint8((1 - alpha) * face_rgb + alpha * colour)
