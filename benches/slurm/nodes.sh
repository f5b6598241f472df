#!/usr/bin/env bash
# Two-node Slurm on this machine (scripts/slurm-local.sh --nodes 2, root): what a job over two
# nodes costs before its ranks run, and the Gloo all-reduce of the ViT-B/16 gradient between two
# ranks in different network namespaces (over the veth pairs and the bridge) against the same
# all-reduce between two local processes and one ViT-B/16 training step on this CPU.
#
#   benches/slurm/nodes.sh [JOBS]     JOBS trivial jobs per layout for the start-up (default 10)
#
# Prints one JSON line per measurement. RSFM_BENCH_BATCH / RSFM_BENCH_STEPS as for
# `cargo bench --bench dist_allreduce`, whose binary is the rank program here (built unless
# DIST_ALLREDUCE names one already built).
set -euo pipefail
cd "$(dirname "$0")/../.."
jobs=${1:-10}
export LIBTORCH=${LIBTORCH:-$PWD/.libtorch}
export RSFM_BENCH_BATCH=${RSFM_BENCH_BATCH:-8} RSFM_BENCH_STEPS=${RSFM_BENCH_STEPS:-3}

bench=${DIST_ALLREDUCE:-$(cargo bench --profile dev -p rsfm-model --features torch --bench dist_allreduce --no-run \
    --message-format=json 2>/dev/null | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1)}
[[ -x $bench ]] || { echo "nodes.sh: cannot build the dist_allreduce bench" >&2; exit 1; }

dir=$(mktemp -d /tmp/rsfm-nodes-bench.XXXXXX)
trap 'scripts/slurm-local.sh stop "$dir" >/dev/null 2>&1; rm -rf "$dir"' EXIT
scripts/slurm-local.sh start "$dir" --nodes 2 >/dev/null
export SLURM_CONF=$dir/slurm.conf

# Submit-to-start: the time from `sbatch` to the batch script's first line, and to the moment
# the last of the job's `srun` tasks runs, for 2 tasks on one node and 1 task on each of two.
startup() {
    local tag=$1 layout=$2 flags=$3 i t0 out
    for i in $(seq 1 "$jobs"); do
        out=$dir/startup-$tag-$i
        t0=$(date +%s.%N)
        sbatch --wait --quiet $flags --output=/dev/null \
            --wrap "date +%s.%N >$out.batch; srun sh -c 'date +%s.%N' >$out.tasks" >/dev/null
        echo "$t0" >"$out.submit"
    done
    for i in $(seq 1 "$jobs"); do
        out=$dir/startup-$tag-$i
        paste "$out.submit" "$out.batch" <(sort -n "$out.tasks" | tail -n 1)
    done | awk -v layout="$layout" -v n="$jobs" '
        { batch += $2 - $1; tasks += $3 - $1 }
        END { printf "{\"layout\":\"%s\",\"jobs\":%d,\"submit_to_batch_s\":%.3f,\"submit_to_all_tasks_s\":%.3f}\n", layout, n, batch / n, tasks / n }'
}
startup 1x2 "1 node x 2 tasks" "--nodes=1 --ntasks-per-node=2"
startup 2x1 "2 nodes x 1 task" "--nodes=2 --ntasks-per-node=1"

# The all-reduce across the namespaces: the bench binary is a rank when RANK etc. are set,
# with the rendezvous the Slurm backend's batch scripts use (first node's NodeAddr, port from
# the job id).
cat >"$dir/allreduce.sh" <<'EOF'
#!/bin/sh
first_node=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
MASTER_ADDR=$(scontrol show node "$first_node" | sed -n 's/.*NodeAddr=\([^ ]*\).*/\1/p')
MASTER_PORT=$((20000 + SLURM_JOB_ID % 10000))
export MASTER_ADDR MASTER_PORT
exec srun sh -c 'RANK=$SLURM_PROCID WORLD_SIZE=$SLURM_NTASKS LOCAL_RANK=$SLURM_LOCALID exec "$@"' rank "$@"
EOF
sbatch --wait --quiet --nodes=2 --ntasks-per-node=1 --output="$dir/allreduce.out" \
    "$dir/allreduce.sh" "$bench" >/dev/null
cross=$(grep '^{' "$dir/allreduce.out" | tail -n 1)
echo "{\"two_namespaces\":$cross}"

# One process's ViT-B/16 step and the all-reduce between two local processes (loopback).
"$bench" | tail -n 1
