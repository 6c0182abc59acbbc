"""Score labelled datasets with one detector and compute every metric table.

The cross-dataset protocol: one checkpoint, many datasets, one table. Each
dataset gets frame-level metrics, video-level metrics (mean frame P(fake) per
video) where the manifest has video ids, and per-manipulation-method metrics.

Video level with `video_head="NAME"` (`evaluate --video-head NAME`), for a model with
that video head: a video's P(fake) is the head's, over its frames' features ordered by
the manifest's `frame` column (manifest order where a frame has no index), in windows
where the model caps them (`models.video.video_head_probability`, as `scan --video-head`
scores a face track); frame-level metrics are unchanged. A frame without a video id is
a one-frame video, as in the mean.

Pixel level, where a dataset's manifest has a `mask` column: the model's mask head
(upsampled to each ground-truth mask) against the masks; see `metrics.PixelMetrics`.
A model without a mask head gets no pixel metrics, with a note saying so, unless
`grad_cam_masks=True` asks for its Grad-CAM maps x P(fake) instead. Reals without a
mask file count as all-zero masks (a pristine face has no manipulated pixel); fakes
without one are left out of the pixel metrics (where they were altered is unknown).

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

import cv2
import numpy as np
import torch

from ..data.dataset import FaceCropDataset, load_mask
from ..data.manifest import Manifest
from ..device import resolve_device
from ..models.video import check_video_head, frame_features, video_head_probability
from ..errors import FakescopeError
from ..models.calibration import sigmoid
from ..models.predictor import Predictor, open_detector
from .metrics import Decision, PixelMetrics, compute_metrics, compute_video_metrics


@dataclass
class Prediction:
    """One scored sample (a row of the predictions CSV)."""

    dataset: str
    path: str
    label: int
    score: float
    video: Optional[str]
    method: Optional[str]
    # with a video head: P(fake) of this sample's video by that head (the same for all its frames)
    video_score: Optional[float] = None


def video_score_source(video_head: Optional[str]) -> str:
    """What video-level scores are: "frame_mean" or "video_head:NAME"."""
    return "frame_mean" if video_head is None else f"video_head:{video_head}"


@dataclass
class DatasetResult:
    name: str
    frame: dict
    video: Optional[dict]  # None when the manifest has no video ids
    methods: dict[str, dict] = field(default_factory=dict)  # method -> frame metrics + "video" + "reals"
    pixel: Optional[dict] = None  # pixel-level metrics (metrics.PixelMetrics) where the manifest has masks
    pixel_note: Optional[str] = None  # why a dataset with masks has no pixel metrics
    pixel_accumulator: Optional[PixelMetrics] = field(default=None, repr=False)  # to pool across datasets

    def to_dict(self) -> dict:
        return {**self.frame, "video": self.video, "methods": self.methods, "pixel": self.pixel,
                "pixel_note": self.pixel_note}


@dataclass
class EvaluationResult:
    checkpoint: str  # what the user asked for: a shipped name or a checkpoint path
    model: dict  # name, arch, provenance of the loaded detector
    datasets: list[DatasetResult]
    predictions: list[Prediction]
    pooled: dict  # frame metrics over all datasets' samples together
    pooled_video: Optional[dict]  # video metrics over the datasets that have video ids
    logloss_clip: Optional[float] = None
    pooled_pixel: Optional[dict] = None  # pixel metrics over the datasets that have them
    video_head: Optional[str] = None  # the model's video head that gave the video scores; None: mean frame P(fake)
    warnings: list[str] = field(default_factory=list)  # e.g. rows the model was trained or validated on
    band: float = 0.0  # the uncertain band the verdict metrics used (the threshold is in every metrics dict)

    def dataset(self, name: str) -> DatasetResult:
        return next(d for d in self.datasets if d.name == name)

    def predictions_of(self, name: str) -> list[Prediction]:
        return [p for p in self.predictions if p.dataset == name]


def _check_files(name: str, manifest: Manifest) -> None:
    """Fail before scoring, with one line, rather than deep inside the data loader."""
    missing = [s.path for s in manifest if not manifest.resolve(s.path).is_file()]
    missing += [s.mask for s in manifest if s.mask and not manifest.resolve(s.mask).is_file()]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise FakescopeError(f"dataset {name!r}: {manifest.resolve(missing[0])} does not exist{more}", code="not_found")


def _video_keys(predictions: Sequence[Prediction]) -> list:
    # (dataset, method, video): ids are only unique within a method in FF++-style manifests
    # (ffpp-crops uses "900" for a real video and for the Deepfakes fake made from it).
    return [(p.dataset, p.method, p.video) for p in predictions]


def _video_metrics(predictions: Sequence[Prediction], logloss_clip: Optional[float],
                   video_head: bool = False, decision: Decision = Decision()) -> Optional[dict]:
    """Video metrics of the mean frame P(fake), or (`video_head`) of each prediction's `video_score`:
    equal over a video's frames, so the per-video mean of it is the head's score."""
    if not any(p.video is not None for p in predictions):
        return None
    scores = [p.video_score if video_head else p.score for p in predictions]
    return compute_video_metrics(
        [p.label for p in predictions], scores, [p.video for p in predictions],
        keys=_video_keys(predictions), logloss_clip=logloss_clip, decision=decision,
    )


def _metrics(predictions: Sequence[Prediction], logloss_clip: Optional[float],
             video_head: bool = False, decision: Decision = Decision()) -> tuple[dict, Optional[dict]]:
    frame = compute_metrics([p.label for p in predictions], [p.score for p in predictions], logloss_clip=logloss_clip,
                            decision=decision)
    return frame, _video_metrics(predictions, logloss_clip, video_head, decision)


def per_method(predictions: Sequence[Prediction], logloss_clip: Optional[float] = None,
               video_head: bool = False, decision: Decision = Decision()) -> dict[str, dict]:
    """Each manipulation method's fakes vs the reals (see the module docstring for which reals)."""
    reals = [p for p in predictions if p.label == 0]
    methods = sorted({p.method for p in predictions if p.label == 1 and p.method is not None})
    out = {}
    for method in methods:
        own_reals = [p for p in reals if p.method == method]
        chosen = own_reals or reals
        subset = [p for p in predictions if p.label == 1 and p.method == method] + chosen
        frame, video = _metrics(subset, logloss_clip, video_head, decision)
        out[method] = {**frame, "video": video, "reals": "same method" if own_reals else "all"}
    return out


def _score_with_masks(
    name: str, manifest: Manifest, predictor, grad_cam_masks: bool, num_workers: int,
    features: Optional[list] = None,
) -> tuple[np.ndarray, Optional[PixelMetrics], Optional[dict], Optional[str]]:
    """Scores (as `Predictor.predict` gives them) and, from the same forward passes, pixel metrics
    of the predicted masks against the manifest's masks: (scores, accumulator, extra counts, note).
    A `features` list is filled with each sample's (D,) features (for a video head)."""
    from PIL import Image

    from ..scan.explain import uncrop
    from ..scan.faces import crop_square

    detector = predictor.detector
    pixels = PixelMetrics()
    counts = {"source": None, "n_real_implied": 0, "n_fake_without_mask": 0}
    scores = []
    source_known = False
    try:
        for batch, maps in predictor.dataset_batches(FaceCropDataset(manifest, detector.preprocess), num_workers,
                                                     maps=True, grad_cam=grad_cam_masks):
            if features is not None:
                features.extend(frame_features(maps.output, detector.name))
            scores.append(np.asarray(maps.scores, dtype=float))
            if not source_known:
                counts["source"], source_known = maps.source, True
            if maps.source is None:
                continue
            for j, index in enumerate(batch["index"].tolist()):
                sample = manifest.samples[index]
                if sample.mask is None and sample.label == 1:
                    counts["n_fake_without_mask"] += 1
                    continue
                image_path = manifest.resolve(sample.path)
                with Image.open(image_path) as image:
                    width, height = image.size
                square = crop_square((0.0, 0.0, float(width), float(height)), 1.0)  # as load_face_crop cuts it
                side = square[2] - square[0]
                predicted = uncrop(maps.at(j, side), square, (height, width))
                if sample.mask is None:  # a real without a mask file: nothing in it is manipulated
                    truth = np.zeros((height, width), bool)
                    counts["n_real_implied"] += 1
                else:
                    truth = load_mask(manifest.resolve(sample.mask))
                if predicted.shape != truth.shape:
                    predicted = np.clip(cv2.resize(predicted, (truth.shape[1], truth.shape[0]),
                                                   interpolation=cv2.INTER_LINEAR), 0.0, 1.0)
                pixels.add(predicted, truth, sample.label)
    except OSError as exc:
        raise FakescopeError(f"dataset {name!r}: cannot read an image or mask: {exc}", code="corrupt") from None
    all_scores = np.concatenate(scores) if scores else np.zeros(0)
    if counts["source"] is None:
        masked = sum(s.mask is not None for s in manifest)
        note = (f"{name}: {masked} sample(s) have ground-truth masks, but model {detector.name!r} has no mask head, "
                "so pixel metrics are skipped (--grad-cam-masks scores its Grad-CAM maps x P(fake) instead)")
        return all_scores, None, None, note
    return all_scores, pixels, counts, None


def video_head_scores(model, samples: Sequence, features: Sequence[np.ndarray], head: str) -> list[float]:
    """Per sample, the P(fake) of its video by the video head `head` (see the module docstring).

    A video is (method, video id) as for the mean; its frames go in `frame` order (manifest
    order when any lacks one); a sample without a video id is scored alone."""
    groups: dict = {}
    for i, sample in enumerate(samples):
        key = (sample.method, sample.video) if sample.video is not None else object()  # a lone frame: its own video
        groups.setdefault(key, []).append(i)
    out = [0.0] * len(samples)
    was_training = model.training
    model.eval()
    try:
        for members in groups.values():
            if all(samples[i].frame is not None for i in members):
                members = sorted(members, key=lambda i: samples[i].frame)  # stable: ties keep manifest order
            probability, _ = video_head_probability(model, np.stack([features[i] for i in members]), head)
            for i in members:
                out[i] = probability
    finally:
        model.train(was_training)
    return out


def _whole_image_scores(name: str, manifest: Manifest, detector, predictor, views: int) -> np.ndarray:
    """P(generated) of every picture through the scanner's own whole-image scoring."""
    from ..scan.whole_image import WholeImageScorer

    scorer = WholeImageScorer(detector.name, predictor.device, views=views, predictor=predictor)
    return sigmoid(scorer.manifest_logits(manifest, name))


def evaluate(
    checkpoint_or_name: str | Path,
    datasets: Sequence[tuple[str, Manifest]],
    device: str | torch.device = "auto",
    batch_size: int = 64,
    num_workers: int = 0,
    logloss_clip: Optional[float] = None,
    grad_cam_masks: bool = False,
    video_head: Optional[str] = None,
    backend: str = "auto",
    image_views: int = 5,
) -> EvaluationResult:
    """Score every sample of every (name, manifest) with the detector's own preprocessing;
    pixel metrics too where a manifest has masks, video scores from the model's video head
    `video_head` if given (see the module docstring). `backend` as for scan: "auto" runs a
    shipped model's (or a `.onnx` file's) ONNX Runtime graph on the CPU unless Grad-CAM masks or
    a video head need PyTorch. A whole-image detector (preprocess.subject "image") scores each
    picture as `scan --mode image` does: the mean logit of `image_views` views cut at its own
    resolution (scan/whole_image.py)."""
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
    detector = open_detector(checkpoint_or_name, backend, torch_device,
                             need_torch=video_head is not None or grad_cam_masks)
    predictor = Predictor(detector, device=torch_device, batch_size=batch_size, backend=backend,
                          grad_cam=grad_cam_masks)
    if video_head is not None:
        check_video_head(detector.model, detector.arch, video_head)
    use_head = video_head is not None
    decision = Decision(detector.threshold, detector.band)
    warnings = leakage_warnings(detector, datasets)

    predictions: list[Prediction] = []
    results: list[DatasetResult] = []
    for name, manifest in datasets:
        pixel = pixel_note = accumulator = None
        features: Optional[list] = [] if use_head else None
        if any(s.mask is not None for s in manifest):
            scores, accumulator, counts, pixel_note = _score_with_masks(
                name, manifest, predictor, grad_cam_masks, num_workers, features,
            )
            if accumulator is not None:
                pixel = {**accumulator.result(), **counts}
        elif detector.preprocess.subject == "image" and not use_head:
            scores = _whole_image_scores(name, manifest, detector, predictor, image_views)
        else:
            try:
                predicted = predictor.predict(FaceCropDataset(manifest, detector.preprocess), features=use_head,
                                              num_workers=num_workers)
                scores = predicted.scores
                if use_head:
                    features.extend(predicted.features)
            except OSError as exc:  # an unreadable or truncated image (PIL raises OSError subclasses)
                raise FakescopeError(f"dataset {name!r}: cannot read an image: {exc}", code="corrupt") from None
        video_scores = (video_head_scores(detector.model, manifest.samples, features, video_head) if use_head
                        else [None] * len(manifest))
        rows = [
            Prediction(name, str(manifest.resolve(s.path)), s.label, float(score), s.video, s.method, video_score)
            for s, score, video_score in zip(manifest.samples, np.asarray(scores, dtype=float), video_scores)
        ]
        frame, video = _metrics(rows, logloss_clip, use_head, decision)
        results.append(DatasetResult(
            name, frame, video, per_method(rows, logloss_clip, use_head, decision), pixel, pixel_note, accumulator,
        ))
        predictions.extend(rows)

    pooled = compute_metrics([p.label for p in predictions], [p.score for p in predictions], logloss_clip=logloss_clip,
                             decision=decision)
    with_videos = {r.name for r in results if r.video is not None}
    pooled_video = _video_metrics([p for p in predictions if p.dataset in with_videos], logloss_clip, use_head,
                                  decision)
    pooled_pixel = None
    with_pixels = [r for r in results if r.pixel_accumulator is not None]
    if with_pixels:
        merged = PixelMetrics()
        for r in with_pixels:
            merged.merge(r.pixel_accumulator)
        pooled_pixel = {**merged.result(), "datasets": [r.name for r in with_pixels],
                        "source": with_pixels[0].pixel["source"]}
    return EvaluationResult(
        checkpoint=str(checkpoint_or_name),
        model={"name": detector.name, "arch": detector.arch, "provenance": detector.provenance},
        datasets=results, predictions=predictions, pooled=pooled, pooled_video=pooled_video,
        logloss_clip=logloss_clip, pooled_pixel=pooled_pixel, video_head=video_head, warnings=warnings,
        band=decision.band,
    )


def leakage_warnings(detector, datasets: Sequence[tuple[str, Manifest]]) -> list[str]:
    """One line per dataset with rows whose image the checkpoint records as training or
    validation data (data/fingerprints.py): numbers on them are inflated."""
    from ..data.fingerprints import overlap, recorded

    known = recorded(detector.provenance)
    lines = []
    for name, manifest in datasets:
        found = overlap((manifest.resolve(s.path) for s in manifest), known)
        parts = {"train": "trained on", "val": "validated on (to choose its epoch or calibration)"}
        for part, count in sorted(found.items()):
            lines.append(f"{name}: {count} of {len(manifest)} rows are images model {detector.name!r} was "
                         f"{parts.get(part, part)} ({part}); metrics on them are inflated, evaluate on held-out rows")
    return lines
