"""Calibrated P(fake) and three-way verdicts, fitted on validation data and stored in the checkpoint.

Why: a network's sigmoid output is not a probability. Trained with class ratios and
synthetic fakes of its own, its 0.7 may mean "fake 95 % of the time" on one set and
"real half the time" on another. `fit_calibration` fits Platt scaling (P = sigmoid(a z + b)
on the model's fake logit z; a = 1 / temperature) by maximum likelihood on validation rows,
each (dataset, class) cell weighted equally, so P(fake) means what it says at even odds on
the kinds of data validated on. Then the verdicts: REAL below 0.5 - `band`, FAKE from
0.5 + `band` (raised where needed so that no validation dataset has more than
`max_false_alarm` of its real faces called FAKE), "uncertain" in between. Stored as the
threshold (FAKE at or above it) and the band's width below it.

The calibration is applied by a forward hook on the loaded model (`attach`), so every path
that runs the model (scan, evaluate, Grad-CAM, ONNX export) gets the calibrated logit
z' = a z + b without knowing about it. Video-head logits are not recalibrated.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional, Sequence

import numpy as np
from pydantic import BaseModel, Field

if TYPE_CHECKING:  # torch is imported only where a model runs
    import torch

FAKE, REAL, UNCERTAIN = "fake", "real", "uncertain"


class Calibration(BaseModel):
    """z' = scale x logit + bias; verdict FAKE at P(fake) >= threshold, REAL below
    threshold - band, "uncertain" in between (band 0: no uncertain verdict)."""

    scale: float = Field(1.0, gt=0)  # 1 / temperature
    bias: float = 0.0
    threshold: float = Field(0.5, gt=0, lt=1)
    band: float = Field(0.0, ge=0, lt=1)  # width of the uncertain band just below the threshold
    fitted_on: dict[str, Any] = {}  # what it was fitted on and what it changed (rows, log loss, ECE)

    @property
    def is_identity(self) -> bool:
        return self.scale == 1.0 and self.bias == 0.0

    def apply(self, logits: torch.Tensor) -> torch.Tensor:
        return logits * self.scale + self.bias if not self.is_identity else logits


class HasCalibration:
    """The verdict rule of a loaded model (PyTorch or ONNX), from its `calibration`."""

    calibration: Calibration

    @property
    def threshold(self) -> float:
        return self.calibration.threshold

    @property
    def band(self) -> float:
        return self.calibration.band


def verdict(score: Optional[float], threshold: float, band: float = 0.0) -> Optional[str]:
    """"fake" (score >= threshold), "uncertain" (within `band` below it) or "real"; None for no score."""
    if score is None:
        return None
    if score >= threshold:
        return FAKE
    return UNCERTAIN if score >= threshold - band else REAL


def attach(model: torch.nn.Module, calibration: Calibration):
    """Make `model`'s "logits" output calibrated (a forward hook); returns the hook handle."""

    def calibrate(_module, _inputs, output):
        if isinstance(output, dict) and "logits" in output:
            output = dict(output)
            output["logits"] = calibration.apply(output["logits"])
        return output

    return model.register_forward_hook(calibrate)


def sigmoid(z: np.ndarray) -> np.ndarray:
    """P from a logit, in float64 (the one sigmoid of the NumPy paths: predictor, export, fitting)."""
    return 1.0 / (1.0 + np.exp(-np.asarray(z, dtype=np.float64)))


def _ece(probs: np.ndarray, labels: np.ndarray, weights: np.ndarray, bins: int = 15) -> float:
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(probs, edges[1:-1]), 0, bins - 1)
    total, error = weights.sum(), 0.0
    for b in range(bins):
        sel = which == b
        if sel.any():
            w = weights[sel]
            error += w.sum() / total * abs(np.average(labels[sel], weights=w) - np.average(probs[sel], weights=w))
    return float(error)


def _log_loss(probs: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> float:
    p = np.clip(probs, 1e-15, 1 - 1e-15)
    return float(np.average(-(labels * np.log(p) + (1 - labels) * np.log(1 - p)), weights=weights))


def cell_weights(labels: np.ndarray, groups: Sequence[str]) -> np.ndarray:
    """Weights giving every (group, class) cell the same total weight."""
    keys = [f"{g}|{int(y)}" for g, y in zip(groups, labels)]
    counts: dict[str, int] = {}
    for k in keys:
        counts[k] = counts.get(k, 0) + 1
    return np.array([1.0 / counts[k] for k in keys]) * len(keys) / len(counts)


def fit_calibration(
    logits: np.ndarray, labels: np.ndarray, groups: Optional[Sequence[str]] = None,
    max_false_alarm: float = 0.05, band: float = 0.1,
) -> Calibration:
    """Platt scaling of raw fake logits against labels (1 = fake), then the threshold and band.

    `groups` (e.g. each row's dataset) are weighted equally, and each group's classes too;
    the threshold is the smallest P(fake) >= 0.5 + band at which every group's share of reals
    at or above it is <= `max_false_alarm` (groups without reals do not constrain it); REAL
    is below 0.5 - band."""
    from sklearn.linear_model import LogisticRegression

    logits = np.asarray(logits, dtype=np.float64).ravel()
    labels = np.asarray(labels, dtype=np.float64).ravel()
    if set(np.unique(labels)) != {0.0, 1.0}:
        raise ValueError("calibration needs both real (0) and fake (1) rows")
    if not 0 <= band < 0.5:
        raise ValueError(f"band must be in [0, 0.5), got {band}")
    groups = list(groups) if groups is not None else ["all"] * len(labels)
    group_of = np.asarray(groups)
    weights = cell_weights(labels, groups)
    fit = LogisticRegression(C=np.inf, solver="lbfgs", max_iter=1000)  # no penalty: a 2-parameter fit
    fit.fit(logits[:, None], labels.astype(int), sample_weight=weights)
    scale, bias = float(fit.coef_[0, 0]), float(fit.intercept_[0])
    if scale <= 0:
        raise ValueError(f"the model ranks these rows backwards (fitted scale {scale:.3f}); not calibrating")
    before, after = sigmoid(logits), sigmoid(scale * logits + bias)

    reals_of = {g: np.sort(after[(group_of == g) & (labels == 0)]) for g in sorted(set(groups))}
    reals_of = {g: reals for g, reals in reals_of.items() if len(reals)}  # groups without reals do not constrain
    threshold = 0.5 + band
    for reals in reals_of.values():
        allowed = int(np.floor(max_false_alarm * len(reals)))  # reals that may score >= threshold
        if allowed < len(reals):
            # the (allowed+1)-th highest real must fall below the threshold
            threshold = max(threshold, float(np.nextafter(reals[len(reals) - allowed - 1], 1.0)))
    threshold = min(threshold, 0.99)
    width = threshold - (0.5 - band)  # the uncertain band: from 0.5 - band up to the threshold

    false_alarms = {g: round(float(np.mean(reals >= threshold)), 4) for g, reals in reals_of.items()}
    return Calibration(
        scale=scale, bias=bias, threshold=threshold, band=width,
        fitted_on={
            "rows": int(len(labels)), "fakes": int(labels.sum()), "groups": sorted(set(groups)),
            "weighting": "each (group, class) cell equally", "max_false_alarm": max_false_alarm,
            "log_loss_before": round(_log_loss(before, labels, weights), 4),
            "log_loss_after": round(_log_loss(after, labels, weights), 4),
            "ece_before": round(_ece(before, labels, weights), 4),
            "ece_after": round(_ece(after, labels, weights), 4),
            "false_alarm_at_threshold": false_alarms,
            "uncertain_share": round(float(np.mean((after < threshold) & (after >= threshold - width))), 4),
        },
    )
