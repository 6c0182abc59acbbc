"""Tampering localization against ground-truth masks: pixel F1, IoU and AUC per method and manipulation.

`fakescope evaluate-tamper MANIFEST` runs every method of `fakescope.tamper` (or those named) on the
manifest's images (columns path, label, manipulation, mask; label 1 = tampered, mask white =
tampered) and reports, per method and manipulation: mean per-image pixel F1 and IoU at
mask >= 0.5, mean per-image pixel AUC, the found rate (images the method calls tampered: the
detection rate on tampered images, the false-alarm rate on pristine ones) and seconds per image.
The pixel metrics are evaluate.metrics' (mask_f1, mask_iou, mask_auc).
"""
from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Iterable, Optional, Sequence

import cv2
import numpy as np

from .metrics import THRESHOLD, mask_auc, mask_f1, mask_iou


def read_rgb(path: str | Path) -> np.ndarray:
    """An image file as RGB uint8 (OpenCV's decoder, as every tampering method was tuned with)."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(path)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_samples(manifest: str | Path) -> list[dict]:
    """{"group", "name", "image" (RGB), "truth" (bool mask or None)} per manifest row; the group is
    the manipulation ("pristine" for label 0)."""
    manifest = Path(manifest)
    root = manifest.parent
    samples = []
    with open(manifest, newline="") as handle:
        for row in csv.DictReader(handle):
            try:
                image = read_rgb(root / row["path"])
            except FileNotFoundError:
                raise ValueError(f"{manifest}: cannot read {row['path']}") from None
            truth = None
            if row.get("mask"):
                mask = cv2.imread(str(root / row["mask"]), cv2.IMREAD_GRAYSCALE)
                if mask is None:
                    raise ValueError(f"{manifest}: cannot read mask {row['mask']}")
                truth = mask > 127
            label = int(row.get("label", 1))
            group = (row.get("manipulation") or "tampered") if label == 1 else "pristine"
            samples.append({"group": group, "name": row["path"], "image": image,
                            "truth": truth})
    return samples


def score_samples(samples: Iterable[dict], methods: Optional[Sequence[str]] = None) -> list[dict]:
    """One row per (sample, method): score, found, seconds, message and, with a truth mask, F1/IoU/AUC."""
    from ..tamper import TAMPER_METHODS

    names = list(methods) if methods else list(TAMPER_METHODS)
    runners = {name: TAMPER_METHODS.get(name)() for name in names}
    rows = []
    for sample in samples:
        for name, method in runners.items():
            started = time.perf_counter()
            finding = method(sample["image"])
            row = {"group": sample["group"], "image": sample["name"], "method": name, "score": round(finding.score, 4),
                   "found": bool(finding.found), "seconds": round(time.perf_counter() - started, 3),
                   "message": finding.message}
            truth = sample["truth"]
            if truth is not None and truth.any():
                row.update(f1=mask_f1(finding.mask, truth, THRESHOLD), iou=mask_iou(finding.mask, truth, THRESHOLD),
                           auc=mask_auc(finding.mask, truth))
            rows.append(row)
    return rows


def summarise(rows: Sequence[dict]) -> list[dict]:
    """Per method and group, in first-seen order: n, means of f1 / iou / auc (None without masks),
    found rate, seconds per image."""
    summary = []
    for method in dict.fromkeys(r["method"] for r in rows):
        for group in dict.fromkeys(r["group"] for r in rows):
            chosen = [r for r in rows if r["method"] == method and r["group"] == group]
            if not chosen:
                continue
            entry = {"method": method, "group": group, "n": len(chosen),
                     "found_rate": float(np.mean([r["found"] for r in chosen])),
                     "seconds_per_image": float(np.mean([r["seconds"] for r in chosen]))}
            for key in ("f1", "iou", "auc"):
                values = [r[key] for r in chosen if r.get(key) is not None]
                entry[key] = float(np.mean(values)) if values else None
            summary.append(entry)
    return summary


def markdown_table(summary: Sequence[dict]) -> str:
    def fmt(value):
        return "-" if value is None else f"{value:.3f}"

    lines = ["| method | data | n | pixel F1 | IoU | pixel AUC | found rate | s/image |", "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {e['method']} | {e['group']} | {e['n']} | {fmt(e['f1'])} | {fmt(e['iou'])} | {fmt(e['auc'])} | "
              f"{e['found_rate']:.2f} | {e['seconds_per_image']:.2f} |" for e in summary]
    return "\n".join(lines)
