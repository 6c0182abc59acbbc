"""Whole-image scoring: a picture scored by a detector of generated images (GAN, diffusion).

These detectors look for traces of the generator in the pixels' fine structure (spectra,
patch statistics), which a resize of the whole picture to the model's input would wipe out.
So a picture is scored through several input_size x input_size views cut at its own
resolution (the views training and evaluation use: `data.images`), and its P(generated)
is the mean of the views' logits through the model's calibration. A picture smaller than the
input is upscaled once to fit (CIFAKE's 32 px images): the model was trained the same way.
"""
from __future__ import annotations

from typing import Optional

import cv2
import numpy as np

from ..data.images import crop_at, fit_min_side, view_offsets
from ..errors import FakescopeError
from ..models.calibration import sigmoid, verdict
from ..models.spec import normalise_crops
from .results import WholeImageResult

DEFAULT_VIEWS = 5


def cut_views(image: np.ndarray, size: int, count: int = DEFAULT_VIEWS):
    """(views, boxes, fitted picture): the distinct size x size RGB views `data.images` cuts for
    training and evaluation (the centre, the corners, then a grid; `view_offsets`), as
    (left, top, right, bottom) boxes in `fitted` (the picture, upscaled only if smaller than a view)."""
    fitted = fit_min_side(image, size)
    offsets = dict.fromkeys(view_offsets(fitted.shape[0], fitted.shape[1], size, count))  # a small picture repeats
    boxes = [(left, top, left + size, top + size) for top, left in offsets]
    views = [crop_at(fitted, top, left, size) for top, left in offsets]
    return views, boxes, fitted


class WholeImageScorer:
    """One whole-image detector (a `subject: image` model) and how it turns views into a result."""

    def __init__(self, model: str, device, backend: str = "auto", views: int = DEFAULT_VIEWS,
                 threshold: Optional[float] = None, band: Optional[float] = None, predictor=None):
        """`model`: a name or checkpoint; or pass a ready `predictor` (evaluation's) and its detector's name."""
        from ..models.predictor import Predictor, open_detector

        self.detector = predictor.detector if predictor is not None else open_detector(model, backend, device)
        if self.detector.preprocess.subject != "image":
            raise FakescopeError(f"--image-model {model}: {self.detector.name} scores face crops, not whole images "
                                 "(fakescope models lists the whole-image ones)")
        self.predictor = predictor or Predictor(self.detector, device=device, backend=backend)
        self.views = views
        self.threshold = self.detector.threshold if threshold is None else threshold
        self.band = self.detector.band if band is None else band
        self.classes: Optional[list[str]] = _attribution_classes(self.detector)

    @property
    def name(self) -> str:
        return self.detector.name

    def logit(self, image: np.ndarray):
        """(the views' mean logit, the model's outputs per view, the views' boxes, the fitted picture)."""
        views, boxes, fitted = cut_views(image, self.detector.preprocess.input_size, self.views)
        out = self.predictor.run(normalise_crops(views, self.detector.preprocess))
        return float(np.mean(out["logits"])), out, boxes, fitted

    def manifest_logits(self, manifest, dataset_name: str = "") -> np.ndarray:
        """The mean view logit of every picture of a manifest, in its order (evaluate, calibrate)."""
        from ..data.images import load_image

        logits = []
        for sample in manifest.samples:
            try:
                picture = load_image(manifest.resolve(sample.path))
            except OSError as exc:
                raise FakescopeError(f"dataset {dataset_name!r}: cannot read an image: {exc}", code="corrupt") from None
            logits.append(self.logit(picture)[0])
        return np.asarray(logits, np.float32)

    def score(self, image: np.ndarray, want_map: bool = False) -> tuple[WholeImageResult, Optional[np.ndarray]]:
        """The picture's result, and (want_map, where the model has patch maps) its P(generated) map,
        picture-sized: each view's patch map placed back where the view was cut, overlaps averaged."""
        logit, out, boxes, fitted = self.logit(image)
        score = float(sigmoid(np.float32(logit)))
        result = WholeImageResult(
            model=self.name, score=score, verdict=verdict(score, self.threshold, self.band),
            from_threshold=round(score - self.threshold, 4), threshold=self.threshold, views=len(boxes),
            view_scores=[round(float(s), 6) for s in out["scores"]])
        attribution = out.get("attribution")
        if attribution is not None and self.classes:
            mean = np.asarray(attribution, np.float64).mean(axis=0)
            probabilities = np.exp(mean - mean.max())
            probabilities /= probabilities.sum()
            result.attribution = {c: round(float(p), 6) for c, p in zip(self.classes, probabilities)}
            top = int(np.argmax(probabilities))
            result.generator, result.generator_probability = self.classes[top], round(float(probabilities[top]), 6)
        patch_map = None
        if want_map and out.get("mask") is not None:
            patch_map = _place_maps(out["mask"], boxes, fitted.shape[:2], image.shape[:2])
        return result, patch_map


def _attribution_classes(detector) -> Optional[list[str]]:
    """The attribution head's class names (a PyTorch model's; an ONNX detector has none)."""
    classes = getattr(getattr(detector, "model", None), "attribution_classes", None)
    return list(classes) if classes else None


def _place_maps(mask_logits: np.ndarray, boxes, fitted_hw, image_hw) -> np.ndarray:
    total = np.zeros(fitted_hw, np.float32)
    weight = np.zeros(fitted_hw, np.float32)
    for logits, (left, top, right, bottom) in zip(np.asarray(mask_logits, np.float32), boxes):
        patch = cv2.resize(logits[0], (right - left, bottom - top), interpolation=cv2.INTER_LINEAR)
        total[top:bottom, left:right] += sigmoid(patch)
        weight[top:bottom, left:right] += 1.0
    covered = weight > 0
    total[covered] /= weight[covered]
    if total.shape != tuple(image_hw):
        total = cv2.resize(total, (image_hw[1], image_hw[0]), interpolation=cv2.INTER_LINEAR)
    return np.clip(total, 0.0, 1.0)
