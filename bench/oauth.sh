#!/usr/bin/env bash
# tools/call with an OAuth access token against the same call with a static bearer token
# (issue 12: within 5%), in one run, on one hostmcp. Loopback only.
#
#   bench/oauth.sh [HOSTMCP_BIN]          # default: target/release/hostmcp
#   BENCH_DURATION=10 BENCH_RUNS=5 BENCH_SESSIONS="1 16" BENCH_TRANSPORTS="mcp-session mcp-stateless"
#   LOADGEN_PROFILE=debug                 # a quicker build of bench/loadgen (default: release)
#   LOADGEN=path                          # use this bench/loadgen binary, build none
#
# Starts `hostmcp serve --oauth --public-url http://127.0.0.1:PORT` with the benchmark's
# settings (bench/hostmcp-bench.toml), gets an access token the way a client does
# (bench/oauth_token.py: registration, consent approved with the static token, code +
# PKCE), then alternates bench/loadgen runs of run_command `true`: static bearer, access
# token, static bearer, ... (BENCH_RUNS pairs per point, so drift hits both alike) and prints
# the medians of throughput and p50/p99 latency of each, and the access token's cost in %.
# The server is pinned to CPU 0 and the load generator to CPU 1 when there are two CPUs.
set -euo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$BENCH")"
HOSTMCP_BIN="${1:-${HOSTMCP_BIN:-$REPO/target/release/hostmcp}}"
DURATION="${BENCH_DURATION:-5}"
RUNS="${BENCH_RUNS:-3}"
SESSIONS="${BENCH_SESSIONS:-1 16}"
TRANSPORTS="${BENCH_TRANSPORTS:-mcp-session mcp-stateless}"
PROFILE="${LOADGEN_PROFILE:-release}"

log() { printf '[oauth-bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
[ -x "$HOSTMCP_BIN" ] || die "no hostmcp binary at $HOSTMCP_BIN (give it as the first argument)"

PID=""
TMP="$(mktemp -d)"
cleanup() {
  if [ -n "$PID" ]; then
    kill -TERM "$PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$PID" 2>/dev/null || true
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -n "${LOADGEN:-}" ]; then
  [ -x "$LOADGEN" ] || die "no load generator at $LOADGEN"
else
  log "building bench/loadgen ($PROFILE)"
  if [ "$PROFILE" = release ]; then
    cargo build --locked --release --manifest-path "$BENCH/loadgen/Cargo.toml" >&2
  else
    cargo build --locked --manifest-path "$BENCH/loadgen/Cargo.toml" >&2
  fi
  LOADGEN="$BENCH/loadgen/target/$PROFILE/loadgen"
fi

SERVER_CPU=() LOADGEN_CPU=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
  SERVER_CPU=(taskset -c 0) LOADGEN_CPU=(taskset -c 1)
fi

TOKEN="bench-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
export HOSTMCP_TOKEN="$TOKEN"
unset BENCH_TOKEN HOSTMCP_CONFIG HOSTMCP_LOG
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
BASE="http://127.0.0.1:$PORT"
XDG_STATE_HOME="$TMP/state" "${SERVER_CPU[@]}" "$HOSTMCP_BIN" serve --listen "127.0.0.1:$PORT" \
  --public-url "$BASE" --oauth --run-as "$(id -un)" --audit-log "$TMP/audit.jsonl" \
  --config "$BENCH/hostmcp-bench.toml" >"$TMP/server.log" 2>&1 &
PID=$!
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  kill -0 "$PID" 2>/dev/null || { cat "$TMP/server.log" >&2; die "hostmcp exited at start"; }
  sleep 0.1
done
ACCESS="$(python3 "$BENCH/oauth_token.py" "$BASE")" || die "no access token (see above)"
log "hostmcp $("$HOSTMCP_BIN" --version 2>/dev/null || echo '?') on $BASE; access token obtained"

# run KIND TRANSPORT SESSIONS INDEX: one measured loadgen run, its JSON in $TMP.
run() {
  local kind="$1" transport="$2" sessions="$3" index="$4" bearer
  if [ "$kind" = oauth ]; then bearer="$ACCESS"; else bearer="$TOKEN"; fi
  "${LOADGEN_CPU[@]}" "$LOADGEN" run --url "$BASE" --token "$bearer" --transport "$transport" \
    --workload command --sessions "$sessions" --duration "$DURATION" --warmup 1 \
    --out "$TMP/$kind-$transport-$sessions-$index.json" >/dev/null 2>"$TMP/loadgen.err" \
    || { cat "$TMP/loadgen.err" >&2; die "loadgen failed ($kind $transport $sessions)"; }
}

for transport in $TRANSPORTS; do
  for sessions in $SESSIONS; do
    log "$transport, $sessions session(s): $RUNS x (bearer, oauth) x ${DURATION} s"
    for index in $(seq "$RUNS"); do
      run bearer "$transport" "$sessions" "$index"
      run oauth "$transport" "$sessions" "$index"
    done
  done
done

python3 - "$TMP" "$TRANSPORTS" "$SESSIONS" <<'PY'
import glob, json, statistics, sys
tmp, transports, sessions = sys.argv[1], sys.argv[2].split(), sys.argv[3].split()
print("| transport | sessions | bearer calls/s | OAuth calls/s | bearer p50/p99 ms | OAuth p50/p99 ms | OAuth cost |")
print("|---|---:|---:|---:|---:|---:|---:|")
worst = 0.0
for transport in transports:
    for n in sessions:
        row = {}
        for kind in ("bearer", "oauth"):
            runs = [json.load(open(path)) for path in sorted(glob.glob(f"{tmp}/{kind}-{transport}-{n}-*.json"))]
            bad = [r for r in runs if r["errors"]]
            if bad:
                sys.exit(f"{kind} {transport} {n}: errors {bad[0]['error_counts']}")
            row[kind] = (statistics.median(r["throughput_rps"] for r in runs),
                         statistics.median(r["latency_ms"]["p50"] for r in runs),
                         statistics.median(r["latency_ms"]["p99"] for r in runs))
        cost = (row["bearer"][0] / row["oauth"][0] - 1) * 100
        worst = max(worst, cost)
        print(f"| {transport} | {n} | {row['bearer'][0]:.0f} | {row['oauth'][0]:.0f} | "
              f"{row['bearer'][1]:.2f}/{row['bearer'][2]:.2f} | {row['oauth'][1]:.2f}/{row['oauth'][2]:.2f} | {cost:+.1f}% |")
print(f"\nworst OAuth cost (throughput): {worst:+.1f}% (target: within 5%)")
PY
