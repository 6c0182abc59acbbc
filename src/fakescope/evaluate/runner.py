"""Score labelled datasets with one detector and compute every metric table.

The cross-dataset protocol: one checkpoint, many datasets, one table. Each
dataset gets frame-level metrics, video-level metrics (mean frame P(fake) per
video) where the manifest has video ids, and per-manipulation-method metrics.

Per method, a method's fakes are scored against the reals *of the same method*
when the manifest labels some reals with that method name, else against ALL
reals of the dataset. FF++-style manifests mark every real "original" (the
real videos are shared by all methods), so there each method is its fakes vs
all reals, the usual FF++ per-method protocol. Which one was used is recorded
per method under "reals" ("same method" or "all").
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from ..data.dataset import FaceCropDataset
from ..data.manifest import Manifest
from ..errors import FakescopeError
from ..inference import predict_scores
from ..models.zoo import load_detector
from .metrics import compute_metrics, compute_video_metrics


@dataclass
class Prediction:
    """One scored sample (a row of the predictions CSV)."""

    dataset: str
    path: str
    label: int
    score: float
    video: Optional[str]
    method: Optional[str]


@dataclass
class DatasetResult:
    name: str
    frame: dict
    video: Optional[dict]  # None when the manifest has no video ids
    methods: dict[str, dict] = field(default_factory=dict)  # method -> frame metrics + "video" + "reals"

    def to_dict(self) -> dict:
        return {**self.frame, "video": self.video, "methods": self.methods}


@dataclass
class EvaluationResult:
    checkpoint: str  # what the user asked for: a shipped name or a checkpoint path
    model: dict  # name, arch, provenance of the loaded detector
    datasets: list[DatasetResult]
    predictions: list[Prediction]
    pooled: dict  # frame metrics over all datasets' samples together
    pooled_video: Optional[dict]  # video metrics over the datasets that have video ids
    logloss_clip: Optional[float] = None

    def dataset(self, name: str) -> DatasetResult:
        return next(d for d in self.datasets if d.name == name)

    def predictions_of(self, name: str) -> list[Prediction]:
        return [p for p in self.predictions if p.dataset == name]


def resolve_device(device: str | torch.device) -> torch.device:
    from ..scanner import resolve_device as _resolve

    return device if isinstance(device, torch.device) else _resolve(device)


def _check_files(name: str, manifest: Manifest) -> None:
    """Fail before scoring, with one line, rather than deep inside the data loader."""
    missing = [s.path for s in manifest if not manifest.resolve(s.path).is_file()]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise FakescopeError(f"dataset {name!r}: {manifest.resolve(missing[0])} does not exist{more}", code="not_found")


def _video_keys(predictions: Sequence[Prediction]) -> list:
    # (dataset, method, video): ids are only unique within a method in FF++-style manifests
    # (ffpp-crops uses "900" for a real video and for the Deepfakes fake made from it).
    return [(p.dataset, p.method, p.video) for p in predictions]


def _video_metrics(predictions: Sequence[Prediction], logloss_clip: Optional[float]) -> Optional[dict]:
    if not any(p.video is not None for p in predictions):
        return None
    return compute_video_metrics(
        [p.label for p in predictions], [p.score for p in predictions], [p.video for p in predictions],
        keys=_video_keys(predictions), logloss_clip=logloss_clip,
    )


def _metrics(predictions: Sequence[Prediction], logloss_clip: Optional[float]) -> tuple[dict, Optional[dict]]:
    frame = compute_metrics([p.label for p in predictions], [p.score for p in predictions], logloss_clip=logloss_clip)
    return frame, _video_metrics(predictions, logloss_clip)


def per_method(predictions: Sequence[Prediction], logloss_clip: Optional[float] = None) -> dict[str, dict]:
    """Each manipulation method's fakes vs the reals (see the module docstring for which reals)."""
    reals = [p for p in predictions if p.label == 0]
    methods = sorted({p.method for p in predictions if p.label == 1 and p.method is not None})
    out = {}
    for method in methods:
        own_reals = [p for p in reals if p.method == method]
        chosen = own_reals or reals
        subset = [p for p in predictions if p.label == 1 and p.method == method] + chosen
        frame, video = _metrics(subset, logloss_clip)
        out[method] = {**frame, "video": video, "reals": "same method" if own_reals else "all"}
    return out


def evaluate(
    checkpoint_or_name: str | Path,
    datasets: Sequence[tuple[str, Manifest]],
    device: str | torch.device = "auto",
    batch_size: int = 64,
    num_workers: int = 0,
    logloss_clip: Optional[float] = None,
) -> EvaluationResult:
    """Score every sample of every (name, manifest) with the detector's own preprocessing."""
    if not datasets:
        raise FakescopeError("no dataset to evaluate on")
    names = [name for name, _ in datasets]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise FakescopeError(f"dataset name(s) {duplicates} used twice; name them with NAME=PATH")
    for name, manifest in datasets:
        if len(manifest) == 0:
            raise FakescopeError(f"dataset {name!r} has no samples")
        _check_files(name, manifest)

    torch_device = resolve_device(device)
    detector = load_detector(checkpoint_or_name)
    model = detector.model.to(torch_device)

    predictions: list[Prediction] = []
    results: list[DatasetResult] = []
    for name, manifest in datasets:
        try:
            scores = predict_scores(
                model, FaceCropDataset(manifest, detector.preprocess), torch_device, batch_size, num_workers,
            )
        except OSError as exc:  # an unreadable or truncated image (PIL raises OSError subclasses)
            raise FakescopeError(f"dataset {name!r}: cannot read an image: {exc}", code="corrupt") from None
        rows = [
            Prediction(name, str(manifest.resolve(s.path)), s.label, float(score), s.video, s.method)
            for s, score in zip(manifest.samples, np.asarray(scores, dtype=float))
        ]
        frame, video = _metrics(rows, logloss_clip)
        results.append(DatasetResult(name, frame, video, per_method(rows, logloss_clip)))
        predictions.extend(rows)

    pooled = compute_metrics([p.label for p in predictions], [p.score for p in predictions], logloss_clip=logloss_clip)
    with_videos = {r.name for r in results if r.video is not None}
    pooled_video = _video_metrics([p for p in predictions if p.dataset in with_videos], logloss_clip)
    return EvaluationResult(
        checkpoint=str(checkpoint_or_name),
        model={"name": detector.name, "arch": detector.arch, "provenance": detector.provenance},
        datasets=results, predictions=predictions, pooled=pooled, pooled_video=pooled_video,
        logloss_clip=logloss_clip,
    )
