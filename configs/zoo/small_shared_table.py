"""README's model table from runs/zoo_small/*/ (small_shared.sh) and, if given, the
JSON of benchmarks/model_speed.py:

    python configs/zoo/small_shared_table.py runs/zoo_small [runs/model_speed.json]

Parameters, input size and GFLOPs come from `fakescope.models.profile`; the
published column is quoted from the PyDeepFakeDet README (see PUBLISHED).
"""
from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

from fakescope.models import MODELS
from fakescope.models.profile import profile

#: github.com/wdrink/PyDeepFakeDet README, "Model Zoo and Baselines": the FF-DF C23
#: column and the Celeb-DF table (that README does not name the metric).
PUBLISHED = {
    "resnet50": (94.87, 98.51), "xception": (95.24, 99.05), "efficientnet_b4": (95.61, 99.44),
    "meso4": (77.14, 73.04), "mesoinception4": (84.13, 75.87), "gramnet": (95.16, 98.67),
    "f3net": (97.52, 96.47), "mat": (95.59, 99.02), "vit_b16": (93.45, 96.73), "m2tr": (97.93, 99.76),
}
RECIPES = {"meso4": "configs/meso4_ciplab.yaml", "mesoinception4": "configs/mesoinception4_ciplab.yaml",
           "efficientnet_lite0": "configs/efficientnet_lite0_sbi.yaml"}
ORDER = ["meso4", "mesoinception4", "efficientnet_lite0", "resnet50", "xception", "efficientnet_b4", "vit_b16",
         "gramnet", "f3net", "mat", "m2tr"]


def main(root: Path, speed_json: Path | None) -> None:
    speed = {}
    if speed_json is not None:
        speed = {r["arch"]: r for r in json.loads(speed_json.read_text())["rows"]}
    print("| architecture | parameters | input | GFLOPs | CPU ms/face, batch 1 / 32 "
          "| small recipe: CIPLAB test AUC | ffpp-crops AUC | train + val s "
          "| PyDeepFakeDet README: FF-DF C23 / Celeb-DF | recipe |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for arch in sorted(MODELS, key=lambda a: ORDER.index(a) if a in ORDER else len(ORDER)):
        info = profile(arch)
        cells = [f"`{arch}`", f"{info['parameters'] / 1e6:.2f} M" if info["parameters"] >= 1e5 else f"{info['parameters']:,}",
                 str(info["input_size"]), f"{info['gflops']:.2f}"]
        if arch in speed:
            cells.append(f"{speed[arch]['ms_per_face_b1']:.0f} / {speed[arch]['ms_per_face_b32']:.0f}")
        else:
            cells.append("not run")
        run = root / arch
        if (run / "test.json").is_file():
            result = json.loads((run / "test.json").read_text())
            rows = list(csv.DictReader(open(run / "metrics.csv")))
            cells += [f"{result['datasets'][name]['auc']:.3f}" for name in ("ciplab-test", "ffpp-crops")]
            cells.append(f"{sum(float(r['seconds']) for r in rows):.0f}")
        else:
            cells += ["not run"] * 3
        published = PUBLISHED.get(arch)
        cells.append(f"{published[0]:.2f} / {published[1]:.2f}" if published else "—")
        cells.append(f"`{RECIPES.get(arch, f'configs/zoo/{arch}.yaml')}`")
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "runs/zoo_small"), Path(sys.argv[2]) if len(sys.argv) > 2 else None)
