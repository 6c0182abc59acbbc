#!/usr/bin/env bash
# Reproduce fakescope's default detector (efficientnet-lite0-sbi) from ../shared on a CPU.
# Run from the repository root with the package installed. FAKESCOPE_SHARED overrides ../shared.
# Every step resumes or is cheap to redo; outputs go to runs/ (gitignored).
set -euo pipefail
SHARED="${FAKESCOPE_SHARED:-../shared}"

# 1. 64 face crops from each FF++ video (MTCNN, margin 1.3, 256 px): ~25 s.
fakescope extract "$SHARED/data/ffpp-videos" runs/data/ffpp-video-faces --frames 64 -q

# 2. One manifest, split by video identity (CIPLAB keeps its own split; the videos go to train).
fakescope split ciplab="$SHARED/data/ciplab-faces" ffpp-crops="$SHARED/data/ffpp-crops" \
  ffpp-video-faces=runs/data/ffpp-video-faces --assign ffpp-video-faces=train \
  --same-ids ffpp-crops,ffpp-video-faces --val 0.2 --test 0.5 --seed 0 -o runs/data/default_split.csv

# 3. Train (12 epochs; ~4 min an epoch on 2 cores).
fakescope train configs/efficientnet_lite0_default.yaml

# 4. The held-out numbers: the test split (never read in training), by dataset and method.
fakescope evaluate runs/efficientnet_lite0_default/best.pt runs/data/default_split.csv --split test \
  --markdown runs/efficientnet_lite0_default/test.md --json runs/efficientnet_lite0_default/test.json
