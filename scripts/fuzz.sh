#!/usr/bin/env bash
# Runs the fuzz targets in fuzz/ (cargo-fuzz with libFuzzer).
#   scripts/fuzz.sh            a short fixed-seed run of every target (what CI runs: ~1 min)
#   scripts/fuzz.sh TARGET [libFuzzer options...]   a long run of one target, e.g.
#   scripts/fuzz.sh config_files -max_total_time=3600
# cargo-fuzz drives nightly-only compiler flags; RUSTC_BOOTSTRAP=1 lets the stable
# toolchain accept them. Crashes land in fuzz/artifacts/TARGET/: copy each into
# fuzz/seeds/TARGET/ once fixed, so every later run replays it.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
export RUSTC_BOOTSTRAP=1

if ! command -v cargo-fuzz >/dev/null; then
  printf '\n==> installing cargo-fuzz\n' >&2
  cargo install cargo-fuzz --locked
fi

targets=(config_files channel_name deploy_bundle)
run() {
  local target=$1; shift
  mkdir -p "corpus/$target"
  cargo fuzz run -O --sanitizer none "$target" "corpus/$target" "seeds/$target" -- "$@"
}

if [ $# -gt 0 ]; then
  target=$1; shift
  run "$target" "$@"
  exit 0
fi

printf '\n==> fuzzing (fixed seed, 25 s per target)\n' >&2
cargo fuzz build -O --sanitizer none
for target in "${targets[@]}"; do
  run "$target" -seed=1 -max_total_time=25 -print_final_stats=1
done
