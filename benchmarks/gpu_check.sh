#!/usr/bin/env bash
# The GPU check: one command for a machine with an NVIDIA GPU and CuPy, no network needed.
#
#   bash benchmarks/gpu_check.sh [OUT_DIR]     (default OUT_DIR: gpu_check_results)
#   bash benchmarks/gpu_check.sh --dry-run     (no GPU: checks the script and the CPU runners)
#   --no-install                               (use the nnaccel already installed)
#
# 1. installs nnaccel from this checkout without touching the network
#    (pip install --no-deps --no-build-isolation, editable, else a regular install);
# 2. runs the tests marked `gpu` (every operation, activation and a training run against NumPy);
# 3. benchmarks one training step of numpy, numba, cupy (fused and layer by layer) and PyTorch CUDA
#    for 2-6-6-1 and 784-256-10 (benchmarks/gpu_check.py), and writes OUT_DIR/gpu_check.json and
#    OUT_DIR/gpu_check.txt with the targets met or not.
# Within 5 minutes: the tests get 120 s, the benchmark a 150 s budget (each under `timeout`).
set -uo pipefail

cd "$(dirname "$0")/.."
DRY_RUN=""
INSTALL=1
OUT_DIR="gpu_check_results"
for argument in "$@"; do
    case "$argument" in
        --dry-run) DRY_RUN="--dry-run" ;;
        --no-install) INSTALL=0 ;;
        *) OUT_DIR="$argument" ;;
    esac
done
mkdir -p "$OUT_DIR"
# The interpreter: $PYTHON, else `python`, else `python3` (many machines have only python3).
PYTHON="${PYTHON:-$(command -v python || command -v python3 || echo python3)}"
CASE_SECONDS="${GPU_CHECK_CASE_SECONDS:-2}"  # timed seconds per benchmark case, at most
started=$SECONDS

echo "== nnaccel GPU check -> $OUT_DIR"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader

if [ "$INSTALL" -eq 1 ]; then
    echo "== install (no network)"
    if ! "$PYTHON" -m pip install --no-deps --no-build-isolation -q -e . 2>"$OUT_DIR/install.log"; then
        echo "editable install failed (see $OUT_DIR/install.log); trying a regular install"
        "$PYTHON" -m pip install --no-deps --no-build-isolation -q . 2>>"$OUT_DIR/install.log" || {
            echo "install failed:"; tail -5 "$OUT_DIR/install.log"; exit 1; }
    fi
fi
if [ -z "$DRY_RUN" ]; then
    # Without a usable GPU the check means nothing: stop now with the reason, rather than
    # benchmark the CPU for minutes.
    reason=$("$PYTHON" -c "import nnaccel.backends as b; print(b.unavailable_reason('cupy') or '')" 2>&1) || {
        echo "gpu_check: cannot import nnaccel with $PYTHON: ${reason##*$'\n'}" >&2; exit 1; }
    if [ -n "$reason" ]; then
        echo "gpu_check: no usable GPU, nothing to check: $reason (use --dry-run to check the script without one)" >&2
        exit 1
    fi
fi
"$PYTHON" -m nnaccel info | tee "$OUT_DIR/info.txt"

status=0
if [ -z "$DRY_RUN" ]; then
    echo "== gpu tests"
    timeout 120 "$PYTHON" -m pytest -m gpu -q -p no:cacheprovider tests 2>&1 | tee "$OUT_DIR/gpu_tests.txt"
    test_status=${PIPESTATUS[0]}
    [ "$test_status" -eq 0 ] || { echo "gpu tests failed or timed out (status $test_status)"; status=1; }
    BUDGET=150
else
    echo "== dry run: no gpu tests" | tee "$OUT_DIR/gpu_tests.txt"
    BUDGET=60
fi

echo "== benchmark"
# OpenBLAS settings of some machines distort the CPU runners; unset them for the benchmark only.
timeout $((BUDGET + 30)) env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$PYTHON" benchmarks/gpu_check.py \
    --out "$OUT_DIR" --budget "$BUDGET" --case-seconds "$CASE_SECONDS" --tests "$OUT_DIR/gpu_tests.txt" $DRY_RUN
bench_status=$?
[ "$bench_status" -eq 0 ] || { echo "benchmark failed or timed out (status $bench_status)"; status=1; }

echo "== done in $((SECONDS - started)) s: $OUT_DIR/gpu_check.json, $OUT_DIR/gpu_check.txt"
exit $status
