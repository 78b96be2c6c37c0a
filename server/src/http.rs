//! The HTTP listener (`metrics_listen`): `/metrics`, the tiles
//! (`http_tiles`), the witness (`witness`) and Alertmanager's webhook
//! (`alertmanager`), plaintext or, with `http_tls`, TLS with `[tls]`'s
//! certificate where a client may present a certificate of `client_ca`.
//!
//! Owns: accepting connections (each TLS handshake on its own task, as the
//! gRPC listener does), who sent a request ([`Peer`], [`caller`]), and the
//! one mapping of gRPC status codes to HTTP statuses ([`from_status`]).
//! Must not: implement a route's logic, or decide roles (`auth` does).

use std::sync::Arc;

use axum::extract::connect_info::Connected;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::serve::IncomingStream;
use rustls::pki_types::CertificateDer;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;
use tokio_stream::StreamExt as _;
use tonic::{Code, Status};

use crate::State;
use crate::auth::Caller;

/// The client of one HTTP connection: the certificate chain it presented
/// over TLS (`None` over plaintext, or when it presented none).
#[derive(Debug, Clone, Default)]
pub struct Peer {
    /// the verified chain, leaf first
    pub chain: Option<Arc<Vec<CertificateDer<'static>>>>,
}

impl Connected<IncomingStream<'_, TcpListener>> for Peer {
    fn connect_info(_: IncomingStream<'_, TcpListener>) -> Self {
        Self::default()
    }
}

impl Connected<IncomingStream<'_, TlsListener>> for Peer {
    fn connect_info(s: IncomingStream<'_, TlsListener>) -> Self {
        s.remote_addr().clone()
    }
}

/// Connections after their TLS handshake (`tls::incoming`).
pub struct TlsListener {
    incoming: tokio_stream::wrappers::ReceiverStream<std::io::Result<TlsStream<TcpStream>>>,
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = Peer;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.incoming.next().await {
                Some(Ok(s)) => {
                    let chain = s.get_ref().1.peer_certificates().map(|c| Arc::new(c.to_vec()));
                    return (s, Peer { chain });
                }
                Some(Err(_)) => continue,
                // stopping: the graceful shutdown ends the server
                None => std::future::pending().await,
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Peer> {
        Ok(Peer::default())
    }
}

/// The caller of a request under mutual TLS: its certificate's identity
/// (checked against the revocation lists in force), `None` when it
/// presented none or the server has no `[tls]`.
pub fn caller(state: &State, peer: &Peer) -> Result<Option<Caller>, Status> {
    let access = state.access.current();
    if !access.enforced() {
        return Ok(None);
    }
    access.caller_of_chain(peer.chain.as_ref())
}

/// The one place a gRPC status becomes an HTTP response (a text body with
/// the status's message).
pub fn from_status(s: &Status) -> Response {
    let code = match s.code() {
        Code::InvalidArgument | Code::OutOfRange => StatusCode::BAD_REQUEST,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::FailedPrecondition => StatusCode::UNPROCESSABLE_ENTITY,
        Code::ResourceExhausted | Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    text(code, s.message().to_owned())
}

/// A plain-text response.
pub fn text(code: StatusCode, body: String) -> Response {
    (code, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body + "\n").into_response()
}

/// Serves `app` on `listener` until `stop` turns true: plaintext, or TLS
/// when `tls` is given.
pub async fn serve(
    listener: TcpListener,
    app: axum::Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
    let mut s = stop.clone();
    let stopped = async move {
        let _ = s.wait_for(|v| *v).await;
    };
    let app = app.into_make_service_with_connect_info::<Peer>();
    match tls {
        None => axum::serve(listener, app).with_graceful_shutdown(stopped).await,
        Some(t) => {
            let incoming = crate::tls::incoming(listener, t, stop);
            axum::serve(TlsListener { incoming }, app).with_graceful_shutdown(stopped).await
        }
    }
}
