#!/usr/bin/env bash
# Copies what solve.py and ge_jax.evaluate need from a trained run (the newest checkpoint step of each
# phase, the classifier, summary.json) into .carry/<run name>, small enough for the device tool's carry
# (configs/mnist_aug.py's run: 8 MB of its 96 MB). .carry/ is git-ignored.
#
#   bash scripts/carry_run.sh runs/mnist_aug [DEST]     # DEST default: .carry/mnist_aug
set -eu
RUN=${1:?usage: bash scripts/carry_run.sh RUN_DIR [DEST]}
[[ -d "$RUN" ]] || { echo "error: no run folder $RUN" >&2; exit 2; }
DEST=${2:-$(dirname "$0")/../.carry/$(basename "$RUN")}
rm -rf "$DEST" && mkdir -p "$DEST"
for phase in "$RUN"/*/checkpoints; do
  [[ -d "$phase" ]] || continue
  newest=$(ls "$phase" | grep -E '^[0-9]+$' | sort -n | tail -1)
  [[ -n "$newest" ]] || continue
  mkdir -p "$DEST/$(basename "$(dirname "$phase")")/checkpoints"
  cp -r "$phase/$newest" "$DEST/$(basename "$(dirname "$phase")")/checkpoints/"
done
[[ -d "$DEST/ae" ]] || { echo "error: $RUN has no checkpoints (train it first)" >&2; exit 2; }
for extra in classifier summary.json; do [[ -e "$RUN/$extra" ]] && cp -r "$RUN/$extra" "$DEST/"; done
du -sh "$DEST"
