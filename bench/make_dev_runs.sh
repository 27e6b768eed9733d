#!/usr/bin/env bash
# Small runs for developing and benchmarking the explorer app (bench/app_latency.py):
# six segmentation models on synthstreets and two classifiers on crops:synthstreets,
# a few epochs each, one thread, ~10-15 minutes in total on a 2-core CPU.
#
#   bash bench/make_dev_runs.sh [OUT_DIR]        (default: ../runs_dev, outside the repository)
#
# A run that already exists in OUT_DIR is skipped, so the script can be re-run after an interruption.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-../runs_dev}"
mkdir -p "$OUT"
export OMP_NUM_THREADS=1

SEG=(--dataset synthstreets --data-opt num_images=240 --data-opt "size=[96,128]" --size 96 128 --val-limit 48
     --batch-size 8 --lr 3e-3 --threads 1 --workers 0 --no-progress)

train() {  # name, then arguments for core.train
  local name="$1"; shift
  if [ -f "$OUT/$name/run.json" ]; then echo "skip $name (exists)"; return; fi
  echo "== $name"
  python -m core.train "$@" --out "$OUT/$name" | tail -n 3
}

train seg-unet8          --arch unet          --model-arg base_width=8 --model-arg depth=3 --epochs 6 "${SEG[@]}"
train seg-unet_simple8   --arch unet_simple   --model-arg base_width=8 --epochs 6 "${SEG[@]}"
train seg-fcn_baseline8  --arch fcn_baseline  --model-arg base_width=8 --epochs 6 "${SEG[@]}"
train seg-segnet         --arch simple_segnet --model-arg width_mult=0.125 --epochs 6 --snapshot-every 2 "${SEG[@]}"
train seg-lraspp         --arch lraspp        --model-arg width_mult=0.25 --epochs 10 --patience 2 "${SEG[@]}"
train seg-fcn8s          --arch fcn8s         --model-arg width_mult=0.0625 --epochs 6 "${SEG[@]}"

# Classifiers: only once a classification model is registered (python -m core.train --list).
if python -m core.train --list | grep -q "^classification models: *[a-z]"; then
  CLS=(--dataset crops:synthstreets --data-opt num_images=120 --data-opt "size=[96,128]" --data-opt max_per_class=250
       --size 48 48 --val-limit 400 --batch-size 32 --lr 3e-3 --threads 1 --workers 0 --no-progress)
  train cls-small_cnn16 --arch small_cnn --model-arg base_width=16 --epochs 5 "${CLS[@]}"
  train cls-small_cnn8  --arch small_cnn --model-arg base_width=8 --epochs 5 --seed 1 "${CLS[@]}"
else
  echo "no classification model registered yet: classification runs skipped"
fi
echo "runs in $OUT"
