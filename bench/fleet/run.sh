#!/usr/bin/env bash
# The fleet benchmark of issue 16, reproducible in one command (root; loopback only):
#
#   FLEET_HOSTMCP_BIN=target/release/hostmcp bench/fleet/run.sh     # 100 agents, 100 sshd, 1,000 sim hosts
#   FLEET_AGENTS=10 FLEET_RUNS=1 FLEET_HOP_CALLS=50 FLEET_PARTS="agents ansible" bench/fleet/run.sh  # a quick look
#
# Part (agents), real agents through the gateway: bench/fleet/agents_bench.py starts a nats-server
# (TLS + nkeys, docs/fleet.md), one `hostmcp gateway` and FLEET_AGENTS real `hostmcp serve --fleet`
# (each its own state dir, fleet name, nkey, trusting the gateway's key; --no-http but the first),
# then times FLEET_ROUNDS `fleet_run uptime` over all of them (per-host completion from the
# gateway's progress notifications: p50/p99; every host ok), gateway CPU per host call and RSS;
# and the hop: FLEET_HOP_CALLS `run_command true` through the gateway to the first agent vs the
# same call to that agent's own /mcp, interleaved (same client code: 2026-07-28 stateless POSTs
# on one keep-alive connection each).
# Part (ansible), the baseline: bench/fleet/ansible_baseline.py starts FLEET_HOSTS (default:
# FLEET_AGENTS) real sshd (Debian openssh-server) on loopback, each with its own port and host
# key, runs `ansible all -m command -a uptime` FLEET_RUNS times at each of FLEET_FORKS (cold and
# warm SSH connections). The report divides Ansible's forks-50 time by fleet_run's (goal 20x).
# Installs openssh-server and ansible with apt-get when missing (bench only: CI does not need them).
# Part (sim), the NATS floor of fan-out: bench/fleet/simfanout.py starts a nats-server,
# examples/fleet_simhosts answering as FLEET_SIM_HOSTS hosts, and fans signed `run_command
# uptime` calls out to all of them (bench/fleet/fanout.py): completion p50/p99, wall time, NATS
# and simulated-host CPU per call. Part (gateway): bench/fleet/gateway_fanout.py puts a real
# `hostmcp gateway` in front of the same simulated hosts and times `fleet_run uptime` over all.
# The Python parts need the e2e venv (nats-py, nkeys, httpx2: scripts/install-test-deps.sh;
# FLEET_PYTHON to point elsewhere); sim and gateway need a built example (cargo build --examples).
# Results: raw JSON under bench/results/fleet-<stamp>/, the report in bench/results/fleet-<stamp>.md
# (machine, load average at start and end). Every process is stopped by PID at the end, also when
# a part fails or the run is interrupted (trap). A part that fails is left out of the report, which
# names it; the others still run, and run.sh exits 1 at the end.
#
# Knobs: FLEET_AGENTS=100  FLEET_ROUNDS=10  FLEET_HOP_CALLS=500  FLEET_HOSTS=$FLEET_AGENTS
#        FLEET_RUNS=3  FLEET_FORKS=5,50  FLEET_SIM_HOSTS=1000  FLEET_SIM_ROUNDS=5  FLEET_FAN_OUT=1000
#        FLEET_PARTS="agents ansible sim gateway"  FLEET_NOTE="text for the report"
#        FLEET_HOSTMCP_BIN / FLEET_SIMHOSTS_BIN (default: target/release, else target/debug)
set -euo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$BENCH/../.." && pwd)"
AGENTS="${FLEET_AGENTS:-100}"
ROUNDS="${FLEET_ROUNDS:-10}"
HOP_CALLS="${FLEET_HOP_CALLS:-500}"
HOSTS="${FLEET_HOSTS:-$AGENTS}"
RUNS="${FLEET_RUNS:-3}"
FORKS="${FLEET_FORKS:-5,50}"
SIM_HOSTS="${FLEET_SIM_HOSTS:-1000}"
SIM_ROUNDS="${FLEET_SIM_ROUNDS:-5}"
PARTS="${FLEET_PARTS:-agents ansible sim gateway}"
FAN_OUT="${FLEET_FAN_OUT:-1000}"
PYTHON="${FLEET_PYTHON:-${HOSTMCP_TEST_DEPS:-$REPO/.test-deps}/venv/bin/python}"
SIMHOSTS="${FLEET_SIMHOSTS_BIN:-$REPO/target/release/examples/fleet_simhosts}"
[ -x "$SIMHOSTS" ] || SIMHOSTS="$REPO/target/debug/examples/fleet_simhosts"
HOSTMCP="${FLEET_HOSTMCP_BIN:-$REPO/target/release/hostmcp}"
[ -x "$HOSTMCP" ] || HOSTMCP="$REPO/target/debug/hostmcp"
STAMP="$(date -u +%Y%m%dT%H%MZ)"
OUT="$REPO/bench/results/fleet-$STAMP"

log() { echo "fleet-bench: $*" >&2; }

want=()
command -v ansible >/dev/null || want+=(ansible)
[ -x /usr/sbin/sshd ] || want+=(openssh-server)
if [ "${#want[@]}" -gt 0 ]; then
  [ "$(id -u)" = 0 ] || { log "missing ${want[*]}: apt-get install ${want[*]}"; exit 1; }
  log "installing ${want[*]} (apt-get)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${want[@]}" >&2 \
    || { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${want[@]}" >&2; }
fi

mkdir -p "$OUT"
LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"
STARTED="$(date -u +%H:%M:%S)"
RUNDIR="$(mktemp -d /tmp/hostmcp-fleet-run.XXXXXX)"
PIDS="$RUNDIR/pids"   # every server/agent/sshd a part starts, one PID a line (agents, ansible)
: >"$PIDS"
child=""

# The PIDs below $1 in the process tree (children first, then theirs).
tree_of() {
  local p
  for p in $(ps -o pid= --ppid "$1" 2>/dev/null); do
    echo "$p"
    tree_of "$p"
  done
}

# A PID still ours: alive and one of the programs the parts start (a recycled PID is not).
ours() {
  [ -r "/proc/$1/comm" ] || return 1
  case "$(cat "/proc/$1/comm" 2>/dev/null)" in
    hostmcp | nats-server | sshd | ssh | fleet_simhosts | ansible* | python*) return 0 ;;
    *) return 1 ;;
  esac
}

# Stop the running part (SIGTERM: it stops what it started) and then, by PID, anything of it
# or of the PID file still alive: SIGTERM, up to 15 s, then SIGKILL.
cleanup() {
  local rc=$? pids=() p i
  trap - EXIT INT TERM
  if [ -n "$child" ] && kill -0 "$child" 2>/dev/null; then
    mapfile -t pids < <(tree_of "$child")
    kill -TERM "$child" 2>/dev/null || true
    for i in $(seq 600); do kill -0 "$child" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$child" 2>/dev/null || true
  fi
  [ -s "$PIDS" ] && mapfile -t -O "${#pids[@]}" pids <"$PIDS"
  for p in "${pids[@]}"; do ours "$p" && kill -TERM "$p" 2>/dev/null || true; done
  for i in $(seq 150); do
    local left=0
    for p in "${pids[@]}"; do ours "$p" && left=1; done
    [ "$left" = 0 ] && break
    sleep 0.1
  done
  for p in "${pids[@]}"; do ours "$p" && { log "killing leftover $p ($(cat /proc/$p/comm 2>/dev/null))"; kill -KILL "$p" 2>/dev/null || true; }; done
  rm -rf "$RUNDIR"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# One part, in the background so that a signal reaches the trap at once. A part that fails is
# logged and left out of the report (which names it); the run then exits 1 after the report.
failed=()
part() {
  local name=$1 rc=0
  shift
  "$@" &
  child=$!
  wait "$child" || rc=$?
  child=""
  [ "$rc" = 0 ] || { log "part $name failed (exit $rc): see its messages above"; failed+=("$name"); }
  return "$rc"
}

report_args=()
if [[ " $PARTS " == *" agents "* ]]; then
  [ -x "$HOSTMCP" ] || { log "no $HOSTMCP: cargo build --bins"; exit 1; }
  [ -x "$PYTHON" ] || { log "no e2e venv at $PYTHON: scripts/install-test-deps.sh"; exit 1; }
  log "real agents: $AGENTS hostmcp serve --fleet through one gateway, $ROUNDS rounds, hop $HOP_CALLS calls ($HOSTMCP)"
  part agents "$PYTHON" "$BENCH/agents_bench.py" --hostmcp "$HOSTMCP" --agents "$AGENTS" --rounds "$ROUNDS" \
    --hop-calls "$HOP_CALLS" --pidfile "$PIDS" --json "$OUT/agents.json" >/dev/null \
    && report_args+=(--agents "$OUT/agents.json")
fi
if [[ " $PARTS " == *" ansible "* ]]; then
  log "ansible baseline: $HOSTS sshd, forks $FORKS, $RUNS runs each"
  part ansible python3 "$BENCH/ansible_baseline.py" --hosts "$HOSTS" --runs "$RUNS" --forks "$FORKS" \
    --pidfile "$PIDS" --json "$OUT/ansible.json" >/dev/null \
    && report_args+=(--ansible "$OUT/ansible.json")
fi
if [[ " $PARTS " == *" sim "* ]]; then
  [ -x "$SIMHOSTS" ] || { log "no fleet_simhosts example: cargo build --examples"; exit 1; }
  [ -x "$PYTHON" ] || { log "no e2e venv at $PYTHON: scripts/install-test-deps.sh"; exit 1; }
  log "simulated fan-out: $SIM_HOSTS hosts, $SIM_ROUNDS rounds ($SIMHOSTS)"
  part sim "$PYTHON" "$BENCH/simfanout.py" --simhosts "$SIMHOSTS" --hosts "$SIM_HOSTS" --rounds "$SIM_ROUNDS" \
    --json "$OUT/simfanout.json" >/dev/null \
    && report_args+=(--simfanout "$OUT/simfanout.json" --simhosts-bin "$SIMHOSTS")
fi
if [[ " $PARTS " == *" gateway "* ]]; then
  [ -x "$SIMHOSTS" ] && [ -x "$HOSTMCP" ] || { log "need $HOSTMCP and $SIMHOSTS: cargo build --bins --examples"; exit 1; }
  log "fleet_run through the gateway: $SIM_HOSTS simulated hosts, fan-out $FAN_OUT, $SIM_ROUNDS rounds ($HOSTMCP)"
  part gateway "$PYTHON" "$BENCH/gateway_fanout.py" --hostmcp "$HOSTMCP" --simhosts "$SIMHOSTS" \
    --hosts "$SIM_HOSTS" --fan-out "$FAN_OUT" --rounds "$SIM_ROUNDS" --json "$OUT/gateway.json" >/dev/null \
    && report_args+=(--gateway "$OUT/gateway.json")
fi

python3 "$BENCH/report.py" "${report_args[@]}" --stamp "$STAMP" --hostmcp-bin "$HOSTMCP" \
  --commit "$(git -C "$REPO" rev-parse --short HEAD)" --note "${FLEET_NOTE:-}" \
  --load-start "$LOAD_START" --started "$STARTED" --failed "${failed[*]}" --out "$REPO/bench/results/fleet-$STAMP.md"
[ "${#failed[@]}" = 0 ] || { log "failed parts: ${failed[*]}"; exit 1; }
