#!/usr/bin/env bash
# Whole-image detectors on the shared image-forensics sets: index -> train -> evaluate -> table.
#
#   bash configs/image/run.sh            # everything (about 30-40 min on 2 CPU cores)
#   bash configs/image/run.sh evaluate   # only evaluate the runs already trained, and the table
#
# From the repository root, with the venv active. Outputs under runs/image/ (git-ignored):
# manifest.csv, <recipe>/ (best.pt, metrics.csv, test.json, test_predictions.csv), <recipe>.log,
# table.md. The CPU run is small on purpose: 64 px views for every model (the recipes' own sizes,
# 128-224 px, are GPU runs), 2-4 epochs, two trainings at a time with one thread each.
# The data are tiny (see src/fakescope/data/images.py): these numbers check the pipeline and rank
# recipes on CIFAKE; they say nothing reliable about unseen generators.
set -euo pipefail
cd "$(dirname "$0")/../.."
SHARED="${FAKESCOPE_SHARED:-../shared}"
OUT=runs/image
mkdir -p "$OUT"
CPU=(preprocess.input_size=64 train.device=cpu data.num_workers=1)

train_one() {  # recipe, epochs, extra overrides...
  local name=$1 epochs=$2; shift 2
  OMP_NUM_THREADS=1 fakescope train "configs/image/$name.yaml" "${CPU[@]}" "train.epochs=$epochs" "$@" \
    > "$OUT/$name.log" 2>&1
}

if [[ "${1:-all}" != evaluate ]]; then
  fakescope index image-forensics "$SHARED/data/image-forensics" -o "$OUT/manifest.csv"
  # two streams of about the same length
  ( train_one dct_spectrum_linear 4 && train_one dct_spectrum_cnn 4 && train_one linear_probe 3 \
      && train_one patch_forensics 2 ) &
  ( train_one cnnf 2 && train_one wavelet_branch 2 && train_one cnnf_attribution 2 ) &
  wait
fi

for run in dct_spectrum_linear dct_spectrum_cnn linear_probe patch_forensics cnnf wavelet_branch cnnf_attribution; do
  [[ -f "$OUT/$run/best.pt" ]] || { echo "no $OUT/$run/best.pt: skipped"; continue; }
  fakescope evaluate "$OUT/$run/best.pt" "image-forensics=$OUT/manifest.csv:test" --device cpu \
    --json "$OUT/$run/test.json" --predictions "$OUT/$run/test_predictions.csv" > "$OUT/$run/evaluate.txt" 2>&1
done
python configs/image/evaluate.py "$OUT/manifest.csv" "$OUT"/*/test_predictions.csv | tee "$OUT/table.md"
