#!/usr/bin/env bash
# Smoke run of the benchmark's load generator against hostmcp, for CI (under 60 s once
# bench/loadgen is built). Fails on any error, on a missing answer, or on zero throughput.
#
#   HOSTMCP_BIN=target/debug/hostmcp bench/smoke.sh
#
# - `hostmcp serve` with a token: run_command `true` over /mcp session era, /mcp
#   2026-07-28 and legacy /sse, 4 sessions, 200 checked calls each; plus the near miss:
#   a wrong token must give 401s and no counted call.
# - With HOSTMCP_ECHO_BIN (or HOSTMCP_CONFORMANCE_SERVER_BIN, as .ci/run exports) set to
#   the conformance test server: `echo` over the same three transports, behind the same
#   token check (`--token-from-env`), and its near miss.
# LOADGEN_PROFILE=release builds the load generator in release mode (default: debug, the
# quicker build; speed does not matter here).
set -euo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$BENCH")"
HOSTMCP_BIN="${HOSTMCP_BIN:-$REPO/target/debug/hostmcp}"
ECHO_BIN="${HOSTMCP_ECHO_BIN:-${HOSTMCP_CONFORMANCE_SERVER_BIN:-}}"
PROFILE="${LOADGEN_PROFILE:-debug}"
REQUESTS=200

log() { printf '[smoke] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
[ -x "$HOSTMCP_BIN" ] || die "no hostmcp binary at $HOSTMCP_BIN (set HOSTMCP_BIN)"

PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  rm -rf "$TMP"
}
TMP="$(mktemp -d)"
trap cleanup EXIT
trap 'exit 130' INT TERM

log "building bench/loadgen ($PROFILE)"
if [ "$PROFILE" = release ]; then
  cargo build --locked --release --manifest-path "$BENCH/loadgen/Cargo.toml" >&2
else
  cargo build --locked --manifest-path "$BENCH/loadgen/Cargo.toml" >&2
fi
LOADGEN="$BENCH/loadgen/target/$PROFILE/loadgen"

TOKEN="smoke-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
export HOSTMCP_TOKEN="$TOKEN"
unset BENCH_TOKEN HOSTMCP_CONFIG

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start NAME CMD...: run a server on $PORT (the command gets --listen), wait until it listens.
start() {
  local name="$1"; shift
  PORT="$(free_port)"
  "$@" --listen "127.0.0.1:$PORT" >"$TMP/$name.log" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then return 0; fi
    kill -0 "$pid" 2>/dev/null || { cat "$TMP/$name.log" >&2; die "$name exited at start"; }
    sleep 0.1
  done
  die "$name did not listen within 10 s"
}

PASSED=0
FAILED=0
# check NAME EXPECTATION FILE: EXPECTATION is "ok" (all calls answered, no error) or
# "unauthorized" (no call counted, 401s reported).
check() {
  local name="$1" want="$2" file="$3"
  if python3 - "$want" "$file" "$REQUESTS" <<'EOF'
import json, sys
want, path, requests = sys.argv[1], sys.argv[2], int(sys.argv[3])
r = json.load(open(path))
if want == "ok":
    good = r["errors"] == 0 and r["ok"] == requests and r["throughput_rps"] > 0
else:
    good = r["ok"] == 0 and r["errors"] > 0 and all("401" in k for k in r["error_counts"])
print(f'{r["transport"]} {r["tool"]}: {r["ok"]} ok, {r["errors"]} errors {r["error_counts"]}, '
      f'{r["throughput_rps"]:.0f}/s, p50 {r["latency_ms"]["p50"]} ms, p99 {r["latency_ms"]["p99"]} ms',
      file=sys.stderr)
sys.exit(0 if good else 1)
EOF
  then
    PASSED=$((PASSED + 1)); log "ok: $name"
  else
    FAILED=$((FAILED + 1)); log "FAILED: $name"
    [ -f "$file.err" ] && cat "$file.err" >&2
  fi
}

# drive NAME WANT TOKEN loadgen-run-args...
drive() {
  local name="$1" want="$2" token="$3"; shift 3
  local file="$TMP/$name.json"
  if ! timeout 30 "$LOADGEN" run --url "http://127.0.0.1:$PORT" --token "$token" \
      --warmup 0 --request-timeout 10 --out "$file" "$@" >/dev/null 2>"$file.err"; then
    FAILED=$((FAILED + 1)); log "FAILED: $name (loadgen did not finish)"; cat "$file.err" >&2
    return 0
  fi
  check "$name" "$want" "$file"
}

# As root hostmcp refuses commands until told which user runs them: the current one. The
# benchmark's settings lift the default 600 tool calls a minute: the runs below make 600,
# the limit exactly, and any more calls would be refused.
start hostmcp "$HOSTMCP_BIN" serve --run-as "$(id -un)" --audit-log "$TMP/audit.jsonl" \
  --config "$BENCH/hostmcp-bench.toml"
log "hostmcp serve on port $PORT"
for transport in mcp-session mcp-stateless sse; do
  drive "run_command-$transport" ok "$TOKEN" --transport "$transport" --workload command \
    --sessions 4 --requests "$REQUESTS"
done
drive "wrong-token-mcp-session" unauthorized "wrong-$TOKEN" --transport mcp-session \
  --workload command --sessions 1 --requests 5
drive "wrong-token-sse" unauthorized "wrong-$TOKEN" --transport sse \
  --workload command --sessions 1 --requests 5

if [ -n "$ECHO_BIN" ]; then
  [ -x "$ECHO_BIN" ] || die "no echo test server at $ECHO_BIN"
  # With the benchmark's token check, as bench/run.sh starts it.
  start echo "$ECHO_BIN" --token-from-env
  log "echo test server on port $PORT"
  for transport in mcp-session mcp-stateless sse; do
    drive "echo-$transport" ok "$TOKEN" --transport "$transport" --workload echo \
      --sessions 4 --requests "$REQUESTS"
  done
  drive "echo-wrong-token" unauthorized "wrong-$TOKEN" --transport mcp-session \
    --workload echo --sessions 1 --requests 5
else
  log "no HOSTMCP_ECHO_BIN / HOSTMCP_CONFORMANCE_SERVER_BIN: echo not exercised"
fi

echo "smoke: $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
