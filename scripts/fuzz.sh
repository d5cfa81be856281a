#!/usr/bin/env bash
# hostmcp's fuzz targets (fuzz/, see docs/security.md "Fuzzing"):
#
#   scripts/fuzz.sh replay                  # every committed corpus file through its target,
#                                           # plain `cargo test`, no libFuzzer, stable Rust
#                                           # (after fmt and clippy of the fuzz crate)
#   scripts/fuzz.sh run SECONDS [TARGET...] # fuzz each target (default: all) for SECONDS with
#                                           # cargo-fuzz, one after the other, one worker each
#   scripts/fuzz.sh targets                 # list the targets
#
# `run` needs cargo-fuzz (`cargo install cargo-fuzz --version 0.13.2 --locked`); without it,
# it says so and exits 0. It builds with `--sanitizer none
# --debug-assertions` (optimized, overflow checks and debug asserts on), which works on
# stable Rust: no nightly, no RUSTC_BOOTSTRAP. New inputs go to
# target/fuzz-corpus/TARGET, never into the committed corpus; crashes go to
# fuzz/artifacts/TARGET (fix the bug, then add the input to fuzz/corpus/TARGET). Each run
# ends with one line of figures: `fuzz TARGET: N execs in S s, corpus C inputs, ...`.
#
# Environment: FUZZ_NICE (default 19), the nice level of the fuzzing processes;
# FUZZ_RSS_LIMIT_MB (default 2048).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FUZZ="$REPO/fuzz"
NICE="${FUZZ_NICE:-19}"
RSS_LIMIT_MB="${FUZZ_RSS_LIMIT_MB:-2048}"

targets() {
  local file
  for file in "$FUZZ"/fuzz_targets/*.rs; do
    basename "$file" .rs
  done
}

replay() {
  # The main build's target dir: the fuzz crate's lock pins the same versions, so the
  # library and its dependencies are not built twice.
  cargo fmt --manifest-path "$FUZZ/Cargo.toml" -- --check
  cargo clippy --locked --manifest-path "$FUZZ/Cargo.toml" --no-default-features --all-targets \
    --target-dir "$REPO/target" -- -D warnings
  cargo test --locked --manifest-path "$FUZZ/Cargo.toml" --no-default-features \
    --target-dir "$REPO/target"
}

run() {
  local seconds="${1:?run SECONDS [TARGET...]}"
  shift
  if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: cargo-fuzz is not installed, skipping the fuzzing run (the replay covers the corpus)"
    return 0
  fi
  local list=("$@")
  if [ "${#list[@]}" -eq 0 ]; then
    mapfile -t list < <(targets)
  fi
  cd "$FUZZ"
  local target log scratch
  for target in "${list[@]}"; do
    scratch="$REPO/target/fuzz-corpus/$target"
    mkdir -p "$scratch" "$FUZZ/artifacts/$target"
    log="$REPO/target/fuzz-$target.log"
    echo "fuzz $target: ${seconds}s (log: $log)"
    if ! nice -n "$NICE" cargo fuzz run --sanitizer none --debug-assertions "$target" "$scratch" "$FUZZ/corpus/$target" -- \
      -max_total_time="$seconds" -timeout=10 -rss_limit_mb="$RSS_LIMIT_MB" \
      -print_final_stats=1 >"$log" 2>&1; then
      tail -n 40 "$log" >&2
      echo "fuzz $target: FAILED, input in fuzz/artifacts/$target/" >&2
      return 1
    fi
    summary "$target" "$log" "$scratch"
  done
}

# One line of figures from libFuzzer's final stats.
summary() {
  local target="$1" log="$2" scratch="$3"
  local execs seconds per_second corpus
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
  per_second="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)"
  seconds="$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -n 1)"
  corpus="$(find "$scratch" "$FUZZ/corpus/$target" -type f | wc -l)"
  local cov
  cov="$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 || true)"
  echo "fuzz $target: ${execs:-?} execs in ${seconds:-?} s (${per_second:-?}/s), corpus $corpus inputs, ${cov:-cov: ?}, no crash"
}

case "${1:-}" in
  replay) replay ;;
  run) shift; run "$@" ;;
  targets) targets ;;
  *) sed -n '2,18p' "$0"; exit 2 ;;
esac
