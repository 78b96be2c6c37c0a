//! The engines the conformance suite runs over: each opens its store on
//! the same disk every time, with a keyring in a temp dir.
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use ledger::Ledger;
use ledger::keys::{KeyPolicy, Keyring};
use ledger::log::{Clock, LogOptions, OpenReport};
use ledger::store::fault::{FaultControl, FaultStore};
use ledger::store::file::FileStore;
use ledger::store::memory::MemoryDisk;
use ledger::store::{Opened, StoreError};

const ORIGIN: &str = "ledger.test/conformance";

/// One store engine, reopenable on the same disk.
pub trait Engine {
    /// Opens the store (the same disk every time).
    fn try_open_store(&self) -> Result<Opened, StoreError>;
    /// Opens the store; panics when it cannot. A `Locked` answer is tried
    /// again for up to 2 s: the `flock` of a writer just dropped is shared
    /// with any child another test thread forked in that instant (starting
    /// PostgreSQL, say) until the child's exec closes it.
    fn open_store(&self) -> Opened {
        for _ in 0..100 {
            match self.try_open_store() {
                Err(e) if e.kind == ledger::store::StoreErrorKind::Locked => {
                    std::thread::sleep(std::time::Duration::from_millis(20))
                }
                other => return other.expect("open the store"),
            }
        }
        self.try_open_store().expect("open the store")
    }
    /// The engine's temp dir (the keyring lives there).
    fn dir(&self) -> &std::path::Path;
    /// The clock shared by every open.
    fn clock(&self) -> Clock;
    /// Whether its writer asks for durable points (under the suite's options).
    fn asks_durable_points(&self) -> bool;

    /// The log's options.
    fn options(&self) -> LogOptions {
        let mut o = LogOptions::new(ORIGIN);
        o.clock = self.clock();
        o.checkpoint_interval = 10;
        o.segment_bytes = 8 << 10;
        o.min_free_bytes = 0;
        o
    }
    /// The keyring at `<dir>/keyring.json`.
    fn keyring(&self) -> Keyring {
        let now = (self.clock())();
        Keyring::open_or_create(&self.dir().join("keyring.json"), ORIGIN, now, &KeyPolicy::default()).unwrap().0
    }
    /// A ledger over the store, with the open's report.
    fn ledger_with_report(&self) -> (Ledger, OpenReport) {
        Ledger::open(self.open_store(), self.keyring(), self.options()).expect("open the ledger")
    }
    /// A ledger over the store.
    fn ledger(&self) -> Ledger {
        self.ledger_with_report().0
    }
    /// A ledger over the store wrapped in the fault store.
    fn faulty(&self) -> (Ledger, FaultControl) {
        let (opened, ctl) = FaultStore::wrap(self.open_store());
        (Ledger::open(opened, self.keyring(), self.options()).expect("open the ledger").0, ctl)
    }
}

fn clock() -> Clock {
    let t = Arc::new(AtomicI64::new(1_767_225_600_000_000_000));
    Arc::new(move || t.fetch_add(1_000_000, Ordering::SeqCst))
}

/// The file store in a temp dir.
pub struct FileEngine {
    dir: tempfile::TempDir,
    clock: Clock,
}

impl FileEngine {
    pub fn new() -> Self {
        Self { dir: tempfile::tempdir().unwrap(), clock: clock() }
    }
}

impl Engine for FileEngine {
    fn try_open_store(&self) -> Result<Opened, StoreError> {
        let o = self.options();
        FileStore::open(&self.dir.path().join("log"), o.segment_bytes, o.min_free_bytes, (self.clock)())
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

/// The memory store on one `MemoryDisk`.
pub struct MemoryEngine {
    disk: MemoryDisk,
    dir: tempfile::TempDir,
    clock: Clock,
}

impl MemoryEngine {
    pub fn new() -> Self {
        Self { disk: MemoryDisk::new(), dir: tempfile::tempdir().unwrap(), clock: clock() }
    }
}

impl Engine for MemoryEngine {
    fn try_open_store(&self) -> Result<Opened, StoreError> {
        self.disk.open()
    }
    fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }
    fn clock(&self) -> Clock {
        self.clock.clone()
    }
    fn asks_durable_points(&self) -> bool {
        false
    }
}
