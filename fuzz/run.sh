#!/usr/bin/env bash
# Bounded fuzzing of every target (CI-able): `fuzz/run.sh [SECONDS_PER_TARGET]` (default 60).
# Uses cargo-fuzz (cargo install cargo-fuzz) on nightly, or on stable with RUSTC_BOOTSTRAP=1.
# New inputs that reach new code are added to fuzz/corpus/<target>/; crashes go to fuzz/artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"
if rustup toolchain list 2>/dev/null | grep -q nightly; then
  fuzz=(cargo +nightly fuzz)
else
  export RUSTC_BOOTSTRAP=1
  fuzz=(cargo fuzz)
fi
for t in frame leaf signed_note tlog_proof export_reader; do
  mkdir -p "fuzz/corpus/$t"
  echo "== $t (${secs}s)"
  "${fuzz[@]}" run "$t" "fuzz/corpus/$t" -- -max_total_time="$secs" -max_len=65536 2>&1 | grep -E '^(#[0-9]+ +DONE|Done|==[0-9]+==|SUMMARY)' || true
  if ls "fuzz/artifacts/$t"/crash-* >/dev/null 2>&1; then
    echo "crash in $t: see fuzz/artifacts/$t" >&2
    exit 1
  fi
done
echo "fuzzing done: no crash"
