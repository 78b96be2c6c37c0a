//! `ledger-server`: ledgerd, the gRPC service around the ledger core.
//!
//! [`serve`] takes a configuration, a bound listener and a shutdown future,
//! so a test starts a real server in a few lines. The binary (`main.rs`)
//! only parses flags, sets up logging and signals, and calls it.
//!
//! Owns: the network surface, and the [`State`] the services share: its
//! [`State::authorized_log`] starts every read, key and admin handler
//! (authenticate, look the log up, check the role; Append and Upload check
//! the writer grant of the entry's category instead). Must not: implement
//! ledger logic (that is the `ledger` crate) or build a `Status` anywhere
//! but `status`.

mod alertmanager;
mod approvals;
pub mod auth;
pub mod config;
mod convert;
mod dual;
mod guard;
mod http;
mod http_tiles;
pub mod limits;
mod logs;
pub mod metrics;
mod reload;
mod replicated;
mod rules;
mod status;
mod svc_admin;
mod svc_artifact;
mod svc_keys;
mod svc_ledger;
pub mod tls;
mod witness;
mod witnessing;

use std::future::Future;
use std::sync::Arc;

pub use config::Config;
use ledger_proto::v1 as pb;
use ledger_proto::v1::artifact_service_server::ArtifactServiceServer;
use ledger_proto::v1::key_service_server::KeyServiceServer;
use ledger_proto::v1::ledger_service_server::LedgerServiceServer;
pub use logs::StartError;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::{Request, Status};

use crate::config::Role;

/// Most bytes in one gRPC message (requests and responses).
pub const MAX_MESSAGE_BYTES: usize = 4 << 20;

/// What the services share.
pub struct State {
    /// the configuration in force
    pub config: Config,
    /// the hosted logs
    pub logs: logs::Logs,
    /// metrics
    pub metrics: Arc<metrics::Metrics>,
    /// flips to true when shutdown starts (ends Tail and AppendStream)
    pub shutdown: watch::Receiver<bool>,
    /// identities and roles: the table in force
    pub access: Arc<auth::AccessCell>,
    /// the client CA, under mutual TLS (reloads rebuild its verifier with
    /// the CRLs they read)
    pub client_ca: Option<tls::ClientCa>,
    /// one reload at a time
    pub reloading: tokio::sync::Mutex<()>,
    /// one dual-control approval at a time (a request is approved once)
    pub approving: tokio::sync::Mutex<()>,
    /// permits for open read streams (Query, Tail, Export, Download)
    pub read_streams: Arc<tokio::sync::Semaphore>,
    /// each identity's share of them (`per_identity.read_stream_share`)
    pub stream_shares: Arc<limits::Shares>,
}

/// What an open read stream holds: one of the server's read streams and
/// one of its identity's share.
pub struct ReadPermit {
    _server: tokio::sync::OwnedSemaphorePermit,
    _identity: limits::Slot,
}

impl State {
    /// Authorizes a request and looks its log up: the caller, who holds one
    /// of `roles` on the log the request names, the request's body, and
    /// that log. Checked in this order: the caller's identity
    /// (UNAUTHENTICATED), the log is hosted (INVALID_ARGUMENT for an empty
    /// name, NOT_FOUND), the role (PERMISSION_DENIED).
    pub fn authorized_log<T: NamesLog>(
        &self,
        req: Request<T>,
        roles: &[Role],
    ) -> Result<(auth::Caller, T, Arc<logs::LogHandle>), Status> {
        let access = self.access.current();
        let caller = access.caller(&req, req.get_ref().declared_actor())?;
        let log = self.logs.get(req.get_ref().log_name())?.clone();
        access.require(&caller, &log.name, roles)?;
        Ok((caller, req.into_inner(), log))
    }

    /// For an admin action ([`authorized_log`](Self::authorized_log) with
    /// role `admin`): the caller's identity as the actor of the entry that
    /// records it, the request's body, and the log.
    pub fn admin<T: NamesLog>(
        &self,
        req: Request<T>,
    ) -> Result<(ledger::entry::Actor, T, Arc<logs::LogHandle>), Status> {
        let (caller, r, log) = self.authorized_log(req, &[Role::Admin])?;
        let actor = ledger::entry::Actor::new(&caller.identity, &ledger::entry::Limits::default())
            .map_err(|e| status::validation(&e))?;
        Ok((actor, r, log))
    }

    /// A permit for one more read stream by `caller`, or
    /// RESOURCE_EXHAUSTED naming the limit: the server's, or its identity's
    /// share.
    pub fn read_stream(&self, caller: &auth::Caller) -> Result<ReadPermit, Status> {
        let server = self
            .read_streams
            .clone()
            .try_acquire_owned()
            .map_err(|_| status::read_streams_full(self.config.max_read_streams))?;
        let Some(slot) = self.stream_shares.try_take(&caller.identity) else {
            self.metrics.identity_refusals.with_label_values(&[metrics::identity_label(caller), "read_streams"]).inc();
            let limit = self.stream_shares.limit();
            return Err(status::identity_limit(&caller.identity, "open read streams", limit, "read_stream_share"));
        };
        Ok(ReadPermit { _server: server, _identity: slot })
    }

    /// `inner`, ended with PERMISSION_DENIED as soon as `caller` no longer
    /// holds one of `roles` on `log` (`None`: on any log) because a reload
    /// revoked its certificate or withdrew its grant.
    pub fn guarded<T: 'static>(
        &self,
        inner: guard::Boxed<T>,
        caller: &auth::Caller,
        log: Option<&str>,
        roles: &[Role],
    ) -> guard::Boxed<T> {
        guard::until_lost(inner, guard::access_lost(&self.access, caller, log, roles))
    }
}

/// A request that names the log it acts on (what
/// [`State::authorized_log`] needs of it).
pub trait NamesLog {
    /// its `log` field
    fn log_name(&self) -> &str;
    /// its `actor` field, the caller's identity without TLS ("" for requests
    /// that have none: the caller is then "anonymous")
    fn declared_actor(&self) -> &str {
        ""
    }
}

macro_rules! names_log {
    (with actor: $($t:ty),* $(,)?) => {$(
        impl NamesLog for $t {
            fn log_name(&self) -> &str {
                &self.log
            }
            fn declared_actor(&self) -> &str {
                &self.actor
            }
        }
    )*};
    ($($t:ty),* $(,)?) => {$(
        impl NamesLog for $t {
            fn log_name(&self) -> &str {
                &self.log
            }
        }
    )*};
}

names_log!(
    pb::GetRequest,
    pb::QueryRequest,
    pb::TailRequest,
    pb::GetCheckpointRequest,
    pb::ProveInclusionRequest,
    pb::ProveConsistencyRequest,
    pb::SummarizeRequest,
    pb::ExportRequest,
    pb::DownloadRequest,
    pb::StatRequest,
    pb::KeyStatusRequest,
    pb::PublicKeysRequest,
    pb::NodeStatusRequest,
    pb::PendingApprovalsRequest,
    pb::CheckRulesRequest,
);
names_log!(
    with actor: pb::RotateRequest,
    pb::RedactRequest,
    pb::ReloadPolicyRequest,
    pb::ReindexRequest,
    pb::AdminApproveRequest,
);

/// A failure of the server as a whole.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// The logs could not be opened.
    #[error(transparent)]
    Start(#[from] StartError),
    /// The gRPC listener is unusable.
    #[error("gRPC listener: {0}")]
    Listener(std::io::Error),
    /// The TLS files are unusable.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// The transport failed.
    #[error("gRPC transport: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// The witness's key or state is unusable.
    #[error(transparent)]
    Witness(#[from] witness::WitnessStartError),
    /// The metrics listener failed.
    #[error("metrics listener {addr}: {source}")]
    Metrics {
        /// the address
        addr: std::net::SocketAddr,
        /// the OS error
        source: std::io::Error,
    },
}

/// Serves until `shutdown` completes, binding the metrics listener from the
/// configuration when metrics are enabled.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let metrics = if config.metrics_enabled {
        let addr = config.metrics_listen;
        Some(TcpListener::bind(addr).await.map_err(|source| ServerError::Metrics { addr, source })?)
    } else {
        None
    };
    serve_with_metrics(config, listener, metrics, shutdown).await
}

/// Serves gRPC on `listener` and, when given, Prometheus metrics on
/// `metrics`, until `shutdown` completes. Then: stop accepting, let queued
/// appends finish, write the final checkpoint, fsync, return.
pub async fn serve_with_metrics(
    config: Config,
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    config.validate()?;
    let local = listener.local_addr().map_err(ServerError::Listener)?;
    config.check_listen(local)?;
    let (client_ca, clients) = match &config.tls {
        Some(t) => {
            let ca = tls::ClientCa::load(&t.client_ca)?;
            let revocation = tls::Revocation::load(t.client_crl.as_deref(), &ca)?;
            let clients = auth::Clients { verifier: ca.verifier(&revocation)?, revocation };
            (Some(ca), Some(clients))
        }
        None => (None, None),
    };
    let access = Arc::new(auth::AccessCell::new(auth::Access::new(&config, clients)));
    let tls = match (&config.tls, &client_ca) {
        (Some(t), Some(ca)) => Some(tls::server_config(t, ca, access.clone())?),
        _ => None,
    };
    if tls.is_none() && !local.ip().is_loopback() {
        tracing::warn!(addr = %local, "INSECURE: plaintext gRPC on a non-loopback address (--insecure-listen): no authentication, any client can append as any actor");
    }
    let metrics = Arc::new(metrics::Metrics::new());
    let mut cfg = config.clone();
    if cfg.storage.advertise.is_empty() {
        // the address bound, not the one asked for (port 0 picks one)
        cfg.storage.advertise = format!("{}://{local}", if tls.is_some() { "https" } else { "http" });
    }
    let m = metrics.clone();
    let logs = tokio::task::spawn_blocking(move || logs::Logs::open(&cfg, &m)).await.expect("open task")?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let read_streams = Arc::new(tokio::sync::Semaphore::new(config.max_read_streams));
    let stream_shares =
        limits::Shares::new(config::PerIdentity::of(config.per_identity.read_stream_share, config.max_read_streams));
    let state = Arc::new(State {
        config,
        logs,
        metrics,
        shutdown: stop_rx,
        access,
        client_ca,
        reloading: tokio::sync::Mutex::new(()),
        approving: tokio::sync::Mutex::new(()),
        read_streams,
        stream_shares,
    });
    let sighup = tokio::spawn(reload::on_sighup(state.clone()));
    for lc in state.config.logs.iter().filter(|l| !l.witnesses.is_empty()) {
        if let Ok(h) = state.logs.get(&lc.name) {
            witnessing::start(h.clone(), &lc.witnesses, state.metrics.clone(), state.shutdown.clone());
        }
    }
    let witness = match &state.config.witness {
        Some(c) => Some(Arc::new(witness::Witness::open(c, &state.config.data_dir, &state.logs)?)),
        None => None,
    };
    let http_tls = match (&state.config.tls, &state.client_ca) {
        (Some(t), Some(ca)) if state.config.http_tls => Some(tls::http_server_config(t, ca, state.access.clone())?),
        _ => None,
    };
    let metrics_task = metrics_listener.map(|l| tokio::spawn(metrics_server(l, state.clone(), witness, http_tls)));
    let (health, health_svc) = tonic_health::server::health_reporter();
    health.set_serving::<LedgerServiceServer<svc_ledger::LedgerSvc>>().await;
    health.set_serving::<ArtifactServiceServer<svc_artifact::ArtifactSvc>>().await;
    health.set_serving::<KeyServiceServer<svc_keys::KeySvc>>().await;
    health.set_serving::<ledger_proto::v1::admin_service_server::AdminServiceServer<svc_admin::AdminSvc>>().await;
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(ledger_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection().build_v1().expect("valid descriptors");
    let reflection_v1alpha = reflection().build_v1alpha().expect("valid descriptors");
    let addr = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    let metrics_addr =
        if state.config.metrics_enabled { state.config.metrics_listen.to_string() } else { String::new() };
    let mtls = tls.is_some();
    tracing::info!(%addr, metrics = %metrics_addr, logs = ?state.logs.names(), mtls, "ledgerd serving");
    let signal = async move {
        shutdown.await;
        tracing::info!("shutdown: no new requests; finishing queued appends");
        let _ = stop_tx.send(true);
    };
    let builder = tonic::transport::Server::builder();
    let mut stopping = state.shutdown.clone();
    let grace = async move {
        let _ = stopping.wait_for(|s| *s).await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    let router = builder
        .max_concurrent_streams(Some(256))
        .add_service(health_svc)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(svc_ledger::service(state.clone()))
        .add_service(svc_artifact::service(state.clone()))
        .add_service(svc_keys::service(state.clone()))
        .add_service(svc_admin::service(state.clone()));
    let serving: std::pin::Pin<Box<dyn Future<Output = Result<(), tonic::transport::Error>> + Send>> = match tls {
        Some(t) => {
            Box::pin(router.serve_with_incoming_shutdown(tls::incoming(listener, t, state.shutdown.clone()), signal))
        }
        None => Box::pin(router.serve_with_incoming_shutdown(incoming(listener), signal)),
    };
    let result = tokio::select! {
        r = serving => r,
        () = grace => {
            tracing::warn!(grace = ?SHUTDOWN_GRACE, "shutdown: connections still open after the grace period are closed");
            Ok(())
        }
    };
    let st = state.clone();
    // A runtime that is itself shutting down cancels the task before it
    // starts (the logs then close when dropped); that is not a panic.
    if let Err(e) = tokio::task::spawn_blocking(move || st.logs.stop()).await {
        tracing::error!(error = %e, "stopping the logs did not run to its end");
    }
    sighup.abort();
    if let Some(mut t) = metrics_task
        && tokio::time::timeout(SHUTDOWN_GRACE, &mut t).await.is_err()
    {
        t.abort();
    }
    release(state).await;
    tracing::info!("ledgerd stopped");
    result.map_err(ServerError::from)
}

/// How long open connections may finish their requests after a shutdown
/// signal; then they are closed (an idle or stuck client must not keep
/// ledgerd from stopping). Queued appends are finished either way.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Waits (up to 5 s) for request tasks to let go of the logs, so that the
/// index and journal are closed when `serve` returns.
async fn release(state: Arc<State>) {
    for _ in 0..500 {
        let logs_free = state.logs.by_name.values().all(|h| Arc::strong_count(h) == 1);
        if Arc::strong_count(&state) == 1 && logs_free {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// Accepted connections with TCP_NODELAY (Nagle's delay would add ~40 ms to
/// every small unary call).
fn incoming(listener: TcpListener) -> impl tokio_stream::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    use tokio_stream::StreamExt as _;
    tokio_stream::wrappers::TcpListenerStream::new(listener).map(|s| {
        let s = s?;
        s.set_nodelay(true)?;
        Ok(s)
    })
}

async fn metrics_server(
    listener: TcpListener,
    state: Arc<State>,
    witness: Option<Arc<witness::Witness>>,
    tls: Option<Arc<rustls::ServerConfig>>,
) {
    let mut routes = http_tiles::routes(state.clone()).merge(alertmanager::routes(state.clone()));
    if let Some(w) = witness {
        routes = routes.merge(witness::routes(w));
    }
    let st = state.clone();
    let app = axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(move || {
                let st = st.clone();
                async move {
                    refresh_gauges(&st).await;
                    st.metrics.render()
                }
            }),
        )
        .merge(routes);
    if let Err(e) = http::serve(listener, app, tls, state.shutdown.clone()).await {
        tracing::error!(error = %e, "HTTP listener stopped");
    }
}

/// The replication figures of one log (`[storage] kind = "postgres"`).
fn replication_gauges(m: &metrics::Metrics, name: &str, r: &replicated::Replication, size: u64) {
    let st = r.state();
    m.role.with_label_values(&[name]).set(i64::from(st.is_leader()));
    m.epoch.with_label_values(&[name]).set(st.epoch());
    m.replication_lag.with_label_values(&[name]).set(st.head_size().saturating_sub(size) as i64);
    m.replication_halted.with_label_values(&[name]).set(i64::from(st.halted().is_some()));
    for (c, now) in [(&m.fenced_batches, r.fenced_batches()), (&m.failovers, st.became_leader())] {
        let c = c.with_label_values(&[name]);
        c.inc_by(now.saturating_sub(c.get()));
    }
}

/// Gauges that are read at scrape time.
async fn refresh_gauges(st: &State) {
    let now = (ledger::log::system_clock())();
    st.metrics.key_age_days.reset();
    st.metrics.key_days_to_expiry.reset();
    for (name, h) in &st.logs.by_name {
        let m = &st.metrics;
        m.tree_size.with_label_values(&[name]).set(h.reader().size() as i64);
        m.verify_failures.with_label_values(&[name]);
        m.queue_depth.with_label_values(&[name]).set(h.queued() as i64);
        if let Some(r) = &h.replication {
            replication_gauges(m, name, r, h.reader().size());
        }
        let age = (now - h.checkpoint_at.load(std::sync::atomic::Ordering::Relaxed)) as f64 / 1e9;
        m.checkpoint_age.with_label_values(&[name]).set(age.max(0.0));
        for k in h.reader().key_status(now) {
            let kind = if k.kind == ledger::keys::KeyKind::Ed25519 { "ed25519" } else { "hmac-sha256" };
            let state = match k.state {
                ledger::keys::KeyState::Active => "active",
                ledger::keys::KeyState::Staged => "staged",
                ledger::keys::KeyState::Retired => "retired",
            };
            let labels = [name.as_str(), k.id.as_str(), kind, state];
            m.key_age_days.with_label_values(&labels).set(k.age_days);
            m.key_days_to_expiry.with_label_values(&labels).set(k.days_to_expiry);
        }
    }
}
