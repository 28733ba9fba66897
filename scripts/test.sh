#!/usr/bin/env bash
# Sets everything up, then runs every check: formatting, clippy (host and guests), all
# tests (unit, doc and end-to-end against the real binary), fuzzing for a fixed time, and
# the benchmarks in smoke mode.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

log() { printf '\n==> %s\n' "$*" >&2; }

log "cargo fmt --check"
cargo fmt --all --check
(cd functions && cargo fmt --all --check)
(cd tests/fixtures && cargo fmt --all --check)
(cd bench/wasi_http_hello && cargo fmt --all --check)

log "cargo clippy"
cargo clippy --release --workspace --all-targets -- -D warnings
(cd functions && cargo clippy --release --all-targets -- -D warnings)
(cd tests/fixtures && cargo clippy --release --all-targets -- -D warnings)
(cd bench/wasi_http_hello && cargo clippy --release --all-targets -- -D warnings)

log "cargo test"
cargo test --release --workspace

scripts/fuzz.sh

log "benchmarks, smoke mode (checks they run; asserts no time)"
bench/run --smoke
