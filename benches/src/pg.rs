//! `ledger-bench pg CONNINFO CLIENTS SECONDS [JSON]`: the PostgreSQL
//! baseline of docs/BENCHMARKS.md — the audit-table design AWS recommends
//! in place of QLDB: an append-only table whose rows carry a client-computed
//! SHA-256 hash chain and an HMAC column. Each append is one transaction:
//! lock the chain head, compute the row's hash from the previous one and
//! its HMAC here, insert the row (request_id unique), move the head,
//! commit (`synchronous_commit = on`: durable when acknowledged, like
//! ledgerd). CLIENTS clients in a closed loop, as `load unary`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hmac::{KeyInit, Mac};
use sha2::Digest;

const SCHEMA: &str = "
DROP TABLE IF EXISTS audit_log, chain_head;
CREATE TABLE audit_log (
  seq bigint PRIMARY KEY,
  recorded_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  category text NOT NULL,
  subject text NOT NULL,
  actor text NOT NULL,
  request_id text UNIQUE,
  payload jsonb NOT NULL,
  prev_hash bytea NOT NULL,
  hash bytea NOT NULL,
  hmac bytea NOT NULL
);
CREATE INDEX audit_log_subject ON audit_log (subject, seq);
CREATE TABLE chain_head (id int PRIMARY KEY, seq bigint NOT NULL, hash bytea NOT NULL);
INSERT INTO chain_head VALUES (1, -1, '\\x0000000000000000000000000000000000000000000000000000000000000000');
";

async fn connect(conninfo: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(conninfo, tokio_postgres::NoTls).await.expect("connect to PostgreSQL");
    tokio::spawn(conn);
    client
}

async fn client_loop(
    conninfo: String,
    worker: u64,
    until: Instant,
    lat: Arc<tokio::sync::Mutex<hdrhistogram::Histogram<u64>>>,
) -> (u64, u64) {
    let mut c = connect(&conninfo).await;
    let head = c.prepare("SELECT seq, hash FROM chain_head WHERE id = 1 FOR UPDATE").await.unwrap();
    let insert = c
        .prepare("INSERT INTO audit_log (seq, category, subject, actor, request_id, payload, prev_hash, hash, hmac) VALUES ($1, $2, $3, $4, $5, $6::text::jsonb, $7, $8, $9)")
        .await
        .unwrap();
    let advance = c.prepare("UPDATE chain_head SET seq = $1, hash = $2 WHERE id = 1").await.unwrap();
    let key = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(&[7u8; 32]).unwrap();
    let (mut ok, mut errors, mut n) = (0, 0, 0u64);
    while Instant::now() < until {
        let req = crate::load::append_req(worker, n);
        let e = req.entry.unwrap();
        let payload = String::from_utf8(e.payload).unwrap();
        let t = Instant::now();
        let r: Result<(), tokio_postgres::Error> = async {
            let tx = c.transaction().await?;
            let row = tx.query_one(&head, &[]).await?;
            let (prev_seq, prev): (i64, Vec<u8>) = (row.get(0), row.get(1));
            let seq = prev_seq + 1;
            let mut h = sha2::Sha256::new();
            h.update(&prev);
            h.update(seq.to_be_bytes());
            for f in [&e.category, &e.subject, &req.actor, &e.request_id, &payload] {
                h.update((f.len() as u64).to_be_bytes());
                h.update(f.as_bytes());
            }
            let hash = h.finalize().to_vec();
            let mut m = key.clone();
            m.update(&hash);
            let tag = m.finalize().into_bytes().to_vec();
            tx.execute(
                &insert,
                &[&seq, &e.category, &e.subject, &req.actor, &e.request_id, &payload, &prev, &hash, &tag],
            )
            .await?;
            tx.execute(&advance, &[&seq, &hash]).await?;
            tx.commit().await
        }
        .await;
        match r {
            Ok(()) => {
                ok += 1;
                let _ = lat.lock().await.record(t.elapsed().as_micros().max(1) as u64);
            }
            Err(_) => errors += 1,
        }
        n += 1;
    }
    (ok, errors)
}

/// Runs the baseline; returns a report shaped like `load`'s.
pub async fn run(conninfo: &str, clients: u64, seconds: f64) -> serde_json::Value {
    let c = connect(conninfo).await;
    c.batch_execute(SCHEMA).await.expect("create the audit table");
    let sync: String = c.query_one("SHOW synchronous_commit", &[]).await.unwrap().get(0);
    let fsync: String = c.query_one("SHOW fsync", &[]).await.unwrap().get(0);
    let version: String = c.query_one("SHOW server_version", &[]).await.unwrap().get(0);
    let lat = Arc::new(tokio::sync::Mutex::new(hdrhistogram::Histogram::new_with_bounds(1, 120_000_000, 3).unwrap()));
    let started = Instant::now();
    let until = started + Duration::from_secs_f64(seconds);
    let tasks: Vec<_> =
        (0..clients).map(|w| tokio::spawn(client_loop(conninfo.to_owned(), w, until, lat.clone()))).collect();
    let (mut ok, mut errors) = (0, 0);
    for t in tasks {
        let (o, e) = t.await.unwrap();
        ok += o;
        errors += e;
    }
    let secs = started.elapsed().as_secs_f64();
    let rows: i64 = c.query_one("SELECT count(*) FROM audit_log", &[]).await.unwrap().get(0);
    assert_eq!(rows as u64, ok, "every committed append is a row");
    let h = lat.lock().await;
    serde_json::json!({
        "scenario": "postgresql", "arg": clients, "seconds": secs,
        "server": {"version": version, "synchronous_commit": sync, "fsync": fsync},
        "results": [{
            "what": "append (hash-chained row)", "ok": ok, "errors": errors, "per_sec": (ok as f64 / secs).round(),
            "latency_us": {"p50": h.value_at_quantile(0.5), "p90": h.value_at_quantile(0.9), "p99": h.value_at_quantile(0.99), "p999": h.value_at_quantile(0.999), "max": h.max()},
        }],
        "server_rss_kib": null, "server_peak_rss_kib": null,
    })
}
