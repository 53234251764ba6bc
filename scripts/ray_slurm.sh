#!/usr/bin/env bash
# Run COMMAND against a Ray cluster started inside this Slurm job's allocation, then tear it down.
#
#   bash scripts/ray_slurm.sh COMMAND [ARG...]
#
# Ray's documented Slurm recipe (reference README §9): the head on the first node, one worker on each
# other node through srun, then the driver with RAY_ADDRESS set. Deviations, and why:
# - The head starts in this process's own job step, not through a new srun: Snakemake's slurm-jobstep
#   already runs the rule on the first node in a step that holds the job's CPUs and GPUs there, and a
#   nested step would have to bind them again.
# - Ports are the job's own (derived from SLURM_JOB_ID), as is Ray's temp dir: two AutoLFADS jobs that
#   share a node do not collide (§9: "distinct ports per job when nodes are shared"). Two jobs whose ids
#   differ by a multiple of PORT_BLOCKS share a block; that would need both on one node.
# - Teardown stops only the Ray processes started here (`ray start --block` ends its children on
#   SIGTERM), never with `ray stop`, which would end every Ray of this user on the node.
# - Token authentication with a token made for this job (RAY_AUTH_MODE=token, RAY_AUTH_TOKEN, exported
#   to the head, the workers and the driver): on a shared node nobody else can join or drive the cluster,
#   and a ~/.ray/auth_token of the user's (which Ray 2.60 would otherwise switch on for the head but not
#   for the driver) plays no part.
# Outside Slurm (no SLURM_JOB_ID) COMMAND runs as it is, and the AutoLFADS driver starts a local Ray.
# Worker nodes get as many CPUs as this step (SLURM_CPUS_PER_TASK) and Ray's own count of their GPUs:
# the allocation's nodes are assumed alike. RAY_SLURM_NODES tells the driver how many nodes to wait for
# (the AutoLFADS driver sizes its population's slots from the cluster it finds).
set -euo pipefail

(($# > 0)) || { echo "usage: ray_slurm.sh COMMAND [ARG...]" >&2; exit 2; }
if [[ -z ${SLURM_JOB_ID:-} ]]; then
    exec "$@"
fi

PORT_BLOCKS=200  # blocks of 200 ports from 20000: 20000-59999
BASE=$((20000 + (SLURM_JOB_ID % PORT_BLOCKS) * 200))
TMP=/tmp/ray-$SLURM_JOB_ID  # short: Ray's socket paths under it must stay below 108 characters
CPUS=${SLURM_CPUS_PER_TASK:-$(nproc)}
READY_S=${RAY_SLURM_READY_S:-120}
STOP_S=10
PORTS=(
    --port "$BASE" --node-manager-port $((BASE + 2))
    --object-manager-port $((BASE + 3)) --dashboard-agent-grpc-port $((BASE + 4))
    --dashboard-agent-listen-port $((BASE + 5)) --metrics-export-port $((BASE + 6))
    --runtime-env-agent-port $((BASE + 7)) --min-worker-port $((BASE + 20))
    --max-worker-port $((BASE + 199))
)
COMMON=(--num-cpus "$CPUS" --include-dashboard=false --disable-usage-stats --block "${PORTS[@]}")
export RAY_AUTH_MODE=token
RAY_AUTH_TOKEN=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
export RAY_AUTH_TOKEN
say() { echo "ray_slurm.sh: $*" >&2; }

pids=()  # the head's and every worker's `ray start --block` (or its srun)
driver=
teardown() {
    local status=$?
    trap - EXIT INT TERM
    [[ -z $driver ]] || kill -TERM "$driver" 2>/dev/null || true
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    # A head whose GCS is already gone (scancel signals every process of the step) drains for 30 s,
    # as long as Slurm's default KillWait: give it STOP_S, then kill it.
    for ((i = 0; i < STOP_S * 10; i++)); do
        alive=0
        for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        ((alive)) || break
        sleep 0.1
    done
    for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    rm -rf "$TMP"
    say "Ray cluster of job $SLURM_JOB_ID stopped"
    exit "$status"
}
trap teardown EXIT
trap 'exit 143' TERM  # Slurm's time limit and scancel: the EXIT trap tears down
trap 'exit 130' INT

mapfile -t nodes < <(scontrol show hostnames "${SLURM_JOB_NODELIST:-$(hostname -s)}")
rm -rf "$TMP" && mkdir -p "$TMP"
ray start --head --temp-dir "$TMP" "${COMMON[@]}" >"$TMP/head.log" 2>&1 &
pids+=($!)
# Ray writes the address it listens on to its temp dir once the head is up.
for ((i = 0; i < READY_S * 2; i++)); do
    [[ -s $TMP/ray_current_cluster ]] && break
    kill -0 "${pids[0]}" 2>/dev/null || { say "the Ray head exited: $(tail -n 3 "$TMP/head.log")"; exit 1; }
    sleep 0.5
done
[[ -s $TMP/ray_current_cluster ]] || { say "the Ray head was not up after ${READY_S}s"; exit 1; }
RAY_ADDRESS=$(<"$TMP/ray_current_cluster")
export RAY_ADDRESS RAY_SLURM_NODES=${#nodes[@]}
for node in "${nodes[@]:1}"; do
    srun --overlap --nodes=1 --ntasks=1 -w "$node" --cpus-per-task="$CPUS" \
        ray start --address "$RAY_ADDRESS" --temp-dir "$TMP" "${COMMON[@]}" >"$TMP/worker-$node.log" 2>&1 &
    pids+=($!)
done
say "Ray head on ${nodes[0]} at $RAY_ADDRESS (ports $BASE-$((BASE + 199))), ${#nodes[@]} node(s), $CPUS CPUs each"
"$@" &
driver=$!
wait "$driver"
