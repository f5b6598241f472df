#!/usr/bin/env bash
# Prints the path of a Python with PyTorch 2.11, timm and safetensors for the weights tests
# (tests/e2e/weights.rs): $RSFM_BENCH_PYTHON when set, else target/venv-weights, created on first
# use with pip (torch from the wheel cache scripts/setup-libtorch.sh keeps, with the CUDA wheels
# it needs to import; the rest from PyPI).
set -euo pipefail
cd "$(dirname "$0")/../.."

install_weights_python() {
    "$1" install --quiet --find-links ~/.cache/rsfm/wheels torch==2.11.0 timm safetensors >&2
}
source benches/lib/python.sh
bench_python target/venv-weights "torch, timm, safetensors" install_weights_python
echo "$python"
