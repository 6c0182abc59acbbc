"""Video-level scores from face scores, or from a model's video head.

A policy receives one list of P(fake) per face track (one track per person)
and returns one P(fake) for the video. Register new ones with `@AGGREGATORS.register`.

A model with video heads (`DetectorModel.video_heads`) scores a whole track instead,
from its faces' per-frame features: `video_head_probability`. `scan --video-head` and
`evaluate --video-head` both go through it, so a track or video is scored the same way.
"""
from __future__ import annotations

import math
from typing import Callable, Optional, Sequence

import numpy as np

from .errors import FakescopeError
from .registry import Registry

Aggregator = Callable[[Sequence[Sequence[float]]], float]
AGGREGATORS: Registry[Aggregator] = Registry("aggregation policy")


@AGGREGATORS.register("max_track_mean")
def max_track_mean(tracks: Sequence[Sequence[float]]) -> float:
    """Default: a video is as fake as its most suspicious person, judged over all
    of that person's frames (one swapped face among real ones is caught, and a
    single noisy frame does not decide)."""
    return float(max(np.mean(t) for t in tracks))


@AGGREGATORS.register("mean")
def mean_of_all(tracks: Sequence[Sequence[float]]) -> float:
    """Mean over every scored face."""
    return float(np.mean(np.concatenate([np.asarray(t, dtype=float) for t in tracks])))


@AGGREGATORS.register("confident")
def confident_strategy(tracks: Sequence[Sequence[float]], high: float = 0.8, low: float = 0.2) -> float:
    """The DFDC winner's rule (Seferbekov, 2020): when many faces are confidently
    fake (more than 11 and more than 40% of them), average only those; when over
    90% are confidently real, average those; otherwise the plain mean."""
    scores = np.concatenate([np.asarray(t, dtype=float) for t in tracks])
    confident_fake = scores[scores > high]
    if len(confident_fake) > 11 and len(confident_fake) > len(scores) // 2.5:
        return float(confident_fake.mean())
    confident_real = scores[scores < low]
    if len(confident_real) > 0.9 * len(scores):
        return float(confident_real.mean())
    return float(scores.mean())


@AGGREGATORS.register("fraction_above")
def fraction_above(tracks: Sequence[Sequence[float]], threshold: float = 0.5) -> float:
    """Share of faces scored above 0.5."""
    scores = np.concatenate([np.asarray(t, dtype=float) for t in tracks])
    return float((scores > threshold).mean())


# ----------------------------------------------------------------------------- video heads


def check_video_head(model, arch: str, head: str) -> None:
    """A one-line FakescopeError (usage) unless `model` has the video head `head`."""
    heads = tuple(getattr(model, "video_heads", ()) or ())
    if not heads:
        from .models.base import MODELS

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


def frame_features(out: dict, model_name: str) -> list:
    """The per-frame (D,) feature vectors of one forward pass's output, as CPU float tensors,
    for a video head; a one-line FakescopeError when the model returns none."""
    if out.get("features") is None:
        raise FakescopeError(f"model {model_name!r} returns no features, so its video head cannot run")
    return list(out["features"].detach().float().cpu())


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
