"""The default detector's data: one manifest of re-framed face crops, split by video and family.

Run by configs/default_detector/run.sh after `fakescope reframe`. Input: the reframed
folders (REFRAMED/<name>/manifest.csv + landmarks.json). Output: OUT/split.csv (every row
with a split and a dataset) and OUT/landmarks.json (the reals' 68-point landmarks, for SBI /
X-ray masks).

Splits (seed 0; test rows are never read before the final evaluation):
- dfdc-faces: by family (a real video with every fake made from it, joined through `source`),
  test 15 % / val 10 % / train 75 % of families, within strata (families with a fake, reals alone).
- ffpp-c23-faces: the source's own `test` folder is test; its `train` folder is split by
  `video` group, val 15 %.
- ciplab-faces: its own fixed split.
- ffpp-crops (the 120 old crops) and ffpp-videos are never trained on; ffpp-crops is an extra
  test set (its real videos may overlap the c23 set's: the c23 set names no video ids).
"""
from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

from fakescope.data.manifest import Manifest
from fakescope.data.reframe import reframed_origins
from fakescope.data.splits import leaks, merge, split_by_identity


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reframed", type=Path, help="folder holding the reframed datasets")
    parser.add_argument("out", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    def read(name: str) -> Manifest:
        return Manifest.read(args.reframed / name)

    dfdc = split_by_identity(merge({"dfdc": read("dfdc-faces")}), val=0.10, test=0.15, seed=args.seed)
    ffpp = read("ffpp-c23-faces")
    ffpp_test = Manifest([s for s in ffpp if s.split == "test"], ffpp.root)
    ffpp_train = Manifest([replace(s, split=None) for s in ffpp if s.split == "train"], ffpp.root)
    ffpp_train = split_by_identity(merge({"ffpp": ffpp_train}), val=0.15, test=0.0, seed=args.seed)
    ffpp_test = merge({"ffpp": ffpp_test})
    ciplab = merge({"ciplab": read("ciplab-faces")})
    extra = merge({"ffpp-crops": read("ffpp-crops")})
    rows = dfdc.samples + ffpp_train.samples + ffpp_test.samples + ciplab.samples
    rows += [replace(s, split="test") for s in extra.samples]
    result = Manifest(rows, Path.cwd())
    leaked = leaks(Manifest([s for s in rows if s.dataset != "ffpp-crops"], Path.cwd()))
    if leaked:
        raise SystemExit(f"identity on two sides of the split: {leaked[:5]}")
    args.out.mkdir(parents=True, exist_ok=True)
    result.write(args.out / "split.csv")

    # The same test rows at their original files (the framing each source published), to measure
    # what re-framing buys and to score models trained on other framings fairly.
    origin = reframed_origins(args.reframed)
    for part in ("val", "test"):
        originals = [replace(s, path=origin[s.path]) for s in rows if s.split == part]
        Manifest(originals, Path.cwd()).write(args.out / f"{part}_original.csv")

    landmarks: dict = {}
    for name in ("dfdc-faces", "ffpp-c23-faces", "ciplab-faces"):
        landmarks.update(json.loads((args.reframed / name / "landmarks.json").read_text()))
    (args.out / "landmarks.json").write_text(json.dumps(landmarks))

    from collections import Counter

    counts = Counter((s.dataset, s.split, s.label) for s in rows)
    for key in sorted(counts, key=str):
        print(*key, counts[key], sep="\t")


if __name__ == "__main__":
    main()
