"""Write an EvaluationResult as JSON, Markdown, a ROC-curve PNG and a predictions CSV.

JSON layout: the top level carries the frame-level metrics (auc, acc, eer, ap,
logloss and the rest of METRIC_KEYS) pooled over every sample of every dataset
evaluated; with one dataset that is simply that dataset's numbers. With several
datasets, read the per-dataset entries: a pooled AUC mixes score distributions
that differ between datasets. `video` holds the same keys at video level, pooled
over the datasets that have video ids (null when none has); `video_head` names the
model's video head that scored the videos (`evaluate --video-head`; null: mean frame
P(fake)), and `video.score_source` says the same ("frame_mean" or "video_head:NAME").
`datasets: {name: {...frame metrics, video, methods, pixel, pixel_note}}` has the
cross-dataset table; `pixel` (pixel-level mask metrics, null without masks) is at the
top level too, pooled over the datasets that have it; `checkpoint` is what was asked
for and `model` what was loaded.
"""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any, Optional

from ..data.dataset import MASK_THRESHOLD
from .metrics import ECE_BINS, HEADLINE_KEYS, LOGLOSS_EPS, PIXEL_AUC_BINS, THRESHOLD, roc_points
from .runner import EvaluationResult, video_score_source

PROTOCOL = {
    "threshold": THRESHOLD,
    "logloss": f"natural log; probabilities clipped to [{LOGLOSS_EPS:g}, 1 - {LOGLOSS_EPS:g}]",
    "ece": f"{ECE_BINS} equal-width bins of P(fake) on [0, 1], |mean P(fake) - fraction fake| weighted by bin size",
    "eer": "FPR where FPR = FNR on the ROC curve, linearly interpolated between ROC points",
    "tpr_at_fpr": "ROC curve read at FPR 1% / 5%, linearly interpolated between ROC points",
    "video": "mean frame P(fake) per video; a video is (dataset, method, video id); frames without an id are one-frame videos",
    "methods": "each method's fakes vs the reals labelled with that method if any, else vs ALL reals of the dataset (see 'reals')",
    "pooled": "top-level metrics pool every sample of every dataset",
    "pixel": (
        f"where the manifest has masks: the model's mask head (sigmoid of its logits, upsampled bilinearly to the "
        f"face image and resized to the ground-truth mask) vs the mask binarised at gray >= {MASK_THRESHOLD}; "
        f"a pixel is called manipulated at P >= {THRESHOLD}. pixel_acc and pixel_auc pool every pixel of every "
        f"masked sample (AUC from {PIXEL_AUC_BINS}-bin histograms, same-bin pixels tie); iou: mean over fakes "
        "whose mask has a manipulated pixel; fp_pixel_rate: share of reals' pixels called manipulated; reals "
        "without a mask file count as all-zero masks, fakes without one are left out; models without a mask "
        "head are skipped unless --grad-cam-masks (Grad-CAM peak-normalised x P(fake))"
    ),
}

_WINDOW_TEXT = ("videos longer than the head's window (the clip length a temporal head was trained on) are cut "
                "into consecutive near-equal windows whose P(fake) are averaged")


def _clean(value: Any) -> Any:
    """NaN/inf never reach the JSON (they are not JSON); numpy scalars become Python numbers."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def to_dict(result: EvaluationResult) -> dict:
    protocol = dict(PROTOCOL)
    if result.video_head is not None:
        protocol["video"] = (
            f"the model's video head {result.video_head!r} over each video's per-frame features, frames ordered by "
            f"the manifest's frame column; {_WINDOW_TEXT}; a video is (dataset, method, video id); frames without "
            "an id are one-frame videos")
    if result.logloss_clip is not None:
        protocol["logloss"] += f", after clipping predictions to [{result.logloss_clip:g}, {1 - result.logloss_clip:g}]"
    video = None
    if result.pooled_video is not None:
        video = {**result.pooled_video, "datasets": [d.name for d in result.datasets if d.video is not None],
                 "score_source": video_score_source(result.video_head)}
    pixel = None
    if result.pooled_pixel is not None:
        pixel = result.pooled_pixel
    return _clean({
        **result.pooled,
        "video": video,
        "pixel": pixel,
        "pooled_over": [d.name for d in result.datasets],
        "datasets": {d.name: d.to_dict() for d in result.datasets},
        "checkpoint": result.checkpoint,
        "model": result.model,
        "protocol": protocol,
        "logloss_clip": result.logloss_clip,
        "video_head": result.video_head,
        "warnings": result.warnings,
    })


def write_json(result: EvaluationResult, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(to_dict(result), indent=2, allow_nan=False, default=str) + "\n")
    return path


def write_predictions(result: EvaluationResult, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        head = result.video_head is not None  # then each row also has its video's P(fake) by the head
        writer.writerow(["dataset", "path", "label", "score", "video", "method"] + (["video_score"] if head else []))
        for p in result.predictions:
            writer.writerow([p.dataset, p.path, p.label, f"{p.score:.6f}", p.video or "", p.method or ""]
                            + ([f"{p.video_score:.6f}"] if head else []))
    return path


def write_roc(result: EvaluationResult, path: str | Path) -> Path:
    """One frame-level ROC curve per dataset, AUC in the legend."""
    # Figure + the Agg canvas directly: no pyplot, so no global backend switch in the caller's process.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure = Figure(figsize=(5.5, 5.0), dpi=120)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    axes.plot([0, 1], [0, 1], linestyle="--", color="0.6", linewidth=1, label="chance")
    for dataset in result.datasets:
        rows = result.predictions_of(dataset.name)
        curve = roc_points([p.label for p in rows], [p.score for p in rows])
        if curve is None:
            axes.plot([], [], label=f"{dataset.name} (no ROC: one class)")
            continue
        fpr, tpr = curve
        axes.plot(fpr, tpr, linewidth=1.6, label=f"{dataset.name} (AUC {dataset.frame['auc']:.3f}, n={len(rows)})")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1.01)
    axes.set_xlabel("false positive rate (reals called fake)")
    axes.set_ylabel("true positive rate (fakes caught)")
    axes.set_title(f"ROC, frame level: {result.model.get('name') or result.checkpoint}")
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, format="png")
    return path


# ----------------------------------------------------------------------------- Markdown


def fmt(value: Optional[float], digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


_FRAME_COLUMNS = ["auc", "acc", "balanced_acc", "eer", "ap", "logloss", "precision", "recall", "f1",
                  "tpr_at_fpr_1", "tpr_at_fpr_5", "ece", "false_alarm", "uncertain_share"]


def _metric_row(metrics: dict, columns: list[str]) -> list[str]:
    return [fmt(metrics.get(k)) for k in columns]


def to_markdown(result: EvaluationResult) -> str:
    model = result.model.get("name") or result.checkpoint
    lines = [
        f"# Evaluation of `{model}`",
        "",
        f"Checkpoint: `{result.checkpoint}` (architecture `{result.model.get('arch')}`). "
        f"Datasets: {', '.join(f'`{d.name}`' for d in result.datasets)}. Scores are P(fake); label 1 = fake.",
        "",
    ]
    decision = result.pooled
    lines += [f"Verdicts: FAKE from P(fake) {fmt(decision.get('threshold'))}"
              + (f", UNCERTAIN from {fmt(decision['threshold'] - result.band)}" if result.band else "")
              + " (the model's own where its checkpoint is calibrated, else 0.5): `false_alarm` is the share of reals "
              "called FAKE, `uncertain_share` the share of scores within the band.", ""]
    if result.warnings:
        lines += ["**Warning:**", ""] + [f"- {w}" for w in result.warnings] + [""]
    lines += ["## Frame level", ""]
    header = ["dataset", "n", "fake", "real"] + _FRAME_COLUMNS
    rows = [[d.name, str(d.frame["n"]), str(d.frame["n_fake"]), str(d.frame["n_real"])] + _metric_row(d.frame, _FRAME_COLUMNS)
            for d in result.datasets]
    if len(result.datasets) > 1:
        p = result.pooled
        rows.append(["**pooled**", str(p["n"]), str(p["n_fake"]), str(p["n_real"])] + _metric_row(p, _FRAME_COLUMNS))
    lines += _table(header, rows)

    with_video = [d for d in result.datasets if d.video is not None]
    lines += ["", "## Video level", ""]
    if with_video:
        if result.video_head is None:
            lines += ["Mean frame P(fake) per video; a video is (method, video id) within a dataset.", ""]
        else:
            lines += [f"Video P(fake) from the model's video head `{result.video_head}` over each video's frame "
                      f"features in frame order ({_WINDOW_TEXT}), not the mean frame P(fake); a video is "
                      "(method, video id) within a dataset. Frame-level metrics above are per frame as always.", ""]
        header = ["dataset", "videos", "frames", "fake", "real"] + HEADLINE_KEYS + ["balanced_acc", "ece"]
        rows = [[d.name, str(d.video["n"]), str(d.video["n_frames"]), str(d.video["n_fake"]), str(d.video["n_real"])]
                + _metric_row(d.video, HEADLINE_KEYS + ["balanced_acc", "ece"]) for d in with_video]
        lines += _table(header, rows)
    else:
        lines.append("No dataset has video ids.")

    lines += ["", "## Per manipulation method", ""]
    method_rows = []
    for d in result.datasets:
        for method, m in d.methods.items():
            method_rows.append(
                [d.name, method, str(m["n_fake"]), f"{m['n_real']} ({m['reals']})"]
                + _metric_row(m, HEADLINE_KEYS)
                + [fmt((m.get("video") or {}).get("auc"))]
            )
    if method_rows:
        lines += [
            "Each method's fakes against the reals labelled with that method where the manifest has such reals, "
            "otherwise against ALL reals of the dataset (the `reals` column says which).",
            "",
        ]
        lines += _table(["dataset", "method", "fake", "real"] + HEADLINE_KEYS + ["video auc"], method_rows)
    else:
        lines.append("No dataset names the manipulation method of its fakes.")

    lines += ["", "## Pixel level (forgery masks)", ""] + _pixel_section(result)

    undefined = [(d.name, "frame", d.frame["undefined"]) for d in result.datasets if d.frame["undefined"]]
    undefined += [(d.name, "video", d.video["undefined"]) for d in with_video if d.video["undefined"]]
    undefined += [(d.name, "pixel", d.pixel["undefined"]) for d in result.datasets if d.pixel and d.pixel["undefined"]]
    if undefined:
        lines += ["", "## Undefined metrics (shown as —)", ""]
        for name, level, reasons in undefined:
            grouped: dict[str, list[str]] = {}
            for key, why in reasons.items():
                grouped.setdefault(why, []).append(key)
            for why, keys in grouped.items():
                lines.append(f"- `{name}` {level}: {', '.join(keys)}: {why}")

    protocol = to_dict(result)["protocol"]
    lines += ["", "## Protocol", ""] + [f"- {key}: {text}" for key, text in protocol.items()]
    return "\n".join(lines) + "\n"


_PIXEL_COLUMNS = ["pixel_acc", "pixel_auc", "iou", "fp_pixel_rate"]


def _pixel_section(result: EvaluationResult) -> list[str]:
    with_pixels = [d for d in result.datasets if d.pixel is not None]
    notes = [f"- {d.pixel_note}" for d in result.datasets if d.pixel_note]
    if not with_pixels:
        return (notes or ["No dataset has ground-truth masks (manifest `mask` column)."])
    lines = [
        "Predicted masks vs ground-truth masks at the masks' size; a pixel is called manipulated at P >= 0.5. "
        "`iou`: mean over the fakes whose mask has a manipulated pixel (`n_iou`); `fp_pixel_rate`: share of "
        "the reals' pixels called manipulated. Reals without a mask file count as all-zero masks (`implied`).",
        "",
    ]
    header = ["dataset", "source", "masked", "fake", "real (implied)", "n_iou"] + _PIXEL_COLUMNS
    rows = []
    for d in with_pixels:
        p = d.pixel
        rows.append([d.name, p["source"], str(p["n"]), str(p["n_fake"]), f"{p['n_real']} ({p['n_real_implied']})",
                     str(p["n_iou"])] + _metric_row(p, _PIXEL_COLUMNS))
    if len(with_pixels) > 1 and result.pooled_pixel is not None:
        p = result.pooled_pixel
        rows.append(["**pooled**", p["source"], str(p["n"]), str(p["n_fake"]), str(p["n_real"]), str(p["n_iou"])]
                    + _metric_row(p, _PIXEL_COLUMNS))
    lines += _table(header, rows)
    left_out = [f"- `{d.name}`: {d.pixel['n_fake_without_mask']} fake(s) without a mask left out"
                for d in with_pixels if d.pixel.get("n_fake_without_mask")]
    if left_out or notes:
        lines += [""] + left_out + notes
    return lines


def write_markdown(result: EvaluationResult, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(to_markdown(result))
    return path


__all__ = ["to_dict", "to_markdown", "write_json", "write_markdown", "write_roc", "write_predictions"]
