#!/usr/bin/env bash
# The one device check for bench/gpu: Deep-Emotion's train and inference steps, TF's own XLA lowering
# (export_xla.py wrote it to .gpu/, which the device call must carry), compiled by jaxlib's XLA for
# the GPU: figures for both layouts and every exported batch size, then the replay of TF's reference
# steps. About 2-4 minutes; the log goes to $OUT/gpu_bench.log when $OUT is set.
#   bash bench/gpu/device_check.sh
# DEVICE_CHECK_ARGS adds run_xla.py options (later ones win), e.g. for a dry run on a CPU:
#   JAX_PLATFORMS=cpu DEVICE_CHECK_ARGS="--faces 2048 --epochs 2 --layouts paper" bash bench/gpu/device_check.sh
set -u
cd "$(dirname "$0")/../.."
export PYTHONUNBUFFERED=1
export JAX_PLATFORMS="${JAX_PLATFORMS:-cuda}"  # fail loudly rather than fall back to the CPU
LOG="${OUT:-/tmp}/gpu_bench.log"
mkdir -p "$(dirname "$LOG")"
{
  date -u
  nvidia-smi -L
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv
  python3 -c "import sys, jax, jaxlib; print(sys.version.split()[0], 'jax', jax.__version__, 'jaxlib', jaxlib.__version__, jax.devices())"
  du -sh .gpu
  # --mode both: one process, so the verification reuses the compiled batch-1024 programs.
  timeout 230 python3 -m bench.gpu.run_xla --artifacts .gpu --mode both --epochs 10 --infer-seconds 2 \
    ${DEVICE_CHECK_ARGS:-}
  status=$?
  echo "run_xla exit status $status (124: stopped by the 230 s limit)"
  exit "$status"
} 2>&1 | tee "$LOG"
exit "${PIPESTATUS[0]}"  # non-zero when a measurement or check failed
