"""Detection metrics on (labels, scores): labels 1 = fake, 0 = real; scores are P(fake).

Every metric is a pure function returning a float, or None where the input
cannot define it (e.g. AUC with one class). `compute_metrics` returns all of
them under stable keys plus, under "undefined", the reason for each None, so
a report says *why* a number is missing instead of printing a silent 0.5.

Conventions (the report repeats them):
  * threshold: a score >= the threshold is called fake (as `fakescope scan` does): 0.5, or the
    model's own where its checkpoint has a calibration (`Decision`). `false_alarm` is the share
    of reals called fake there; with an uncertain band, `uncertain_share` is the share of scores
    within it and `acc_decided` the accuracy of the others (what a user acting only on FAKE /
    REAL verdicts gets);
  * log loss: natural log, probabilities clipped to [eps, 1 - eps] with
    eps = 1e-15. DFDC was scored with Kaggle's log-loss metric, whose stated
    clip is max(min(p, 1 - 1e-15), 1e-15); we found no public source giving
    the DFDC scorer a different constant, so 1e-15 is an informed assumption.
    `clip=0.01` additionally clips to [0.01, 0.99] first, as some toolkits do
    before scoring (an option, never the default);
  * EER: where FPR = FNR on the ROC curve, linearly interpolated between the
    two ROC points whose FPR - FNR changes sign;
  * TPR at FPR x: the ROC curve read at FPR = x, linearly interpolated between
    its vertices (the higher point of a vertical step when x falls on it);
  * ECE: 15 equal-width bins of P(fake) on [0, 1] (the last bin includes 1.0);
    each bin compares its mean P(fake) with its fraction of fakes, weighted by
    its share of the samples. This is the calibration of P(fake), not the
    "top-label confidence" ECE of Guo et al. (which bins max(p, 1 - p)).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np
from sklearn import metrics as skm

from ..errors import FakescopeError

THRESHOLD = 0.5
LOGLOSS_EPS = 1e-15
ECE_BINS = 15
METRIC_KEYS = [
    "auc", "acc", "balanced_acc", "eer", "ap", "logloss", "precision", "recall", "f1",
    "tpr_at_fpr_1", "tpr_at_fpr_5", "ece", "threshold", "false_alarm", "uncertain_share", "acc_decided",
    "n", "n_fake", "n_real",
]
# The headline subset (tables, the JSON's top level).
HEADLINE_KEYS = ["auc", "acc", "eer", "ap", "logloss"]


class MetricInputError(FakescopeError, ValueError):
    """Labels or scores that no metric should silently accept (NaN, not 0/1, lengths differ)."""

    code = "bad_metric_input"


Result = tuple[Optional[float], Optional[str]]  # (value, why it is None)


@dataclass(frozen=True)
class Decision:
    """How scores become verdicts: FAKE at >= threshold; "uncertain" within `band` below it."""

    threshold: float = THRESHOLD
    band: float = 0.0


def _false_alarm(y, p, decision: Decision) -> Result:
    reals = p[y == 0]
    return (None, "no real samples") if reals.size == 0 else (float(np.mean(reals >= decision.threshold)), None)


def _uncertain_share(y, p, decision: Decision) -> Result:
    why = _nonempty(y)
    return (None, why) if why else (float(np.mean(_in_band(p, decision))), None)


def _in_band(p: np.ndarray, decision: Decision) -> np.ndarray:
    if decision.band <= 0:
        return np.zeros(p.shape, bool)
    return (p < decision.threshold) & (p >= decision.threshold - decision.band)


def _acc_decided(y, p, decision: Decision) -> Result:
    if y.size == 0:
        return None, "no samples"
    decided = ~_in_band(p, decision)
    if not decided.any():
        return None, "every score is within the uncertain band"
    return float(np.mean((p[decided] >= decision.threshold) == (y[decided] == 1))), None


def _arrays(labels: Sequence, scores: Sequence) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels, dtype=float).ravel()
    p = np.asarray(scores, dtype=float).ravel()
    if y.shape != p.shape:
        raise MetricInputError(f"{y.size} labels but {p.size} scores")
    if not np.all((y == 0) | (y == 1)):
        raise MetricInputError("labels must be 0 (real) or 1 (fake)")
    if not np.all(np.isfinite(p)):
        raise MetricInputError(f"{int(np.sum(~np.isfinite(p)))} score(s) are NaN or infinite")
    if np.any((p < 0) | (p > 1)):
        raise MetricInputError("scores must be probabilities P(fake) in [0, 1]")
    return y.astype(int), p


def _both_classes(y: np.ndarray) -> Optional[str]:
    """Why a ranking metric is undefined here, or None when it is defined."""
    if y.size == 0:
        return "no samples"
    if y.min() == y.max():
        return f"only {'fake' if y[0] == 1 else 'real'} samples: needs both classes"
    return None


def _nonempty(y: np.ndarray) -> Optional[str]:
    return "no samples" if y.size == 0 else None


def _counts(y: np.ndarray, p: np.ndarray, threshold: float) -> tuple[int, int, int, int]:
    pred = p >= threshold
    tp = int(np.sum(pred & (y == 1)))
    fp = int(np.sum(pred & (y == 0)))
    fn = int(np.sum(~pred & (y == 1)))
    tn = int(np.sum(~pred & (y == 0)))
    return tp, fp, fn, tn


def _roc(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # Keep every vertex: interpolation must not skip the points collinear ones hide.
    fpr, tpr, _ = skm.roc_curve(y, p, drop_intermediate=False)
    return fpr, tpr


# ----------------------------------------------------------------------------- (value, reason) forms


def _auc(y, p) -> Result:
    why = _both_classes(y)
    return (None, why) if why else (float(skm.roc_auc_score(y, p)), None)


def _acc(y, p, threshold: float = THRESHOLD) -> Result:
    why = _nonempty(y)
    return (None, why) if why else (float(np.mean((p >= threshold) == (y == 1))), None)


def _balanced_acc(y, p, threshold: float = THRESHOLD) -> Result:
    # Mean of the two per-class recalls; with one class it would just be accuracy
    # under another name, so it is reported as undefined instead.
    why = _both_classes(y)
    if why:
        return None, why
    return float(skm.balanced_accuracy_score(y, (p >= threshold).astype(int))), None


def _eer(y, p) -> Result:
    why = _both_classes(y)
    if why:
        return None, why
    fpr, tpr = _roc(y, p)
    diff = fpr - (1.0 - tpr)  # rises from -1 (FPR 0, FNR 1) to +1 (FPR 1, FNR 0)
    i = int(np.argmax(diff >= 0))
    if diff[i] == 0 or i == 0:
        return float(fpr[i]), None
    # FPR and FNR are both linear along the segment (i-1, i), so they meet at one point.
    t = -diff[i - 1] / (diff[i] - diff[i - 1])
    return float(fpr[i - 1] + t * (fpr[i] - fpr[i - 1])), None


def _ap(y, p) -> Result:
    why = _both_classes(y)
    return (None, why) if why else (float(skm.average_precision_score(y, p)), None)


def _logloss(y, p, eps: float = LOGLOSS_EPS, clip: Optional[float] = None) -> Result:
    why = _nonempty(y)
    if why:
        return None, why
    # sklearn's log_loss no longer takes eps (it clips at machine epsilon), so the DFDC clip is
    # applied here. Clipping the probability given to the true class, q, equals clipping p to
    # [eps, 1 - eps] but stays exact in floating point (1 - (1 - 1e-15) is not 1e-15).
    q = np.where(y == 1, p, 1.0 - p)
    if clip is not None:
        q = np.clip(q, clip, 1.0 - clip)
    q = np.clip(q, eps, 1.0 - eps)
    return float(-np.mean(np.log(q))), None


def _precision(y, p, threshold: float = THRESHOLD) -> Result:
    if y.size == 0:
        return None, "no samples"
    tp, fp, _, _ = _counts(y, p, threshold)
    return (None, "no sample is called fake (0/0)") if tp + fp == 0 else (tp / (tp + fp), None)


def _recall(y, p, threshold: float = THRESHOLD) -> Result:
    if y.size == 0:
        return None, "no samples"
    tp, _, fn, _ = _counts(y, p, threshold)
    return (None, "no fake samples (0/0)") if tp + fn == 0 else (tp / (tp + fn), None)


def _f1(y, p, threshold: float = THRESHOLD) -> Result:
    # 2TP / (2TP + FP + FN): defined (possibly 0) whenever there is a fake or a fake call.
    if y.size == 0:
        return None, "no samples"
    tp, fp, fn, _ = _counts(y, p, threshold)
    denominator = 2 * tp + fp + fn
    return (None, "no fake samples and no sample called fake (0/0)") if denominator == 0 else (2 * tp / denominator, None)


def _tpr_at_fpr(y, p, target: float) -> Result:
    if not 0.0 <= target <= 1.0:
        raise MetricInputError(f"FPR target must be in [0, 1], got {target}")
    why = _both_classes(y)
    if why:
        return None, why
    fpr, tpr = _roc(y, p)
    j = int(np.searchsorted(fpr, target, side="right")) - 1  # last vertex with FPR <= target: its TPR is the highest there
    if fpr[j] == target or j == fpr.size - 1:
        return float(tpr[j]), None
    t = (target - fpr[j]) / (fpr[j + 1] - fpr[j])
    return float(tpr[j] + t * (tpr[j + 1] - tpr[j])), None


def _ece(y, p, bins: int = ECE_BINS) -> Result:
    why = _nonempty(y)
    if why:
        return None, why
    index = np.minimum((p * bins).astype(int), bins - 1)  # bin b holds [b/bins, (b+1)/bins); 1.0 joins the last
    total = 0.0
    for b in np.unique(index):
        in_bin = index == b
        total += in_bin.mean() * abs(p[in_bin].mean() - y[in_bin].mean())
    return float(total), None


# ----------------------------------------------------------------------------- public functions


def _public(fn: Callable[..., Result]) -> Callable[..., Optional[float]]:
    def metric(labels: Sequence, scores: Sequence, *args, **kwargs) -> Optional[float]:
        return fn(*_arrays(labels, scores), *args, **kwargs)[0]

    metric.__name__ = fn.__name__.lstrip("_")
    metric.__doc__ = f"{metric.__name__} of P(fake) scores, or None where the input cannot define it."
    return metric


auc = _public(_auc)
accuracy = _public(_acc)
balanced_accuracy = _public(_balanced_acc)
eer = _public(_eer)
average_precision = _public(_ap)
log_loss = _public(_logloss)
precision = _public(_precision)
recall = _public(_recall)
f1 = _public(_f1)
tpr_at_fpr = _public(_tpr_at_fpr)
expected_calibration_error = _public(_ece)


def roc_points(labels: Sequence, scores: Sequence) -> Optional[tuple[np.ndarray, np.ndarray]]:
    """(FPR, TPR) vertices for plotting; None with one class."""
    y, p = _arrays(labels, scores)
    return None if _both_classes(y) else _roc(y, p)


def compute_metrics(labels: Sequence, scores: Sequence, logloss_clip: Optional[float] = None,
                    decision: Decision = Decision()) -> dict:
    """Every metric under the stable METRIC_KEYS, plus "undefined": {key: reason} for each None.

    `logloss_clip=0.01` clips predictions to [0.01, 0.99] for the log loss only. The metrics at a
    threshold (acc, balanced_acc, precision, recall, f1, false_alarm) use `decision.threshold`.
    """
    y, p = _arrays(labels, scores)
    t = decision.threshold
    results: dict[str, Result] = {
        "auc": _auc(y, p),
        "acc": _acc(y, p, t),
        "balanced_acc": _balanced_acc(y, p, t),
        "eer": _eer(y, p),
        "ap": _ap(y, p),
        "logloss": _logloss(y, p, clip=logloss_clip),
        "precision": _precision(y, p, t),
        "recall": _recall(y, p, t),
        "f1": _f1(y, p, t),
        "tpr_at_fpr_1": _tpr_at_fpr(y, p, 0.01),
        "tpr_at_fpr_5": _tpr_at_fpr(y, p, 0.05),
        "ece": _ece(y, p),
        "threshold": (float(t), None),
        "false_alarm": _false_alarm(y, p, decision),
        "uncertain_share": _uncertain_share(y, p, decision),
        "acc_decided": _acc_decided(y, p, decision),
    }
    out: dict = {key: value for key, (value, _) in results.items()}
    out.update(n=int(y.size), n_fake=int(np.sum(y == 1)), n_real=int(np.sum(y == 0)))
    out["undefined"] = {key: why for key, (_, why) in results.items() if why}
    return out


# ----------------------------------------------------------------------------- video level


class _LoneFrame:
    """Group key of a frame without a video id: equal only to itself, so never to a real id."""

    def __init__(self, index: int):
        self.index = index

    def __repr__(self) -> str:
        return f"<frame {self.index} without a video id>"


def group_by_video(
    labels: Sequence, scores: Sequence, videos: Sequence, keys: Optional[Sequence] = None,
) -> tuple[list, np.ndarray, np.ndarray, np.ndarray]:
    """Frame scores averaged per video: (video ids, labels, mean P(fake), frame counts).

    A video is identified by `keys[i]` when given (the runner passes
    (method, video), because FF++-style manifests reuse one id for a real video
    and the fakes made from it), else by `videos[i]`. Frames without a video id
    (None or NaN) count as one-frame videos of their own. A video whose frames
    carry both labels is an error: its label would be arbitrary.
    """
    y, p = _arrays(labels, scores)
    videos = list(videos)
    ids = list(keys) if keys is not None else videos
    if len(videos) != y.size or len(ids) != y.size:
        raise MetricInputError(f"{y.size} labels but {len(videos)} video ids")
    groups: dict = {}
    for i, (video, key) in enumerate(zip(videos, ids)):
        missing = video is None or (isinstance(video, float) and math.isnan(video))
        groups.setdefault(_LoneFrame(i) if missing else key, []).append(i)
    out_ids, out_labels, out_scores, out_counts = [], [], [], []
    for key, members in groups.items():
        frame_labels = set(y[members].tolist())
        if len(frame_labels) > 1:
            raise MetricInputError(f"video {key!r} has both real and fake frames; a video needs one label")
        out_ids.append(None if isinstance(key, _LoneFrame) else key)
        out_labels.append(frame_labels.pop())
        out_scores.append(float(p[members].mean()))
        out_counts.append(len(members))
    return out_ids, np.array(out_labels, dtype=int), np.array(out_scores, dtype=float), np.array(out_counts, dtype=int)


def compute_video_metrics(
    labels: Sequence, scores: Sequence, videos: Sequence, keys: Optional[Sequence] = None,
    logloss_clip: Optional[float] = None, decision: Decision = Decision(),
) -> dict:
    """`compute_metrics` on per-video mean P(fake); "n" counts videos and "n_frames" frames."""
    _, video_labels, video_scores, counts = group_by_video(labels, scores, videos, keys)
    out = compute_metrics(video_labels, video_scores, logloss_clip=logloss_clip, decision=decision)
    out["n_frames"] = int(counts.sum())
    return out


# ----------------------------------------------------------------------------- pixel level (forgery masks)

# Pixel AUC is read from histograms of P(manipulated) with this many equal-width bins on [0, 1]:
# every pixel of every masked sample counts, in constant memory; two pixels in one bin (closer
# than 1/65536) count as a tie, half a pair, as tied scores do in the exact AUC.
PIXEL_AUC_BINS = 1 << 16
PIXEL_KEYS = ["pixel_acc", "pixel_auc", "iou", "fp_pixel_rate", "n", "n_fake", "n_real", "n_iou", "n_pixels"]


def _pixel_arrays(probability, truth) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(probability, dtype=np.float64)
    t = np.asarray(truth)
    if p.shape != t.shape:
        raise MetricInputError(f"predicted mask {p.shape} and ground-truth mask {t.shape} differ in shape")
    if not np.all(np.isfinite(p)) or np.any((p < 0) | (p > 1)):
        raise MetricInputError("predicted masks must be probabilities P(manipulated) in [0, 1]")
    if t.dtype != bool:
        if not np.all((t == 0) | (t == 1)):
            raise MetricInputError("ground-truth masks must be 0/1 (or bool): binarise them first")
        t = t.astype(bool)
    return p.ravel(), t.ravel()


def mask_iou(probability, truth, threshold: float = THRESHOLD) -> Optional[float]:
    """|predicted ∩ true| / |predicted ∪ true| of the manipulated class, predicted = P >= threshold;
    None when both are empty (nothing to overlap)."""
    p, t = _pixel_arrays(probability, truth)
    predicted = p >= threshold
    union = int(np.sum(predicted | t))
    return None if union == 0 else float(np.sum(predicted & t)) / union


def mask_f1(probability, truth, threshold: float = THRESHOLD) -> Optional[float]:
    """Pixel F1 (Dice) of the manipulated class, predicted = P >= threshold; None when both are empty."""
    p, t = _pixel_arrays(probability, truth)
    predicted = p >= threshold
    total = int(predicted.sum()) + int(t.sum())
    return None if total == 0 else 2.0 * float(np.sum(predicted & t)) / total


def mask_auc(probability, truth) -> Optional[float]:
    """Pixel AUC of one map against its mask (binned as `PixelMetrics`, ties count half); None when the
    mask is all one class."""
    p, t = _pixel_arrays(probability, truth)
    bins = np.minimum((p * PIXEL_AUC_BINS).astype(np.int64), PIXEL_AUC_BINS - 1)
    positive = np.bincount(bins[t], minlength=PIXEL_AUC_BINS)
    negative = np.bincount(bins[~t], minlength=PIXEL_AUC_BINS)
    return _histogram_auc(positive, negative)


def _histogram_auc(positive: np.ndarray, negative: np.ndarray) -> Optional[float]:
    """AUC from per-bin counts of positives and negatives (bins in ascending score order); ties count half."""
    n_pos, n_neg = int(positive.sum()), int(negative.sum())
    if n_pos == 0 or n_neg == 0:
        return None
    below = np.cumsum(negative) - negative  # negatives in strictly lower bins
    pairs = np.sum(positive.astype(np.float64) * (below + 0.5 * negative))
    return float(pairs / (float(n_pos) * float(n_neg)))


class PixelMetrics:
    """Pixel-level metrics of predicted forgery masks against ground-truth masks, streamed
    one sample at a time (`add`), mergeable across datasets (`merge`), read with `result()`.

    Definitions (threshold 0.5: a pixel with P(manipulated) >= 0.5 is called manipulated):
      pixel_acc      share of all pixels of all masked samples called right (every pixel weighs the same);
      pixel_auc      ROC AUC over all those pixels, manipulated vs not (from PIXEL_AUC_BINS-bin histograms);
      iou            mean over fake samples whose mask has a manipulated pixel of IoU(called, true);
                     a fake whose mask is empty has no region to find and is counted in n_fake_empty;
      fp_pixel_rate  over real samples: the share of their not-manipulated pixels called manipulated
                     (a real's mask is all zero, so IoU would be 0 or undefined: this says how much
                     of a pristine face the model marks instead).
    """

    def __init__(self, threshold: float = THRESHOLD, bins: int = PIXEL_AUC_BINS):
        self.threshold = threshold
        self.bins = bins
        self.positive = np.zeros(bins, np.int64)
        self.negative = np.zeros(bins, np.int64)
        self.correct = 0
        self.pixels = 0
        self.ious: list[float] = []
        self.real_false_positive = 0
        self.real_negative = 0
        self.n_fake = self.n_real = self.n_fake_empty = 0

    def add(self, probability, truth, label: int) -> None:
        """One sample: its predicted P(manipulated) map, its 0/1 ground-truth mask (same shape), its label."""
        if label not in (0, 1):
            raise MetricInputError("labels must be 0 (real) or 1 (fake)")
        p, t = _pixel_arrays(probability, truth)
        called = p >= self.threshold
        self.correct += int(np.sum(called == t))
        self.pixels += int(p.size)
        index = np.minimum((p * self.bins).astype(np.int64), self.bins - 1)
        self.positive += np.bincount(index[t], minlength=self.bins)
        self.negative += np.bincount(index[~t], minlength=self.bins)
        if label == 1:
            self.n_fake += 1
            if t.any():
                self.ious.append(float(np.sum(called & t)) / float(np.sum(called | t)))
            else:
                self.n_fake_empty += 1
        else:
            self.n_real += 1
            self.real_false_positive += int(np.sum(called & ~t))
            self.real_negative += int(np.sum(~t))

    def merge(self, other: "PixelMetrics") -> "PixelMetrics":
        if other.bins != self.bins or other.threshold != self.threshold:
            raise ValueError("cannot merge pixel metrics with different bins or thresholds")
        self.positive += other.positive
        self.negative += other.negative
        self.correct += other.correct
        self.pixels += other.pixels
        self.ious.extend(other.ious)
        self.real_false_positive += other.real_false_positive
        self.real_negative += other.real_negative
        self.n_fake += other.n_fake
        self.n_real += other.n_real
        self.n_fake_empty += other.n_fake_empty
        return self

    def result(self) -> dict:
        """PIXEL_KEYS plus n_fake_empty and "undefined": {key: reason} for each None."""
        undefined: dict[str, str] = {}
        acc = self.correct / self.pixels if self.pixels else None
        if acc is None:
            undefined["pixel_acc"] = "no masked samples"
        auc = _histogram_auc(self.positive, self.negative)
        if auc is None:
            only = "manipulated" if self.positive.sum() else "pristine"
            undefined["pixel_auc"] = f"every pixel is {only}: needs both" if self.pixels else "no masked samples"
        iou = float(np.mean(self.ious)) if self.ious else None
        if iou is None:
            undefined["iou"] = "no fake sample with a manipulated pixel in its mask"
        fp = self.real_false_positive / self.real_negative if self.real_negative else None
        if fp is None:
            undefined["fp_pixel_rate"] = "no real samples"
        return {
            "pixel_acc": acc, "pixel_auc": auc, "iou": iou, "fp_pixel_rate": fp,
            "n": self.n_fake + self.n_real, "n_fake": self.n_fake, "n_real": self.n_real, "n_iou": len(self.ious),
            "n_fake_empty": self.n_fake_empty, "n_pixels": self.pixels, "undefined": undefined,
        }


def compute_pixel_metrics(probabilities: Sequence, truths: Sequence, labels: Sequence,
                          threshold: float = THRESHOLD) -> dict:
    """`PixelMetrics` over (predicted map, ground-truth mask, label) triples; maps may differ in size per sample."""
    if not (len(probabilities) == len(truths) == len(labels)):
        raise MetricInputError(
            f"{len(probabilities)} predicted masks, {len(truths)} ground truths, {len(labels)} labels")
    metrics = PixelMetrics(threshold)
    for probability, truth, label in zip(probabilities, truths, labels):
        metrics.add(probability, truth, int(label))
    return metrics.result()
