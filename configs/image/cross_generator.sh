#!/usr/bin/env bash
# Cross-generator check on the shared whole-image sets: train on diffusion fakes only (CIFAKE's
# Stable Diffusion 1.4 thumbnails) and reals, test on GAN faces never seen in training (the 40
# StyleGAN2 and 7 StyleGAN faces, held out whole, with the test split's real faces).
#
#   bash configs/image/cross_generator.sh [recipe ...]     # default: dct_spectrum_cnn linear_probe
#   bash configs/image/cross_generator.sh evaluate [recipe ...]   # only evaluate what is trained, and the table
#
# From the repository root, venv active; outputs under runs/image-xgen/ (git-ignored). Same CPU
# settings as run.sh (64 px views, a few epochs). 47 GAN images: an anecdote, not a benchmark.
set -euo pipefail
cd "$(dirname "$0")/../.."
SHARED="${FAKESCOPE_SHARED:-../shared}"
OUT="$PWD/runs/image-xgen"
mkdir -p "$OUT"
train=1
if [[ "${1:-}" == evaluate ]]; then train=0; shift; fi
recipes=("$@")
[ ${#recipes[@]} -gt 0 ] || recipes=(dct_spectrum_cnn linear_probe)
[ $train -eq 0 ] || fakescope index image-forensics "$SHARED/data/image-forensics" -o "$OUT/manifest.csv" \
  --option holdout=styleclip-stylegan2-e4e,faces140k-sample
for name in "${recipes[@]}"; do
  [ $train -eq 0 ] || OMP_NUM_THREADS=2 fakescope train "configs/image/$name.yaml" preprocess.input_size=64 train.device=cpu \
    data.num_workers=1 train.epochs=3 "data.train.manifest=$OUT/manifest.csv" "data.val.manifest=$OUT/manifest.csv" \
    "output=$OUT/$name" > "$OUT/$name.log" 2>&1
  fakescope evaluate "$OUT/$name/best.pt" "image-forensics=$OUT/manifest.csv:test" --device cpu \
    --json "$OUT/$name/test.json" --predictions "$OUT/$name/test_predictions.csv" > "$OUT/$name/evaluate.txt" 2>&1
done
python configs/image/evaluate.py "$OUT/manifest.csv" "$OUT"/*/test_predictions.csv | tee "$OUT/table.md"
