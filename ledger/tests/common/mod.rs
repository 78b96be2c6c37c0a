//! Shared test helpers: where the vectors are, and a ledger in a temp dir.
#![allow(dead_code)]

pub mod prerule;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use ledger::{EntryInput, Ledger, LogOptions, NewEntry};

/// The vectors written by others, vendored in `tests/vectors/external/` at
/// the repository's root (override: LEDGER_VECTORS).
pub fn vectors() -> PathBuf {
    let p = std::env::var_os("LEDGER_VECTORS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors/external"));
    assert!(p.is_dir(), "test vectors not found at {} (set LEDGER_VECTORS)", p.display());
    p
}

pub fn read_json(p: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// A controllable clock starting at 2026-01-01, advancing 1 ms per call.
pub fn test_clock() -> (ledger::log::Clock, Arc<AtomicI64>) {
    let t = Arc::new(AtomicI64::new(1_767_225_600_000_000_000));
    let t2 = t.clone();
    (Arc::new(move || t2.fetch_add(1_000_000, Ordering::SeqCst)), t)
}

pub fn options() -> LogOptions {
    let mut o = LogOptions::new("ledger.test/default");
    o.clock = test_clock().0;
    o.checkpoint_interval = 100;
    o
}

pub fn open(dir: &Path, opts: LogOptions) -> Ledger {
    ledger::store::file::open(dir, opts).expect("open ledger").0
}

/// A valid entry of `category` with a small payload.
pub fn entry(category: &str, subject: Option<&str>, i: u64) -> NewEntry {
    let payload = match category {
        "stage5_incident" => {
            format!(r#"{{"tco_kpi":{i},"decision_path":"p{i}","rotation_event_id":"r{i}"}}"#)
        }
        "decision_evaluation" => {
            format!(r#"{{"model":"m{}","accepted":{},"reasons":["r{}"]}}"#, i % 3, i.is_multiple_of(2), i % 5)
        }
        _ => format!(r#"{{"step":{i},"note":"entry number {i}"}}"#),
    };
    EntryInput {
        category: category.into(),
        subject: subject.unwrap_or("").into(),
        payload: payload.into_bytes(),
        ..Default::default()
    }
    .validate("svc-test", &Default::default())
    .expect("valid test entry")
}

pub fn with_request_id(mut e: NewEntry, id: &str) -> NewEntry {
    e.request_id = Some(ledger::RequestId::new(id, &Default::default()).unwrap());
    e
}

/// Appends `n` entries in batches of `batch`, subjects cycling over 7.
pub fn fill(l: &Ledger, n: u64, batch: u64) -> Vec<ledger::Receipt> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < n {
        let k = batch.min(n - i);
        let entries: Vec<_> =
            (i..i + k).map(|j| entry("stage4_incident", Some(&format!("INC-{}", j % 7)), j)).collect();
        for r in l.append_batch(entries) {
            out.push(r.expect("append"));
        }
        i += k;
    }
    out
}

/// A log at `data` of 50 entries in batches of 10, a history checkpoint
/// after each batch, closed (the tamper and warning tests' fixture; the
/// closed ledger still answers for its keys and checkpoints).
pub fn stopped_log_of_50(data: &Path) -> Ledger {
    let mut o = options();
    o.checkpoint_interval = 10;
    let l = open(data, o);
    fill(&l, 50, 10);
    l.close().unwrap();
    l
}
