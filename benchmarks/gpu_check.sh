#!/usr/bin/env bash
# GPU pinning / placement check for one small search; run from the repo root on a machine
# with a GPU and the package's dependencies installed. Writes its figures under $OUT
# (default ./gpu-check-out). Takes well under 3 minutes on an H100 machine.
set -u
OUT="${OUT:-$PWD/gpu-check-out}"
mkdir -p "$OUT"
export PYTHONPATH="$PWD/benchmarks:$PWD${PYTHONPATH:+:$PYTHONPATH}"
export TF_CPP_MIN_LOG_LEVEL=2
PY="${PYTHON:-python}"
{ nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv 2>&1 || echo "no nvidia-smi"; } > "$OUT/nvidia-smi.txt"
timeout 170 "$PY" benchmarks/gpu_check.py "$OUT" > "$OUT/gpu_check.log" 2>&1
rc=$?
tail -n 40 "$OUT/gpu_check.log"
echo "exit status $rc; figures in $OUT/gpu_check.txt and $OUT/gpu_check.json"
exit $rc
