#!/usr/bin/env bash
# Replicated ledgerd (docs/HA.md), every process on this machine: a
# PostgreSQL 15 primary with one synchronous standby, ledgerd node-a (the
# leader) and, from run 4 on (FOLLOWER_FIRST=1: from the start), node-b (a
# follower) on it. Measures, in one run:
#   1. AppendStream, one client, on the leader;
#   2. unary Append, CLIENTS clients, on the leader;
#   3. the hash-chained PostgreSQL baseline (benches/src/pg.rs), CLIENTS
#      clients, on the same primary + synchronous standby, and the ratio;
#   4. the follower's lag (Tail on node-b after each ack from node-a) under
#      LAG_RATE appends/s.
#   benches/ha.sh [CLIENTS=64] [SECONDS=20] [LAG_RATE=10000]
# PostgreSQL runs from Debian's packages (installed when missing) in a
# temporary directory, loopback only; everything is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
CLIENTS=${1:-64}
SECONDS_=${2:-20}
LAG_RATE=${3:-10000}
PGBIN=/usr/lib/postgresql/15/bin
if [ ! -x "$PGBIN/postgres" ]; then
  echo "== installing postgresql-15 (Debian)"
  apt-get install -y -q postgresql-15 >/dev/null
fi
cargo build --release -q -p ledger-server -p ledger-bench -p ledger-cli
tmp=$(mktemp -d /var/tmp/ledger-ha.XXXXXX)
out=${OUT:-target/bench}
mkdir -p "$out"
chown postgres "$tmp"
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
P1=$((20000 + RANDOM % 10000)); P2=$((P1 + 1)); LA=$((P1 + 2)); LB=$((P1 + 3)); MA=$((P1 + 4)); MB=$((P1 + 5))
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  as_pg "$PGBIN/pg_ctl" -D "$tmp/standby" -m immediate stop >/dev/null 2>&1 || true
  as_pg "$PGBIN/pg_ctl" -D "$tmp/primary" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
opts="-c listen_addresses=127.0.0.1 -k $tmp -c max_connections=200 -c shared_buffers=256MB -c fsync=on"
as_pg "$PGBIN/initdb" -D "$tmp/primary" --auth=trust -U ledger >/dev/null
as_pg "$PGBIN/pg_ctl" -D "$tmp/primary" -l "$tmp/primary.log" -w \
  -o "$opts -p $P1 -c synchronous_standby_names=* -c synchronous_commit=on" start >/dev/null
as_pg "$PGBIN/pg_basebackup" -h 127.0.0.1 -p "$P1" -U ledger -R -X stream -D "$tmp/standby"
as_pg "$PGBIN/pg_ctl" -D "$tmp/standby" -l "$tmp/standby.log" -w -o "$opts -p $P2" start >/dev/null
URL="host=127.0.0.1,127.0.0.1 port=$P1,$P2 user=ledger dbname=postgres"

start_node() { # name listen metrics
  printf '[storage]\nkind = "postgres"\nnode = "%s"\n' "$1" > "$tmp/$1.toml"
  LEDGER_STORAGE_URL="$URL" target/release/ledgerd --config "$tmp/$1.toml" --data-dir "$tmp/$1" \
    --listen "127.0.0.1:$2" --metrics-listen "127.0.0.1:$3" --log-format json 2> "$tmp/$1.log" &
  pids+=($!)
  for _ in $(seq 1 300); do grep -q '"ledgerd serving"' "$tmp/$1.log" && return 0; sleep 0.1; done
  echo "ledgerd $1 did not start:"; cat "$tmp/$1.log"; exit 1
}
start_node node-a "$LA" "$MA"
for _ in $(seq 1 300); do grep -q '"role":"leader"' "$tmp/node-a.log" && break; sleep 0.1; done
A=http://127.0.0.1:$LA B=http://127.0.0.1:$LB PIDA=${pids[0]}
echo "== PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}'), primary :$P1 + synchronous standby :$P2; ledgerd leader $A"
# FOLLOWER_FIRST=1 starts the follower before the throughput runs (on this
# one machine it then takes CPU from the leader and PostgreSQL; on its own
# machine it would not)
follower() {
  mkdir -p "$tmp/node-b/logs/default/keys"
  cp "$tmp/node-a/logs/default/keys/keyring.json" "$tmp/node-b/logs/default/keys/"
  start_node node-b "$LB" "$MB"
  echo "== follower $B: catching up"
  for _ in $(seq 1 3000); do
    st=$(target/release/ledger --server "$B,$A" status --output json 2>/dev/null || true)
    python3 -c 'import json,sys; n=json.loads(sys.argv[1])["nodes"]; sys.exit(0 if n[1]["size"] > 0 and n[0]["size"] == n[1]["size"] else 1)' "$st" 2>/dev/null && break
    sleep 0.1
  done
  echo "$st" | python3 -c 'import json,sys; [print("  ", n["node"], n["role"], "size", n["size"], "lag", n["lag"]) for n in json.load(sys.stdin)["nodes"]]'
}
[ "${FOLLOWER_FIRST:-0}" = 1 ] && follower

run() { BENCH_SERVER=$A BENCH_PID=$PIDA target/release/ledger-bench load - "$@"; }
echo "== 1. AppendStream, one client, ${SECONDS_}s"
run stream 0 "$SECONDS_" "$out/ha-stream.json"
echo "== 2. unary Append, $CLIENTS clients, ${SECONDS_}s"
run unary "$CLIENTS" "$SECONDS_" "$out/ha-unary-$CLIENTS.json"
echo "== 3. hash-chained PostgreSQL rows, $CLIENTS clients, ${SECONDS_}s, same primary + standby"
target/release/ledger-bench pg "host=127.0.0.1 port=$P1 user=ledger dbname=postgres" "$CLIENTS" "$SECONDS_" "$out/ha-pg-$CLIENTS.json"
[ "${FOLLOWER_FIRST:-0}" = 1 ] || follower
echo "== 4. follower lag under $LAG_RATE appends/s, ${SECONDS_}s"
BENCH_FOLLOWER=$B run lag "$LAG_RATE" "$SECONDS_" "$out/ha-lag-$LAG_RATE.json"
python3 - "$out" "$CLIENTS" "$LAG_RATE" <<'PY'
import json, sys
out, clients, rate = sys.argv[1:4]
r = lambda n, i=0: json.load(open(f"{out}/{n}"))["results"][i]
s, u, p, l = r("ha-stream.json"), r(f"ha-unary-{clients}.json"), r(f"ha-pg-{clients}.json"), r(f"ha-lag-{rate}.json", 1)
print(f"== summary: stream {s['per_sec']:.0f}/s; unary x{clients} {u['per_sec']:.0f}/s (p99 {u['latency_us']['p99']} µs) "
      f"vs PostgreSQL rows {p['per_sec']:.0f}/s = {u['per_sec'] / max(p['per_sec'], 1):.1f}x; "
      f"follower lag p50 {l['latency_us']['p50']} µs p99 {l['latency_us']['p99']} µs max {l['latency_us']['max']} µs "
      f"({l['ok']} entries, {l['errors']} never arrived)")
PY
