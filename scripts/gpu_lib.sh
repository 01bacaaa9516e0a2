# Sourced by the scripts/gpu_*.sh checks; what they share:
#   gpu_init NAME BUDGET_S "$@"     the script's arguments, [--smoke] [OUTDIR]: SMOKE (0/1), the budget
#                                   (900 s with --smoke), OUTDIR (default benchmarks/results/gpu_check), a
#                                   scratch WORK (removed on exit) holding the XLA cache, the packages the GPU
#                                   image lacks (from .whl/, see scripts/gpu_wheels.sh), CARD (JAX's device
#                                   kind, e.g. NVIDIA_H200), LOG=OUTDIR/<CARD>_[smoke_]NAME.txt
#   step NAME LIMIT_S COMMAND...    runs COMMAND with at most LIMIT_S seconds (less if the budget ends
#                                   sooner), its output appended to LOG; records the exit code (124: out of
#                                   time) and seconds in SUMMARY; a failed step does not stop the script
#   gpu_summary                     prints SUMMARY and appends it to LOG
# The whole script stays inside BUDGET_S, so that what it wrote comes back even from a call with a limit.
PY=${PYTHON:-python3}
START=$(date +%s)
SUMMARY=()

gpu_init() {
  local name=$1 budget=$2; shift 2
  SMOKE=0
  if [[ "${1:-}" == "--smoke" ]]; then SMOKE=1; name=smoke_$name; budget=900; shift; fi
  BUDGET=${GE_JAX_CHECK_SECONDS:-$budget}
  local out=${1:-benchmarks/results/gpu_check}
  OUTDIR=$(mkdir -p "$out" && cd "$out" && pwd)
  WORK=$(mktemp -d)
  trap 'rm -rf "$WORK"' EXIT
  export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false GE_JAX_CACHE="$WORK/xla_cache"
  if ! "$PY" -c 'import ml_collections, mlxtend' 2>/dev/null && compgen -G ".whl/*.whl" > /dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --disable-pip-version-check \
      --root-user-action=ignore --target /tmp/site .whl/*.whl && export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
  fi
  CARD=$("$PY" -c 'import re, jax; print(re.sub(r"[^A-Za-z0-9._-]+", "_", jax.devices()[0].device_kind).strip("_"))' \
         2>/dev/null || echo unknown)
  LOG=$OUTDIR/${CARD}_$name.txt
  : > "$LOG"
}

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

gpu_summary() {
  { echo "=== summary ($CARD, $(( $(date +%s) - START ))s of ${BUDGET}s)"; printf '%s\n' "${SUMMARY[@]}"; } | tee -a "$LOG"
}
