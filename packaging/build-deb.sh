#!/usr/bin/env bash
# Build the Debian package of hostmcp from the debug binary (no release build: the CI machine
# is shared; cargo-deb strips the binary it packs).
#
#   packaging/build-deb.sh              # cargo build --bins, then the .deb
#   packaging/build-deb.sh --no-build   # package target/debug/hostmcp as it is
#   packaging/build-deb.sh --release    # cargo build --release (LTO), then the .deb: for operators
#
# Prints the path of the .deb on stdout (target/debian/hostmcp_<version>-1_<arch>.deb).
# cargo-deb (pinned below) is installed once under $HOSTMCP_TEST_DEPS/cargo-deb
# (default .test-deps/), with `cargo install --locked`.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEPS="${HOSTMCP_TEST_DEPS:-$REPO/.test-deps}"
CARGO_DEB_VERSION=3.8.0
BUILD=1
PROFILE=dev
for arg in "$@"; do
  case "$arg" in
    --no-build) BUILD=0 ;;
    --release) PROFILE=release ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "build-deb: unknown argument: $arg" >&2; exit 2 ;;
  esac
done

log() { echo "build-deb: $*" >&2; }

mkdir -p "$DEPS"
[ -f "$DEPS/.gitignore" ] || printf '*\n' > "$DEPS/.gitignore"
if ! "$DEPS/cargo-deb/bin/cargo-deb" --version 2>/dev/null | grep -qF "$CARGO_DEB_VERSION"; then
  log "installing cargo-deb $CARGO_DEB_VERSION into $DEPS/cargo-deb"
  # (cargo builds it in a temporary directory and removes that: about 10 min on 2 busy cores)
  nice -n 10 cargo install --locked --quiet "cargo-deb@$CARGO_DEB_VERSION" --root "$DEPS/cargo-deb" >&2
fi

cd "$REPO"
OUT=debug
[ "$PROFILE" = release ] && OUT=release
if [ "$BUILD" = 1 ]; then
  if [ "$PROFILE" = release ]; then
    nice -n 10 cargo build --locked --release --bins >&2
  else
    nice -n 10 cargo build --locked --bins >&2
  fi
fi
BIN="$REPO/target/$OUT/hostmcp"
[ -x "$BIN" ] || { log "no $BIN: run cargo build --bins first"; exit 1; }

# The man pages and completions, from the clap definitions of the binary being packed.
ASSETS="$REPO/target/deb-assets"
rm -rf "$ASSETS"
mkdir -p "$ASSETS/man" "$ASSETS/completions"
"$BIN" generate man "$ASSETS/man" >/dev/null
gzip -9n "$ASSETS"/man/*.1
"$BIN" generate completions "$ASSETS/completions" >/dev/null

# --profile dev: the assets' target/release/ paths mean target/debug/.
# cargo-deb prints the path of the package on stdout.
if [ "$PROFILE" = release ]; then
  PATH="$DEPS/cargo-deb/bin:$PATH" cargo deb --no-build
else
  PATH="$DEPS/cargo-deb/bin:$PATH" cargo deb --no-build --profile dev
fi
