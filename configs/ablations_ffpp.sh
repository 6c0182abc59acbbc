#!/usr/bin/env bash
# Ablations of the default recipe on FF++ data alone (cheap: 226 training faces, ~35 s an
# epoch on 2 cores), each evaluated on the held-out FF++ test split and on CIPLAB test.
# Needs runs/data/ffpp-video-{real,fake}-faces (step 1 of configs/efficientnet_lite0_default.sh).
#   bash configs/ablations_ffpp.sh [name ...]      (default: all)
set -euo pipefail
SHARED="${FAKESCOPE_SHARED:-../shared}"
fakescope split ffpp-crops="$SHARED/data/ffpp-crops" ffpp-video-real=runs/data/ffpp-video-real-faces \
  ffpp-video-fake=runs/data/ffpp-video-fake-faces --assign ffpp-video-real=train --assign ffpp-video-fake=train \
  --same-ids ffpp-crops,ffpp-video-real,ffpp-video-fake --val 0.2 --test 0.5 --seed 0 \
  -o runs/data/ffpp_split.csv > /dev/null   # the same FF++ split as default_split.csv (seed 0)

common=(data.train.manifest=../runs/data/ffpp_split.csv data.val.manifest=../runs/data/ffpp_split.csv
        data.train.synthesis.landmarks_json=../runs/landmarks/ffpp_reals.json
        train.epochs=10 schedule.t0=10 data.batch_size=16)
declare -A variant=(
  [both]=""
  [sbi]="data.train.synthesis.kind=sbi"
  [xray]="data.train.synthesis.kind=xray"
  [no_real_fakes]="data.train.synthesis.keep_real_fakes=false"
  [no_imagenet]="model.kwargs.imagenet_init=false"
  [no_mask_loss]="loss.mask_weight=0"
)
names=("$@"); [ ${#names[@]} -eq 0 ] && names=(both sbi xray no_real_fakes no_imagenet no_mask_loss)
for name in "${names[@]}"; do
  out=runs/ablations/$name; mkdir -p runs/ablations
  fakescope train configs/efficientnet_lite0_default.yaml "${common[@]}" ${variant[$name]} output=../$out > runs/ablations/$name.log 2>&1
  fakescope evaluate $out/best.pt runs/data/ffpp_split.csv:test ciplab-test="$SHARED/data/ciplab-faces:test" \
    --device cpu --json $out/test.json > $out/test.txt
done
