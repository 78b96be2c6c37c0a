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
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::State;
use crate::config::AlertmanagerConfig;
use crate::http::{Peer, from_status, text};
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
    match accept(&state, &peer, &log, &headers, &body).await {
        Ok(r) | Err(r) => r,
    }
}

async fn accept(state: &State, peer: &Peer, log: &str, headers: &HeaderMap, body: &[u8]) -> Result<Response, Response> {
    let handle = state.logs.get(log).map_err(|s| from_status(&s))?.clone();
    let cfg = state.config.logs.iter().find(|l| l.name == log).and_then(|l| l.alertmanager.as_ref());
    let cfg = cfg.ok_or_else(|| {
        let why = format!("log {log:?} takes no Alertmanager notifications: add [logs.alertmanager] to its [[logs]]");
        text(StatusCode::FORBIDDEN, why)
    })?;
    let actor = authenticate(state, peer, log, cfg, headers)?;
    let limits = handle.reader().options().limits.clone();
    let mapping = notification::Mapping { subject_label: &cfg.subject_label, actor: &actor, limits: &limits };
    let entries = notification::entries(body, &mapping).map_err(|e| from_status(&status::validation(&e)))?;
    if let Some(caller) = crate::http::caller(state, peer)? {
        for e in &entries {
            state.access.current().require_writer(&caller, log, e.category.as_str()).map_err(|s| from_status(&s))?;
        }
    }
    handle.writable().map_err(|s| from_status(&s))?;
    let count = entries.len();
    let results = handle.submit(entries).map_err(|s| from_status(&s))?;
    let results = results.await.map_err(|_| from_status(&status::shutting_down()))?;
    let mut written = Vec::with_capacity(count);
    for (i, r) in results.into_iter().enumerate() {
        let outcome = match &r {
            Ok(rc) if rc.duplicate => "duplicate",
            Ok(_) => "ok",
            Err(_) => "refused",
        };
        state.metrics.alertmanager.with_label_values(&[log, outcome]).inc();
        match r {
            Ok(rc) => written.push(json!({"seq": rc.seq, "duplicate": rc.duplicate})),
            Err(e) => {
                let s = status::append(&e);
                return Err(from_status(&tonic::Status::new(s.code(), format!("alerts[{i}]: {}", s.message()))));
            }
        }
    }
    let body = json!({ "entries": written }).to_string();
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// The actor of the notification's entries: the client certificate's
/// identity, else `alertmanager`; the bearer token checked first when the
/// log requires one, and under `[tls]` one of the two is needed.
fn authenticate(
    state: &State,
    peer: &Peer,
    log: &str,
    cfg: &AlertmanagerConfig,
    headers: &HeaderMap,
) -> Result<String, Response> {
    if let Some(path) = &cfg.token_file {
        let want = ledger::keys::read_private(path).map_err(|e| {
            tracing::error!(log, error = %e, "logs.alertmanager.token_file cannot be read");
            text(StatusCode::INTERNAL_SERVER_ERROR, format!("log {log:?}: its Alertmanager token cannot be read"))
        })?;
        let want = String::from_utf8_lossy(&want);
        let given =
            headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
        // compared as digests: the time taken says nothing about the token
        let digest = |s: &str| ledger::hash::sha256(s.trim().as_bytes());
        if given.is_none_or(|g| digest(g) != digest(&want)) {
            return Err(text(StatusCode::UNAUTHORIZED, "a bearer token is required (Authorization: Bearer …, Alertmanager's authorization.credentials_file), and the one given is not this log's".into()));
        }
    }
    match crate::http::caller(state, peer)? {
        Some(c) => Ok(c.identity),
        None if state.access.current().enforced() && cfg.token_file.is_none() => Err(text(
            StatusCode::UNAUTHORIZED,
            "a client certificate signed by tls.client_ca is required (Alertmanager's http_config.tls_config)".into(),
        )),
        None => Ok("alertmanager".into()),
    }
}
