#!/usr/bin/env bash
# The 64x64 speeds on one GPU (issue 13), in one call of about 6 minutes: the solver's images/s and the
# train steps/s of configs/rock64.py (grayscale, sub-pixel G, AE code 512) and configs/photos64.py (RGB,
# resize G), each against the eager PyTorch peer on the same networks and the same GPU, and the fraction
# of a large matmul's FLOP/s; benchmarks/solver_throughput.py and train_throughput.py as on the CPU
# (benchmarks/RESULTS.md), with GPU batch sizes. On one H200 each solver run took ~95 s, each training
# run ~55 s (the compiles of four batch sizes, both frameworks' nets and the conversion check).
#
#   bash scripts/gpu_bench64.sh [--smoke] [OUTDIR]   (OUTDIR default: benchmarks/results/gpu_check)
#
# Writes OUTDIR/<card>_bench64.txt (every step's output and a summary) and <card>_{solver,train}_{rock64,
# photos64}.json. --smoke: 2 steps, batch 4, no PyTorch: the same steps in a few minutes on a CPU.
# On the device tool:  run(command='bash scripts/gpu_bench64.sh "$OUT"', carry=['.whl'], timeout_s=450)
set -u
cd "$(dirname "$0")/.."
source scripts/gpu_lib.sh
gpu_init bench64 420 "$@"
if [[ $SMOKE == 1 ]]; then
  SOLVER=(--steps=2 --restarts=2 --batch_sizes=4 --headline_batch=4 --no_torch); TRAIN=(--steps=2 --no_torch)
else
  SOLVER=(--batch_sizes=1,64,256,1024); TRAIN=()
fi
for cfg in rock64 photos64; do
  step "solver_$cfg" 130 "$PY" benchmarks/solver_throughput.py --quick --config=configs/$cfg.py "${SOLVER[@]}" \
    --memory_batch=0 --no_cache_check --json="$OUTDIR/${CARD}_solver_$cfg.json"
  step "train_$cfg" 80 "$PY" benchmarks/train_throughput.py --config=configs/$cfg.py "${TRAIN[@]}" \
    --json="$OUTDIR/${CARD}_train_$cfg.json"
done
gpu_summary
echo "output: $OUTDIR/${CARD}_*"
