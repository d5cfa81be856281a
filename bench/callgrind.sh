#!/usr/bin/env bash
# Instructions per tools/call, counted with valgrind's callgrind (issue 11): a figure that,
# unlike calls/s on a shared machine, repeats for the same binary and input.
#
#   bench/callgrind.sh                 # every point: 3-7 minutes on 2 shared cores, once built
#   CG_POINTS="hostmcp:echo:mcp-session baseline:echo:mcp-session" bench/callgrind.sh
#
# Each point is one server (hostmcp's echo = examples/conformance_server.rs, hostmcp's
# run_command = `hostmcp serve`, or bench/loadgen's bare axum `baseline-server`), one
# workload and one transport. The server runs under `valgrind --tool=callgrind` twice:
# once for CG_LOW calls and once for CG_HIGH calls, each time after the same CG_WARMUP
# unmeasured calls in a session of their own. The load generator (bench/loadgen, native,
# not measured) drives one session, one call in flight, and checks every answer. Start-up,
# the handshakes, the warm-up and the shutdown are the same in both runs, so
#     instructions per call = (Ir(CG_HIGH run) - Ir(CG_LOW run)) / (CG_HIGH - CG_LOW)
# counts only what one more call costs: user-space instructions of the server process, all
# its threads (kernel time is not counted; neither is a spawned child such as `true`, which
# execs outside valgrind). Ratio = hostmcp over the bare axum endpoint on the same
# transport and workload.
#
# Output: bench/results/<UTC time>/callgrind.json (the callgrind.out files and server logs
# in logs/, which git ignores), then docs/benchmarks.md re-rendered by bench/render.py from
# the newest full run plus this section.
#
# Knobs (environment):
#   CG_POINTS   server:workload:transport list (default: hostmcp and baseline, echo on
#               mcp-session mcp-stateless sse, command on mcp-session)
#   CG_LOW=200 CG_HIGH=1200   calls of the two runs      CG_WARMUP=50   warm-up calls
#   CG_REPEAT=1                pairs of runs per point (the JSON keeps each; the median counts)
#   HOSTMCP_BIN=path        `hostmcp serve` (command points) instead of building one
#   HOSTMCP_ECHO_BIN=path   the conformance_server (echo points) instead of building one
#   LOADGEN_BIN=path        bench/loadgen instead of building it
#   BENCH_HOSTMCP_COMMIT=sha  commit the binaries were built from (default: HEAD)
#   BENCH_OUT=dir   results directory    BENCH_DOC=path (default docs/benchmarks.md; "-" = none)
set -euo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$BENCH")"
POINTS="${CG_POINTS:-hostmcp:echo:mcp-session hostmcp:echo:mcp-stateless hostmcp:echo:sse hostmcp:command:mcp-session baseline:echo:mcp-session baseline:echo:mcp-stateless baseline:echo:sse baseline:command:mcp-session}"
LOW="${CG_LOW:-200}"
HIGH="${CG_HIGH:-1200}"
WARMUP="${CG_WARMUP:-50}"
REPEAT="${CG_REPEAT:-1}"
OUT="${BENCH_OUT:-$BENCH/results/$(date -u +%Y%m%dT%H%M%SZ)}"
DOC="${BENCH_DOC:-$REPO/docs/benchmarks.md}"
TOKEN="bench-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
export BENCH_TOKEN="$TOKEN" HOSTMCP_TOKEN="$TOKEN"
# One quiet line per tool call is hostmcp's shipped default; keep it (logs go to a file).
unset HOSTMCP_LOG HOSTMCP_CONFIG

log() { printf '[callgrind %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
[ "$HIGH" -gt "$LOW" ] || die "CG_HIGH ($HIGH) must exceed CG_LOW ($LOW)"

# ------------------------------------------------------------------ process hygiene
PIDS=()
stop_pid() { # PID: SIGTERM, then wait (callgrind writes its counts on the way out)
  local pid="$1"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  local kept=() p
  for p in "${PIDS[@]}"; do [ "$p" = "$pid" ] || kept+=("$p"); done
  PIDS=("${kept[@]}")
}
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------------ tools and binaries
if ! command -v valgrind >/dev/null; then
  log "installing valgrind (apt-get)"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq >&2 && $SUDO apt-get install -y -qq valgrind >&2
fi
command -v valgrind >/dev/null || die "valgrind not found and not installable"

wants() { [[ " $POINTS " == *"$1"* ]]; }
# One cargo invocation: the library is compiled once for both binaries.
BUILD=()
if wants "hostmcp:echo" && [ -z "${HOSTMCP_ECHO_BIN:-}" ]; then BUILD+=(--example conformance_server); fi
if wants "hostmcp:command" && [ -z "${HOSTMCP_BIN:-}" ]; then BUILD+=(--bin hostmcp); fi
if [ "${#BUILD[@]}" -gt 0 ]; then
  log "building hostmcp (release): ${BUILD[*]}"
  (cd "$REPO" && cargo build --release --locked "${BUILD[@]}") >&2
fi
if [ -z "${LOADGEN_BIN:-}" ]; then
  log "building bench/loadgen (release)"
  cargo build --release --locked --manifest-path "$BENCH/loadgen/Cargo.toml" >&2
fi
HOSTMCP_BIN="${HOSTMCP_BIN:-$REPO/target/release/hostmcp}"
HOSTMCP_ECHO_BIN="${HOSTMCP_ECHO_BIN:-$REPO/target/release/examples/conformance_server}"
LOADGEN="${LOADGEN_BIN:-$BENCH/loadgen/target/release/loadgen}"
[ -x "$LOADGEN" ] || die "no loadgen at $LOADGEN"
if wants "hostmcp:echo"; then [ -x "$HOSTMCP_ECHO_BIN" ] || die "no conformance_server at $HOSTMCP_ECHO_BIN"; fi
if wants "hostmcp:command"; then [ -x "$HOSTMCP_BIN" ] || die "no hostmcp at $HOSTMCP_BIN"; fi
# As root, hostmcp refuses commands until told which user runs them: the current one.
RUN_AS=()
if wants "hostmcp:command" && "$HOSTMCP_BIN" serve --help 2>/dev/null | grep -q -- '--run-as'; then
  RUN_AS=(--run-as "$(id -un)")
fi
# The echo server checks the same bearer token as `hostmcp serve` (binaries that have the flag).
ECHO_AUTH=()
if wants "hostmcp:echo" && "$HOSTMCP_ECHO_BIN" --help 2>/dev/null | grep -q -- '--token-from-env'; then
  ECHO_AUTH=(--token-from-env)
fi

mkdir -p "$OUT/logs/callgrind"
MEASURED="$OUT/logs/callgrind/measured.tsv"
: > "$MEASURED"
log "results in $OUT"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# server_argv SERVER WORKLOAD PORT: the server's command line (without valgrind).
server_argv() {
  local addr="127.0.0.1:$3"
  case "$1:$2" in
    hostmcp:echo) SERVER_ARGV=("$HOSTMCP_ECHO_BIN" --listen "$addr" "${ECHO_AUTH[@]}") ;;
    hostmcp:command) SERVER_ARGV=("$HOSTMCP_BIN" serve --listen "$addr" --config "$BENCH/hostmcp-bench.toml" "${RUN_AS[@]}") ;;
    baseline:*) SERVER_ARGV=("$LOADGEN" baseline-server --listen "$addr") ;;
    *) die "unknown server:workload $1:$2" ;;
  esac
}

# drive PORT WORKLOAD TRANSPORT CALLS FILE: one session, CALLS checked calls, no time warm-up.
drive() {
  timeout 1800 "$LOADGEN" run --url "http://127.0.0.1:$1" --workload "$2" --transport "$3" \
    --sessions 1 --requests "$4" --warmup 0 --request-timeout 120 --out "$5" >/dev/null 2>>"$5.err" \
    || die "loadgen failed: $2 $3 $4 calls (see $5.err)"
  python3 - "$5" "$4" <<'EOF' || die "wrong answers: $5"
import json, sys
r = json.load(open(sys.argv[1]))
want = int(sys.argv[2])
if r["ok"] != want or r["errors"] or r["sessions_failed_to_open"]:
    sys.exit(f"{sys.argv[1]}: ok {r['ok']} of {want}, errors {r['error_counts']}")
EOF
}

# measure SERVER WORKLOAD TRANSPORT CALLS REP: Ir of one server process life, appended to $MEASURED.
measure() {
  local server="$1" workload="$2" transport="$3" calls="$4" rep="$5"
  local tag="$server-$workload-$transport-n$calls-r$rep" port pid i
  port="$(free_port)"
  server_argv "$server" "$workload" "$port"
  valgrind --tool=callgrind -q --dump-line=no --dump-instr=no \
    --callgrind-out-file="$OUT/logs/callgrind/$tag.%p.out" "${SERVER_ARGV[@]}" \
    >"$OUT/logs/callgrind/$tag.log" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  for i in $(seq 1200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
    kill -0 "$pid" 2>/dev/null || die "$tag: server exited at start (see $OUT/logs/callgrind/$tag.log)"
    [ "$i" -lt 1200 ] || die "$tag: server did not listen within 120 s"
    sleep 0.1
  done
  drive "$port" "$workload" "$transport" "$WARMUP" "$OUT/logs/callgrind/$tag.warmup.json"
  drive "$port" "$workload" "$transport" "$calls" "$OUT/logs/callgrind/$tag.json"
  stop_pid "$pid"
  # valgrind runs the server in its own process: the file of that pid is the server's
  # (a child that forks and execs, like `true`, is not traced).
  local file="$OUT/logs/callgrind/$tag.$pid.out" ir
  [ -s "$file" ] || die "$tag: no callgrind output $file"
  ir="$(awk '/^(totals|summary):/ {print $2; exit}' "$file")"
  [ -n "$ir" ] || die "$tag: no totals in $file"
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$server" "$workload" "$transport" "$calls" "$rep" "$ir" >> "$MEASURED"
  log "$tag: $ir instructions"
}

for point in $POINTS; do
  IFS=: read -r server workload transport <<<"$point"
  for rep in $(seq "$REPEAT"); do
    measure "$server" "$workload" "$transport" "$LOW" "$rep"
    measure "$server" "$workload" "$transport" "$HIGH" "$rep"
  done
done

# ------------------------------------------------------------------ results
bin_sha() { [ -x "$1" ] && sha256sum "$1" | cut -c1-16 || echo ""; }
python3 - "$MEASURED" "$OUT/callgrind.json" <<EOF
import json, statistics, sys
from collections import defaultdict
rows = [l.split("\t") for l in open(sys.argv[1]).read().splitlines() if l]
ir = defaultdict(dict)
for server, workload, transport, calls, rep, total in rows:
    ir[(server, workload, transport, int(rep))][int(calls)] = int(total)
points = defaultdict(list)
for (server, workload, transport, rep), by_calls in sorted(ir.items()):
    low, high = by_calls[$LOW], by_calls[$HIGH]
    if high <= low:
        sys.exit(f"{server} {workload} {transport} run {rep}: {high} instructions for $HIGH calls, "
                 f"not more than {low} for $LOW: the counts do not measure the calls")
    points[(server, workload, transport)].append(
        {"rep": rep, "ir_low": low, "ir_high": high, "ir_per_call": round((high - low) / ($HIGH - $LOW), 1)})
doc = {
    "kind": "callgrind",
    "date_utc": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
    "hostmcp_commit": "${BENCH_HOSTMCP_COMMIT:-$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)}",
    "hostmcp_echo_bin_sha256": "$(bin_sha "$HOSTMCP_ECHO_BIN")",
    "hostmcp_bin_sha256": "$(bin_sha "$HOSTMCP_BIN")",
    "loadgen_bin_sha256": "$(bin_sha "$LOADGEN")",
    "valgrind": "$(valgrind --version)",
    "rustc": "$(rustc --version 2>/dev/null || echo unknown)",
    "echo_auth": $([ "${#ECHO_AUTH[@]}" -gt 0 ] && echo True || echo False),
    "calls_low": $LOW, "calls_high": $HIGH, "warmup_calls": $WARMUP, "sessions": 1,
    "points": [
        {"server": s, "workload": w, "transport": t,
         "ir_per_call": round(statistics.median(r["ir_per_call"] for r in runs), 1), "runs": runs}
        for (s, w, t), runs in points.items()
    ],
}
json.dump(doc, open(sys.argv[2], "w"), indent=1)
open(sys.argv[2], "a").write("\n")
EOF
log "wrote $OUT/callgrind.json"

if [ "$DOC" != "-" ]; then
  # The newest full run (bench/run.sh) is the rest of the document, this run its section.
  RUN_DIR="$(ls -d "$BENCH"/results/*/meta.json 2>/dev/null | sort | tail -1 | xargs -r dirname)"
  [ -n "$RUN_DIR" ] || die "no bench/run.sh results to render $DOC from"
  python3 "$BENCH/render.py" "$RUN_DIR" "$OUT/callgrind.json" > "$DOC.tmp" && mv "$DOC.tmp" "$DOC"
  log "wrote $DOC (from $RUN_DIR and $OUT/callgrind.json)"
fi
log "done: $OUT"
