//! One log's part in a replicated ledgerd (docs/HA.md "Roles"): a follower
//! applies the committed batches to its replica, verifying each; when the
//! leader's lease has expired it takes the lease, catches up to the head
//! and checks it before it leads; a leader renews its lease while idle and
//! goes back to following when it is fenced.
//!
//! Owns: the role of this node for one log and the checks before leading
//! (caught up, the head's root and signature, no rollback). Must not: serve
//! clients or decide who may append (the server asks [`Node::state`]).

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use ledger::Ledger;
use ledger::log::ReplicaError;
use ledger::note::Checkpoint;
use ledger::sync::lock;

use crate::db::DbError;
use crate::engine::PgStore;
use crate::fence::FenceError;

/// Batches read from the database per step.
const BATCHES_PER_READ: i64 = 64;

/// Who this node is.
#[derive(Debug, Clone)]
pub struct Identity {
    /// its name in the lease (`storage.node`)
    pub node: String,
    /// how clients reach it (`storage.advertise`)
    pub advertise: String,
    /// the lease's length (`storage.lease`)
    pub lease: Duration,
}

/// What a node is for one log, as the server and metrics read it.
#[derive(Debug, Default)]
pub struct State {
    leader: AtomicBool,
    epoch: AtomicI64,
    /// the head's size when last read
    head_size: AtomicU64,
    /// times this node took the lease
    became_leader: AtomicU64,
    /// the leader's name and address when last read
    leader_at: Mutex<(String, String)>,
    /// why replication stopped (a batch that did not verify, a rollback)
    halted: Mutex<Option<String>>,
}

impl State {
    /// This node leads the log.
    pub fn is_leader(&self) -> bool {
        self.leader.load(Ordering::Relaxed)
    }
    /// The epoch of the lease this node holds or last saw.
    pub fn epoch(&self) -> i64 {
        self.epoch.load(Ordering::Relaxed)
    }
    /// The database head's size when last read.
    pub fn head_size(&self) -> u64 {
        self.head_size.load(Ordering::Relaxed)
    }
    /// Times this node became the leader.
    pub fn became_leader(&self) -> u64 {
        self.became_leader.load(Ordering::Relaxed)
    }
    /// The leader's (name, advertised address), when one is known.
    pub fn leader(&self) -> Option<(String, String)> {
        let l = lock(&self.leader_at).clone();
        (!l.0.is_empty()).then_some(l)
    }
    /// Why this node stopped applying batches, if it did.
    pub fn halted(&self) -> Option<String> {
        lock(&self.halted).clone()
    }
    fn halt(&self, why: String) {
        lock(&self.halted).get_or_insert(why);
    }
}

/// One log on one node.
pub struct Node {
    me: Identity,
    ledger: Arc<Ledger>,
    store: Arc<PgStore>,
    state: Arc<State>,
    /// why applying waits (a batch under keys this node lacks), logged once
    waiting: Mutex<Option<String>>,
}

/// What a step did that the server should know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stepped {
    /// entries applied from the database
    pub applied: u64,
    /// the role changed
    pub role_changed: bool,
}

impl Node {
    /// A node that starts as a follower.
    pub fn new(me: Identity, ledger: Arc<Ledger>, store: Arc<PgStore>) -> Self {
        Self { me, ledger, store, state: Arc::new(State::default()), waiting: Mutex::new(None) }
    }

    /// Its state.
    pub fn state(&self) -> &Arc<State> {
        &self.state
    }

    /// One round: follow (apply, maybe take the lease) or lead (renew, or
    /// step down when fenced). Database errors are returned; the next step
    /// tries again.
    pub fn step(&self) -> Result<Stepped, DbError> {
        let mut out = Stepped::default();
        if self.ledger.stopped().is_some()
            && let Some(reason) = self.store.take_fenced()
        {
            // a fenced batch left nothing behind: follow from what is durable
            self.store.follow();
            match self.ledger.resume() {
                Ok(_) => tracing::warn!(log = self.store.log(), %reason, "fenced: following"),
                Err(e) => {
                    tracing::error!(log = self.store.log(), %reason, error = %e, "fenced, and the log did not resume")
                }
            }
            out.role_changed |= self.set_leader(false);
        }
        if self.state.is_leader() {
            self.keep_lease(&mut out)?;
            return Ok(out);
        }
        out.applied = self.apply_new()?;
        if self.state.halted().is_none() {
            self.maybe_lead(&mut out)?;
        }
        Ok(out)
    }

    /// Sets the role; a node that stops leading forgets that it led (it
    /// must not name itself as the leader while it follows), until the
    /// next read of the head names the new one.
    fn set_leader(&self, leader: bool) -> bool {
        let changed = self.state.leader.swap(leader, Ordering::Relaxed) != leader;
        if changed && !leader {
            *lock(&self.state.leader_at) = Default::default();
        }
        changed
    }

    /// A leader renews when a third of the lease passed without a commit;
    /// fenced, it follows; its log stopped for another reason, it stops
    /// renewing so that another node takes over.
    fn keep_lease(&self, out: &mut Stepped) -> Result<(), DbError> {
        let Some(lease) = self.store.lease() else {
            out.role_changed |= self.set_leader(false);
            return Ok(());
        };
        if let Some(why) = self.ledger.stopped() {
            self.state.halt(format!("the log stopped: {why}"));
            self.store.follow();
            out.role_changed |= self.set_leader(false);
            return Ok(());
        }
        if self.store.renewed_at().elapsed() < lease.length / 3 {
            return Ok(());
        }
        match self.store.db().renew(&lease) {
            Ok(()) => self.store.renewed(),
            Err(DbError::Fence(FenceError::Fenced { head_epoch, .. })) => {
                tracing::warn!(log = self.store.log(), epoch = lease.epoch, head_epoch, "lease lost: following");
                self.store.follow();
                out.role_changed |= self.set_leader(false);
            }
            Err(e) => return Err(e),
        }
        Ok(())
    }

    /// Applies the committed batches past the replica's end, verifying
    /// each; one that does not verify halts replication (the node keeps
    /// serving what it has).
    fn apply_new(&self) -> Result<u64, DbError> {
        if self.state.halted().is_some() {
            return Ok(0);
        }
        let before = self.ledger.size();
        for b in self.store.db().batches(self.store.log(), before, BATCHES_PER_READ)? {
            let first = b.first_seq;
            match self.ledger.apply_replica(first, Bytes::from(b.frames), &b.checkpoint) {
                Ok(_) => *lock(&self.waiting) = None,
                Err(e @ ReplicaError::KeysMissing { .. }) => {
                    // not a bad batch: this node lacks a rotation's staged keys; the next step reads the keyring again
                    let why = e.to_string();
                    if lock(&self.waiting).replace(why.clone()).as_deref() != Some(why.as_str()) {
                        tracing::warn!(log = self.store.log(), first_seq = first, error = %why, "replication waits for the keyring");
                    }
                    break;
                }
                Err(e) => {
                    tracing::error!(log = self.store.log(), first_seq = first, error = %e, "a committed batch does not verify: replication halted");
                    self.state.halt(e.to_string());
                    break;
                }
            }
        }
        Ok(self.ledger.size() - before)
    }

    /// Takes the lease when it expired, then leads if the replica is the
    /// head (caught up, same root, a head signed by this node's keys).
    fn maybe_lead(&self, out: &mut Stepped) -> Result<(), DbError> {
        let log = self.store.log();
        let head = self.store.db().head(log)?;
        if let Some(h) = &head {
            self.state.head_size.store(h.tree_size, Ordering::Relaxed);
            self.state.epoch.store(h.epoch, Ordering::Relaxed);
            *lock(&self.state.leader_at) = (h.holder.clone(), h.holder_addr.clone());
            if h.tree_size < self.ledger.size() {
                let why = format!(
                    "the database's head holds {} entries but this replica verified {}: the database lost committed batches (a rollback); refusing to continue on it",
                    h.tree_size,
                    self.ledger.size()
                );
                tracing::error!(log, "{why}");
                self.state.halt(why);
                return Ok(());
            }
            if h.remaining_ms > 0 && h.holder != self.me.node {
                return Ok(());
            }
        }
        let lease = match self.store.db().acquire(log, &self.me.node, &self.me.advertise, self.me.lease) {
            Ok(l) => l,
            Err(DbError::Fence(FenceError::Held { .. })) => return Ok(()),
            Err(e) => return Err(e),
        };
        // The head cannot move now: catch up to it, then check it.
        while self.apply_new()? > 0 {}
        if let Some(why) = self.head_check()? {
            tracing::error!(log, epoch = lease.epoch, "not leading: {why}");
            self.state.halt(why);
            return Ok(());
        }
        // The lease was timed when it was taken; taking it may have waited
        // (a COMMIT waits for the synchronous standby) and catching up took
        // time: extend it from now, which also proves the epoch is still ours.
        match self.store.db().renew(&lease) {
            Ok(()) => {}
            Err(DbError::Fence(FenceError::Fenced { head_epoch, .. })) => {
                tracing::warn!(log, epoch = lease.epoch, head_epoch, "the lease was taken over before leading");
                return Ok(());
            }
            Err(e) => return Err(e),
        }
        self.state.epoch.store(lease.epoch, Ordering::Relaxed);
        *lock(&self.state.leader_at) = (self.me.node.clone(), self.me.advertise.clone());
        tracing::info!(log, epoch = lease.epoch, size = self.ledger.size(), "leading");
        self.store.lead(lease);
        self.state.became_leader.fetch_add(1, Ordering::Relaxed);
        out.role_changed |= self.set_leader(true);
        Ok(())
    }

    /// Why this node must not lead from its replica, if it must not.
    fn head_check(&self) -> Result<Option<String>, DbError> {
        if let Some(why) = self.state.halted() {
            return Ok(Some(why));
        }
        let Some(h) = self.store.db().head(self.store.log())? else { return Ok(None) };
        let size = self.ledger.size();
        if h.tree_size != size {
            return Ok(Some(format!("the head holds {} entries, the replica {size}", h.tree_size)));
        }
        if size == 0 {
            return Ok(None);
        }
        let vkeys = self.ledger.verifiers();
        let cp = match Checkpoint::open(&h.checkpoint, &vkeys) {
            Ok(c) => c,
            Err(e) => return Ok(Some(format!("this node's keys do not verify the head checkpoint: {e}"))),
        };
        let root = self.ledger.latest_checkpoint().checkpoint.root;
        if cp.size != size || cp.root != root || h.root != root {
            return Ok(Some(format!("the head checkpoint (size {}) is not the replica's tree (size {size})", cp.size)));
        }
        Ok(None)
    }
}
