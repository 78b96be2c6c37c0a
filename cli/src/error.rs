//! CLI errors and the one place that maps them to exit codes and one-line
//! messages (what went wrong, what to do).

use std::path::PathBuf;

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad arguments or input.
    #[error("{0}")]
    Usage(String),
    /// A local file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// the file
        path: PathBuf,
        /// the OS error
        source: std::io::Error,
    },
    /// The server cannot be reached.
    #[error("cannot reach ledgerd at {server}: {detail} (is it running? check --server / LEDGER_SERVER)")]
    Unreachable {
        /// the address (for a node list: "any of the N nodes")
        server: String,
        /// why (for a node list: each node's URL and why)
        detail: String,
    },
    /// The server answered with an error.
    #[error("{}", remote_message(.0))]
    Remote(tonic::Status),
    /// An HTTP fetch (tiles) failed.
    #[error("GET {url}: {detail}")]
    Fetch {
        /// what was fetched
        url: String,
        /// why it failed (the status and the server's text, or the connection error)
        detail: String,
    },
    /// A verification or compliance check came out negative (already reported).
    #[error("{0}")]
    Negative(String),
}

fn remote_message(s: &tonic::Status) -> String {
    use tonic::Code::*;
    let hint = match s.code() {
        PermissionDenied => " (your identity lacks the role for this)".to_owned(),
        ResourceExhausted => " (retry later)".to_owned(),
        Unavailable => match crate::client::leader_of(s) {
            Some(leader) => format!(" (this node is a follower; the leader is {leader}: writes go there)"),
            None => " (the server is stopping or cannot write; retry later)".to_owned(),
        },
        DataLoss => " (integrity failure: run `ledger export` and `ledger verify` now)".to_owned(),
        _ => String::new(),
    };
    let mut detail = s.message().to_owned();
    let mut cur = std::error::Error::source(s);
    while let Some(c) = cur {
        detail.push_str(": ");
        detail.push_str(&c.to_string());
        cur = c.source();
    }
    if matches!(s.code(), Unknown | Unavailable | Cancelled) {
        detail = crate::client::tls_hint(detail);
    }
    format!("{}: {detail}{hint}", code_name(s.code()))
}

fn code_name(c: tonic::Code) -> String {
    format!("{c:?}").chars().fold(String::new(), |mut s, ch| {
        if ch.is_uppercase() && !s.is_empty() {
            s.push(' ');
        }
        s.push(ch.to_ascii_lowercase());
        s
    })
}

impl CliError {
    /// The process exit code (documented in `ledger --help`).
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Negative(_) => 1,
            Self::Usage(_) | Self::Io { .. } => 2,
            Self::Unreachable { .. } | Self::Fetch { .. } => 3,
            Self::Remote(s) if s.code() == tonic::Code::Unavailable && s.message().contains("tcp connect") => 3,
            Self::Remote(_) => 4,
        }
    }

    /// A local I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), source }
    }
}

impl From<tonic::Status> for CliError {
    fn from(s: tonic::Status) -> Self {
        Self::Remote(s)
    }
}

/// The result of a command.
pub type CliResult<T = ()> = Result<T, CliError>;
