//! Crash test (issue 7): 16 concurrent clients append with request ids
//! while the real ledgerd is SIGKILLed at random moments and restarted;
//! clients retry what was not acknowledged. After every restart: every
//! acknowledged entry is present with the same seq and leaf hash, no
//! request id appears twice, and every checkpoint handed out before is
//! consistent with the new tree. At the end the journal verifies offline.
//!
//! Kills: `LEDGER_CRASH_KILLS` (default 3; the full run uses 20). The seed
//! is printed; `LEDGER_CRASH_SEED` replays a run.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ledger_e2e::{Ledgerd, ledger};
use ledger_proto::v1 as pb;
use ledger_proto::v1::ledger_service_client::LedgerServiceClient;

const CLIENTS: u64 = 16;

#[derive(Clone, Debug)]
struct Acked {
    seq: u64,
    leaf_hash: Vec<u8>,
    checkpoint: (u64, [u8; 32]),
}

#[derive(Default)]
struct Book {
    acked: HashMap<String, Acked>,
    pending: BTreeMap<String, pb::EntryInput>,
}

fn entry(client: u64, n: u64) -> (String, pb::EntryInput) {
    let id = format!("c{client}-{n}");
    let e = pb::EntryInput {
        category: "alert_ack".into(),
        subject: format!("INC-{client}"),
        payload: format!(r#"{{"client":{client},"n":{n}}}"#).into_bytes(),
        request_id: id.clone(),
        ..Default::default()
    };
    (id, e)
}

fn checkpoint_of(r: &pb::Receipt) -> (u64, [u8; 32]) {
    let n = ledger::note::Note::parse(&r.checkpoint).unwrap();
    let c = ledger::note::Checkpoint::parse_body(&n.text).unwrap();
    (c.size, c.root)
}

async fn client_loop(url: String, client: u64, book: Arc<Mutex<Book>>, mut next: u64) -> u64 {
    let Ok(mut c) = LedgerServiceClient::connect(url).await else { return next };
    loop {
        let (id, e) = entry(client, next);
        book.lock().unwrap().pending.insert(id.clone(), e.clone());
        let req = pb::AppendRequest { log: "default".into(), entry: Some(e), actor: format!("client-{client}") };
        match c.append(req).await {
            Ok(r) => {
                let r = r.into_inner().receipt.unwrap();
                let mut b = book.lock().unwrap();
                b.pending.remove(&id);
                b.acked.insert(id, Acked { seq: r.seq, leaf_hash: r.leaf_hash.clone(), checkpoint: checkpoint_of(&r) });
                next += 1;
            }
            Err(_) => return next,
        }
    }
}

/// Retries every unacknowledged request (same id, same content).
async fn retry_pending(url: &str, book: &Arc<Mutex<Book>>) {
    let pending: Vec<(String, pb::EntryInput)> = book.lock().unwrap().pending.clone().into_iter().collect();
    let mut c = LedgerServiceClient::connect(url.to_owned()).await.unwrap();
    for (id, e) in pending {
        let req = pb::AppendRequest {
            log: "default".into(),
            entry: Some(e),
            actor: format!("client-{}", &id[1..id.find('-').unwrap()]),
        };
        let r =
            c.append(req).await.unwrap_or_else(|s| panic!("retry of {id} failed: {s}")).into_inner().receipt.unwrap();
        let mut b = book.lock().unwrap();
        b.pending.remove(&id);
        b.acked.insert(id, Acked { seq: r.seq, leaf_hash: r.leaf_hash.clone(), checkpoint: checkpoint_of(&r) });
    }
}

async fn check_invariants(url: &str, book: &Arc<Mutex<Book>>) -> u64 {
    let mut c = LedgerServiceClient::connect(url.to_owned()).await.unwrap();
    let latest =
        c.get_checkpoint(pb::GetCheckpointRequest { log: "default".into(), size: 0 }).await.unwrap().into_inner();
    let latest_root: [u8; 32] = latest.root.clone().try_into().unwrap();
    let acked: Vec<(String, Acked)> = book.lock().unwrap().acked.clone().into_iter().collect();
    for (id, a) in &acked {
        let e = c.get(pb::GetRequest { log: "default".into(), seq: a.seq, with_proof: false }).await;
        let e =
            e.unwrap_or_else(|s| panic!("acknowledged {id} (seq {}) is gone: {s}", a.seq)).into_inner().entry.unwrap();
        assert_eq!(e.leaf_hash, a.leaf_hash, "acknowledged {id}: seq {} holds another entry", a.seq);
        assert_eq!(e.decoded.unwrap().request_id, *id);
    }
    // No request id twice in the whole log.
    let mut seen = HashSet::new();
    let mut cursor = None;
    loop {
        let q = pb::QueryRequest { log: "default".into(), limit: 10_000, cursor, ..Default::default() };
        let mut st = c.query(q).await.unwrap().into_inner();
        cursor = None;
        while let Some(m) = st.message().await.unwrap() {
            match m.item.unwrap() {
                pb::query_response::Item::Entry(e) => {
                    let rid = e.decoded.unwrap().request_id;
                    assert!(seen.insert(rid.clone()), "request id {rid} appears twice");
                }
                pb::query_response::Item::NextCursor(n) => cursor = Some(n),
            }
        }
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(seen.len() as u64, latest.size, "every entry carries a request id");
    // Every checkpoint handed out is consistent with the current tree.
    let checkpoints: HashSet<(u64, [u8; 32])> = acked.iter().map(|(_, a)| a.checkpoint).collect();
    for (size, root) in checkpoints {
        let p = c
            .prove_consistency(pb::ProveConsistencyRequest {
                log: "default".into(),
                old_size: size,
                new_size: latest.size,
            })
            .await
            .unwrap()
            .into_inner();
        let proof: Vec<[u8; 32]> = p.proof.iter().map(|h| h.as_slice().try_into().unwrap()).collect();
        ledger::merkle::verify_consistency(size, latest.size, &root, &latest_root, &proof)
            .unwrap_or_else(|e| panic!("checkpoint of size {size} handed out before a crash is not consistent: {e}"));
    }
    latest.size
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_loses_no_acknowledged_entry() {
    let kills: u32 = std::env::var("LEDGER_CRASH_KILLS").ok().and_then(|v| v.parse().ok()).unwrap_or(3);
    let seed = std::env::var("LEDGER_CRASH_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1
    });
    println!("crash test: {kills} kills, seed {seed}");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let book = Arc::new(Mutex::new(Book::default()));
    let mut next = vec![0u64; CLIENTS as usize];
    let mut checked = 0;
    for round in 0..kills {
        let mut d = tokio::task::block_in_place(|| Ledgerd::start(&data, &[]));
        if round > 0 {
            retry_pending(&d.url, &book).await;
            checked = check_invariants(&d.url, &book).await;
        }
        let tasks: Vec<_> =
            (0..CLIENTS).map(|c| tokio::spawn(client_loop(d.url.clone(), c, book.clone(), next[c as usize]))).collect();
        tokio::time::sleep(Duration::from_millis(50 + rng.next() % 400)).await;
        tokio::task::block_in_place(|| d.kill());
        for (c, t) in tasks.into_iter().enumerate() {
            next[c] = t.await.unwrap();
        }
    }
    let mut d = tokio::task::block_in_place(|| Ledgerd::start(&data, &[]));
    retry_pending(&d.url, &book).await;
    let size = check_invariants(&d.url, &book).await;
    let acked = book.lock().unwrap().acked.len() as u64;
    assert_eq!(size, acked, "after the last retries every request is in the log exactly once");
    assert!(size > checked, "appends resumed after the restarts");
    let vkeys = ledger(&d.url, dir.path(), &["keys", "public"]);
    std::fs::write(dir.path().join("vkeys"), vkeys.stdout).unwrap();
    assert_eq!(tokio::task::block_in_place(|| d.stop()), Some(0));
    let log = ledger::layout::log_dir(&data, "default");
    let ring = ledger::layout::keyring(&log);
    let r = ledger(
        "http://127.0.0.1:1",
        dir.path(),
        &["verify", log.to_str().unwrap(), "--vkey", "vkeys", "--hmac-key", ring.to_str().unwrap()],
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    println!(
        "crash test: {kills} kills survived, {acked} acknowledged entries checked, journal verifies ({})",
        r.stdout.lines().next().unwrap_or("")
    );
}
