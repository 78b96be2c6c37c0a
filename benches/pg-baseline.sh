#!/usr/bin/env bash
# Side by side, one run: ledgerd (unary Append, CLIENTS concurrent clients)
# and PostgreSQL 15 (the same appends as hash-chained rows, same clients),
# on this machine, every acknowledgement durable. Prints both and the ratio.
#   benches/pg-baseline.sh [CLIENTS=64] [SECONDS=20]
# PostgreSQL runs from Debian's packages (installed when missing) in a
# temporary directory, synchronous_commit=on, fsync=on, loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
CLIENTS=${1:-64}
SECONDS_=${2:-20}
PGBIN=/usr/lib/postgresql/15/bin
if [ ! -x "$PGBIN/postgres" ]; then
  echo "== installing postgresql-15 (Debian)"
  apt-get install -y -q postgresql-15 >/dev/null
fi
cargo build --release -q -p ledger-server -p ledger-bench
tmp=$(mktemp -d /var/tmp/ledger-pg.XXXXXX)
out=${OUT:-target/bench}
mkdir -p "$out"
chown postgres "$tmp"
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
PORT=$((20000 + RANDOM % 20000))
as_pg "$PGBIN/initdb" -D "$tmp/data" --auth=trust -U bench >/dev/null
as_pg "$PGBIN/pg_ctl" -D "$tmp/data" -l "$tmp/log" -w \
  -o "-c synchronous_commit=on -c fsync=on -c listen_addresses=127.0.0.1 -p $PORT -k $tmp -c max_connections=200 -c shared_buffers=256MB" start >/dev/null
trap 'as_pg "$PGBIN/pg_ctl" -D "$tmp/data" -m fast stop >/dev/null; rm -rf "$tmp"' EXIT
echo "== ledgerd: unary Append, $CLIENTS clients, ${SECONDS_}s"
target/release/ledger-bench load target/release/ledgerd unary "$CLIENTS" "$SECONDS_" "$out/ledgerd-unary-$CLIENTS.json"
echo "== PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}'): hash-chained audit rows, $CLIENTS clients, ${SECONDS_}s"
target/release/ledger-bench pg "host=127.0.0.1 port=$PORT user=bench dbname=postgres" "$CLIENTS" "$SECONDS_" "$out/pg-$CLIENTS.json"
python3 - "$out/ledgerd-unary-$CLIENTS.json" "$out/pg-$CLIENTS.json" <<'PY'
import json, sys
a, b = (json.load(open(p))["results"][0] for p in sys.argv[1:3])
print(f"== ratio: ledgerd {a['per_sec']:.0f}/s vs PostgreSQL {b['per_sec']:.0f}/s = {a['per_sec'] / max(b['per_sec'], 1):.1f}x "
      f"(p99 {a['latency_us']['p99']} µs vs {b['latency_us']['p99']} µs)")
PY
