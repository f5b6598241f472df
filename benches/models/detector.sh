#!/usr/bin/env bash
# Oriented R-CNN training-step and inference throughput at 512² on a tiny ViTDet backbone
# (CPU by default; RSFM_BENCH_DEVICE=cuda:0 for a GPU). Prints one JSON line.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo bench --quiet -p rsfm-model --features torch --bench detector
