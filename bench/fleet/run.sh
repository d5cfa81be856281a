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
# Results: raw JSON under bench/results/fleet-<stamp>/, the report in bench/results/fleet-<stamp>.md.
#
# Knobs: FLEET_HOSTS=50  FLEET_RUNS=3  FLEET_FORKS=5,50  FLEET_NOTE="text for the report"
set -euo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$BENCH/../.." && pwd)"
HOSTS="${FLEET_HOSTS:-50}"
RUNS="${FLEET_RUNS:-3}"
FORKS="${FLEET_FORKS:-5,50}"
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
log "ansible baseline: $HOSTS sshd, forks $FORKS, $RUNS runs each"
python3 "$BENCH/ansible_baseline.py" --hosts "$HOSTS" --runs "$RUNS" --forks "$FORKS" --json "$OUT/ansible.json" >/dev/null

python3 "$BENCH/report.py" --ansible "$OUT/ansible.json" --stamp "$STAMP" \
  --commit "$(git -C "$REPO" rev-parse --short HEAD)" --note "${FLEET_NOTE:-}" --out "$REPO/bench/results/fleet-$STAMP.md"
