#!/usr/bin/env bash
# Every measurement of docs/BENCHMARKS.md, in order; JSON reports in target/bench/.
#   benches/run-all.sh [--soak]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p ledger-server -p ledger-bench
B=target/release/ledger-bench D=target/release/ledgerd O=target/bench
mkdir -p "$O"
$B lib-append 100000 1024 1000
$B lib-append 1000000 1024 1000
$B fsync 1000 20 > $O/fsync-1000.txt
$B load $D floor-rate 1000 20 $O/floor-rate-1000.json
$B load $D floor 64 20 $O/floor-64.json
$B load $D unary 64 20 $O/unary-64.json
$B load $D rate 1000 20 $O/rate-1000.json
$B load $D stream 0 20 $O/stream.json
$B load $D reads 1000 20 $O/reads-1m.json 1000000
$B load $D proofs 1000 20 $O/proofs-1m.json 1000000
$B load $D noisy 512 10 $O/noisy-512.json
benches/pg-baseline.sh 64 20
cargo bench -q -p ledger-bench --bench micro
if [ "${1:-}" = "--soak" ]; then
  $B soak $D 10 1000 4200000
fi
