//! A log's witnesses (`[[logs.witnesses]]`, docs/FORMAT.md §13): one task
//! per witness sends each new checkpoint to its `add-checkpoint` with the
//! consistency proof from the size the witness holds (learnt from its 409
//! answers), at most one request in flight, a bounded backoff after a
//! failure; the cosignature lines it returns are kept only when they verify
//! under the witness's vkey (by its type: cosignature/v1, or a plain
//! Ed25519 note signature), else dropped and counted.
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

/// A log's cosignatures.
#[derive(Debug, Default)]
pub struct Cosignatures {
    latest: Mutex<Option<Cosigned>>,
}

impl Cosignatures {
    /// The newest cosigned checkpoint.
    pub fn latest(&self) -> Option<Cosigned> {
        ledger::sync::lock(&self.latest).clone()
    }

    /// `note` with the cosignature lines kept for its checkpoint appended.
    pub fn on(&self, note: &str) -> String {
        let latest = ledger::sync::lock(&self.latest);
        match latest.as_ref().filter(|c| c.checkpoint.note == note) {
            Some(c) => note.to_owned() + &c.lines.values().cloned().collect::<String>(),
            None => note.to_owned(),
        }
    }

    fn add(&self, checkpoint: &Arc<SignedCheckpoint>, witness: &str, line: String) {
        let mut latest = ledger::sync::lock(&self.latest);
        let newer = latest.as_ref().is_none_or(|c| c.checkpoint.checkpoint.size < checkpoint.checkpoint.size);
        if newer {
            *latest = Some(Cosigned { checkpoint: checkpoint.clone(), lines: BTreeMap::new() });
        }
        if let Some(c) = latest.as_mut().filter(|c| c.checkpoint.note == checkpoint.note) {
            c.lines.insert(witness.to_owned(), line);
        }
    }
}

/// Starts one task per witness of `log`; they end when `stop` turns true.
pub fn start(
    log: Arc<LogHandle>,
    witnesses: &[LogWitness],
    metrics: Arc<crate::metrics::Metrics>,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    for w in witnesses {
        let Ok(verifier) = CosignatureVerifier::from_vkey(&w.vkey) else { continue }; // validated at startup
        let task = Task {
            log: log.clone(),
            name: w.name.clone(),
            url: w.url.clone(),
            verifier,
            client: client.clone(),
            metrics: metrics.clone(),
        };
        tokio::spawn(task.run(stop.clone()));
    }
}

struct Task {
    log: Arc<LogHandle>,
    name: String,
    url: String,
    verifier: CosignatureVerifier,
    client: Client<HttpConnector, Full<Bytes>>,
    metrics: Arc<crate::metrics::Metrics>,
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
    async fn run(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut size = self.log.size.clone();
        // the size it cosigned for us; the size the witness holds (from any sender)
        let (mut cosigned, mut holds, mut backoff) = (None::<u64>, None::<u64>, BACKOFF_START);
        loop {
            let cp = self.log.reader().latest_checkpoint();
            if cp.checkpoint.size > 0 && cosigned.is_none_or(|c| c < cp.checkpoint.size) {
                match self.send(&cp, holds.unwrap_or(0)).await {
                    Outcome::Cosigned(s) => (cosigned, holds, backoff) = (Some(s), Some(s), BACKOFF_START),
                    Outcome::Holds(s) if holds != Some(s) => holds = Some(s),
                    Outcome::Holds(_) | Outcome::Failed => {
                        tokio::select! {
                            () = tokio::time::sleep(backoff) => {}
                            _ = stop.wait_for(|s| *s) => return,
                        }
                        backoff = (backoff * 2).min(BACKOFF_MAX);
                    }
                }
                continue;
            }
            tokio::select! {
                r = size.changed() => if r.is_err() { return },
                _ = stop.wait_for(|s| *s) => return,
            }
        }
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
