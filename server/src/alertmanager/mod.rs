//! Alertmanager's webhook receiver on the HTTP listener:
//! `POST /alertmanager/v1/<log>` (docs/API.md "Alertmanager webhook").
//!
//! Owns: who may post (the bearer token of `[logs.alertmanager]
//! token_file`, the client certificate's writer grant), and turning a
//! notification into one queued batch whose receipts come back after the
//! durable write. Must not: read the notification's format (`notification`
//! does) or append any other way than the log's queue.

mod notification;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, State as Axum};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tonic::Status;

use crate::State;
use crate::auth::Caller;
use crate::config::AlertmanagerConfig;
use crate::http::{Peer, from_status};
use crate::status;

/// Most bytes of one notification: 64 of the log's largest payloads.
fn body_limit(state: &State) -> usize {
    state.config.limits.max_payload_bytes.saturating_mul(64)
}

/// The receiver's route.
pub fn routes(state: Arc<State>) -> axum::Router {
    let limit = body_limit(&state);
    axum::Router::new()
        .route("/alertmanager/v1/{*log}", axum::routing::post(receive))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

async fn receive(
    Axum(state): Axum<Arc<State>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    Path(log): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    accept(&state, &peer, &log, &headers, &body).await.unwrap_or_else(|s| from_status(&s))
}

async fn accept(state: &State, peer: &Peer, log: &str, headers: &HeaderMap, body: &[u8]) -> Result<Response, Status> {
    let handle = state.logs.get(log)?.clone();
    let cfg = state.config.logs.iter().find(|l| l.name == log).and_then(|l| l.alertmanager.as_ref());
    let cfg = cfg.ok_or_else(|| status::alertmanager_off(log))?;
    let (actor, caller) = authenticate(state, peer, log, cfg, headers)?;
    let limits = handle.reader().options().limits.clone();
    let mapping = notification::Mapping { subject_label: &cfg.subject_label, actor: &actor, limits: &limits };
    let entries = notification::entries(body, &mapping).map_err(|e| status::validation(&e))?;
    if let Some(caller) = caller {
        for e in &entries {
            state.access.current().require_writer(&caller, log, e.category.as_str())?;
        }
    }
    handle.writable()?;
    let count = entries.len();
    let results = handle.submit(entries)?.await.map_err(|_| status::shutting_down())?;
    let mut written = Vec::with_capacity(count);
    for (i, r) in results.into_iter().enumerate() {
        let outcome = match &r {
            Ok(rc) if rc.duplicate => "duplicate",
            Ok(_) => "ok",
            Err(_) => "refused",
        };
        state.metrics.alertmanager.with_label_values(&[log, outcome]).inc();
        let rc = r.map_err(|e| status::in_alert(i, &status::append(&e)))?;
        written.push(json!({"seq": rc.seq, "duplicate": rc.duplicate}));
    }
    let body = json!({ "entries": written }).to_string();
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// The actor of the notification's entries and, under `[tls]`, the caller
/// whose grants decide: the client certificate's identity, else
/// `alertmanager`. The bearer token is checked first when the log requires
/// one; under `[tls]` one of the two is needed.
fn authenticate(
    state: &State,
    peer: &Peer,
    log: &str,
    cfg: &AlertmanagerConfig,
    headers: &HeaderMap,
) -> Result<(String, Option<Caller>), Status> {
    if let Some(path) = &cfg.token_file {
        let want = ledger::keys::read_private(path).map_err(|e| {
            tracing::error!(log, error = %e, "logs.alertmanager.token_file cannot be read");
            status::alertmanager_token_unreadable(log)
        })?;
        let want = String::from_utf8_lossy(&want);
        let given =
            headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
        // compared as digests: the time taken says nothing about the token
        let digest = |s: &str| ledger::hash::sha256(s.trim().as_bytes());
        if given.is_none_or(|g| digest(g) != digest(&want)) {
            return Err(status::alertmanager_token());
        }
    }
    match crate::http::caller(state, peer)? {
        Some(c) => Ok((c.identity.clone(), Some(c))),
        None if state.access.current().enforced() && cfg.token_file.is_none() => {
            Err(status::alertmanager_needs_certificate())
        }
        None => Ok(("alertmanager".into(), None)),
    }
}
