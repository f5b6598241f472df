#!/usr/bin/env bash
# Oriented R-CNN training-step and inference throughput at 512² on a tiny ViTDet backbone
# (CPU by default; RSFM_BENCH_DEVICE=cuda:0 for a GPU), without and with the backbone's
# relative position biases. Prints one JSON line for each.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo bench --quiet -p rsfm-model --features torch --bench detector
RSFM_BENCH_REL_POS=1 cargo bench --quiet -p rsfm-model --features torch --bench detector
