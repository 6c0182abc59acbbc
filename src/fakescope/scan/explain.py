"""Evidence maps: the model's own mask where it has one, Grad-CAM otherwise.

Two forms:

* `forgery_maps(model, batch)` -> `ForgeryMaps`: P(fake) of each crop and a map of
  P(manipulated) per pixel, kept at the model's own resolution and upsampled on
  request to any size (the face crop in frame pixels for `scan --masks`, the model
  input for `--heatmap`, a ground-truth mask for `evaluate`). With a mask head the
  map is sigmoid(mask logits), upsampled bilinearly as logits. Without one it is
  Grad-CAM scaled to peak 1 and multiplied by the crop's P(fake): Grad-CAM says
  *where* the fake logit comes from, not *how likely* a pixel is manipulated, so the
  scaling keeps a face scored real from getting a bright "forgery" mask. `source`
  says which ("mask_head" or "grad_cam").
* `evidence_maps` / `grad_cam`: (B, H, W) maps at the input size, Grad-CAM scaled to
  peak 1 per crop (what the model looks at, whatever its score).

`uncrop` places a map of a crop (`faces.crop_square`) back on its frame.
"""
from __future__ import annotations

from typing import Optional

import cv2
import numpy as np

MASK_HEAD = "mask_head"
GRAD_CAM = "grad_cam"
MAP_SOURCES = (MASK_HEAD, GRAD_CAM)


def _size(size) -> tuple[int, int]:
    """An int (square) or (height, width)."""
    return (int(size), int(size)) if isinstance(size, (int, np.integer)) else (int(size[0]), int(size[1]))


class ForgeryMaps:
    """P(fake) and per-pixel P(manipulated) maps of a batch of face crops (NumPy: any backend)."""

    def __init__(self, scores: np.ndarray, source: Optional[str], maps: Optional[np.ndarray],
                 output: Optional[dict] = None):
        self.scores = np.asarray(scores)  # (B,) P(fake)
        self.output = output  # the model's output dict of the scoring pass (its "features", for video heads)
        self.source = source  # "mask_head", "grad_cam", or None (no map: no mask head, Grad-CAM not allowed)
        # (B, 1, h, w) float32 at the model's resolution: mask logits (mask_head) or scaled CAM in [0, 1] (grad_cam)
        self._maps = None if maps is None else np.asarray(maps, dtype=np.float32)

    def __len__(self) -> int:
        return len(self.scores)

    @property
    def resolution(self) -> Optional[tuple[int, int]]:
        return None if self._maps is None else tuple(self._maps.shape[-2:])

    def at(self, i: int, size) -> np.ndarray:
        """Crop i's map upsampled to `size` (int or (height, width)): float32 in [0, 1]. Bilinear with
        half-pixel centres (PyTorch's align_corners=False); mask logits are resized before the sigmoid."""
        if self._maps is None:
            raise ValueError("no forgery maps: the model has no mask head and Grad-CAM was not allowed")
        height, width = _size(size)
        upsampled = cv2.resize(self._maps[i, 0], (width, height), interpolation=cv2.INTER_LINEAR)
        if self.source == MASK_HEAD:
            upsampled = 1.0 / (1.0 + np.exp(-upsampled))
        return np.clip(upsampled, 0.0, 1.0).astype(np.float32, copy=False)


def forgery_maps(model, batch, allow_grad_cam: bool = True) -> ForgeryMaps:
    """One PyTorch forward pass (with gradients only for Grad-CAM): scores and maps of `batch`.

    Without a mask head and with `allow_grad_cam=False`, only scores come back (source None).
    (`models.predictor.Predictor.maps` is the entry point; it also serves ONNX Runtime.)
    """
    import torch

    with torch.inference_mode():
        out = model(batch)
    scores = torch.sigmoid(out["logits"].float()).cpu()
    if out.get("mask") is not None:
        return ForgeryMaps(scores.numpy(), MASK_HEAD, out["mask"].float().cpu().numpy(), out)
    if not allow_grad_cam:
        return ForgeryMaps(scores.numpy(), None, None, out)
    cam = grad_cam(model, batch, low_res=True)
    return ForgeryMaps(scores.numpy(), GRAD_CAM, (cam * scores.view(-1, 1, 1, 1)).numpy(), out)


def evidence_maps(model, batch) -> np.ndarray:
    """(B, H, W) maps in [0, 1] at the input size; high = where the model sees forgery."""
    import torch
    import torch.nn.functional as F

    size = batch.shape[-2:]
    with torch.no_grad():
        out = model(batch)
    if out.get("mask") is not None:
        mask = torch.sigmoid(F.interpolate(out["mask"].float(), size=size, mode="bilinear", align_corners=False))
        return mask[:, 0].cpu().numpy()
    return grad_cam(model, batch)


def _grad_cam_raw(model, batch):
    """(B, 1, h, w) ReLU'd Grad-CAM at `cam_layer()`'s resolution (not normalised), and the logits."""
    import torch
    import torch.nn.functional as F

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
    cam = F.relu((weights * activation).sum(1, keepdim=True)).detach().float()
    model.zero_grad(set_to_none=True)
    return cam, logits.detach()


def grad_cam(model, batch, low_res: bool = False):
    """Grad-CAM (Selvaraju et al., ICCV 2017) of the fake logit at `model.cam_layer()`, peak 1 per crop.

    (B, H, W) numpy at the input size; with `low_res=True` a (B, 1, h, w) CPU tensor at
    the layer's own resolution (what `forgery_maps` upsamples to other sizes).
    """
    import torch.nn.functional as F

    cam, _ = _grad_cam_raw(model, batch)
    if low_res:
        return (cam / cam.flatten(1).max(1).values.clamp_min(1e-8).view(-1, 1, 1, 1)).cpu()
    cam = F.interpolate(cam, size=batch.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    peak = cam.flatten(1).max(1).values.clamp_min(1e-8)[:, None, None]
    return (cam / peak).cpu().numpy()


def overlay(face_rgb: np.ndarray, heat: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """Blend a [0, 1] map over an RGB crop as a JET colour map."""
    heat = cv2.resize(heat.astype(np.float32), (face_rgb.shape[1], face_rgb.shape[0]))
    colour = cv2.applyColorMap(np.uint8(255 * np.clip(heat, 0, 1)), cv2.COLORMAP_JET)[..., ::-1]
    return np.uint8((1 - alpha) * face_rgb + alpha * colour)


# ----------------------------------------------------------------------------- crop geometry


def uncrop(crop_map: np.ndarray, square: tuple[int, int, int, int], frame_hw: tuple[int, int]) -> np.ndarray:
    """A map of the square crop `square` (any resolution) as a map of the frame (height, width):
    resized to the square's side and cut to the part inside the frame; frame pixels the square
    does not cover are 0."""
    left, top, right, bottom = square
    side = right - left
    height, width = frame_hw
    if crop_map.shape != (side, side):
        crop_map = cv2.resize(crop_map.astype(np.float32), (side, side), interpolation=cv2.INTER_LINEAR)
    out = np.zeros((height, width), np.float32)
    x0, y0, x1, y1 = max(left, 0), max(top, 0), min(right, width), min(bottom, height)
    if x1 > x0 and y1 > y0:
        out[y0:y1, x0:x1] = crop_map[y0 - top : y1 - top, x0 - left : x1 - left]
    return out
