#!/usr/bin/env bash
# The fleet benchmark of issue 16, reproducible in one command (root; loopback only):
#
#   bench/fleet/run.sh                       # 50 sshd, 3 runs per point, forks 5 and 50
#   FLEET_HOSTS=100 FLEET_RUNS=5 bench/fleet/run.sh
#
# Part (a), the Ansible baseline: bench/fleet/ansible_baseline.py starts FLEET_HOSTS real sshd
# (Debian openssh-server) on loopback, each with its own port and host key, runs
# `ansible all -m command -a uptime` at each of FLEET_FORKS, and stops every sshd by PID.
# Installs openssh-server and ansible with apt-get when missing (bench only: CI does not need them).
# Part (b), the NATS floor of fan-out: bench/fleet/simfanout.py starts a nats-server (the
# configuration of docs/fleet.md), examples/fleet_simhosts answering as FLEET_SIM_HOSTS hosts,
# and fans signed `run_command uptime` calls out to all of them (bench/fleet/fanout.py):
# completion p50/p99, wall time, NATS and simulated-host CPU per call. Needs the e2e venv's
# nats-py and nkeys (scripts/install-test-deps.sh; FLEET_PYTHON to point elsewhere) and a
# built example (cargo build --examples; FLEET_SIMHOSTS_BIN to point elsewhere).
# Part (c), through the gateway: bench/fleet/gateway_fanout.py puts a real `hostmcp gateway` in
# front of the same simulated hosts and times `fleet_run uptime` over all of them (per-host
# completion p50/p99, wall time), gateway CPU per host call and gateway memory per connected host.
# Results: raw JSON under bench/results/fleet-<stamp>/, the report in bench/results/fleet-<stamp>.md.
#
# Knobs: FLEET_HOSTS=50  FLEET_RUNS=3  FLEET_FORKS=5,50  FLEET_SIM_HOSTS=1000  FLEET_SIM_ROUNDS=5
#        FLEET_PARTS="ansible sim gateway"  FLEET_FAN_OUT=1000  FLEET_NOTE="text for the report"
#        FLEET_HOSTMCP_BIN / FLEET_SIMHOSTS_BIN (default: target/release, else target/debug)
set -euo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$BENCH/../.." && pwd)"
HOSTS="${FLEET_HOSTS:-50}"
RUNS="${FLEET_RUNS:-3}"
FORKS="${FLEET_FORKS:-5,50}"
SIM_HOSTS="${FLEET_SIM_HOSTS:-1000}"
SIM_ROUNDS="${FLEET_SIM_ROUNDS:-5}"
PARTS="${FLEET_PARTS:-ansible sim gateway}"
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
report_args=()
if [[ " $PARTS " == *" ansible "* ]]; then
  log "ansible baseline: $HOSTS sshd, forks $FORKS, $RUNS runs each"
  python3 "$BENCH/ansible_baseline.py" --hosts "$HOSTS" --runs "$RUNS" --forks "$FORKS" --json "$OUT/ansible.json" >/dev/null
  report_args+=(--ansible "$OUT/ansible.json")
fi
if [[ " $PARTS " == *" sim "* ]]; then
  [ -x "$SIMHOSTS" ] || { log "no fleet_simhosts example: cargo build --examples"; exit 1; }
  [ -x "$PYTHON" ] || { log "no e2e venv at $PYTHON: scripts/install-test-deps.sh"; exit 1; }
  log "simulated fan-out: $SIM_HOSTS hosts, $SIM_ROUNDS rounds ($SIMHOSTS)"
  "$PYTHON" "$BENCH/simfanout.py" --simhosts "$SIMHOSTS" --hosts "$SIM_HOSTS" --rounds "$SIM_ROUNDS" \
    --json "$OUT/simfanout.json" >/dev/null
  report_args+=(--simfanout "$OUT/simfanout.json" --simhosts-bin "$SIMHOSTS")
fi
if [[ " $PARTS " == *" gateway "* ]]; then
  [ -x "$SIMHOSTS" ] && [ -x "$HOSTMCP" ] || { log "need $HOSTMCP and $SIMHOSTS: cargo build --bins --examples"; exit 1; }
  log "fleet_run through the gateway: $SIM_HOSTS simulated hosts, fan-out $FAN_OUT, $SIM_ROUNDS rounds ($HOSTMCP)"
  "$PYTHON" "$BENCH/gateway_fanout.py" --hostmcp "$HOSTMCP" --simhosts "$SIMHOSTS" --hosts "$SIM_HOSTS" \
    --fan-out "$FAN_OUT" --rounds "$SIM_ROUNDS" --json "$OUT/gateway.json" >/dev/null
  report_args+=(--gateway "$OUT/gateway.json" --hostmcp-bin "$HOSTMCP")
fi

python3 "$BENCH/report.py" "${report_args[@]}" --stamp "$STAMP" \
  --commit "$(git -C "$REPO" rev-parse --short HEAD)" --note "${FLEET_NOTE:-}" --out "$REPO/bench/results/fleet-$STAMP.md"
