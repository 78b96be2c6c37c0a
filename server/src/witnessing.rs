//! A log's witnesses (`[[logs.witnesses]]`, docs/FORMAT.md §13): one task
//! per log runs cosigning rounds: each round sends the latest checkpoint to
//! every witness at once (so they cosign the same checkpoint and a receipt
//! can carry all of them), each with the consistency proof from the size
//! that witness holds (learnt from its 409 answers), at most one request in
//! flight per witness; a witness that failed waits out a bounded backoff
//! (skipped by the rounds meanwhile). The cosignature lines it returns are
//! kept only when they verify under the witness's vkey (by its type:
//! cosignature/v1, or a plain Ed25519 note signature), else dropped and
//! counted.
//!
//! Owns: those tasks and the cosignatures of the newest cosigned checkpoint
//! ([`Cosignatures`]), which checkpoints served and receipts carry. Must
//! not: change a checkpoint (lines are appended to the note, never inside
//! it) or wait for witnesses before acknowledging an append.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use ledger::cosign::CosignatureVerifier;
use ledger::log::SignedCheckpoint;
use ledger::witness::AddCheckpoint;

use crate::config::LogWitness;
use crate::logs::LogHandle;

/// The first wait after a failure; doubled up to [`BACKOFF_MAX`].
const BACKOFF_START: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Each request's deadline.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The newest checkpoint a witness cosigned, with every witness's line on it.
#[derive(Debug, Clone)]
pub struct Cosigned {
    /// the checkpoint
    pub checkpoint: Arc<SignedCheckpoint>,
    /// witness name → its cosignature line (with its newline)
    pub lines: BTreeMap<String, String>,
}

/// Cosigned checkpoints kept (the newest).
const KEPT: usize = 64;

/// A log's cosignatures: the recent cosigned checkpoints by size.
#[derive(Debug, Default)]
pub struct Cosignatures {
    by_size: Mutex<BTreeMap<u64, Cosigned>>,
}

impl Cosignatures {
    /// The newest checkpoint with the most cosignatures.
    pub fn latest(&self) -> Option<Cosigned> {
        let m = ledger::sync::lock(&self.by_size);
        let most = m.values().map(|c| c.lines.len()).max()?;
        m.values().rev().find(|c| c.lines.len() == most).cloned()
    }

    /// `note` with the cosignature lines kept for its checkpoint appended.
    pub fn on(&self, note: &str) -> String {
        let m = ledger::sync::lock(&self.by_size);
        match m.values().rev().find(|c| c.checkpoint.note == note) {
            Some(c) => note.to_owned() + &c.lines.values().cloned().collect::<String>(),
            None => note.to_owned(),
        }
    }

    fn add(&self, checkpoint: &Arc<SignedCheckpoint>, witness: &str, line: String) {
        let mut m = ledger::sync::lock(&self.by_size);
        let size = checkpoint.checkpoint.size;
        let c = m.entry(size).or_insert_with(|| Cosigned { checkpoint: checkpoint.clone(), lines: BTreeMap::new() });
        if c.checkpoint.note == checkpoint.note {
            c.lines.insert(witness.to_owned(), line);
        }
        while m.len() > KEPT {
            m.pop_first();
        }
    }
}

/// Starts the cosigning rounds of `log`; they end when `stop` turns true.
pub fn start(
    log: Arc<LogHandle>,
    witnesses: &[LogWitness],
    metrics: Arc<crate::metrics::Metrics>,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut tasks = Vec::new();
    for w in witnesses {
        let Ok(verifier) = CosignatureVerifier::from_vkey(&w.vkey) else { continue }; // validated at startup
        let (name, url) = (w.name.clone(), w.url.clone());
        let (client, metrics, log) = (client.clone(), metrics.clone(), log.clone());
        tasks.push(Task { log, name, url, verifier, client, metrics, state: Default::default() });
    }
    tokio::spawn(rounds(log, tasks, stop));
}

/// Cosigning rounds until `stop`: each new latest checkpoint goes to every
/// witness not in backoff, at once.
async fn rounds(log: Arc<LogHandle>, mut tasks: Vec<Task>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut size = log.size.clone();
    loop {
        let cp = log.reader().latest_checkpoint();
        let now = tokio::time::Instant::now();
        let due: Vec<&mut Task> =
            tasks.iter_mut().filter(|t| t.state.retry_at <= now && t.state.cosigned < cp.checkpoint.size).collect();
        // after a round each witness in it has cosigned `cp` or sits out a backoff: no busy loop
        if !due.is_empty() {
            let round = due.into_iter().map(|t| t.round(&cp));
            tokio::select! {
                _ = futures_util::future::join_all(round) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            continue;
        }
        let next_retry = tasks.iter().map(|t| t.state.retry_at).filter(|r| *r > now).min();
        tokio::select! {
            r = size.changed() => if r.is_err() { return },
            () = sleep_until(next_retry) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// What the log knows of one witness.
struct WitnessState {
    /// the size it cosigned for this log
    cosigned: u64,
    /// the size it holds (from any sender), as its 409 said
    holds: Option<u64>,
    /// no request before this (after a failure)
    retry_at: tokio::time::Instant,
    backoff: Duration,
}

impl Default for WitnessState {
    fn default() -> Self {
        Self { cosigned: 0, holds: None, retry_at: tokio::time::Instant::now(), backoff: BACKOFF_START }
    }
}

struct Task {
    log: Arc<LogHandle>,
    name: String,
    url: String,
    verifier: CosignatureVerifier,
    client: Client<HttpConnector, Full<Bytes>>,
    metrics: Arc<crate::metrics::Metrics>,
    state: WitnessState,
}

/// What one request came to.
enum Outcome {
    /// cosigned up to this size
    Cosigned(u64),
    /// the witness holds this size: send again from it
    Holds(u64),
    /// wait and try again
    Failed,
}

impl Task {
    /// One witness's part in a round: the checkpoint, sent again at once
    /// when a 409 told a size not known before.
    async fn round(&mut self, cp: &Arc<SignedCheckpoint>) {
        for _ in 0..3 {
            match self.send(cp, self.state.holds.unwrap_or(0)).await {
                Outcome::Cosigned(s) => {
                    (self.state.cosigned, self.state.holds, self.state.backoff) = (s, Some(s), BACKOFF_START);
                    return;
                }
                Outcome::Holds(s) if self.state.holds != Some(s) => self.state.holds = Some(s),
                Outcome::Holds(_) | Outcome::Failed => break,
            }
        }
        self.state.retry_at = tokio::time::Instant::now() + self.state.backoff;
        self.state.backoff = (self.state.backoff * 2).min(BACKOFF_MAX);
    }

    /// Sends `cp` with the proof from `old`.
    async fn send(&self, cp: &Arc<SignedCheckpoint>, old: u64) -> Outcome {
        let log = self.log.name.clone();
        if old > cp.checkpoint.size {
            return Outcome::Failed; // the witness saw a later checkpoint (another node's); wait for ours
        }
        let proof = if old == 0 || old == cp.checkpoint.size {
            Vec::new()
        } else {
            let reader = self.log.reader();
            let new = cp.checkpoint.size;
            match tokio::task::spawn_blocking(move || reader.prove_consistency(old, Some(new))).await {
                Ok(Ok((p, _))) => p,
                _ => return Outcome::Failed,
            }
        };
        let body = AddCheckpoint { old, proof, note: cp.note.clone() }.encode();
        let (status, text) = match self.post(body).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(log, witness = %self.name, error = %e, "witness unreachable; retrying");
                self.count("unreachable");
                return Outcome::Failed;
            }
        };
        match status {
            200 => self.keep(cp, &text),
            409 => match text.trim().parse::<u64>() {
                Ok(s) => Outcome::Holds(s),
                Err(_) => Outcome::Failed,
            },
            _ => {
                tracing::warn!(log, witness = %self.name, status, answer = %text.trim(), size = cp.checkpoint.size, "the witness refused the checkpoint");
                self.count("refused");
                Outcome::Failed
            }
        }
    }

    /// Keeps the lines that verify; counts the others.
    fn keep(&self, cp: &Arc<SignedCheckpoint>, text: &str) -> Outcome {
        let body = cp.checkpoint.body();
        for line in text.lines().filter(|l| !l.is_empty()) {
            if self.verifier.verify_line(&body, line).is_some() {
                self.log.cosignatures.add(cp, &self.name, format!("{line}\n"));
                self.count("stored");
            } else {
                tracing::warn!(log = %self.log.name, witness = %self.name, "a cosignature line does not verify under the witness's vkey: dropped");
                self.count("dropped");
            }
        }
        Outcome::Cosigned(cp.checkpoint.size)
    }

    fn count(&self, outcome: &str) {
        self.metrics.witness_cosignatures.with_label_values(&[&self.log.name, &self.name, outcome]).inc();
    }

    async fn post(&self, body: String) -> Result<(u16, String), String> {
        let uri = format!("{}/add-checkpoint", self.url.trim_end_matches('/'));
        let req = hyper::Request::post(uri).body(Full::new(Bytes::from(body))).map_err(|e| e.to_string())?;
        let call = async {
            let resp = self.client.request(req).await.map_err(|e| e.to_string())?;
            let status = resp.status().as_u16();
            let bytes = resp.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
            Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
        };
        tokio::time::timeout(REQUEST_TIMEOUT, call).await.map_err(|_| "no answer within 10 s".to_owned())?
    }
}
