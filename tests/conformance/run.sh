#!/usr/bin/env bash
# The official MCP conformance suites (@modelcontextprotocol/conformance 0.1.16 and
# 0.2.0-alpha.12) against the fixture server (examples/conformance_server.rs) and the
# product binary, with the expected failures listed in this directory.
#
#   tests/conformance/run.sh [PYTEST ARGS]     build, install the suites, run
#                                              tests/e2e/test_conformance.py
#                                              (e.g. -k fixture, -k "product and 0.2")
#   tests/conformance/run.sh suite 0.1|0.2 ARGS...
#                                              run one pinned suite by hand with Node 22, e.g.
#       tests/conformance/run.sh suite 0.2 server --url http://127.0.0.1:PORT/mcp \
#           --scenario server-stateless --spec-version 2026-07-28
#
# A server to run a suite against by hand: target/debug/examples/conformance_server
# --listen 127.0.0.1:0 (it logs address=127.0.0.1:PORT), or hostmcp serve --no-auth.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

eval "$(scripts/install-test-deps.sh)"
export PATH="$HOSTMCP_NODE_BIN:$PATH"

if [ "${1:-}" = suite ]; then
  case "${2:-}" in
    0.1) suite="$HOSTMCP_CONFORMANCE_01" ;;
    0.2) suite="$HOSTMCP_CONFORMANCE_02" ;;
    *) echo "usage: $0 suite 0.1|0.2 ARGS..." >&2; exit 2 ;;
  esac
  shift 2
  exec "$suite" "$@"
fi

cargo build --bins --examples
export HOSTMCP_NODE_BIN HOSTMCP_CONFORMANCE_01 HOSTMCP_CONFORMANCE_02
export HOSTMCP_BIN="${HOSTMCP_BIN:-$PWD/target/debug/hostmcp}"
export HOSTMCP_CONFORMANCE_SERVER_BIN="${HOSTMCP_CONFORMANCE_SERVER_BIN:-$PWD/target/debug/examples/conformance_server}"
exec "$HOSTMCP_PYTEST" tests/e2e/test_conformance.py -p no:cacheprovider -q "$@"
