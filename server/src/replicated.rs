//! A log on the PostgreSQL store (`[storage] kind = "postgres"`,
//! docs/HA.md): its replication thread, which steps the log's role on this
//! node (follow and apply, take an expired lease, lead and renew), and what
//! the services ask of it (may this node append?).
//!
//! A policy reload read while following waits here and is written as its
//! `policy_reload` entry when this node takes the lead (docs/HA.md "Admin
//! actions").
//!
//! Owns: that thread (bounded steps, stopped by a flag and joined), the
//! answer to a write on a follower, and the deferred reload. Must not:
//! decide roles itself (the `ledger-store-pg` node does) or serve anything
//! from the database.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ledger::Ledger;
use ledger::entry::Actor;
use ledger::policy::Policy;
use ledger_store_pg::{Node, PgStore, State};
use tonic::Status;

use crate::status;

/// How often a follower looks for new batches (its replication lag's floor).
const FOLLOW_EVERY: Duration = Duration::from_millis(20);

/// A policy reload read while this node followed: the grants and the
/// revocation list took effect at once (they govern who reads here); the
/// category policy waits for its entry, written when this node leads.
pub struct DeferredReload {
    /// who reloaded
    pub actor: Actor,
    /// the policy the entry puts in force
    pub policy: Policy,
    /// why, as the entry records it
    pub reason: String,
    /// what else changed (grants, revoked serials)
    pub also: serde_json::Map<String, serde_json::Value>,
}

type Deferred = Arc<Mutex<Option<DeferredReload>>>;

/// One log's replication on this node.
pub struct Replication {
    node_name: String,
    state: Arc<State>,
    store: Arc<PgStore>,
    stop: Arc<AtomicBool>,
    deferred: Deferred,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Replication {
    /// Starts the replication thread of `node`; `applied` is called with
    /// the log's size after batches were applied (Tail streams wake up).
    pub fn start(
        log: &str,
        (node_name, node, ledger): (String, Node, Arc<Ledger>),
        store: Arc<PgStore>,
        lease: Duration,
        applied: impl Fn() + Send + 'static,
    ) -> std::io::Result<Self> {
        let (state, stop) = (node.state().clone(), Arc::new(AtomicBool::new(false)));
        let (flag, deferred) = (stop.clone(), Deferred::default());
        let (name, waiting) = (log.to_owned(), deferred.clone());
        let on_lead = move || record_deferred(&name, &ledger, &waiting);
        let name = log.to_owned();
        let thread = std::thread::Builder::new()
            .name(format!("replica-{log}"))
            .spawn(move || run(&name, &node, lease, &flag, (applied, on_lead)))?;
        Ok(Self { node_name, state, store, stop, deferred, thread: Mutex::new(Some(thread)) })
    }

    /// Keeps a reload read while following until this node leads (a newer
    /// one replaces it: the entry records the configuration in force).
    pub fn defer_reload(&self, r: DeferredReload) {
        *ledger::sync::lock(&self.deferred) = Some(r);
    }

    /// This node's name in the lease.
    pub fn node_name(&self) -> &str {
        &self.node_name
    }

    /// Its role and figures.
    pub fn state(&self) -> &Arc<State> {
        &self.state
    }

    /// Batches of this node refused by the fence (never acknowledged).
    pub fn fenced_batches(&self) -> u64 {
        self.store.fenced_batches()
    }

    /// `Ok` when this node leads the log; else `UNAVAILABLE` naming the leader.
    pub fn writable(&self, log: &str) -> Result<(), Status> {
        if self.state.is_leader() {
            return Ok(());
        }
        Err(status::not_leader(log, &self.node_name, self.state.leader()))
    }

    /// Stops the thread (after its current step).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = ledger::sync::lock(&self.thread).take() {
            let _ = t.join();
        }
    }

    /// After the log closed: a leader gives its lease up, so that another
    /// node takes over at once instead of after the lease.
    pub fn release(&self) {
        if let Some(lease) = self.store.lease() {
            self.store.follow();
            match self.store.db().release(&lease) {
                Ok(()) => tracing::info!(log = %lease.log, epoch = lease.epoch, "lease released"),
                Err(e) => {
                    tracing::warn!(log = %lease.log, error = %e, "the lease was not released: it lapses by itself")
                }
            }
        }
    }
}

/// Steps until stopped: often while following (new batches), at a tenth
/// of the lease while leading (renewal needs a third). Database errors are
/// logged at most every 5 s and the next step tries again.
fn run(log: &str, node: &Node, lease: Duration, stop: &AtomicBool, (applied, on_lead): (impl Fn(), impl Fn())) {
    let mut last_warning: Option<Instant> = None;
    while !stop.load(Ordering::Relaxed) {
        match node.step() {
            Ok(s) => {
                if s.applied > 0 {
                    applied();
                }
                if s.role_changed {
                    let role = if node.state().is_leader() { "leader" } else { "follower" };
                    tracing::info!(log, role, epoch = node.state().epoch(), "role changed");
                    if node.state().is_leader() {
                        on_lead();
                        applied();
                    }
                }
            }
            Err(e) => {
                if last_warning.is_none_or(|t| t.elapsed() > Duration::from_secs(5)) {
                    tracing::warn!(log, error = %e, "replication step failed; retrying");
                    last_warning = Some(Instant::now());
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        }
        let pause = if node.state().is_leader() { lease / 10 } else { FOLLOW_EVERY };
        std::thread::sleep(pause);
    }
}

/// Writes the reload deferred while following, now that this node leads;
/// a refusal keeps it for the next time.
fn record_deferred(log: &str, ledger: &Ledger, deferred: &Deferred) {
    let Some(d) = ledger::sync::lock(deferred).take() else { return };
    let policy = d.policy.clone();
    match ledger.reload_policy(&d.actor, policy, &d.reason, d.also.clone()) {
        Ok(r) => tracing::warn!(log, seq = r.seq, "the policy reload read while following is recorded and in force"),
        Err(e) => {
            tracing::error!(log, error = %e, "the policy reload read while following was not recorded; kept for the next lead");
            *ledger::sync::lock(deferred) = Some(d);
        }
    }
}
