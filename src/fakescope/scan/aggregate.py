"""Video-level scores from face scores, or from a model's video head.

A policy receives one list of P(fake) per face track (one track per person)
and returns one P(fake) for the video. Register new ones with `@AGGREGATORS.register`.
(A model's own video heads, which score a whole track from its faces' features, live
in `models/video.py`.)
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from ..registry import Registry

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
