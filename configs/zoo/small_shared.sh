#!/usr/bin/env bash
# Train every architecture (or those named) with configs/zoo/small_shared.yaml and
# evaluate each on CIPLAB's test split and on ffpp-crops; collect the AUCs in
# runs/zoo_small/table.md. Run from the repository root with the package installed.
# FAKESCOPE_SHARED overrides ../shared. A finished architecture is skipped.
set -euo pipefail
SHARED="${FAKESCOPE_SHARED:-../shared}"
OUT=runs/zoo_small
mkdir -p "$OUT"

# The fixed class-balanced samples of CIPLAB train (160 + 160) and val (32 + 32).
python - "$SHARED/data/ciplab-faces" "$OUT" <<'PY'
import csv, random, sys
from pathlib import Path
root, out = Path(sys.argv[1]).resolve(), Path(sys.argv[2])
rows = list(csv.DictReader(open(root / "manifest.csv")))
for split, per_class in (("train", 160), ("val", 32)):
    picked = []
    for label in ("0", "1"):
        pool = sorted((r for r in rows if r["split"] == split and r["label"] == label), key=lambda r: r["path"])
        picked += random.Random(0).sample(pool, per_class)
    with open(out / f"{split}.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label", "dataset"])
        writer.writerows([str(root / r["path"]), r["label"], "ciplab"] for r in picked)
PY

archs=("$@")
if [ ${#archs[@]} -eq 0 ]; then
  mapfile -t archs < <(python -c "from fakescope.models import MODELS; print('\n'.join(MODELS))")
fi
for arch in "${archs[@]}"; do
  run="$OUT/$arch"
  if [ -f "$run/test.json" ]; then echo "$arch: done"; continue; fi
  extra=()
  if [ "$arch" = efficientnet_lite0 ]; then extra=("model.kwargs={imagenet_init: true, mask_head: false}"); fi
  # M2TR at batch 16 needs more than this 24 GiB machine has (batch 4 peaks at 7.6 GB RSS on CPU)
  if [ "$arch" = m2tr ]; then extra=("data.batch_size=8" "data.val_batch_size=8"); fi
  fakescope train configs/zoo/small_shared.yaml "model.arch=$arch" "output=../../$run" "${extra[@]}"
  fakescope evaluate "$run/best.pt" "ciplab-test=$SHARED/data/ciplab-faces:test" "ffpp-crops=$SHARED/data/ffpp-crops" \
    --batch-size 16 --json "$run/test.json" --markdown "$run/test.md"
done
python configs/zoo/small_shared_table.py "$OUT" > "$OUT/table.md"
cat "$OUT/table.md"
