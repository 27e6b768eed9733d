#!/usr/bin/env bash
# Rebuild the demo runs shipped in checkpoints/: small models trained on the built-in
# synthstreets dataset (no download), small enough to ship (< 25 MB in all) and to train on a
# 2-core CPU in well under an hour. Run from the repository root:  bash checkpoints/make_demo_runs.sh
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-checkpoints}
THREADS=${THREADS:-2}
SEG=(--dataset synthstreets --data-opt num_images=600 --data-opt "size=[120,160]" --size 120 160
     --epochs 20 --batch-size 8 --lr 3e-3 --schedule onecycle --class-weighting median
     --snapshot-epochs 1,last --seed 0 --threads "$THREADS" --no-progress)
CLS=(--dataset crops:synthstreets --data-opt num_images=300 --data-opt "size=[180,240]" --size 40 40
     --cache --epochs 12 --batch-size 32 --lr 3e-3 --schedule onecycle --snapshot-epochs 1,last --seed 0
     --threads "$THREADS" --no-progress)

# A finished run is kept; an interrupted one is resumed from its last epoch. A run that finishes is
# shipped: no resume state or duplicate last weights, float16 snapshots (python -m core.runs.ship).
# ONLY="name name ..." builds just those runs (e.g. to split the work between processes).
ONLY=${ONLY:-}
train() {
  local name=$1; shift
  if [ -n "$ONLY" ] && [[ " $ONLY " != *" $name "* ]]; then return; fi
  if [ -f "$OUT/$name/run.json" ]; then
    if grep -q '"state": "finished"' "$OUT/$name/run.json"; then echo "skip $name (finished)"; return; fi
    echo "== $name (resuming)"; python -m core.train --resume "$OUT/$name" --threads "$THREADS" --no-progress
  else
    echo "== $name"; python -m core.train --out "$OUT/$name" "$@"
  fi
  if grep -q '"state": "finished"' "$OUT/$name/run.json"; then python -m core.runs.ship "$OUT/$name"
  else echo "not shipped, still training or interrupted: $name"; fi
}

train unet-w8              --arch unet --model-arg base_width=8 --model-arg depth=3 "${SEG[@]}"
train fcn_baseline-w6      --arch fcn_baseline --model-arg base_width=6 "${SEG[@]}"
train resnet_fcn-r18x0.1   --arch resnet_fcn --model-arg backbone=resnet18 --model-arg width_mult=0.1 "${SEG[@]}"
train pspnet-r18x0.1       --arch pspnet --model-arg backbone=resnet18 --model-arg width_mult=0.1 "${SEG[@]}"
train lraspp-x0.2          --arch lraspp --model-arg width_mult=0.2 "${SEG[@]}"
train resunet-tiny         --arch resunet --model-arg "widths=[8,16,24,32,48]" --model-arg "blocks=[1,1,1,1]" "${SEG[@]}"
train small_cnn-w16        --arch small_cnn --model-arg base_width=16 "${CLS[@]}"
train resnet18-x0.1        --arch resnet18 --model-arg width_mult=0.1 --model-arg small_input=true "${CLS[@]}"

du -sh "$OUT"
