#!/usr/bin/env bash
# The CamVid zoo shipped with the app, trained from scratch on this machine's CPU:
#     bash checkpoints/make_camvid_runs.sh [CAMVID_ROOT]          (default ../shared/data/camvid; about 3 hours)
# - one shared 15-minute recipe for every architecture (RECIPES["zoo15"] in bench/camvid.py: the same
#   input size, crops, augmentation, class weighting and schedule, on the clock), snapshots at epochs
#   1, 3, 8, 16, the best and the last (1, 3, 6, 10 and the last for the slow U-Net), of which four are
#   shipped (KEEP: epoch 3 dropped, and 16 where the best is not the last), widths chosen so that
#   checkpoints/ stays under 80 MB, in bfloat16 autocast (below);
# - the ResUNet with the 60-minute recipe (RECIPES["resunet60"], chosen on the held-out-sequence proxy;
#   epochs 1, 35 and 53 shipped), and the flagship: the same recipe with per-image input standardisation
#   (input_norm=image, issue 30: +0.18 on the two-fold proxy), for the same 53 epochs (60 minutes here);
# - two classifiers on crops:camvid, with the budgets and snapshot epochs they were shipped with.
# Everything trains on the train split only, so the val history stays honest. A finished run is kept;
# an interrupted one is resumed. Each run is then stored as float16 (python -m core.runs.ship).
# Keep the machine otherwise idle while it runs: the budgets are wall-clock time.
# The 15-minute architectures train in bfloat16 autocast (AMP=bf16, core.train --amp; 1.1-2.1x faster steps
# on a CPU with AVX512-BF16 or AMX, python bench/zoo_precision.py, so more epochs fit in the budget); on a
# CPU without them give AMP=auto (float32 there). The ResUNet's recipe is float32. OUT=DIR builds elsewhere.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-${CAMVID_ROOT:-../shared/data/camvid}}
OUT=${OUT:-checkpoints/camvid}
BUDGET=${BUDGET:-15}  # minutes per zoo architecture
SNAP=${SNAP:-1,3,8,16,last}
KEEP=${KEEP:-1,8,16,best,last}  # the snapshots shipped (core.runs.ship --keep-epochs; the best is always kept)
AMP=${AMP:-bf16}

done_or_resume() {  # 0 when the run needs (re)starting; shipped runs are skipped, interrupted ones resumed
  local dir=$OUT/$1
  [ -f "$dir/run.json" ] || return 0
  if grep -q '"state": "running"' "$dir/run.json"; then
    echo "== $1 (resuming)"; python -m core.train --resume "$dir" --threads 2 --no-progress; python -m core.runs.ship "$dir"
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
      --snapshot-epochs "$SNAP" --amp "$AMP" --out "$OUT/$name"
  python -m core.runs.ship "$OUT/$name" --keep-epochs "$KEEP"
}

CLS=(--dataset crops:camvid --data-root "$DATA" --data-opt max_per_class=1000 --size 48 48 --cache --epochs 100
     --batch-size 64 --lr 3e-3 --schedule onecycle --color-jitter 0.2 --seed 0 --threads 2 --no-progress)
cls() {  # name budget_minutes snapshot_epochs arch [model args...]
  local name=$1 budget=$2 snap=$3 arch=$4; shift 4
  local args=(); for a in "$@"; do args+=(--model-arg "$a"); done
  done_or_resume "$name" || return 0
  echo "== $name"
  python -m core.train --arch "$arch" "${args[@]}" "${CLS[@]}" --budget-min "$budget" --snapshot-epochs "$snap" --out "$OUT/$name"
  python -m core.runs.ship "$OUT/$name"
}

# The classifiers first (minutes), then the architectures (the slowest, the U-Net, first), then the long ResUNet.
cls crops-small_cnn 4 1,2,4,8,last small_cnn base_width=16                      # 10 epochs fit
cls crops-resnet18  6 1,2,3,5,last resnet18  width_mult=0.125 small_input=true  # 9 epochs fit


SNAP=1,3,6,10,last KEEP=1,6,10,best,last seg unet unet base_width=8 min_decoder_width=16  # full resolution: the slowest, about 20 epochs fit
seg fcn_baseline   fcn_baseline base_width=12
seg fcn32s         fcn32s       width_mult=0.0625
KEEP=1,8,best,last seg fcn8s fcn8s width_mult=0.0625
seg resnet_fcn     resnet_fcn   backbone=resnet18 width_mult=0.25 min_decoder_width=16
KEEP=1,8,best,last seg pspnet pspnet backbone=resnet18 width_mult=0.2
KEEP=1,8,best,last seg lraspp lraspp width_mult=0.35
[ -n "${ABLATION:-}" ] && seg pspnet-no-ppm pspnet backbone=resnet18 width_mult=0.2 use_ppm=false  # optional: over the size cap with the rest

if done_or_resume resunet-60min; then
  echo "== resunet-60min (its own recipe and budget)"
  python bench/camvid.py --recipe resunet60 --budget-min 60 --data-root "$DATA" --snapshot-epochs 1,5,15,35,last --out "$OUT/resunet-60min"
  python -m core.runs.ship "$OUT/resunet-60min" --keep-epochs 1,35,last
fi

if done_or_resume resunet-inorm-60min; then  # 53 epochs: the 60 minutes resunet-60min trained, fixed as a count
  echo "== resunet-inorm-60min (resunet60 with input_norm=image)"
  python bench/camvid.py --recipe resunet60 --epochs 53 --model-arg input_norm=image --seed 0 --data-root "$DATA" \
      --snapshot-epochs 1,5,15,35,last --out "$OUT/resunet-inorm-60min"
  python -m core.runs.ship "$OUT/resunet-inorm-60min"
fi

du -sh checkpoints "$OUT"
