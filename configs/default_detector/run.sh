#!/usr/bin/env bash
# Reproduce fakescope's default detector (efficientnet-lite0-faces) from ../shared on a CPU:
# reframe -> split -> train -> calibrate -> evaluate (with two reference models) -> scan -> ship.
# Run from the repository root with the package installed. FAKESCOPE_SHARED overrides ../shared.
# Every step resumes or is cheap to redo (train: add --resume after an interruption); outputs go
# to runs/default_detector/ (gitignored). About 2 h on a 2-core CPU: reframing 12 min, training
# 8 epochs of about 13 min, the rest a few minutes.
set -euo pipefail
SHARED="${FAKESCOPE_SHARED:-../shared}"
OUT=runs/default_detector
RUN=$OUT/efficientnet_lite0
mkdir -p $OUT

# 1. Every shared face crop re-detected (MTCNN) and re-cropped at margin 0.7, the framing the
#    model scans with; 68 dlib landmarks per face for the SBI / X-ray masks; non-faces dropped.
for name in ffpp-c23-faces dfdc-faces ciplab-faces ffpp-crops; do
  fakescope reframe "$SHARED/data/$name" runs/reframe/$name --margin 0.7 --size 256 --workers 2 -q
done

# 2. One manifest split by video and family (test rows never read until step 5).
python configs/default_detector/make_split.py runs/reframe $OUT/data

# 3. Train (resumable: rerun with --resume).
fakescope train configs/default_detector/efficientnet_lite0.yaml "$@"

# 4. Calibration on the val rows: Platt scaling, the threshold (false alarms <= 5 % on each val
#    dataset's reals) and the uncertain band.
fakescope calibrate $RUN/best.pt $OUT/data/split.csv --split val -o $RUN/calibrated.pt --device cpu

# 5. The held-out test rows, re-framed (the model's framing) and as published (each source's own
#    framing); the published Meso-4 DF weights and the previous default on the same rows.
for model in $RUN/calibrated.pt meso4-df efficientnet-lite0-sbi; do
  tag=$(basename "$model" .pt)
  fakescope evaluate "$model" $OUT/data/split.csv --split test --device cpu --json $RUN/test_$tag.json \
    --markdown $RUN/test_$tag.md
  fakescope evaluate "$model" $OUT/data/test_original.csv --device cpu --json $RUN/test_original_$tag.json \
    --markdown $RUN/test_original_$tag.md
done
fakescope evaluate $RUN/best.pt $OUT/data/split.csv --split test --device cpu --json $RUN/test_uncalibrated.json

# 6. The three FF++ videos (none in training), end to end through scan.
fakescope scan "$SHARED/data/ffpp-videos" --model $RUN/calibrated.pt --device cpu --json $RUN/scan_ffpp_videos.json || true

# 7. Ship: copy calibrated.pt into the package (provenance paths made repository-relative, the
#    fingerprints of every train and val image recorded) and write its zoo.json entry.
python configs/default_detector/ship.py $RUN efficientnet-lite0-faces --reframed runs/reframe --split $OUT/data/split.csv
