#!/usr/bin/env bash
# Confusion-matrix accumulation throughput (pixels/s) against the memory bandwidth measured
# in the same run. MPIX sets the buffer size in Mi pixels (default 256).
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo run --quiet --release -p rsfm-model --example bench_confusion -- --mpix "${MPIX:-256}"
