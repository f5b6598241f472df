#!/usr/bin/env bash
# DOTA Task1 mAP: rsfm against dotadevkit 1.3.0 (PyPI) on a generated DOTA-scale case
# (2,000 images, 300,000 detections, 18 classes). Checks that both agree to 1e-6 and prints
# `rsfm-vs-dotadevkit: X.Xx faster`. Run from anywhere; IMAGES/DETS override the size.
set -euo pipefail
cd "$(dirname "$0")/../.."

cache="${XDG_CACHE_HOME:-$HOME/.cache}/rsfm/bench-metrics"
venv="$cache/venv-dotadevkit-1.3.0"
if ! "$venv/bin/python" -c "import dotadevkit.polyiou.polyiou" 2>/dev/null; then
  echo "installing dotadevkit==1.3.0 into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet dotadevkit==1.3.0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cargo build --quiet --release -p rsfm-model --example bench_dota_map
bench=(cargo run --quiet --release -p rsfm-model --example bench_dota_map --)
"${bench[@]}" generate --out "$work" --images "${IMAGES:-2000}" --dets "${DETS:-300000}"
"${bench[@]}" evaluate --data "$work" >"$work/rsfm.json"
"$venv/bin/python" benches/metrics/devkit_task1.py "$work" >"$work/devkit.json"

python3 - "$work/rsfm.json" "$work/devkit.json" <<'PY'
import json, sys
rsfm, devkit = (json.load(open(p)) for p in sys.argv[1:3])
worst = max(abs(rsfm["ap"][c] - devkit["ap"][c]) for c in devkit["ap"])
print(f"images {rsfm['images']}, detections {rsfm['detections']}, objects {rsfm['objects']}")
print(f"mAP rsfm {rsfm['map']!r}  dotadevkit {devkit['map']!r}  (largest AP difference {worst:.3g})")
print(f"time rsfm {rsfm['seconds']:.3f} s (evaluation alone {rsfm['eval_seconds']:.3f} s, "
      f"the rest reads the files)  dotadevkit {devkit['seconds']:.2f} s")
if abs(rsfm["map"] - devkit["map"]) > 1e-6 or worst > 1e-6:
    sys.exit("rsfm and dotadevkit disagree by more than 1e-6")
print(f"rsfm-vs-dotadevkit: {devkit['seconds'] / rsfm['seconds']:.1f}x faster")
PY
