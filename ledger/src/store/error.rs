//! The one error every store reports: a kind the log and the server act on,
//! a context in words, and the engine's own error as the source.

/// True when the OS reported a full disk (ENOSPC) or quota (EDQUOT).
pub fn is_disk_full(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(28) | Some(122))
}

/// What kind of failure a store reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreErrorKind {
    /// An I/O or database call failed.
    Io,
    /// The disk (or quota) is full: free space, then retry.
    DiskFull,
    /// Stored data is damaged (not a torn tail): refused, never repaired
    /// silently.
    Damaged,
    /// Derived data claims entries the source of truth does not have:
    /// acknowledged data is missing.
    Missing {
        /// entries the derived data claims
        indexed: u64,
        /// the first entry not found
        missing: u64,
    },
    /// No such blob.
    NotFound,
    /// Content larger than allowed.
    TooLarge {
        /// the limit in bytes
        limit: u64,
    },
    /// Another writer holds the store.
    Locked,
    /// This node cannot write the log now, and nothing of the write was
    /// kept (a replicated store: not the leader, fenced, the database
    /// unreachable); another node may take it, and a retry with the same
    /// request id is safe.
    Unavailable,
    /// The store does not do this (yet).
    Unsupported,
}

/// A store failure: kind, context, and the engine's error.
#[derive(Debug, thiserror::Error)]
#[error("{}", display(.context, .source))]
pub struct StoreError {
    /// what kind of failure
    pub kind: StoreErrorKind,
    /// what was being done, and where (an empty context shows the source alone)
    pub context: String,
    /// the engine's error
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

fn display(context: &str, source: &Option<Box<dyn std::error::Error + Send + Sync>>) -> String {
    match (context.is_empty(), source) {
        (_, None) => context.to_owned(),
        (true, Some(s)) => s.to_string(),
        (false, Some(s)) => format!("{context}: {s}"),
    }
}

impl StoreError {
    /// A failure of `kind` described by `context`.
    pub fn new(kind: StoreErrorKind, context: impl Into<String>) -> Self {
        Self { kind, context: context.into(), source: None }
    }

    /// A failure of `kind` caused by `source` (its message is shown after
    /// the context).
    pub fn with_source(
        kind: StoreErrorKind,
        context: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self { kind, context: context.into(), source: Some(Box::new(source)) }
    }

    /// An I/O failure while doing `context`; a full disk is `DiskFull`.
    pub fn io(context: impl Into<String>, e: std::io::Error) -> Self {
        let kind = if is_disk_full(&e) { StoreErrorKind::DiskFull } else { StoreErrorKind::Io };
        Self::with_source(kind, context, e)
    }

    /// Damaged data, described by `context`.
    pub fn damaged(context: impl Into<String>) -> Self {
        Self::new(StoreErrorKind::Damaged, context)
    }

    /// True when the disk (or quota) is full.
    pub fn is_disk_full(&self) -> bool {
        self.kind == StoreErrorKind::DiskFull
    }
}
