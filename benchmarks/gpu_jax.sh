#!/usr/bin/env bash
# Fused trials on JAX on a GPU machine that has JAX (with CUDA) but neither Keras nor
# TensorFlow, and no network. Run from the repo root:
#
#     bash benchmarks/gpu_jax.sh            # the five workloads, four ways each, ~6-9 minutes on an H200
#     bash benchmarks/gpu_jax.sh --quick    # tiny sizes: checks the script (JAX_PLATFORMS=cpu works)
#
# The packages Keras and gridspec need beyond JAX and numpy come as wheels in .whl/, fetched
# on a machine with a network for the GPU machine's Python (3.12 on the H200):
#
#     python3 -m pip download --only-binary=:all: --no-deps --python-version 3.12 \
#         --platform manylinux2014_x86_64 -d .whl keras==3.15.1 namex optree attrs \
#         absl-py rich markdown-it-py mdurl pygments h5py
#
# They are installed with --no-deps into /tmp/gridspec-site, which goes first on PYTHONPATH.
# Figures: $OUT/gpu_jax.json (per workload: group / fuse1 / loop wall seconds, seconds per
# epoch after compiling, compile seconds per member, largest relative difference from fuse1,
# same winner and top 3), the log beside it.
set -u
OUT="${OUT:-$PWD/gpu-jax-out}"
mkdir -p "$OUT"
PY="${PYTHON:-python3}"
SITE="${GRIDSPEC_SITE:-/tmp/gridspec-site}"
if ls .whl/*.whl >/dev/null 2>&1; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --target "$SITE" .whl/*.whl || exit 3
fi
export PYTHONPATH="$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}"
export KERAS_BACKEND=jax
export TF_CPP_MIN_LOG_LEVEL=2
{ nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv 2>&1 || echo "no nvidia-smi"; } > "$OUT/nvidia-smi.txt"
# What is missing is said at once, not after minutes
"$PY" -c "import keras, gridspec.training.jax_group; print('keras', keras.__version__, keras.backend.backend())" \
    > "$OUT/gpu_jax.log" 2>&1 || { tail -n 5 "$OUT/gpu_jax.log"; exit 3; }
timeout 560 "$PY" benchmarks/gpu_jax.py "$OUT" "$@" >> "$OUT/gpu_jax.log" 2>&1
rc=$?
grep -v "^W0000\|^I0000" "$OUT/gpu_jax.log" | tail -n 30
echo "exit status $rc; figures in $OUT/gpu_jax.json"
exit $rc
