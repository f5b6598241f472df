#!/usr/bin/env bash
# GPU benchmarks in one command, for a machine with an NVIDIA GPU and PyTorch 2.11 (by default
# the one in /opt/torch/.venv): builds the `gpu` bench against that PyTorch's libtorch and
# prints one JSON line per measurement, then a summary:
#   - MAE pretraining, bf16 autocast: step time, images/s, TFLOP/s and MFU for ViT-B/16 and
#     ViT-605M (recipes/models/vit-605m.toml), and ViT-B/16 in fp32 for comparison;
#   - the same ViT-B/16 bf16 step with the data-parallel wrapper (one-rank process group,
#     NCCL when compiled in, gradient all-reduce after backward) and without it;
#   - Oriented R-CNN (ViTDet ViT-B/16) fine-tuning step time at 1024²;
#   - peak GPU memory (nvidia-smi, sampled every 100 ms) of 2.4B UperNet fine-tuning at 512²
#     with activation checkpointing when the model config has the switch (the line says
#     whether it did).
#
# Environment: RSFM_GPU_PYTHON (python of the PyTorch to use, default
# /opt/torch/.venv/bin/python), RSFM_GPU_MAE_BATCH (256), RSFM_GPU_605M_BATCH (128),
# RSFM_GPU_DET_BATCH (2), RSFM_GPU_SEG_BATCH (2), RSFM_GPU_PEAK_TFLOPS (989: H100/H200 SXM
# dense bf16), RSFM_BENCH_WARMUP (2), RSFM_BENCH_STEPS (5), RSFM_BENCH_DEVICE (cuda:0).
set -euo pipefail
cd "$(dirname "$0")/../.."

python="${RSFM_GPU_PYTHON:-/opt/torch/.venv/bin/python}"
[[ -x "$python" ]] || {
    echo "no python at $python: set RSFM_GPU_PYTHON to the interpreter of a CUDA PyTorch 2.11" >&2
    exit 1
}
torch_dir="$("$python" -c 'import os, torch; print(os.path.dirname(torch.__file__))')"
torch_version="$("$python" -c 'import torch; print(torch.__version__)')"
[[ -e "$torch_dir/lib/libtorch_cuda.so" ]] || {
    echo "$torch_dir/lib has no libtorch_cuda.so: this PyTorch ($torch_version) has no CUDA" >&2
    exit 1
}
command -v nvidia-smi >/dev/null || { echo "nvidia-smi not found: no NVIDIA driver here" >&2; exit 1; }
site="$(dirname "$torch_dir")"
# libtorch from the wheel; CUDA, cuDNN, NCCL libraries from its nvidia/* wheels.
export LIBTORCH="$torch_dir"
nvidia_libs="$(find "$site/nvidia" -maxdepth 3 -type d -name lib 2>/dev/null | paste -sd: || true)"
export LD_LIBRARY_PATH="$torch_dir/lib${nvidia_libs:+:$nvidia_libs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# Loading libtorch_cuda.so registers the CUDA backend even if the linker dropped it.
export LD_PRELOAD="$torch_dir/lib/libtorch_cuda.so${LD_PRELOAD:+:$LD_PRELOAD}"
# Separate target dir: building against this libtorch must not invalidate the CPU build.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target/gpu}"
echo "# PyTorch $torch_version at $torch_dir"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | sed 's/^/# GPU: /'
cargo bench -p rsfm-model --features torch --bench gpu --no-run 2>&1 | tail -3
bench() { cargo bench --quiet -p rsfm-model --features torch --bench gpu -- "$@"; }

mae_batch="${RSFM_GPU_MAE_BATCH:-256}"
results=()
results+=("$(bench mae vit-b bf16 "$mae_batch")")
results+=("$(bench mae vit-b bf16 "$mae_batch" dp)")
results+=("$(bench mae vit-b fp32 "$mae_batch")")
results+=("$(bench mae vit-605m bf16 "${RSFM_GPU_605M_BATCH:-128}")")
results+=("$(bench det 1024 "${RSFM_GPU_DET_BATCH:-2}" bf16)")

# Peak memory of the 2.4B fine-tuning: nvidia-smi samples the device while it runs.
samples="$(mktemp)"
gpu_index="${RSFM_BENCH_DEVICE:-cuda:0}"; gpu_index="${gpu_index#cuda:}"; gpu_index="${gpu_index:-0}"
nvidia-smi -i "$gpu_index" --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 >"$samples" &
sampler=$!
seg_line="$(bench seg vit-2.4b 512 "${RSFM_GPU_SEG_BATCH:-2}" bf16)"
kill "$sampler"
peak_mib="$(sort -n "$samples" | tail -1)"
rm -f "$samples"
results+=("$("$python" -c 'import json,sys; d=json.loads(sys.argv[1]); d["peak_memory_mib"]=int(sys.argv[2]); print(json.dumps(d))' "$seg_line" "$peak_mib")")

printf '%s\n' "${results[@]}"
"$python" - "${results[@]}" <<'PY'
import json, sys
rows = [json.loads(r) for r in sys.argv[1:]]
for r in rows:
    if r["bench"] == "mae":
        dp = " +data-parallel" if r["data_parallel"] else ""
        print(f"MAE {r['model']} {r['precision']}{dp} batch {r['batch']}: {r['step_s']*1e3:.0f} ms/step, "
              f"{r['images_per_s']:.0f} img/s, {r['tflops']:.0f} TFLOP/s, MFU {r['mfu']:.1%}")
    elif r["bench"] == "det":
        print(f"detection fine-tuning {r['side']}² batch {r['batch']} {r['precision']}: {r['step_s']*1e3:.0f} ms/step")
    else:
        ckpt = f"with checkpointing ({r['checkpointing_switch']})" if r["activation_checkpointing"] else "checkpointing not available (no switch in the model config): plain backward"
        print(f"{r['model']} fine-tuning {r['side']}² batch {r['batch']} {r['precision']}, {ckpt}: "
              f"peak {r['peak_memory_mib']} MiB, {r['step_s']*1e3:.0f} ms/step")
plain = [r for r in rows if r["bench"] == "mae" and r["model"] == "vit-b" and r["precision"] == "bf16"]
if len(plain) == 2:
    a, b = sorted(plain, key=lambda r: r["data_parallel"])
    print(f"data-parallel wrapper on one GPU: {b['step_s'] / a['step_s']:.3f}x the plain step time")
PY
