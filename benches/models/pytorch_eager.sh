#!/usr/bin/env bash
# ViT-B/16 training steps (batch 8, 224², CPU) of rsfm next to PyTorch eager running the same
# models: MAE pretraining (rsfm vs transformers' ViTMAEForPreTraining) and the plain ViT
# (rsfm vs timm's vit_base_patch16_224, squared-token loss). Prints each side's JSON lines,
# then images/s and the ratio rsfm/PyTorch per model.
#
# Environment: RSFM_BENCH_THREADS (threads for both sides, default: the CPU count),
# RSFM_BENCH_BATCH (8), RSFM_BENCH_WARMUP (1), RSFM_BENCH_STEPS (3), RSFM_BENCH_MODELS
# (mae,vit), RSFM_BENCH_PYTHON (an interpreter with torch 2.11, timm and transformers;
# default: .venv-golden, created with pip if missing).
set -euo pipefail
cd "$(dirname "$0")/../.."

threads="${RSFM_BENCH_THREADS:-$(nproc)}"
batch="${RSFM_BENCH_BATCH:-8}"
warmup="${RSFM_BENCH_WARMUP:-1}"
steps="${RSFM_BENCH_STEPS:-3}"
models="${RSFM_BENCH_MODELS:-mae,vit}"

python="${RSFM_BENCH_PYTHON:-.venv-golden/bin/python}"
if ! "$python" -c "import torch, timm, transformers" 2>/dev/null; then
    if [[ -n "${RSFM_BENCH_PYTHON:-}" ]]; then
        echo "RSFM_BENCH_PYTHON=$python cannot import torch, timm and transformers" >&2
        exit 1
    fi
    echo "creating .venv-golden with torch 2.11.0, timm and transformers" >&2
    python3 -m venv .venv-golden
    .venv-golden/bin/pip install --quiet --find-links ~/.cache/rsfm/wheels \
        torch==2.11.0 timm transformers
fi

echo "# load before the run: $(uptime)"
cargo bench --quiet -p rsfm-model --features torch --bench train_step --no-run
rsfm_out="$(RSFM_BENCH_THREADS="$threads" RSFM_BENCH_BATCH="$batch" RSFM_BENCH_WARMUP="$warmup" \
    RSFM_BENCH_STEPS="$steps" RSFM_BENCH_MODELS="$models" \
    cargo bench --quiet -p rsfm-model --features torch --bench train_step)"
echo "$rsfm_out"
torch_out="$("$python" benches/models/pytorch_eager.py --models "$models" --batch "$batch" \
    --threads "$threads" --warmup "$warmup" --steps "$steps")"
echo "$torch_out"
echo "# load after the run: $(uptime)"

RSFM_LINES="$rsfm_out" TORCH_LINES="$torch_out" "$python" - <<'PY'
import json, os

def by_model(text):
    return {r["model"]: r for r in map(json.loads, text.splitlines()) if r}

rsfm, torch = by_model(os.environ["RSFM_LINES"]), by_model(os.environ["TORCH_LINES"])
print(f"{'model':<6} {'threads':>7} {'rsfm img/s':>11} {'pytorch img/s':>14} {'rsfm/pytorch':>13}")
for name, r in rsfm.items():
    t = torch[name]
    ratio = r["images_per_s"] / t["images_per_s"]
    print(f"{name:<6} {r['threads']:>7} {r['images_per_s']:>11.3f} {t['images_per_s']:>14.3f} {ratio:>12.2f}x")
PY
