#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, for rsfm's Slurm tests and for trying
# `rsfm run --backend slurm`: munged, slurmctld and slurmd from Debian's slurm-wlm, with every
# file (config, key, sockets, state, spool, logs, pid files) under DIR.
#
#   scripts/slurm-local.sh start  DIR   start the daemons (idempotent); prints `export SLURM_CONF=DIR/slurm.conf`
#   scripts/slurm-local.sh stop   DIR   stop exactly the daemons that `start` started (pid files)
#   scripts/slurm-local.sh status DIR   which daemons run, and `sinfo`
#
# The node is this host with its real CPU count and memory; GPUs only when nvidia-smi lists some.
# Accounting is off (`sacct` says so): rsfm then reads job states from squeue/scontrol.
set -euo pipefail

usage() {
    echo "usage: $0 start|stop|status DIR" >&2
    exit 2
}

[[ $# -eq 2 ]] || usage
action=$1
dir=$2
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
conf=$dir/slurm.conf
daemons=(munged slurmctld slurmd)

pid_file() {
    case $1 in
        munged) echo "$dir/munge/munged.pid" ;;
        slurmctld) echo "$dir/run/slurmctld.pid" ;;
        slurmd) echo "$dir/run/slurmd.pid" ;;
    esac
}

# The pid of daemon $1 from its pid file, if that process is alive and is that daemon.
running_pid() {
    local file pid
    file=$(pid_file "$1")
    [[ -s $file ]] || return 1
    pid=$(tr -dc '0-9' <"$file")
    [[ -n $pid && -r /proc/$pid/cmdline ]] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "$1" || return 1
    echo "$pid"
}

ensure_installed() {
    local missing=()
    for tool in munged slurmctld slurmd sbatch squeue sinfo; do
        command -v "$tool" >/dev/null 2>&1 || [[ -x /usr/sbin/$tool ]] || missing+=("$tool")
    done
    [[ ${#missing[@]} -eq 0 ]] && return 0
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        echo "slurm-local: installing slurm-wlm and munge (missing: ${missing[*]})" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y slurm-wlm munge >&2 \
            || { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y slurm-wlm munge >&2; }
    else
        echo "slurm-local: missing ${missing[*]}: install Debian's packages with" >&2
        echo "    sudo apt-get install -y slurm-wlm munge" >&2
        exit 1
    fi
}

# The first port from $1 on that nothing listens on, and the next one free as well.
free_port_pair() {
    local port=$1 used
    used=$(ss -Htln 2>/dev/null | awk '{print $4}' | sed 's/.*://' | sort -u)
    while grep -qx "$port" <<<"$used" || grep -qx "$((port + 1))" <<<"$used"; do
        port=$((port + 2))
    done
    echo "$port"
}

write_config() {
    local host cpus mem_mb port gpus gres_line="" gres_types=""
    host=$(hostname -s)
    cpus=$(nproc --all)
    mem_mb=$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)
    port=$(free_port_pair 16817)
    gpus=0
    if command -v nvidia-smi >/dev/null 2>&1; then
        gpus=$(nvidia-smi --query-gpu=index --format=csv,noheader 2>/dev/null | grep -c . || true)
    fi
    if [[ $gpus -gt 0 ]]; then
        gres_types="GresTypes=gpu"
        gres_line="Gres=gpu:$gpus"
        echo "Name=gpu File=/dev/nvidia[0-$((gpus - 1))]" >"$dir/gres.conf"
    fi
    cat >"$conf" <<EOF
# One-node Slurm written by scripts/slurm-local.sh; everything lives under $dir.
ClusterName=rsfmlocal
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$port
SlurmdPort=$((port + 1))
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.sock,cred_expire=10
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1,bf_interval=1
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
MinJobAge=600
KillWait=10
SlurmctldTimeout=30
SlurmdTimeout=30
$gres_types
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb $gres_line State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
}

start_munged() {
    running_pid munged >/dev/null && return 0
    mkdir -p "$dir/munge"
    chmod 700 "$dir/munge"
    if [[ ! -s $dir/munge/munge.key ]]; then
        dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
        chmod 400 "$dir/munge/munge.key"
    fi
    munged --force --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.sock" \
        --pid-file="$dir/munge/munged.pid" --log-file="$dir/munge/munged.log" \
        --seed-file="$dir/munge/munged.seed"
}

start_slurm_daemon() {
    local daemon=$1
    running_pid "$daemon" >/dev/null && return 0
    "$daemon" -f "$conf"
    for _ in $(seq 1 50); do
        running_pid "$daemon" >/dev/null && return 0
        sleep 0.2
    done
    echo "slurm-local: $daemon did not start; see $dir/log/$daemon.log" >&2
    tail -n 20 "$dir/log/$daemon.log" >&2 || true
    exit 1
}

wait_for_idle_node() {
    local state
    for _ in $(seq 1 150); do
        state=$(SLURM_CONF=$conf sinfo -h -N -o '%T' 2>/dev/null | head -n 1 || true)
        if [[ $state == idle* || $state == mixed* || $state == allocated* ]]; then
            return 0
        fi
        sleep 0.2
    done
    echo "slurm-local: the node is not idle after 30 s (state: ${state:-none}); see $dir/log/" >&2
    exit 1
}

start() {
    ensure_installed
    mkdir -p "$dir/state" "$dir/spool" "$dir/run" "$dir/log"
    if ! running_pid slurmctld >/dev/null; then
        write_config
    fi
    start_munged
    start_slurm_daemon slurmctld
    start_slurm_daemon slurmd
    wait_for_idle_node
    echo "export SLURM_CONF=$conf"
}

stop() {
    local daemon pid
    for daemon in slurmd slurmctld munged; do
        pid=$(running_pid "$daemon") || continue
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
        rm -f "$(pid_file "$daemon")"
        echo "slurm-local: stopped $daemon (pid $pid)" >&2
    done
}

status() {
    local daemon pid all=0
    for daemon in "${daemons[@]}"; do
        if pid=$(running_pid "$daemon"); then
            echo "$daemon: running (pid $pid)"
        else
            echo "$daemon: stopped"
            all=1
        fi
    done
    if [[ $all -eq 0 ]]; then
        SLURM_CONF=$conf sinfo
    fi
    return $all
}

case $action in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) usage ;;
esac
