#!/usr/bin/env bash
# ViT-B/16 training steps (batch 8, 224², CPU) of rsfm next to PyTorch eager running the same
# models: MAE pretraining (rsfm vs transformers' ViTMAEForPreTraining) and the plain ViT
# (rsfm vs timm's vit_base_patch16_224, squared-token loss). Prints each side's JSON lines,
# then images/s and the ratio rsfm/PyTorch per model (mean step and fastest step). Models run
# one at a time, rsfm then PyTorch, so each pair sees similar machine load.
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

# torch 2.11.0, timm and transformers into the venv whose pip is $1.
install_golden_python() {
    "$1" install --quiet --find-links ~/.cache/rsfm/wheels torch==2.11.0 timm transformers
}
source benches/lib/python.sh
bench_python .venv-golden "torch, timm, transformers" install_golden_python

echo "# load before the run: $(uptime)"
cargo bench --quiet -p rsfm-model --features torch --bench train_step --no-run
rsfm_out=""
torch_out=""
# One model at a time, rsfm then PyTorch, so both sides of a pair see similar machine load.
for model in ${models//,/ }; do
    line="$(RSFM_BENCH_THREADS="$threads" RSFM_BENCH_BATCH="$batch" RSFM_BENCH_WARMUP="$warmup" \
        RSFM_BENCH_STEPS="$steps" RSFM_BENCH_MODELS="$model" \
        cargo bench --quiet -p rsfm-model --features torch --bench train_step)"
    echo "$line"
    rsfm_out+="$line"$'\n'
    line="$("$python" benches/models/pytorch_eager.py --models "$model" --batch "$batch" \
        --threads "$threads" --warmup "$warmup" --steps "$steps")"
    echo "$line"
    torch_out+="$line"$'\n'
done
echo "# load after the run: $(uptime)"

RSFM_LINES="$rsfm_out" TORCH_LINES="$torch_out" "$python" - <<'PY'
import json, os

def by_model(text):
    rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    return {r["model"]: r for r in rows}

rsfm, torch = by_model(os.environ["RSFM_LINES"]), by_model(os.environ["TORCH_LINES"])
print("images/s per model; mean over the timed steps, and (best) from the fastest step")
print(f"{'model':<6} {'threads':>7} {'rsfm':>7} {'pytorch':>8} {'ratio':>6}"
      f" {'rsfm(best)':>11} {'pytorch(best)':>14} {'ratio(best)':>12}")
for name, r in rsfm.items():
    t = torch[name]
    mean, best = r["images_per_s"], r["best_images_per_s"]
    t_mean, t_best = t["images_per_s"], t["best_images_per_s"]
    print(f"{name:<6} {r['threads']:>7} {mean:>7.3f} {t_mean:>8.3f} {mean / t_mean:>5.2f}x"
          f" {best:>11.3f} {t_best:>14.3f} {best / t_best:>11.2f}x")
PY
