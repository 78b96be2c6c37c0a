//! ledgerd as a c2sp.org/tlog-witness (`[witness]`, docs/FORMAT.md §13):
//! `POST /witness/add-checkpoint` on the HTTP listener, and `GET
//! /witness/vkey` (its cosignature/v1 vkey). Each request is decided by
//! `ledger::witness::decide` and, when it passes, the new state is written
//! to `witness/state.json` (temp file, fsync, rename, fsync of the
//! directory) before the cosignature is returned; one request at a time, so
//! the check and the write are atomic.
//!
//! A checkpoint of a log this node hosts itself (a follower of the
//! PostgreSQL mode witnessing its leader, docs/HA.md) is cosigned only once
//! this node's own copy, whose batches it verified before applying them,
//! holds that size with the same root: a follower cosigns what it verified.
//!
//! Owns: the key file, the state file, the handler and the one mapping of
//! witness refusals to HTTP statuses. Must not: cosign anything it did not
//! persist first, or a hosted log's checkpoint its own copy does not hold.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::State as Axum;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use ledger::cosign::Cosigner;
use ledger::witness::{AddCheckpoint, WitnessError, Witnessed, WitnessedLog, decide, origin_of};

use crate::config::WitnessConfig;

/// A running witness.
pub struct Witness {
    cosigner: Cosigner,
    logs: Vec<WitnessedLog>,
    state_file: PathBuf,
    /// origin → the latest checkpoint cosigned; the lock makes check and
    /// write one step
    state: tokio::sync::Mutex<BTreeMap<String, Witnessed>>,
    /// the logs this node hosts, by origin
    hosted: BTreeMap<String, Arc<crate::logs::LogHandle>>,
}

/// How long a checkpoint of a hosted log waits for this node's copy to
/// reach its size before the request is answered 503 (the log retries).
const REPLICA_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Why the witness did not start.
#[derive(Debug, thiserror::Error)]
pub enum WitnessStartError {
    /// The key or state file could not be read or written.
    #[error("witness: {path}: {reason}")]
    File {
        /// the file
        path: PathBuf,
        /// why
        reason: String,
    },
}

fn file_error(path: &Path, reason: impl ToString) -> WitnessStartError {
    WitnessStartError::File { path: path.to_owned(), reason: reason.to_string() }
}

impl Witness {
    /// Loads (or creates) the key and the state under `data_dir`; `hosted`
    /// are this node's own logs.
    pub fn open(c: &WitnessConfig, data_dir: &Path, hosted: &crate::logs::Logs) -> Result<Self, WitnessStartError> {
        let key_path = data_dir.join(&c.key);
        let cosigner = Cosigner::open_or_create(&key_path, &c.name).map_err(|e| file_error(&key_path, e))?;
        let logs = c
            .logs
            .iter()
            .map(|l| WitnessedLog {
                origin: l.origin.clone(),
                vkeys: l.vkeys.iter().filter_map(|v| ledger::note::NoteVerifier::from_vkey(v).ok()).collect(),
            })
            .collect();
        let state_file = data_dir.join("witness").join("state.json");
        let state = match std::fs::read(&state_file) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| file_error(&state_file, e))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(file_error(&state_file, e)),
        };
        tracing::info!(name = %c.name, vkey = %cosigner.vkey(), logs = c.logs.len(), "witness ready");
        let hosted = hosted.by_name.values().map(|h| (h.reader().origin().to_owned(), h.clone())).collect();
        Ok(Self { cosigner, logs, state_file, state: tokio::sync::Mutex::new(state), hosted })
    }

    /// Decides, persists, cosigns.
    async fn add_checkpoint(&self, body: &str) -> Result<String, Refused> {
        let req = AddCheckpoint::parse(body)?;
        let origin = origin_of(&req);
        let mut state = self.state.lock().await;
        let held = origin.as_ref().and_then(|o| state.get(o).copied());
        let (cp, new) = decide(&req, &self.logs, held).inspect_err(|e| {
            if matches!(e, WitnessError::SameSizeOtherRoot { .. } | WitnessError::BadProof { .. }) {
                tracing::warn!(error = %e, request = %body, "witness: a checkpoint that may show log misbehaviour");
            }
        })?;
        self.check_own_copy(&cp).await?;
        let mut next = state.clone();
        next.insert(cp.origin.clone(), new);
        persist(&self.state_file, &next).map_err(|e| {
            tracing::error!(file = %self.state_file.display(), error = %e, "witness: the state was not written; nothing cosigned");
            Refused::Storage(format!("the witness could not record the checkpoint: {e}"))
        })?;
        *state = next;
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        Ok(self.cosigner.cosign(&cp.body(), now))
    }
}

impl Witness {
    /// For a log this node hosts: its own copy holds `cp` (waiting up to
    /// [`REPLICA_WAIT`] for it to get there).
    async fn check_own_copy(&self, cp: &ledger::note::Checkpoint) -> Result<(), Refused> {
        let Some(h) = self.hosted.get(&cp.origin) else { return Ok(()) };
        let deadline = tokio::time::Instant::now() + REPLICA_WAIT;
        while h.reader().size() < cp.size {
            if tokio::time::Instant::now() >= deadline {
                let held = h.reader().size();
                return Err(Refused::Behind(format!(
                    "this node's copy of {} holds {held} entries, not yet {}: try again",
                    cp.origin, cp.size
                )));
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let reader = h.reader();
        let size = cp.size;
        let root = tokio::task::spawn_blocking(move || reader.root_at(size))
            .await
            .map_err(|e| Refused::Storage(format!("reading this node's copy did not finish: {e}")))?
            .map_err(|e| Refused::Storage(format!("reading this node's copy: {e}")))?;
        if root != cp.root {
            tracing::error!(origin = %cp.origin, size, "witness: a checkpoint of a hosted log differs from this node's verified copy");
            return Err(Refused::Differs(format!(
                "the checkpoint's root at size {size} is not the root of this node's verified copy of {}: a split view",
                cp.origin
            )));
        }
        Ok(())
    }
}

/// A request not cosigned: the spec's refusals, the state not written, or
/// (a hosted log) this node's copy not there yet or different.
enum Refused {
    Witness(WitnessError),
    Storage(String),
    Behind(String),
    Differs(String),
}

impl From<WitnessError> for Refused {
    fn from(e: WitnessError) -> Self {
        Self::Witness(e)
    }
}

/// Writes the state so that a crash leaves the old or the new file.
fn persist(path: &Path, state: &BTreeMap<String, Witnessed>) -> std::io::Result<()> {
    let dir = path.parent().expect("witness/state.json has a directory");
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension("json.tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(&serde_json::to_vec_pretty(state).expect("serialisable"))?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

/// The witness's routes.
pub fn routes(w: Arc<Witness>) -> axum::Router {
    axum::Router::new()
        .route("/witness/add-checkpoint", axum::routing::post(add))
        .route("/witness/vkey", axum::routing::get(vkey))
        .with_state(w)
}

async fn vkey(Axum(w): Axum<Arc<Witness>>) -> String {
    w.cosigner.vkey() + "\n"
}

async fn add(Axum(w): Axum<Arc<Witness>>, body: String) -> Response {
    match w.add_checkpoint(&body).await {
        Ok(line) => (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], line).into_response(),
        Err(Refused::Witness(e)) => status_of(&e),
        Err(Refused::Storage(e)) => (StatusCode::INTERNAL_SERVER_ERROR, e + "\n").into_response(),
        Err(Refused::Behind(e)) => (StatusCode::SERVICE_UNAVAILABLE, e + "\n").into_response(),
        Err(Refused::Differs(e)) => (StatusCode::UNPROCESSABLE_ENTITY, e + "\n").into_response(),
    }
}

/// The one place witness refusals become HTTP statuses (the spec's).
fn status_of(e: &WitnessError) -> Response {
    let text = |code: StatusCode| (code, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], format!("{e}\n"));
    match e {
        WitnessError::Malformed(_) | WitnessError::OldBeyond { .. } => text(StatusCode::BAD_REQUEST).into_response(),
        WitnessError::UnknownLog { .. } => text(StatusCode::NOT_FOUND).into_response(),
        WitnessError::Untrusted { .. } => text(StatusCode::FORBIDDEN).into_response(),
        WitnessError::Conflict { size } | WitnessError::SameSizeOtherRoot { size } => {
            (StatusCode::CONFLICT, [(header::CONTENT_TYPE, "text/x.tlog.size")], format!("{size}\n")).into_response()
        }
        WitnessError::BadProof { .. } => text(StatusCode::UNPROCESSABLE_ENTITY).into_response(),
    }
}
