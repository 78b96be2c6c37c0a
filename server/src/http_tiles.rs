//! The C2SP tlog-tiles read API on the HTTP listener (docs/FORMAT.md §12):
//! `GET /tlog/<log>/checkpoint`, `/tlog/<log>/tile/<L>/<N>[.p/<W>]` and
//! `/tlog/<log>/tile/entries/<N>[.p/<W>]`: to anyone for logs whose
//! configuration opts in with `public_tiles = true`; otherwise, with `[tls]`
//! and `http_tls`, to a client certificate holding the reader role on the
//! log (then cached privately only).
//!
//! Owns: the routes, who may read, the caching headers, and the one mapping
//! of tile errors to HTTP statuses. Must not: compute tiles (`ledger::tiles`
//! does) or serve a log to someone its configuration does not let read it.

use std::sync::Arc;

use axum::extract::{ConnectInfo, Path, State as Axum};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use ledger::tiles::{TileError, TilePath, read_tile};

use crate::State;
use crate::config::Role;
use crate::http::{Peer, text};

/// Full and partial tiles of a given width never change.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// The checkpoint moves with every batch.
const MOVING: &str = "public, max-age=2";
/// The same for a log readers need a certificate for: no shared cache.
const PRIVATE_IMMUTABLE: &str = "private, max-age=31536000, immutable";
const PRIVATE_MOVING: &str = "private, max-age=2";

/// The router of the tiles of every hosted log.
pub fn routes(state: Arc<State>) -> axum::Router {
    axum::Router::new().route("/tlog/{*rest}", axum::routing::get(serve)).with_state(state)
}

async fn serve(
    Axum(state): Axum<Arc<State>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    Path(rest): Path<String>,
) -> Response {
    let (log, what) = match split(&rest) {
        Some(parts) => parts,
        None => return text(StatusCode::NOT_FOUND, format!("/tlog/{rest}: not a checkpoint or tile path")),
    };
    let Ok(handle) = state.logs.get(&log).cloned() else {
        return text(StatusCode::NOT_FOUND, format!("log {log:?} is not hosted here"));
    };
    let public = state.config.logs.iter().any(|l| l.name == log && l.public_tiles);
    if !public && let Err(refused) = may_read(&state, &peer, &log) {
        return crate::http::from_status(&refused);
    }
    let (immutable, moving) = if public { (IMMUTABLE, MOVING) } else { (PRIVATE_IMMUTABLE, PRIVATE_MOVING) };
    let reader = handle.reader();
    if what == "checkpoint" {
        let note = handle.cosignatures.on(&reader.latest_checkpoint().note);
        return ([(header::CONTENT_TYPE, "text/plain; charset=utf-8"), (header::CACHE_CONTROL, moving)], note)
            .into_response();
    }
    let tile = match TilePath::parse(&what) {
        Ok(t) => t,
        Err(e) => return status_of(&e),
    };
    match tokio::task::spawn_blocking(move || read_tile(&reader, &tile)).await {
        Ok(Ok(bytes)) => {
            ([(header::CONTENT_TYPE, "application/octet-stream"), (header::CACHE_CONTROL, immutable)], bytes)
                .into_response()
        }
        Ok(Err(e)) => status_of(&e),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("reading the tile did not finish: {e}")),
    }
}

/// A log that is not public: a client certificate with the reader role.
fn may_read(state: &State, peer: &Peer, log: &str) -> Result<(), tonic::Status> {
    match crate::http::caller(state, peer)? {
        Some(c) => state.access.current().require(&c, log, &[Role::Reader]),
        None => Err(crate::status::tiles_not_public(log)),
    }
}

/// `<log>/checkpoint` or `<log>/tile/…` → (log, `checkpoint` | `tile/…`);
/// a log name may hold slashes.
fn split(rest: &str) -> Option<(String, String)> {
    if let Some(log) = rest.strip_suffix("/checkpoint") {
        return Some((log.to_owned(), "checkpoint".to_owned()));
    }
    let at = rest.rfind("/tile/")?;
    Some((rest[..at].to_owned(), rest[at + 1..].to_owned()))
}

/// The one place tile errors become HTTP statuses.
fn status_of(e: &TileError) -> Response {
    let code = match e {
        TileError::BadPath { .. } => StatusCode::BAD_REQUEST,
        TileError::Beyond { .. } => StatusCode::NOT_FOUND,
        TileError::Read(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    text(code, e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_name_may_hold_slashes() {
        assert_eq!(split("stage5/prod/checkpoint"), Some(("stage5/prod".into(), "checkpoint".into())));
        assert_eq!(split("default/tile/entries/000.p/3"), Some(("default".into(), "tile/entries/000.p/3".into())));
        assert_eq!(split("default/tiles"), None);
    }
}
