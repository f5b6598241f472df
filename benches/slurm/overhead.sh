#!/usr/bin/env bash
# Per-stage overhead of `rsfm run --backend slurm` against the local executor, on the one-node
# cluster of scripts/slurm-local.sh: N trivial `command` stages (default 100). The local executor
# runs as many at once as the machine has CPUs; the Slurm backend submits them all and the
# cluster (one node, same CPUs) runs them. Prints the wall time per stage (submission to
# ingestion in the store) for each backend, their ratio, and the polling load.
#
#   benches/slurm/overhead.sh [N] [POLL_INTERVAL]     e.g. benches/slurm/overhead.sh 100 1s
#
# Uses the cluster named by SLURM_CONF when set, else starts one in a temp dir and stops it.
set -euo pipefail

stages=${1:-100}
poll=${2:-1s}
root=$(cd "$(dirname "$0")/../.." && pwd)
rsfm=${RSFM:-$root/target/release/rsfm}
[[ -x $rsfm ]] || rsfm=$root/target/debug/rsfm
[[ -x $rsfm ]] || { echo "build rsfm first (cargo build --release --bin rsfm)" >&2; exit 1; }
work=$(mktemp -d)
cluster=""
cleanup() {
    [[ -n $cluster ]] && "$root/scripts/slurm-local.sh" stop "$cluster" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
if [[ -z ${SLURM_CONF:-} ]]; then
    cluster=$work/cluster
    eval "$("$root/scripts/slurm-local.sh" start "$cluster")"
fi
cpus=$(nproc)

{
    echo '[experiment]'
    echo 'name = "slurm-overhead"'
    echo '[matrix]'
    echo "i = [$(seq -s, 1 "$stages")]"
    echo '[stage.touch]'
    echo 'kind = "command"'
    echo "argv = [\"sh\", \"-c\", \"echo \\\"{{\\\\\\\"i\\\\\\\": \$1}}\\\" > \\\"\$2/metrics.json\\\"\", \"sh\", \"{i}\", \"{out}\"]"
} >"$work/recipe.toml"
printf '[slurm]\npoll_interval = "%s"\nsubmit_rate = 50\n' "$poll" >"$work/rsfm.toml"

seconds() {
    local start end
    start=$(date +%s.%N)
    "$@" >/dev/null 2>"$work/stderr" || { cat "$work/stderr" >&2; exit 1; }
    end=$(date +%s.%N)
    awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", b - a }'
}

local_s=$(seconds "$rsfm" --results "$work/local" run "$work/recipe.toml" --gpus none --jobs "$cpus" --json)
slurm_s=$(seconds "$rsfm" --results "$work/slurm" run "$work/recipe.toml" --backend slurm --json)
load=$(grep '^slurm:' "$work/stderr")
queries=$(sed -E 's/.*; ([0-9]+) (squeue|sacct) queries.*/\1/' <<<"$load")
command=$(sed -E 's/.*; [0-9]+ (squeue|sacct) queries.*/\1/' <<<"$load")

awk -v n="$stages" -v l="$local_s" -v s="$slurm_s" -v q="$queries" -v c="$command" \
    -v cpus="$cpus" -v poll="$poll" 'BEGIN {
    printf "%d command stages on %d CPUs, poll interval %s\n", n, cpus, poll
    printf "local executor: %8.2f s total, %7.3f s per stage\n", l, l / n
    printf "slurm backend:  %8.2f s total, %7.3f s per stage (submit -> start -> ingest)\n", s, s / n
    printf "ratio slurm/local: %.1fx; overhead per stage: %.3f s\n", s / l, (s - l) / n
    printf "polling load: %d %s calls in %.1f s = %.1f per minute\n", q, c, s, q / (s / 60)
}'
