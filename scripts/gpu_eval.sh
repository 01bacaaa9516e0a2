#!/usr/bin/env bash
# The evaluation's tables at a GPU budget, in one call of under 5 minutes on one GPU: the 11 tasks x
# AE, GAN, GE, GE sample, CSGM and GE-op on the 500 test digits at 1000 Adam steps x 4 restarts, best of
# 64 starts, Langevin 1000 steps (the committed CPU tables: 60 x 1, best of 16, 200), with the grids and
# perception-distortion figures. The classical rows do not depend on the budget and are left to the CPU
# tables, as are the shift suite and the lambda sweep.
#
#   bash scripts/gpu_eval.sh [--smoke] [OUTDIR]      (OUTDIR default: benchmarks/results/gpu_check)
#
# The networks: GE_JAX_EVAL_RUN (default .carry/<name> when there, else runs/<name>, <name> = the
# config's name); where that has no checkpoints they are trained from scratch first with
# GE_JAX_EVAL_TRAIN_CONFIG (about a minute on an H200). To evaluate the very networks of the CPU tables
# on the device tool, carry them: `bash scripts/carry_run.sh runs/mnist_aug` here, then
#   run(command='bash scripts/gpu_eval.sh "$OUT"/r; tar -czf "$OUT"/eval.tgz -C "$OUT"/r . && rm -r "$OUT"/r',
#       carry=['.whl', '.carry'], timeout_s=400)
# (tar: the call brings back at most 8 files). The config: GE_JAX_EVAL_CONFIG (configs/mnist_aug_eval.py).
# Writes OUTDIR/<card>_eval.txt (the log and a summary) and OUTDIR/<card>_<config file>/ (results.md,
# results.json, grid_*.png, pd_*.png, convergence.png, gpu_eval_log.txt: the log again).
#
# --smoke: configs/mnist_tiny.py trained from scratch, 8 images, one task: the same steps in a few
# minutes on a CPU.
set -u
cd "$(dirname "$0")/.."
source scripts/gpu_lib.sh
gpu_init eval 330 "$@"
if [[ $SMOKE == 1 ]]; then
  CONFIG=configs/mnist_tiny.py; TRAIN_CONFIG=configs/mnist_tiny.py; BUDGET_FLAGS=(); SUBSET=(--n=8 --tasks=denoise-0.3)
  RUN=$WORK/run
else
  CONFIG=${GE_JAX_EVAL_CONFIG:-configs/mnist_aug_eval.py}; TRAIN_CONFIG=${GE_JAX_EVAL_TRAIN_CONFIG:-configs/mnist_aug.py}
  BUDGET_FLAGS=(--config.solve.steps=1000 --config.solve.restarts=4 --config.solve.n_init=64
                --config.solve.ge_sample.steps=1000 --config.eval.shift_n=0 --config.eval.sweep_task=)
  SUBSET=()
  NAME=$("$PY" -c "from ge_jax import load; print(load.config_file('$CONFIG').name)")
  RUN=${GE_JAX_EVAL_RUN:-$([[ -d .carry/$NAME ]] && echo ".carry/$NAME" || echo "runs/$NAME")}
fi
DATA=(--config.data.source=builtin)  # offline: the GPU machine reaches no network
step machine 60 bash -c "nvidia-smi 2>/dev/null | head -12; $PY -c 'import jax; print(jax.__version__, jax.devices())'"
if [[ ! -d "$RUN/ae/checkpoints" ]]; then
  echo "no checkpoints in $RUN: training $TRAIN_CONFIG from scratch" >> "$LOG"
  RUN=$WORK/run
  step train 150 "$PY" train.py --config=$TRAIN_CONFIG --workdir="$RUN" --noprogress "${DATA[@]}"
fi
EVAL_DIR=$OUTDIR/${CARD}_$(basename "$CONFIG" .py)
step evaluate 300 "$PY" -m ge_jax.evaluate --config=$CONFIG "${BUDGET_FLAGS[@]}" "${SUBSET[@]}" --workdir="$RUN" \
  --outdir="$EVAL_DIR" --overwrite --methods=ae,gan,ge,ge_sample,ge_pix,csgm,ge_op "${DATA[@]}"
gpu_summary
cp "$LOG" "$EVAL_DIR/gpu_eval_log.txt" 2>/dev/null
echo "output: $LOG, $EVAL_DIR/ (with a copy of the log)"
