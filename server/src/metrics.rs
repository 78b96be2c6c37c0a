//! Prometheus metrics (docs/OPERATIONS.md lists them; docs/ops/ uses them).
//!
//! Owns: metric names and labels. Must not: put secrets or unbounded label
//! values in labels (categories outside the policy become "undeclared",
//! self-declared identities "(unauthenticated)").

use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Every metric ledgerd exports.
pub struct Metrics {
    registry: Registry,
    /// appends by log, category and outcome
    pub appends: IntCounterVec,
    /// end-to-end append latency (request to durable receipt)
    pub append_latency: HistogramVec,
    /// entries per committed batch
    pub batch_size: HistogramVec,
    /// fdatasync latency per batch
    pub fsync_seconds: HistogramVec,
    /// entries in the log
    pub tree_size: IntGaugeVec,
    /// seconds since the latest checkpoint was signed
    pub checkpoint_age: GaugeVec,
    /// age of each key in days
    pub key_age_days: IntGaugeVec,
    /// days until each key's not_after
    pub key_days_to_expiry: IntGaugeVec,
    /// appends waiting in the queue
    pub queue_depth: IntGaugeVec,
    /// integrity failures found while serving reads
    pub verify_failures: IntCounterVec,
    /// calls refused because their identity held its whole share
    pub identity_refusals: IntCounterVec,
    pub role: IntGaugeVec,
    pub epoch: IntGaugeVec,
    pub replication_lag: IntGaugeVec,
    pub fenced_batches: IntCounterVec,
    pub failovers: IntCounterVec,
    pub replication_halted: IntGaugeVec,
    pub witness_cosignatures: IntCounterVec,
    /// alerts received from Alertmanager, by log and outcome
    pub alertmanager: IntCounterVec,
}

/// The `identity` label: the certificate identity under mutual TLS (a set
/// the grants bound), else one value for every self-declared caller (their
/// claims are unbounded).
pub fn identity_label(caller: &crate::auth::Caller) -> &str {
    if caller.authenticated { &caller.identity } else { "(unauthenticated)" }
}

/// Metrics that appear on the page only once something was counted (their
/// labels are not known in advance).
/// Metrics of `[storage] kind = "postgres"` only (docs/HA.md "Metrics").
pub const REPLICATED: &[&str] = &[
    "ledger_role",
    "ledger_epoch",
    "ledger_replication_lag_entries",
    "ledger_fenced_batches_total",
    "ledger_failovers_total",
    "ledger_replication_halted",
];

pub const COUNTED_ON_EVENT: &[&str] =
    &["ledger_identity_limit_refusals_total", "ledger_witness_cosignatures_total", "ledger_alertmanager_alerts_total"];

/// The metric names, for the docs test.
pub const NAMES: &[&str] = &[
    "ledger_appends_total",
    "ledger_append_latency_seconds",
    "ledger_batch_size",
    "ledger_fsync_seconds",
    "ledger_tree_size",
    "ledger_checkpoint_age_seconds",
    "ledger_key_age_days",
    "ledger_key_days_to_expiry",
    "ledger_queue_depth",
    "ledger_verify_failures_total",
    "ledger_identity_limit_refusals_total",
    "ledger_role",
    "ledger_epoch",
    "ledger_replication_lag_entries",
    "ledger_fenced_batches_total",
    "ledger_failovers_total",
    "ledger_replication_halted",
    "ledger_witness_cosignatures_total",
    "ledger_alertmanager_alerts_total",
];

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let r = Registry::new();
        let lat = vec![0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];
        let sizes: Vec<f64> = (0..14).map(|i| f64::from(1u32 << i)).collect();
        let m = Self {
            appends: IntCounterVec::new(Opts::new(NAMES[0], "Appends by outcome"), &["log", "category", "outcome"])
                .expect("valid"),
            append_latency: HistogramVec::new(
                HistogramOpts::new(NAMES[1], "Append latency to a durable receipt").buckets(lat.clone()),
                &["log"],
            )
            .expect("valid"),
            batch_size: HistogramVec::new(
                HistogramOpts::new(NAMES[2], "Entries per committed batch").buckets(sizes),
                &["log"],
            )
            .expect("valid"),
            fsync_seconds: HistogramVec::new(
                HistogramOpts::new(NAMES[3], "fdatasync latency per batch").buckets(lat),
                &["log"],
            )
            .expect("valid"),
            tree_size: IntGaugeVec::new(Opts::new(NAMES[4], "Entries in the log"), &["log"]).expect("valid"),
            checkpoint_age: GaugeVec::new(Opts::new(NAMES[5], "Seconds since the latest checkpoint"), &["log"])
                .expect("valid"),
            key_age_days: IntGaugeVec::new(Opts::new(NAMES[6], "Key age in days"), &["log", "key_id", "kind", "state"])
                .expect("valid"),
            key_days_to_expiry: IntGaugeVec::new(
                Opts::new(NAMES[7], "Days until the key expires"),
                &["log", "key_id", "kind", "state"],
            )
            .expect("valid"),
            queue_depth: IntGaugeVec::new(Opts::new(NAMES[8], "Appends waiting in the queue"), &["log"])
                .expect("valid"),
            verify_failures: IntCounterVec::new(
                Opts::new(NAMES[9], "Integrity failures found while serving"),
                &["log"],
            )
            .expect("valid"),
            identity_refusals: IntCounterVec::new(
                Opts::new(NAMES[10], "Calls refused because their identity held its whole share"),
                &["identity", "limit"],
            )
            .expect("valid"),
            role: IntGaugeVec::new(Opts::new(NAMES[11], "1 while this node leads the log, 0 while it follows"), &["log"])
                .expect("valid"),
            epoch: IntGaugeVec::new(Opts::new(NAMES[12], "The lease epoch this node holds or last saw"), &["log"])
                .expect("valid"),
            replication_lag: IntGaugeVec::new(
                Opts::new(NAMES[13], "Entries committed in the database that this node's replica does not hold yet"),
                &["log"],
            )
            .expect("valid"),
            fenced_batches: IntCounterVec::new(
                Opts::new(NAMES[14], "Batches of this node refused by the fence or lost with the connection (never acknowledged)"),
                &["log"],
            )
            .expect("valid"),
            failovers: IntCounterVec::new(Opts::new(NAMES[15], "Times this node took the lease and led"), &["log"])
                .expect("valid"),
            replication_halted: IntGaugeVec::new(
                Opts::new(NAMES[16], "1 when this node stopped applying batches: one did not verify, or the database lost committed ones"),
                &["log"],
            )
            .expect("valid"),
            witness_cosignatures: IntCounterVec::new(
                Opts::new(NAMES[17], "Cosignature requests to a log's witnesses by outcome: stored, dropped (a line that does not verify), refused, unreachable"),
                &["log", "witness", "outcome"],
            )
            .expect("valid"),
            alertmanager: IntCounterVec::new(
                Opts::new(NAMES[18], "Alerts of Alertmanager's notifications by outcome: ok, duplicate (a re-sent one), refused"),
                &["log", "outcome"],
            )
            .expect("valid"),
            registry: r,
        };
        for c in [
            Box::new(m.appends.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(m.append_latency.clone()),
            Box::new(m.batch_size.clone()),
            Box::new(m.fsync_seconds.clone()),
            Box::new(m.tree_size.clone()),
            Box::new(m.checkpoint_age.clone()),
            Box::new(m.key_age_days.clone()),
            Box::new(m.key_days_to_expiry.clone()),
            Box::new(m.queue_depth.clone()),
            Box::new(m.verify_failures.clone()),
            Box::new(m.identity_refusals.clone()),
            Box::new(m.role.clone()),
            Box::new(m.epoch.clone()),
            Box::new(m.replication_lag.clone()),
            Box::new(m.fenced_batches.clone()),
            Box::new(m.failovers.clone()),
            Box::new(m.replication_halted.clone()),
            Box::new(m.witness_cosignatures.clone()),
            Box::new(m.alertmanager.clone()),
        ] {
            m.registry.register(c).expect("unique metric names");
        }
        m
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buf).expect("text encoding");
        String::from_utf8(buf).expect("utf-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
