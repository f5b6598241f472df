#!/usr/bin/env bash
# A Slurm cluster on this machine, for rsfm's Slurm tests and for trying
# `rsfm run --backend slurm`: munged, slurmctld and slurmd from Debian's slurm-wlm, with every
# file (config, key, sockets, state, spool, logs, pid files) under DIR.
#
#   scripts/slurm-local.sh start  DIR [--nodes N]   start the daemons (idempotent); prints `export SLURM_CONF=DIR/slurm.conf`
#   scripts/slurm-local.sh stop   DIR               stop exactly the daemons, namespaces and links `start` made
#   scripts/slurm-local.sh status DIR               which daemons run, and `sinfo`
#
# One node (the default) is this host with its real CPU count and memory; GPUs only when
# nvidia-smi lists some. With `--nodes N` (N >= 2, root only) each node n1..nN is a slurmd in its
# own network, UTS and mount namespace: a veth pair joins it to a bridge in this namespace, its
# address and the bridge's come from 198.18.0.0/15 (the block reserved for network tests) and
# nothing else is routed; its hostname is its node name, which its own /etc/hosts (a bind mount
# seen only in its mount namespace) resolves to its address, so programs that bind to their
# hostname's address (Gloo) bind to the node's interface. Every node offers this host's CPUs.
# What `start` made is recorded in DIR/made, which `stop` reads.
# Accounting is off (`sacct` says so): rsfm then reads job states from squeue/scontrol.
set -euo pipefail

usage() {
    echo "usage: $0 start DIR [--nodes N] | stop DIR | status DIR" >&2
    exit 2
}

[[ $# -ge 2 ]] || usage
action=$1
dir=$2
shift 2
nodes=1
while [[ $# -gt 0 ]]; do
    case $1 in
        --nodes)
            [[ $action == start && $# -ge 2 && $2 =~ ^[1-9][0-9]*$ ]] || usage
            nodes=$2
            shift 2
            ;;
        *) usage ;;
    esac
done
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
conf=$dir/slurm.conf
# What `start` made, one `KIND NAME` a line (pid files aside): `netns NAME`, `link NAME`.
made=$dir/made
# The node count of a cluster that was started, for `stop` and `status`.
if [[ $action != start && -s $dir/nodes ]]; then
    nodes=$(tr -dc '0-9' <"$dir/nodes")
fi

node_names() {
    if [[ $nodes -eq 1 ]]; then
        echo slurmd
    else
        seq -f 'n%g' 1 "$nodes"
    fi
}

pid_file() {
    case $1 in
        munged) echo "$dir/munge/munged.pid" ;;
        slurmctld) echo "$dir/run/slurmctld.pid" ;;
        slurmd) echo "$dir/run/slurmd.pid" ;;
        n*) echo "$dir/run/slurmd-$1.pid" ;;
    esac
}

# The program whose pid file `pid_file $1` names.
program_of() {
    case $1 in
        munged | slurmctld | slurmd) echo "$1" ;;
        *) echo slurmd ;;
    esac
}

# The pid of daemon $1 from its pid file, if that process is alive and is that daemon.
running_pid() {
    local file pid
    file=$(pid_file "$1")
    [[ -s $file ]] || return 1
    pid=$(tr -dc '0-9' <"$file")
    [[ -n $pid && -r /proc/$pid/cmdline ]] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "$(program_of "$1")" || return 1
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

# The first /24 of 198.18.0.0/16 (in the /15 reserved for network tests) that no address of
# this host lies in: `198.18.K`.
free_subnet() {
    local used k
    used=$(ip -4 -o addr show 2>/dev/null | awk '{print $4}')
    for k in $(seq 0 255); do
        grep -q "^198\.18\.$k\." <<<"$used" || { echo "198.18.$k"; return 0; }
    done
    echo "slurm-local: every /24 of 198.18.0.0/16 is in use on this host" >&2
    exit 1
}

# Names of this cluster's namespaces and links: a short id from DIR, so that clusters in
# different folders never share one (link names have at most 15 characters).
net_id() { printf '%s' "$dir" | md5sum | cut -c1-6; }
bridge_name() { echo "rsfm$(net_id)b"; }
netns_name() { echo "rsfm-$(net_id)-$1"; }
host_link_name() { echo "rsfm$(net_id)h${1#n}"; }
node_addr() { echo "$(cat "$dir/subnet").$((10 + ${1#n}))"; }
controller_addr() { echo "$(cat "$dir/subnet").1"; }

# The bridge, and per node a namespace and a veth pair: the node's end is `eth0` in the
# namespace with the node's address; nothing else is added, no route but the /24's own.
make_network() {
    local bridge node ns host_link peer
    [[ -s $made ]] && return 0
    free_subnet >"$dir/subnet"
    : >"$made"
    bridge=$(bridge_name)
    # No IPv6 link-local addresses either (`addrgenmode none`): the 198.18 ones are all.
    ip link add "$bridge" type bridge
    echo "link $bridge" >>"$made"
    ip link set "$bridge" addrgenmode none
    ip addr add "$(controller_addr)/24" dev "$bridge"
    ip link set "$bridge" up
    for node in $(node_names); do
        ns=$(netns_name "$node")
        host_link=$(host_link_name "$node")
        peer="rsfm$(net_id)p${node#n}"
        ip netns add "$ns"
        echo "netns $ns" >>"$made"
        ip link add "$host_link" type veth peer name "$peer"
        echo "link $host_link" >>"$made"
        ip link set "$host_link" addrgenmode none
        ip link set "$peer" netns "$ns"
        ip link set "$host_link" master "$bridge" up
        ip -n "$ns" link set "$peer" name eth0
        ip -n "$ns" link set eth0 addrgenmode none
        ip -n "$ns" addr add "$(node_addr "$node")/24" dev eth0
        ip -n "$ns" link set eth0 up
        ip -n "$ns" link set lo up
    done
    # The nodes' /etc/hosts: this host's, with its own name at the bridge and every node's.
    {
        grep -vw "$(hostname -s)" /etc/hosts || true
        echo "$(controller_addr) $(hostname -s)"
        for node in $(node_names); do
            echo "$(node_addr "$node") $node"
        done
    } >"$dir/hosts"
}

# Removes what `make_network` recorded, last first; kills what still runs in the namespaces
# (job steps their slurmd started).
remove_network() {
    local kind name pids
    [[ -f $made ]] || return 0
    while read -r kind name; do
        case $kind in
            netns)
                pids=$(ip netns pids "$name" 2>/dev/null || true)
                if [[ -n $pids ]]; then
                    kill -KILL $pids 2>/dev/null || true
                fi
                ip netns del "$name" 2>/dev/null || true
                ;;
            link)
                if ip link show "$name" >/dev/null 2>&1; then
                    ip link del "$name" 2>/dev/null || true
                fi
                ;;
        esac
        echo "slurm-local: removed $kind $name" >&2
    done < <(tac "$made")
    rm -f "$made" "$dir/subnet" "$dir/hosts"
}

write_config() {
    local host cpus mem_mb port gpus gres_line="" gres_types="" node node_lines controller
    local slurmd_files partition_nodes
    host=$(hostname -s)
    cpus=$(nproc --all)
    mem_mb=$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)
    port=$(free_port_pair 16817)
    if [[ $nodes -eq 1 ]]; then
        gpus=0
        if command -v nvidia-smi >/dev/null 2>&1; then
            gpus=$(nvidia-smi --query-gpu=index --format=csv,noheader 2>/dev/null | grep -c . || true)
        fi
        if [[ $gpus -gt 0 ]]; then
            gres_types="GresTypes=gpu"
            gres_line="Gres=gpu:$gpus"
            echo "Name=gpu File=/dev/nvidia[0-$((gpus - 1))]" >"$dir/gres.conf"
        fi
        controller=$host
        slurmd_files="SlurmdSpoolDir=$dir/spool
SlurmdPidFile=$dir/run/slurmd.pid
SlurmdLogFile=$dir/log/slurmd.log"
        node_lines="NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb $gres_line State=UNKNOWN"
        partition_nodes=$host
    else
        # The nodes share this host: each offers all its CPUs and a share of its memory.
        controller="$host($(controller_addr))"
        slurmd_files="SlurmdSpoolDir=$dir/spool/%n
SlurmdPidFile=$dir/run/slurmd-%n.pid
SlurmdLogFile=$dir/log/slurmd-%n.log"
        node_lines=""
        for node in $(node_names); do
            node_lines+="NodeName=$node NodeAddr=$(node_addr "$node") CPUs=$cpus RealMemory=$((mem_mb / nodes)) State=UNKNOWN"$'\n'
        done
        partition_nodes="n[1-$nodes]"
    fi
    cat >"$conf" <<EOF
# $nodes-node Slurm written by scripts/slurm-local.sh; everything lives under $dir.
ClusterName=rsfmlocal
SlurmctldHost=$controller
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$port
SlurmdPort=$((port + 1))
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.sock,cred_expire=10
StateSaveLocation=$dir/state
$slurmd_files
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmctldLogFile=$dir/log/slurmctld.log
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
$node_lines
PartitionName=debug Nodes=$partition_nodes Default=YES MaxTime=INFINITE State=UP
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
        --seed-file="$dir/munge/munged.seed" 9>&-
}

# Starts daemon $1 (slurmctld, slurmd, or node nI's slurmd) unless it runs; waits for its pid.
start_slurm_daemon() {
    local daemon=$1 log
    running_pid "$daemon" >/dev/null && return 0
    case $daemon in
        n*)
            # Not `ip netns exec`: it remounts /sys without /sys/fs/cgroup, which slurmd needs.
            mkdir -p "$dir/spool/$daemon"
            nsenter --net="/var/run/netns/$(netns_name "$daemon")" \
                unshare --uts --mount --propagation private \
                sh -c 'hostname "$1" && mount --bind "$2" /etc/hosts && exec slurmd -f "$3" -N "$1"' \
                sh "$daemon" "$dir/hosts" "$conf" 9>&-
            log=$dir/log/slurmd-$daemon.log
            ;;
        *)
            "$daemon" -f "$conf" 9>&-
            log=$dir/log/$daemon.log
            ;;
    esac
    for _ in $(seq 1 50); do
        running_pid "$daemon" >/dev/null && return 0
        sleep 0.2
    done
    echo "slurm-local: $daemon did not start; see $log" >&2
    tail -n 20 "$log" >&2 || true
    exit 1
}

wait_for_idle_nodes() {
    local states ready
    for _ in $(seq 1 150); do
        states=$(SLURM_CONF=$conf sinfo -h -N -o '%T' 2>/dev/null || true)
        ready=$(grep -cE '^(idle|mixed|allocated)' <<<"$states" || true)
        [[ $ready -ge $nodes ]] && return 0
        sleep 0.2
    done
    echo "slurm-local: $ready of $nodes nodes idle after 30 s (states: ${states:-none}); see $dir/log/" >&2
    exit 1
}

start() {
    local node
    ensure_installed
    if [[ $nodes -gt 1 ]]; then
        [[ $(id -u) -eq 0 ]] || { echo "slurm-local: --nodes $nodes makes network namespaces: run it as root" >&2; exit 1; }
        for tool in ip nsenter unshare; do
            command -v "$tool" >/dev/null 2>&1 || { echo "slurm-local: --nodes needs \`$tool\` (apt-get install -y iproute2 util-linux)" >&2; exit 1; }
        done
    fi
    if running_pid slurmctld >/dev/null && [[ -s $dir/nodes ]] && [[ $(cat "$dir/nodes") != "$nodes" ]]; then
        echo "slurm-local: $dir runs a $(cat "$dir/nodes")-node cluster; stop it before starting one of $nodes" >&2
        exit 1
    fi
    mkdir -p "$dir/state" "$dir/spool" "$dir/run" "$dir/log"
    # One cluster starts at a time, so that two never pick the same ports or subnet (the
    # daemons do not inherit the lock: `9>&-`).
    exec 9>"${TMPDIR:-/tmp}/rsfm-slurm-local.lock"
    flock 9
    echo "$nodes" >"$dir/nodes"
    if ! running_pid slurmctld >/dev/null; then
        [[ $nodes -gt 1 ]] && make_network
        write_config
    fi
    start_munged
    start_slurm_daemon slurmctld
    for node in $(node_names); do
        start_slurm_daemon "$node"
    done
    wait_for_idle_nodes
    echo "export SLURM_CONF=$conf"
}

stop() {
    local daemon pid
    for daemon in $(node_names) slurmctld munged; do
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
    remove_network
}

status() {
    local daemon pid all=0
    for daemon in munged slurmctld $(node_names); do
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
