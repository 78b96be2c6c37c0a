#!/usr/bin/env bash
# Compares two builds by alternating runs in the same spell (the machine
# varies by up to ±25 % between spells; docs/BENCHMARKS.md "Comparing two
# builds"). Each build directory holds `ledger-bench` and `ledgerd` (e.g. a
# target/release), and `ledger` for `verify`. Prints one line per run and a
# median per build and bench.
#   benches/ab.sh BUILD_A BUILD_B [PAIRS] [BENCHES...]
# BENCHES: lib-append stream unary64 rate1000 (default: all four), and
# verify: `ledger verify LOG --hmac-key LOG/keys/keyring.json` of the log
# AB_VERIFY_LOG names (e.g. kept by `BENCH_KEEP=1 ledger-bench lib-append`),
# as wall and CPU (user + sys) milliseconds.
set -euo pipefail
A=$1 B=$2 N=${3:-3}
shift $(( $# < 3 ? $# : 3 ))
BENCHES=${*:-lib-append stream unary64 rate1000}
O=${AB_OUT:-target/bench/ab}
mkdir -p "$O"
# One run: prints "value unit" (entries/s, or per s and p99 µs).
run() {
  local d=$1 bench=$2 json=$3
  case $bench in
    lib-append) "$d/ledger-bench" lib-append 1000000 1024 1000 | awk '/throughput/ {print $2}' ;;
    stream) "$d/ledger-bench" load "$d/ledgerd" stream 0 15 "$json" >/dev/null ;;
    unary64) "$d/ledger-bench" load "$d/ledgerd" unary 64 15 "$json" >/dev/null ;;
    rate1000) "$d/ledger-bench" load "$d/ledgerd" rate 1000 20 "$json" >/dev/null ;;
    verify)
      local TIMEFORMAT='%R %U %S' log=${AB_VERIFY_LOG:?set AB_VERIFY_LOG to a kept log directory}
      { time "$d/ledger" verify "$log" --hmac-key "$log/keys/keyring.json" >/dev/null 2>&1; } 2>&1 |
        awk '{printf "%.0f %.0f\n", $1 * 1000, ($2 + $3) * 1000}' ;;
    *) echo "unknown bench $bench" >&2; exit 2 ;;
  esac
  if [ "$bench" != lib-append ] && [ "$bench" != verify ]; then
    python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"][0]; print(int(r["per_sec"]), r["latency_us"]["p99"])' "$json"
  fi
}
for bench in $BENCHES; do
  for i in $(seq 1 "$N"); do
    for side in A B; do
      d=$A; [ "$side" = B ] && d=$B
      out=$(run "$d" "$bench" "$O/$bench-$side-$i.json")
      echo "$bench $side $i $out" | tee -a "$O/runs.txt"
    done
  done
done
python3 - "$O/runs.txt" <<'PY'
import sys, statistics, collections
v = collections.defaultdict(list)
for line in open(sys.argv[1]):
    f = line.split()
    v[(f[0], f[1])].append([float(x) for x in f[3:]])
for (bench, side), runs in sorted(v.items()):
    cols = list(zip(*runs))
    med = " ".join(f"{statistics.median(c):.0f}" for c in cols)
    print(f"median {bench} {side} ({len(runs)} runs): {med}")
PY
