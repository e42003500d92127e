#!/usr/bin/env bash
# One device call, from the repo root after `source .device/setup.sh`:
#   scripts/device_session.sh OUT_DIR MODE
# the DPZero synthetic experiment's full grid for effective rank MODE on the CPU cores (background),
# and, when UTILITY=1, the SST-2 utility study on the GPU (scripts/utility_sst2.py) meanwhile.
set -uo pipefail
out=${1:?OUT_DIR}; mode=${2:?MODE}; mkdir -p "$out"
( OMP_NUM_THREADS=${THREADS:-12} timeout "${LIMIT:-570}" zofw experiment synthetic --seeds 3 --mode "$mode" --json \
    > "$out/synthetic_$mode.json" 2> "$out/synthetic_$mode.err" ) &
if [ "${UTILITY:-0}" = 1 ]; then
  OMP_NUM_THREADS=2 timeout "${LIMIT:-570}" python3 scripts/utility_sst2.py .device/data "$out/utility" --device cuda \
    --steps "${STEPS:-1000}" > "$out/utility.log" 2>&1
fi
wait
tail -3 "$out/synthetic_$mode.err"; tail -c 600 "$out/synthetic_$mode.json"; cat "$out/utility.log" 2>/dev/null | tail -25
