#!/usr/bin/env bash
# The CamVid zoo shipped with the app, trained from scratch on this machine's CPU:
#     bash checkpoints/make_camvid_runs.sh [CAMVID_ROOT]          (default ../shared/data/camvid; about 3 hours)
# - one shared 15-minute recipe for every architecture (RECIPES["zoo15"] in bench/camvid.py: the same
#   input size, crops, augmentation, class weighting and schedule, on the clock), snapshots at epochs
#   1, 3, 8, 16 and the last, widths chosen so that checkpoints/ stays under 80 MB;
# - the ResUNet with the 60-minute recipe (RECIPES["resunet60"], chosen on the held-out-sequence proxy);
# - two classifiers on crops:camvid.
# Everything trains on the train split only, so the val history stays honest. A finished run is kept;
# an interrupted one is resumed. Each run is then stored as float16 (python -m core.ship).
# Keep the machine otherwise idle while it runs: the budgets are wall-clock time.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-${CAMVID_ROOT:-../shared/data/camvid}}
OUT=${OUT:-checkpoints/camvid}
BUDGET=${BUDGET:-15}  # minutes per zoo architecture
CLS_BUDGET=${CLS_BUDGET:-8}
SNAP=${SNAP:-1,3,8,16,last}

done_or_resume() {  # 0 when the run needs (re)starting; shipped runs are skipped, interrupted ones resumed
  local dir=$OUT/$1
  [ -f "$dir/run.json" ] || return 0
  if grep -q '"state": "running"' "$dir/run.json"; then
    echo "== $1 (resuming)"; python -m core.train --resume "$dir" --threads 2 --no-progress; python -m core.ship "$dir"
  else
    echo "skip $1 (finished)"
  fi
  return 1
}

seg() {  # name arch [model args...]
  local name=$1 arch=$2; shift 2
  local args=(); for a in "$@"; do args+=(--model-arg "$a"); done
  done_or_resume "$name" || return 0
  echo "== $name"
  python bench/camvid.py --recipe zoo15 --arch "$arch" "${args[@]}" --budget-min "$BUDGET" --data-root "$DATA" \
      --snapshot-epochs "$SNAP" --out "$OUT/$name"
  python -m core.ship "$OUT/$name"
}

CLS=(--dataset crops:camvid --data-root "$DATA" --data-opt max_per_class=1000 --size 48 48 --cache --epochs 100 --budget-min "$CLS_BUDGET"
     --batch-size 64 --lr 3e-3 --schedule onecycle --color-jitter 0.2 --snapshot-epochs 1,2,4,8,last --seed 0 --threads 2 --no-progress)
cls() {  # name arch [model args...]
  local name=$1 arch=$2; shift 2
  local args=(); for a in "$@"; do args+=(--model-arg "$a"); done
  done_or_resume "$name" || return 0
  echo "== $name"; python -m core.train --arch "$arch" "${args[@]}" "${CLS[@]}" --out "$OUT/$name"
  python -m core.ship "$OUT/$name"
}

# The classifiers first (minutes), then the architectures, then the long ResUNet.
cls crops-small_cnn  small_cnn base_width=16
cls crops-resnet18   resnet18  width_mult=0.125 small_input=true


seg fcn_baseline   fcn_baseline base_width=12
seg fcn32s         fcn32s       width_mult=0.0625
seg fcn8s          fcn8s        width_mult=0.0625
seg unet           unet         base_width=8
seg resnet_fcn     resnet_fcn   backbone=resnet18 width_mult=0.2 min_decoder_width=16
seg pspnet         pspnet       backbone=resnet18 width_mult=0.2
seg lraspp         lraspp       width_mult=0.35
[ -n "${ABLATION:-}" ] && seg pspnet-no-ppm pspnet backbone=resnet18 width_mult=0.2 use_ppm=false  # optional: over the size cap with the rest

if done_or_resume resunet-60min; then
  echo "== resunet-60min (its own recipe and budget)"
  python bench/camvid.py --recipe resunet60 --budget-min 60 --data-root "$DATA" --snapshot-epochs 1,5,15,35,last --out "$OUT/resunet-60min"
  python -m core.ship "$OUT/resunet-60min"
fi

du -sh checkpoints "$OUT"
