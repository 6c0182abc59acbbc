#!/usr/bin/env bash
# Reproduce fakescope's default detector (efficientnet-lite0-sbi) from ../shared on a CPU.
# Run from the repository root with the package installed. FAKESCOPE_SHARED overrides ../shared.
# Every step resumes or is cheap to redo; outputs go to runs/ (gitignored).
set -euo pipefail
SHARED="${FAKESCOPE_SHARED:-../shared}"
VIDEOS="$(cd "$SHARED/data/ffpp-videos" && pwd)"
mkdir -p runs/data

# 1. Face crops from the FF++ videos (MTCNN, margin 1.3, 256 px): 128 frames of the real video,
#    32 of each fake one, so real and fake video frames enter training in equal numbers
#    (otherwise "compressed video frame" itself becomes a cue for fake). ~30 s.
{ head -n 1 "$VIDEOS/manifest.csv"; awk -F, -v root="$VIDEOS" 'NR > 1 && $2 == 0 { print root "/" $0 }' "$VIDEOS/manifest.csv"; } \
  > runs/data/ffpp-videos-real.csv
{ head -n 1 "$VIDEOS/manifest.csv"; awk -F, -v root="$VIDEOS" 'NR > 1 && $2 == 1 { print root "/" $0 }' "$VIDEOS/manifest.csv"; } \
  > runs/data/ffpp-videos-fake.csv
fakescope extract runs/data/ffpp-videos-real.csv runs/data/ffpp-video-real-faces --frames 128 -q
fakescope extract runs/data/ffpp-videos-fake.csv runs/data/ffpp-video-fake-faces --frames 32 -q

# 2. One manifest, split by video identity (CIPLAB keeps its own split; the videos go to train).
fakescope split ciplab="$SHARED/data/ciplab-faces" ffpp-crops="$SHARED/data/ffpp-crops" \
  ffpp-video-real=runs/data/ffpp-video-real-faces ffpp-video-fake=runs/data/ffpp-video-fake-faces \
  --assign ffpp-video-real=train --assign ffpp-video-fake=train \
  --same-ids ffpp-crops,ffpp-video-real,ffpp-video-fake --val 0.2 --test 0.5 --seed 0 -o runs/data/default_split.csv

# 3. Train (12 epochs; about 2 to 4 min an epoch on 2 cores).
fakescope train configs/efficientnet_lite0_default.yaml

# 4. The held-out numbers: the test split (never read in training), by dataset and method;
#    MesoNet's published Meso-4 DF weights on the same rows, for reference.
out=runs/efficientnet_lite0_default
fakescope evaluate $out/best.pt runs/data/default_split.csv --split test --device cpu \
  --markdown $out/test.md --json $out/test.json
fakescope evaluate meso4-df runs/data/default_split.csv --split test --device cpu \
  --markdown $out/test_meso4_df.md --json $out/test_meso4_df.json

# 5. The three FF++ videos (all three were in training), end to end through scan.
fakescope scan "$SHARED/data/ffpp-videos" --model $out/best.pt --device cpu --json $out/scan_ffpp_videos.json

# 6. Ship it: copy best.pt into the package (paths in its provenance made repository-relative)
#    and record it, with the numbers of steps 4-5, in src/fakescope/models/weights/zoo.json.
python configs/ship_default.py $out efficientnet-lite0-sbi \
  --trained-on "Real faces of CIPLAB train, FF++ c23 crops (train split) and 128 frames of FF++ real video 004, turned into self-blended (SBI) and Face X-ray fakes, plus the real fakes of the train split (CIPLAB Photoshop edits, 16 FF++ crops, 64 frames of FF++ 519_515 and 004_982); ImageNet EfficientNet-Lite0 init" \
  --license "Apache-2.0 code; weights learned from FaceForensics++ (research-only terms) and CIPLAB faces: research use"
