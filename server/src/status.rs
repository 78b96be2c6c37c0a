//! The one place where errors become gRPC statuses (DESIGN "Limits and
//! errors"). Messages name the field and the reason, and never carry a
//! secret.

use ledger::log::{AppendError, LedgerError};
use ledger::merkle::ProofError;
use ledger::policy::PolicyError;
use ledger::store::StoreErrorKind;
use tonic::{Code, Status};

/// An append refused or failed.
pub fn append(e: &AppendError) -> Status {
    match e {
        AppendError::Invalid(v) => Status::invalid_argument(v.to_string()),
        AppendError::Policy(PolicyError::Undeclared { .. }) => Status::invalid_argument(e.to_string()),
        AppendError::Policy(PolicyError::MissingFields { .. }) => Status::failed_precondition(e.to_string()),
        AppendError::Policy(PolicyError::NotAllowed { .. } | PolicyError::Reserved { .. }) => {
            Status::permission_denied(e.to_string())
        }
        AppendError::Conflict { .. } => Status::already_exists(e.to_string()),
        AppendError::Storage { disk_full: true, .. } => Status::resource_exhausted(e.to_string()),
        AppendError::Storage { .. } => Status::internal(e.to_string()),
        AppendError::Unavailable(_) => Status::unavailable(e.to_string()),
    }
}

/// A read or admin failure.
pub fn ledger(e: &LedgerError) -> Status {
    match e {
        LedgerError::NotFound { .. } => Status::not_found(e.to_string()),
        LedgerError::Proof(ProofError::SizeBeyondLog { .. } | ProofError::IndexOutOfRange { .. }) => {
            Status::out_of_range(e.to_string())
        }
        LedgerError::Proof(ProofError::SizesOutOfOrder { .. }) => Status::invalid_argument(e.to_string()),
        LedgerError::Poisoned(_) => Status::unavailable(e.to_string()),
        LedgerError::Store(s) => match s.kind {
            StoreErrorKind::NotFound => Status::not_found(e.to_string()),
            StoreErrorKind::TooLarge { .. } | StoreErrorKind::DiskFull => Status::resource_exhausted(e.to_string()),
            StoreErrorKind::Damaged | StoreErrorKind::Missing { .. } => Status::data_loss(e.to_string()),
            StoreErrorKind::Io | StoreErrorKind::Locked => Status::internal(e.to_string()),
        },
        LedgerError::BadRecord { .. } | LedgerError::IndexAhead { .. } => Status::data_loss(e.to_string()),
        _ => Status::internal(e.to_string()),
    }
}

/// A redaction refused or failed.
pub fn redact(e: &ledger::log::RedactError) -> Status {
    match e {
        ledger::log::RedactError::Refused { .. } => Status::failed_precondition(e.to_string()),
        ledger::log::RedactError::Read(l) => ledger(l),
        ledger::log::RedactError::Append(a) => append(a),
    }
}

/// The log named in a request is not hosted.
pub fn unknown_log(name: &str, hosted: &[String]) -> Status {
    if name.is_empty() {
        return Status::invalid_argument(
            "invalid log: is empty; name the log (hosted here: ".to_owned() + &hosted.join(", ") + ")",
        );
    }
    Status::not_found(format!("log {name:?} is not hosted here (hosted: {})", hosted.join(", ")))
}

/// The append queue of a log is full.
pub fn queue_full(log: &str, depth: usize) -> Status {
    Status::resource_exhausted(format!("the append queue of log {log:?} is full ({depth} waiting): retry with backoff"))
}

/// The server is stopping.
pub fn shutting_down() -> Status {
    Status::unavailable("ledgerd is shutting down: retry against the restarted server")
}

/// A field of a request is malformed.
pub fn invalid(field: &str, reason: impl std::fmt::Display) -> Status {
    Status::invalid_argument(format!("invalid {field}: {reason}"))
}

/// The gRPC code as an integer (for per-entry stream errors).
pub fn code_number(c: Code) -> i32 {
    c as i32
}
