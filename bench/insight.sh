#!/usr/bin/env bash
# Host insight benchmark (not run in CI): with 1,000 extra sleeping processes on the host,
# time host_info, process_list, disk_usage and network_info against the same questions asked
# by shelling out (ps, df, ss) through run_command, and against linux-mcp-server (PyPI).
#
#   bench/insight.sh [calls]          # default 30 calls per question and way
#   INSIGHT_QUICK=1 bench/insight.sh 50   # raw JSON-RPC times of hostmcp only (no SDK, no peer)
#
# HOSTMCP_BIN: the binary (default target/release/hostmcp; the lead runs it on a release
# build). linux-mcp-server is pip-installed into .test-deps/bench on first use.
# INSIGHT_SLEEPERS: how many sleeping processes to add (default 1000).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

CALLS=${1:-30}
BIN=${HOSTMCP_BIN:-$PWD/target/release/hostmcp}
VENV=${HOSTMCP_BENCH_VENV:-$PWD/.test-deps/bench}
LMS_VERSION=1.7.0
SLEEPERS=${INSIGHT_SLEEPERS:-1000}

if [ ! -x "$VENV/bin/linux-mcp-server" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "linux-mcp-server==$LMS_VERSION"
fi

work=$(mktemp -d)
sleepers_pid=""
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  [ -n "$sleepers_pid" ] && kill -- -"$sleepers_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

before=$(ls /proc | grep -c '^[0-9]')
# The sleepers in a session of their own: one kill of the group ends them all.
setsid bash -c "for i in \$(seq $SLEEPERS); do sleep 3600 & done; wait" &
sleepers_pid=$!
for _ in $(seq 100); do
  [ "$(ls /proc | grep -c '^[0-9]')" -ge $((before + SLEEPERS)) ] && break
  sleep 0.1
done
echo "processes on the host: $(ls /proc | grep -c '^[0-9]')" >&2

token="bench-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
digest=$(printf %s "$token" | sha256sum | cut -d' ' -f1)
run_as=""
[ "$(id -u)" = 0 ] && run_as='run_as = "root"'
cat > "$work/config.toml" <<TOML
$run_as
[[tokens]]
name = "bench"
role = "operator"
sha256 = "$digest"

[limits]
tool_calls_per_minute = 1000000
TOML
XDG_STATE_HOME="$work/state" "$BIN" serve --listen 127.0.0.1:0 --config "$work/config.toml" \
  2> "$work/server.log" > /dev/null &
server_pid=$!
port=""
for _ in $(seq 150); do
  port=$(grep -oE 'address=127\.0\.0\.1:[0-9]+' "$work/server.log" | head -1 | cut -d: -f2 || true)
  [ -n "$port" ] && break
  sleep 0.1
done
[ -n "$port" ] || { cat "$work/server.log" >&2; exit 1; }

echo "hostmcp: $BIN ($(du -h "$BIN" | cut -f1)); linux-mcp-server $LMS_VERSION; $CALLS calls" >&2
"$VENV/bin/python" bench/insight.py --url "http://127.0.0.1:$port/mcp" --token "$token" \
  --lms "$VENV/bin/linux-mcp-server" --calls "$CALLS" ${INSIGHT_QUICK:+--quick}
