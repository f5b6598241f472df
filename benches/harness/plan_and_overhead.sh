#!/usr/bin/env bash
# Harness figures, each against its reference measured in the same run:
#   - `rsfm plan` of a 1,000-stage matrix with every stage cached (goal < 0.2 s),
#   - overhead per `command` stage vs running the same command directly (goal < 20 ms).
# Usage: benches/harness/plan_and_overhead.sh [path/to/rsfm]   (default: target/release/rsfm)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
rsfm=${1:-$root/target/release/rsfm}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

now() { date +%s.%N; }
elapsed() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.4f}')" "$1" "$2"; }

cat > "$work/matrix.toml" <<'TOML'
[experiment]
name = "bench-matrix"

[matrix]
a = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
b = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
c = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]

[stage.noop]
kind = "command"
argv = ["true", "{a}", "{b}", "{c}"]
TOML

echo "== rsfm plan, 1,000 stages, all cached"
t0=$(now)
"$rsfm" --results "$work/results" run "$work/matrix.toml" --gpus none --jobs 2 --json > "$work/run.json"
t1=$(now)
run_s=$(elapsed "$t0" "$t1")
tail -n 1 "$work/run.json"
best=999
for _ in 1 2 3 4 5; do
  t0=$(now); "$rsfm" --results "$work/results" plan "$work/matrix.toml" --json > "$work/plan.json"; t1=$(now)
  s=$(elapsed "$t0" "$t1")
  best=$(python3 -c "print(min($best, $s))")
done
cached=$(python3 -c "import json; d=json.load(open('$work/plan.json')); print(sum(s['status']=='cached' for s in d['stages']))")
echo "plan-1000-cached: ${best} s (best of 5), ${cached}/1000 cached; goal < 0.2 s: ratio to goal $(python3 -c "print(f'{$best/0.2:.2f}')")x"

echo "== overhead per command stage (1,000 stages of \`true\`, --jobs 1)"
rm -rf "$work/results"
t0=$(now)
"$rsfm" --results "$work/results" run "$work/matrix.toml" --gpus none --jobs 1 --json > /dev/null
t1=$(now)
harness_s=$(elapsed "$t0" "$t1")
t0=$(now)
for a in 0 1 2 3 4 5 6 7 8 9; do for b in 0 1 2 3 4 5 6 7 8 9; do for c in 0 1 2 3 4 5 6 7 8 9; do
  /bin/true "$a" "$b" "$c"
done; done; done
t1=$(now)
direct_s=$(elapsed "$t0" "$t1")
python3 - "$harness_s" "$direct_s" <<'PY'
import sys
harness, direct = map(float, sys.argv[1:])
per_stage = (harness - direct) / 1000 * 1000
print(f"rsfm run: {harness:.2f} s for 1000 stages; direct: {direct:.2f} s")
print(f"overhead-per-command-stage: {per_stage:.2f} ms (goal < 20 ms); rsfm/direct = {harness/direct:.1f}x")
PY
