"""A model's video heads: one P(fake) for a face track or video from its faces' features.

A model with video heads (`DetectorModel.video_heads`) scores a whole track from its
faces' per-frame features. `scan --video-head` and `evaluate --video-head` both go
through `video_head_probability`, so a track or video is scored the same way.
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np

from ..errors import FakescopeError



def check_video_head(model, arch: str, head: str) -> None:
    """A one-line FakescopeError (usage) unless `model` has the video head `head`."""
    heads = tuple(getattr(model, "video_heads", ()) or ())
    if not heads:
        from .base import MODELS

        having = [f"{name} ({', '.join(cls.video_heads)})" for name, cls in MODELS.items() if cls.video_heads]
        raise FakescopeError(
            f"--video-head {head}: architecture {arch!r} has no video heads; "
            f"architectures with video heads: {', '.join(having) or 'none'}"
        )
    if head not in heads:
        raise FakescopeError(f"--video-head {head}: architecture {arch!r} has no video head {head!r}; "
                             f"its video heads are: {', '.join(heads)}")


def video_windows(count: int, window: Optional[int]) -> list[range]:
    """Consecutive windows covering `count` frames, none longer than `window` (None: one window).

    As few windows as fit, of near-equal length (e.g. 40 frames at window 32: two of 20), so
    no window is a short leftover scored on a couple of frames."""
    if count <= 0:
        return []
    if not window or count <= window:
        return [range(count)]
    pieces = math.ceil(count / window)
    edges = np.linspace(0, count, pieces + 1).round().astype(int)
    return [range(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]


def frame_features(out: dict, model_name: str) -> list[np.ndarray]:
    """The per-frame (D,) feature vectors of one batch's outputs (the predictor's NumPy outputs),
    for a video head; a one-line FakescopeError when the model returns none."""
    if out.get("features") is None:
        raise FakescopeError(f"model {model_name!r} returns no features, so its video head cannot run")
    return list(np.asarray(out["features"], dtype=np.float32))


def video_head_probability(model, features, head: str) -> tuple[float, int]:
    """P(fake) of one face track or video from its (K, D) per-frame `features`, in frame order,
    by `model.video_logits(..., head)`; returns (P(fake), number of windows).

    A model may cap the frames one call sees (`model.video_window(head)`, e.g. the clip length
    its temporal head was trained on); longer sequences are cut into consecutive windows
    (`video_windows`) and their P(fake) averaged. Without a cap every frame goes in one call.
    """
    import torch

    features = torch.as_tensor(features)
    if features.dim() != 2 or features.shape[0] == 0:
        raise ValueError(f"expected (K, D) frame features with K >= 1, got {tuple(features.shape)}")
    window_of = getattr(model, "video_window", None)
    window = window_of(head) if callable(window_of) else None
    windows = video_windows(features.shape[0], window)
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    with torch.inference_mode():
        probabilities = [
            float(torch.sigmoid(model.video_logits(features[w.start:w.stop].unsqueeze(0).to(device).float(),
                                                   head).float())[0])
            for w in windows
        ]
    return float(np.mean(probabilities)), len(windows)
