"""Per-generator table of whole-image detectors from `fakescope evaluate --predictions` CSVs.

    python configs/image/evaluate.py runs/image/manifest.csv runs/image/*/test_predictions.csv

Why a script beside `fakescope evaluate`: its per-method rows score each generator's fakes
against *all* reals of the split, and here the reals are of very different kinds (32 px CIFAR
thumbnails, ~450 px CIPLAB portraits, 256 px FFHQ faces), so a generator's AUC would mostly say
how unlike the other sets' reals its pictures are. Here each generator is scored against the
reals of its own dataset where it has any (CIFAKE: CIFAR-10; faces140k: FFHQ), and the StyleGAN2
set, which has none, against the test split's real face photos (CIPLAB and FFHQ) -- which still
differ from it in size and JPEG history, so its AUC is an upper bound on what the detector knows
about StyleGAN2. Precision, recall and F1 at P(fake) >= 0.5 (the checkpoints are uncalibrated).
The StyleGAN sets are tiny (6 StyleGAN2 and 1 + 1 faces140k test images): read those rows as
anecdotes, not measurements.
"""
from __future__ import annotations

import csv
import os
import sys
from pathlib import Path

import numpy as np
from sklearn.metrics import f1_score, precision_score, recall_score, roc_auc_score

FACE_REALS = {"ciplab-faces", "faces140k-sample"}
THRESHOLD = 0.5


def _key(path: str) -> str:
    return os.path.realpath(path)


def read_manifest(path: Path) -> dict[str, dict]:
    with open(path, newline="") as handle:
        return {_key(str(path.parent / r["path"])): r for r in csv.DictReader(handle)}


def metrics(labels: np.ndarray, scores: np.ndarray) -> dict:
    called = scores >= THRESHOLD
    both = len(set(labels.tolist())) == 2
    return {
        "auc": roc_auc_score(labels, scores) if both else float("nan"),
        "precision": precision_score(labels, called, zero_division=0),
        "recall": recall_score(labels, called, zero_division=0),
        "f1": f1_score(labels, called, zero_division=0),
        "n_fake": int(labels.sum()), "n_real": int((1 - labels).sum()),
    }


def table(manifest_path: Path, prediction_paths: list[Path]) -> str:
    rows_of = read_manifest(manifest_path)
    lines = ["| run | generator (dataset) | against reals of | fakes / reals | AUC | precision | recall | F1 |",
             "|---|---|---|---|---|---|---|---|"]
    for pred_path in prediction_paths:
        run = pred_path.parent.name
        with open(pred_path, newline="") as handle:
            preds = list(csv.DictReader(handle))
        items = []
        for p in preds:
            row = rows_of.get(_key(p["path"]))
            if row is None:
                raise SystemExit(f"{pred_path}: {p['path']} is not in {manifest_path}")
            items.append((row["dataset"], row["generator"], int(p["label"]), float(p["score"])))
        groups = sorted({(d, g) for d, g, label, _ in items if label == 1})
        for dataset, generator in groups:
            own = [i for i in items if i[0] == dataset and i[2] == 0]
            reals, against = (own, dataset) if own else (
                [i for i in items if i[0] in FACE_REALS and i[2] == 0], "+".join(sorted(FACE_REALS)))
            chosen = [i for i in items if i[0] == dataset and i[1] == generator and i[2] == 1] + reals
            m = metrics(np.array([i[2] for i in chosen]), np.array([i[3] for i in chosen]))
            lines.append(f"| {run} | {generator} ({dataset}) | {against} | {m['n_fake']} / {m['n_real']} | "
                         f"{m['auc']:.3f} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} |")
        m = metrics(np.array([i[2] for i in items]), np.array([i[3] for i in items]))
        lines.append(f"| {run} | all test rows | all | {m['n_fake']} / {m['n_real']} | {m['auc']:.3f} | "
                     f"{m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    print(table(Path(sys.argv[1]), [Path(p) for p in sys.argv[2:]]))
