"""Collect runs/zoo_small/*/ (small_shared.sh) into a markdown table of AUCs and training time."""
from __future__ import annotations

import csv
import json
import sys
from pathlib import Path


def main(root: Path) -> None:
    print("| arch | CIPLAB test AUC | ffpp-crops AUC | best epoch | train + val s |")
    print("|---|---|---|---|---|")
    for run in sorted(p for p in root.iterdir() if (p / "test.json").is_file()):
        result = json.loads((run / "test.json").read_text())
        rows = list(csv.DictReader(open(run / "metrics.csv")))
        seconds = sum(float(r["seconds"]) for r in rows)
        best = max(rows, key=lambda r: float(r["val_auc"] or "nan"))["epoch"] if rows else "?"
        aucs = [result["datasets"][name]["auc"] for name in ("ciplab-test", "ffpp-crops")]
        print(f"| {run.name} | {aucs[0]:.3f} | {aucs[1]:.3f} | {best} | {seconds:.0f} |")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "runs/zoo_small"))
