//! The tables (docs/HA.md "Schema"): one head row per log, one row per
//! committed batch part holding the batch's journal frames verbatim
//! (FORMAT.md §6.2), so that every node's replica and export is the journal
//! `ledger verify` checks.
//!
//! Owns: the DDL and the session settings a writer needs. Must not: hold
//! data migrations (version 1 has none).

use tokio_postgres::Client;

use crate::tls::Transport;

/// Most bytes of frames in one `ledger_batch` row; a larger batch is split
/// into parts at frame boundaries.
pub const MAX_PART_BYTES: usize = 1 << 20;

/// Version 1 of the schema. `lease_until` is read and written with the
/// database's clock only (`clock_timestamp()`), never a node's.
pub const DDL: &str = "
CREATE TABLE IF NOT EXISTS ledger_head (
    log              text PRIMARY KEY,
    epoch            bigint NOT NULL,
    holder           text NOT NULL,
    holder_addr      text NOT NULL,
    lease_until      timestamptz NOT NULL,
    tree_size        bigint NOT NULL,
    root             bytea NOT NULL,
    checkpoint       text NOT NULL,
    last_recorded_at bigint NOT NULL
);
CREATE TABLE IF NOT EXISTS ledger_batch (
    log       text NOT NULL,
    first_seq bigint NOT NULL,
    part      integer NOT NULL,
    entries   integer NOT NULL,
    epoch     bigint NOT NULL,
    frames    bytea NOT NULL,
    checkpoint text NOT NULL,
    PRIMARY KEY (log, first_seq, part)
);
";

/// Creates the tables when missing.
pub async fn install(client: &Client) -> Result<(), tokio_postgres::Error> {
    client.batch_execute(DDL).await
}

/// The settings of a writer's session: its COMMIT is the ack point, so it
/// waits for the synchronous standby (`synchronous_commit = on`) however
/// the database or role is configured, and no timeout of this session
/// cancels that wait (PostgreSQL reports a cancelled wait for a standby as
/// a success with a warning).
pub async fn writer_session(client: &Client) -> Result<(), tokio_postgres::Error> {
    client.batch_execute("SET synchronous_commit = on; SET statement_timeout = 0;").await
}

/// Ends this session's transactions left idle for `ms` milliseconds (0:
/// never): a writer stopped between its statements (SIGSTOP, a frozen VM)
/// would otherwise hold the head row's lock, and no other node could take
/// the lease or commit until it woke up. Its COMMIT then fails: nothing
/// of that batch is committed. Waiting for a synchronous standby at COMMIT
/// is not idle and is never cut.
pub async fn idle_limit(client: &Client, ms: u64) -> Result<(), tokio_postgres::Error> {
    client.batch_execute(&format!("SET idle_in_transaction_session_timeout = {ms}")).await
}

/// A writer's connection: to the one read-write server among the hosts of
/// `url` (a libpq URL or key=value string; several hosts are tried in
/// order, so after a promotion the new primary is found), with
/// [`writer_session`] applied. The connection runs on a task of the current
/// runtime.
pub async fn connect_writer(url: &str) -> Result<Client, ConnectError> {
    connect_writer_over(url, &Transport::Plain).await
}

/// [`connect_writer`] over `transport`: with TLS, the connection requires
/// it whatever the URL's `sslmode` says.
pub async fn connect_writer_over(url: &str, transport: &Transport) -> Result<Client, ConnectError> {
    let mut config: tokio_postgres::Config = url.parse().map_err(|e| ConnectError::Url { reason: format!("{e}") })?;
    config.target_session_attrs(tokio_postgres::config::TargetSessionAttrs::ReadWrite);
    let hosts = describe_hosts(&config);
    let no_writer = |source| ConnectError::NoWriter { hosts: hosts.clone(), source };
    let client = match transport {
        Transport::Plain => {
            let (client, conn) = config.connect(tokio_postgres::NoTls).await.map_err(no_writer)?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            client
        }
        Transport::Tls(tls) => {
            config.ssl_mode(tokio_postgres::config::SslMode::Require);
            let (client, conn) = config.connect(tls.clone()).await.map_err(no_writer)?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            client
        }
    };
    writer_session(&client).await.map_err(|source| ConnectError::Session { source })?;
    Ok(client)
}

/// `host:port, …` of a config, for errors (never its password).
fn describe_hosts(config: &tokio_postgres::Config) -> String {
    let ports = config.get_ports();
    let host = |h: &tokio_postgres::config::Host| match h {
        tokio_postgres::config::Host::Tcp(s) => s.clone(),
        tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
    };
    let parts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
            format!("{}:{port}", host(h))
        })
        .collect();
    parts.join(", ")
}

/// A client error with the server's own message when there is one
/// (tokio-postgres shows only "db error" for those).
pub fn detail(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => format!("{}: {}", d.severity(), d.message()),
        None => {
            // the cause (e.g. a certificate the CA does not sign) is in the source
            let mut out = e.to_string();
            let mut src = std::error::Error::source(e);
            while let Some(s) = src {
                out = format!("{out}: {s}");
                src = s.source();
            }
            out
        }
    }
}

/// A writer could not connect.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The URL does not parse.
    #[error("storage.url: {reason}")]
    Url {
        /// what the parser said
        reason: String,
    },
    /// No host accepted a read-write session.
    #[error("storage.url: no read-write PostgreSQL among {hosts}: {}", detail(.source))]
    NoWriter {
        /// the hosts tried
        hosts: String,
        /// the last error
        source: tokio_postgres::Error,
    },
    /// The session settings were refused.
    #[error("setting up the writer's session: {}", detail(.source))]
    Session {
        /// the error
        source: tokio_postgres::Error,
    },
}
