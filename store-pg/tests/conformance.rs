//! The conformance suite every store passes (`ledger/tests/suite/mod.rs`),
//! over the PostgreSQL store on a real PostgreSQL 15: each open takes the
//! log's lease (a new epoch) and leads, so every batch goes through the
//! database's fence before the local replica. Every check runs, the
//! redaction ones included (the stored row is rewritten in the redaction
//! entry's own transaction, `ledger_store_pg::redact`).

#[path = "../../ledger/tests/engines/mod.rs"]
mod engines;
#[macro_use]
#[path = "../../ledger/tests/suite/mod.rs"]
mod suite;
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use common::cluster::Cluster;
use engines::Engine;
use ledger::log::Clock;
use ledger::store::{Opened, StoreError};
use ledger_store_pg::{Db, engine};

const LOG: &str = "conformance";

/// The PostgreSQL store: a primary of its own, the replica in a temp dir.
pub struct PgEngine {
    _cluster: Cluster,
    db: Arc<Db>,
    dir: tempfile::TempDir,
    clock: Clock,
}

impl PgEngine {
    /// Starts its PostgreSQL.
    pub fn start() -> Self {
        let cluster = Cluster::start(false);
        let db = Arc::new(Db::new(&cluster.primary.conninfo(), Duration::from_secs(30)).unwrap());
        db.install().unwrap();
        let t = Arc::new(AtomicI64::new(1_767_225_600_000_000_000));
        let clock: Clock = Arc::new(move || t.fetch_add(1_000_000, Ordering::SeqCst));
        Self { _cluster: cluster, db, dir: tempfile::tempdir().unwrap(), clock }
    }
}

impl Engine for PgEngine {
    fn try_open_store(&self) -> Result<Opened, StoreError> {
        let o = self.options();
        let dir = self.dir.path().join("log");
        let (opened, store) =
            engine::open_store(&dir, LOG, self.db.clone(), o.segment_bytes, o.min_free_bytes, (self.clock)())?;
        let lease = self.db.acquire(LOG, "node-a", "http://node-a", Duration::from_secs(30)).expect("the lease");
        store.lead(lease);
        Ok(opened)
    }
    fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }
    fn clock(&self) -> Clock {
        self.clock.clone()
    }
    fn asks_durable_points(&self) -> bool {
        true
    }
}

conformance_all!(postgres_store, crate::PgEngine::start());
