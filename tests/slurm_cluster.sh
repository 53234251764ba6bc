#!/usr/bin/env bash
# Start (or confirm) a one-node Slurm cluster on this machine, for tests and CI.
#
#   sudo bash tests/slurm_cluster.sh      # prints one "slurm up: ..." line, or fails
#                                         # with one "slurm_cluster.sh: FAILED: ..." line
#   sudo bash tests/slurm_cluster.sh stop # stops slurmd/slurmctld started here (munged stays)
#
# Idempotent: installs slurm-wlm + munge only if missing, rewrites the config each
# run, restarts the daemons only when the config changed or they are not running.
# Needs root, Debian 12 (slurm-wlm 22.05). The node advertises fake GPUs
# (gres "gpu" backed by /dev/null) so jobs asking `--gpus=1` can be scheduled on a
# machine without a GPU; the jobs themselves get no GPU, of course.
#
# Environment knobs:
#   LATENTDYN_SLURM_DIR   state/log dir        (default /var/tmp/latentdyn-slurm)
#   LATENTDYN_SLURM_GPUS  number of fake GPUs  (default 2)
#   LATENTDYN_SLURM_WAIT  seconds to wait for the node to become idle (default 60)
set -euo pipefail

STATE=${LATENTDYN_SLURM_DIR:-/var/tmp/latentdyn-slurm}
NGPU=${LATENTDYN_SLURM_GPUS:-2}
WAIT=${LATENTDYN_SLURM_WAIT:-60}
CONF=/etc/slurm/slurm.conf      # standard path: sbatch/squeue/sinfo find it without SLURM_CONF
GRES=/etc/slurm/gres.conf       # must sit next to slurm.conf
MARK="# managed by latentdyn tests/slurm_cluster.sh"
T0=$SECONDS

die() { echo "slurm_cluster.sh: FAILED: $*" >&2; exit 1; }
lastlog() { tail -qn1 "$STATE/log/$1.start" "$STATE/log/$1.log" 2>/dev/null | tail -n1; }

# A daemon counts as running if its pid file names a live process of that name.
running() {  # $1 = daemon name, $2 = pid file
    local pid
    pid=$(cat "$2" 2>/dev/null) || return 1
    [[ -n $pid && "$(cat /proc/"$pid"/comm 2>/dev/null)" == "$1" ]]
}
stop() {  # $1 = daemon name, $2 = pid file; stops only the process we started
    local i pid
    running "$1" "$2" || return 0
    pid=$(cat "$2")
    kill "$pid"
    # wait for the process itself: the daemon removes its pid file before it exits
    for i in $(seq 100); do [[ -e /proc/$pid ]] || return 0; sleep 0.1; done
    die "could not stop $1 (pid $pid)"
}

[[ $NGPU =~ ^[1-9][0-9]*$ ]] || die "LATENTDYN_SLURM_GPUS must be a positive integer, got '$NGPU'"
[[ $(id -u) -eq 0 ]] || die "must run as root (it installs packages and starts slurmctld/slurmd)"
if [[ ${1:-} == stop ]]; then
    stop slurmd "$STATE/slurmd.pid"; stop slurmctld "$STATE/slurmctld.pid"
    echo "slurm stopped (state kept in $STATE)"; exit 0
fi
[[ -z ${1:-} ]] || die "unknown argument '$1' (usage: slurm_cluster.sh [stop])"
mkdir -p "$STATE"/{log,ctld,spool,fakegpu}
# One run at a time (CI and the pytest fixture both call us). Every daemon below is
# started with fd 9 closed: munged keeps inherited descriptors open, and a daemon
# holding the lock would make every later run wait forever.
exec 9>"$STATE/lock"
flock -w 120 9 || die "another slurm_cluster.sh has held $STATE/lock for 120 s"

# --- 1. packages ---------------------------------------------------------------
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
   || ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    pkgs=(slurm-wlm munge)
    apt-get install -y --no-install-recommends "${pkgs[@]}" >"$STATE/log/apt.log" 2>&1 \
      || { apt-get update >>"$STATE/log/apt.log" 2>&1 \
           && apt-get install -y --no-install-recommends "${pkgs[@]}" >>"$STATE/log/apt.log" 2>&1; } \
      || die "apt-get install ${pkgs[*]} failed (see $STATE/log/apt.log): $(tail -n1 "$STATE/log/apt.log")"
fi

# --- 2. munge (authentication between slurm daemons and clients) ---------------
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    if [[ ! -s /etc/munge/munge.key ]]; then
        mkdir -p /etc/munge
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    fi
    chown -R munge:munge /etc/munge && chmod 700 /etc/munge && chmod 400 /etc/munge/munge.key
    install -d -o munge -g munge -m 755 /run/munge
    install -d -o munge -g munge -m 700 /var/lib/munge /var/log/munge
    runuser -u munge -- /usr/sbin/munged >"$STATE/log/munged.start" 2>&1 9>&- \
      || die "munged did not start: $(tail -n1 "$STATE/log/munged.start")"
    for _ in $(seq 25); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.2; done
    munge -n | unmunge >/dev/null 2>&1 || die "munged started but munge -n | unmunge fails"
fi

# --- 3. config (regenerated every run; hostname/CPUs/memory come from slurmd -C) -
HOST=$(hostname -s)
NODE=$(slurmd -C 2>/dev/null | grep -m1 '^NodeName=') || die "slurmd -C printed no NodeName line"
[[ $NODE == "NodeName=$HOST "* ]] || die "slurmd -C node name differs from hostname '$HOST': $NODE"
NEW=$(mktemp -d)
trap 'rm -rf "$NEW"' EXIT
cat >"$NEW/slurm.conf" <<EOF
$MARK -- regenerated on every run, edits are lost
ClusterName=latentdyn
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
MailProg=/bin/true
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
# no cgroups / systemd in containers: plain process tracking, no task binding
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
# no slurmdbd: sacct cannot see jobs, so snakemake must poll with squeue, which
# only sees finished jobs for MinJobAge seconds (plugin wants >= 3x its init wait)
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MinJobAge=86400
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
# fake GPUs: gres.conf points at /dev/null symlinks (see below)
GresTypes=gpu
$NODE NodeAddr=127.0.0.1 Gres=gpu:$NGPU State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
# slurmd's gres/gpu plugin counts a GPU only if it has a device File (Count alone
# registers 0 GPUs -> node INVALID "gres/gpu count reported lower than configured").
# Symlinks to /dev/null are character devices to slurmd's stat(); with task/none
# nothing is bound or enforced, so jobs just see CUDA_VISIBLE_DEVICES set.
for ((g = 0; g < NGPU; g++)); do ln -sfn /dev/null "$STATE/fakegpu/nvidia$g"; done
cat >"$NEW/gres.conf" <<EOF
$MARK -- regenerated on every run, edits are lost
AutoDetect=off
NodeName=$HOST Name=gpu File=$STATE/fakegpu/nvidia[0-$((NGPU - 1))]
EOF

changed=0
for dst in "$CONF" "$GRES"; do
    f=$(basename "$dst")
    if [[ -e $dst ]] && ! grep -qF "$MARK" "$dst"; then
        die "$dst exists and was not written by this script; refusing to overwrite it"
    fi
    cmp -s "$NEW/$f" "$dst" || { install -D -m 644 "$NEW/$f" "$dst"; changed=1; }
done

# --- 4. daemons ----------------------------------------------------------------
if [[ $changed -eq 1 ]]; then   # new config: restart whatever we had running
    stop slurmd "$STATE/slurmd.pid"
    stop slurmctld "$STATE/slurmctld.pid"
fi
for d in slurmctld slurmd; do   # a daemon from another state dir would hold the ports
    running "$d" "$STATE/$d.pid" && continue
    other=$(pgrep -x "$d" | head -n1 || true)
    [[ -z $other ]] || die "a $d not started from $STATE is running (pid $other); stop it first"
done
if ! running slurmctld "$STATE/slurmctld.pid"; then
    slurmctld >"$STATE/log/slurmctld.start" 2>&1 9>&- \
      || die "slurmctld did not start: $(lastlog slurmctld)"
fi
if ! running slurmd "$STATE/slurmd.pid"; then
    slurmd >"$STATE/log/slurmd.start" 2>&1 9>&- \
      || die "slurmd did not start: $(lastlog slurmd)"
fi

# --- 5. wait for the node ------------------------------------------------------
state=""
for i in $(seq $((WAIT * 2))); do
    if (( i > 6 )); then   # daemons that exit right after forking (bad config, port in use)
        running slurmctld "$STATE/slurmctld.pid" || die "slurmctld exited: $(lastlog slurmctld)"
        running slurmd "$STATE/slurmd.pid" || die "slurmd exited: $(lastlog slurmd)"
    fi
    state=$(sinfo -h -n "$HOST" -o %T 2>/dev/null | head -n1 || true)
    case $state in
        idle|mixed|allocated|completing) break ;;   # up (busy counts as up on a re-run)
        inval*)                          # config does not match the hardware
            die "node $HOST invalid: $(scontrol show node "$HOST" | grep -o 'Reason=.*')" ;;
        down*|drain*|fail*)              # e.g. left down by an earlier unclean stop
            (( i % 10 == 0 )) && scontrol update NodeName="$HOST" State=RESUME >/dev/null 2>&1 || true ;;
    esac
    state=${state:-no answer from slurmctld}
    sleep 0.5
done
case $state in
    idle|mixed|allocated|completing) ;;
    *) die "node $HOST not idle after ${WAIT}s (state: $state; slurmd.log: $(tail -n1 "$STATE/log/slurmd.log" 2>/dev/null))" ;;
esac

echo "slurm up: node $HOST $state, partition debug, gres gpu:$NGPU (fake), conf $CONF, logs $STATE/log, $((SECONDS - T0))s"
