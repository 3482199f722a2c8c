#!/usr/bin/env bash
# The device check, one short prepared script for a CUDA machine (about 5 minutes on one H200):
#   1. the demo experiment (tiny profile, 3 loops) on the GPU, with every loop's per-step seconds
#      (benchmarks/bench_loop.py: preprocess, train, validate, query and its pool prediction, annotate);
#   2. the query benchmark with the strategies scoring on the GPU: the registered pred_entropy,
#      mutual_information and class_power_pe66_exp against the CPU floor, host-to-device copies per
#      case, and `nnactive query --device cuda` as a whole process against the established path
#      (benchmarks/bench_query_engine.py --device cuda).
# Results land in $OUT (device.txt, demo_steps.json/.log, query.json/.log).
#
# Usage, from the repository root, with nnactive, its plugins and nnU-Net importable by $PYTHON:
#   OUT=/some/folder benchmarks/gpu_check.sh          # on a CUDA machine
#   OUT=/some/folder benchmarks/gpu_check.sh --cpu    # the same steps on the CPU, small sizes, to try
#                                                     # the script where there is no GPU
# Without CUDA (and without --cpu) it prints one line saying so and exits with status 2.
set -euo pipefail

OUT=${OUT:?"gpu_check: set OUT to the folder for the results"}
PYTHON=${PYTHON:-python3}
DEVICE=cuda
QUERY_SIZES=()
DEMO_LIMIT=330
QUERY_LIMIT=150
if [[ "${1:-}" == "--cpu" ]]; then
    # small query sizes, and no time limits: a CPU takes many times longer than an H200
    DEVICE=cpu
    QUERY_SIZES=(--quick)
    DEMO_LIMIT=0
    QUERY_LIMIT=0
fi
cd "$(dirname "$0")/.."

if ! "$PYTHON" -c 'import nnactive_core, nnactive_strategies_bald, nnunetv2' 2>/dev/null; then
    echo "gpu_check: $PYTHON cannot import nnactive_core, nnactive_strategies_bald and nnunetv2; install" \
        "nnactive with its plugins first (pip install -e . -e plugins/nnactive-strategies-bald ...)"
    exit 2
fi
if [[ $DEVICE == cuda ]] && ! "$PYTHON" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
    echo "gpu_check: torch sees no CUDA device here; run it on a CUDA machine, or with --cpu to try it on the CPU"
    exit 2
fi

mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
# a tiny network trained for seconds: compiling it would cost more than it saves
export nnUNet_compile=${nnUNet_compile:-f}
{
    date -u
    nvidia-smi 2>/dev/null || echo "no nvidia-smi"
    "$PYTHON" -c 'import os, torch; from nnactive_core.threads import thread_budget
print("torch", torch.__version__, "cuda", torch.version.cuda, "device",
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu", "thread budget", thread_budget())'
} > "$OUT/device.txt" 2>&1

status=0
echo "gpu_check: demo on $DEVICE"
timeout "$DEMO_LIMIT" "$PYTHON" benchmarks/bench_loop.py --device "$DEVICE" --json "$OUT/demo_steps.json" \
    > "$OUT/demo_steps.log" 2>&1 || status=$?
tail -n 8 "$OUT/demo_steps.log"
echo "gpu_check: query benchmark on $DEVICE"
timeout "$QUERY_LIMIT" "$PYTHON" benchmarks/bench_query_engine.py --device "$DEVICE" --parts inprocess process \
    --repeats 2 "${QUERY_SIZES[@]}" --json "$OUT/query.json" > "$OUT/query.log" 2>&1 || status=$?
cat "$OUT/query.log"
echo "gpu_check: done (status $status); results in $OUT"
exit $status
