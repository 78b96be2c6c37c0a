//! The one place where errors become gRPC statuses: every `Status` the
//! server sends is built here (which code means what: the error table of
//! docs/API.md). Messages name the field and the reason, and never carry a
//! secret.
//!
//! Owns: the code and message of every error a client sees. Must not:
//! decide whether a request is allowed or valid (`auth`, the `ledger`
//! crate and the services do; this only words their verdict).

use std::fmt::Display;
use std::path::Path;

use ledger::ValidationError;
use ledger::log::{AppendError, LedgerError};
use ledger::merkle::ProofError;
use ledger::policy::PolicyError;
use ledger::store::StoreErrorKind;
use tonic::{Code, Status};

use crate::config::Role;

/// An append refused or failed.
pub fn append(e: &AppendError) -> Status {
    match e {
        AppendError::Invalid(v) => validation(v),
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
            StoreErrorKind::Unavailable => Status::unavailable(e.to_string()),
            StoreErrorKind::Unsupported => Status::failed_precondition(e.to_string()),
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
pub fn invalid(field: &str, reason: impl Display) -> Status {
    Status::invalid_argument(format!("invalid {field}: {reason}"))
}

/// A field the ledger's validation refused (its message names the field:
/// `invalid <field>: <reason>`).
pub fn validation(e: &ValidationError) -> Status {
    Status::invalid_argument(e.to_string())
}

/// With mutual TLS: the connection carries no client certificate.
pub fn no_client_certificate() -> Status {
    Status::unauthenticated("no client certificate: ledgerd requires mutual TLS")
}

/// With mutual TLS: the client certificate chain is empty.
pub fn empty_certificate_chain() -> Status {
    Status::unauthenticated("the client certificate chain is empty")
}

/// With mutual TLS: the client certificate names no usable identity
/// (`reason` says what it lacks).
pub fn no_identity(reason: impl Into<String>) -> Status {
    Status::unauthenticated(reason)
}

/// With mutual TLS: the client certificate is on a revocation list in force.
pub fn certificate_revoked(identity: &str, serial: &str) -> Status {
    Status::permission_denied(format!(
        "the client certificate of {identity:?} (serial {serial}) is revoked: tls.client_crl lists it"
    ))
}

/// With mutual TLS: the client certificate no longer verifies (expired, or
/// no revocation list for its issuer).
pub fn certificate_refused(identity: &str, e: &dyn Display) -> Status {
    Status::permission_denied(format!("the client certificate of {identity:?} is refused: {e}"))
}

/// One identity holds its whole share of a capacity (`[per_identity]`).
pub fn identity_limit(identity: &str, what: &str, limit: usize, field: &str) -> Status {
    Status::resource_exhausted(format!(
        "identity {identity:?} already holds {limit} {what}, its limit (per_identity.{field}): retry when some finish"
    ))
}

/// The caller's identity holds none of `roles` on `log`.
pub fn lacks_role(identity: &str, log: &str, roles: &[Role]) -> Status {
    let names: Vec<&str> = roles.iter().map(|r| r.name()).collect();
    Status::permission_denied(format!("identity {identity:?} lacks the {} role on log {log:?}", names.join(" or ")))
}

/// The caller's writer grants on `log` list other categories (`allowed`).
pub fn lacks_category(identity: &str, log: &str, category: &str, allowed: &[&str]) -> Status {
    Status::permission_denied(format!(
        "identity {identity:?} lacks the writer role for category {category:?} on log {log:?} (it may write: {})",
        allowed.join(", ")
    ))
}

/// Every read stream the server allows (`max`) is open.
pub fn read_streams_full(max: usize) -> Status {
    Status::resource_exhausted(format!(
        "{max} read streams (Query, Tail, Export, Download) are open, the most this server allows: close one or retry later"
    ))
}

/// GetCheckpoint asked for a size no kept checkpoint has.
pub fn checkpoint_not_kept(size: u64, every: u64) -> Status {
    Status::not_found(format!(
        "no checkpoint of size {size} is kept (history checkpoints are kept about every {every} entries; size 0 gives the latest)"
    ))
}

/// ReloadPolicy on a server started without a config file.
pub fn no_policy_file() -> Status {
    Status::failed_precondition("ledgerd was started without --config: there is no policy file to reload")
}

/// ReloadPolicy found the config file unreadable or invalid.
pub fn policy_not_reloaded(e: impl Display) -> Status {
    Status::failed_precondition(format!("the policy was not reloaded: {e}"))
}

/// An approved reload whose configuration file changed since its request.
pub fn config_changed(config: &Path, requested: &str, now: &str) -> Status {
    Status::failed_precondition(format!(
        "{} changed since the reload was requested (SHA-256 {requested} then, {now} now): the approval covers the \
         file as requested; make a new request for this one",
        config.display()
    ))
}

/// ReloadPolicy found a config file that no longer configures the log.
pub fn log_not_configured(config: &Path, log: &str) -> Status {
    Status::failed_precondition(format!("{} no longer configures log {log:?}", config.display()))
}

/// A file being streamed (an artifact, a journal segment) failed to read.
pub fn internal_io(e: &std::io::Error) -> Status {
    Status::internal(e.to_string())
}

/// A checkpoint the ledger signed does not parse.
pub fn checkpoint_unreadable(e: &ledger::note::NoteError) -> Status {
    Status::internal(e.to_string())
}

/// A summary did not serialize to JSON.
pub fn summary_unencodable(e: &serde_json::Error) -> Status {
    Status::internal(e.to_string())
}

/// The writer answered an Append with no result (it answers every entry).
pub fn writer_no_result() -> Status {
    Status::internal("the writer returned no result")
}

/// The writer answered an Upload's entry with no result.
pub fn upload_no_result() -> Status {
    Status::internal("no result")
}

/// The permits for blocking tasks are gone (the server is stopping).
pub fn blocking_closed() -> Status {
    Status::internal("the blocking-task semaphore is closed")
}

/// A blocking task panicked or was cancelled.
pub fn task_failed(e: &tokio::task::JoinError) -> Status {
    Status::internal(format!("task failed: {e}"))
}

/// The metadata key naming the leader's advertised address on an
/// `UNAVAILABLE` from a follower (docs/API.md "Replicated ledgerd").
pub const LEADER_KEY: &str = "ledger-leader";
/// Metadata on a follower's refusal of a write: it did nothing, so any
/// write may be sent again elsewhere (`follower`).
pub const REFUSED_KEY: &str = "ledger-refused-by";

/// A write on a node that does not lead the log: `UNAVAILABLE`, naming
/// the leader (also in the `ledger-leader` metadata) when one is known.
pub fn not_leader(log: &str, node: &str, leader: Option<(String, String)>) -> Status {
    let Some((name, addr)) = leader else {
        let mut s = Status::unavailable(format!(
            "log {log:?}: node {node:?} is a follower and no leader is known now; retry shortly (another node takes the lease when it lapses)"
        ));
        s.metadata_mut().insert(REFUSED_KEY, tonic::metadata::MetadataValue::from_static("follower"));
        return s;
    };
    let mut s =
        Status::unavailable(format!("log {log:?}: node {node:?} is a follower; the leader is {name:?} at {addr}"));
    if let Ok(v) = tonic::metadata::MetadataValue::try_from(addr.as_str()) {
        s.metadata_mut().insert(LEADER_KEY, v);
    }
    s.metadata_mut().insert(REFUSED_KEY, tonic::metadata::MetadataValue::from_static("follower"));
    s
}

/// The gRPC code as an integer (for per-entry stream errors).
pub fn code_number(c: Code) -> i32 {
    c as i32
}

/// The HTTP listener: a log's tiles asked for without a certificate that
/// could hold the reader role.
pub fn tiles_not_public(log: &str) -> Status {
    Status::permission_denied(format!(
        "log {log:?} does not serve its tiles to anyone: set public_tiles = true in its [[logs]] section to opt \
         in, or (with [tls] and http_tls) present a client certificate with the reader role"
    ))
}

/// Alertmanager's notifications posted to a log that takes none.
pub fn alertmanager_off(log: &str) -> Status {
    Status::permission_denied(format!(
        "log {log:?} takes no Alertmanager notifications: add [logs.alertmanager] to its [[logs]]"
    ))
}

/// A notification without the log's bearer token (the token is never
/// named).
pub fn alertmanager_token() -> Status {
    Status::unauthenticated(
        "a bearer token is required (Authorization: Bearer …, Alertmanager's authorization.credentials_file), and \
         the one given is not this log's",
    )
}

/// The log's token file cannot be read (the details go to ledgerd's log).
pub fn alertmanager_token_unreadable(log: &str) -> Status {
    Status::internal(format!("log {log:?}: its Alertmanager token cannot be read"))
}

/// A notification under `[tls]` with neither token nor certificate.
pub fn alertmanager_needs_certificate() -> Status {
    Status::unauthenticated(
        "a client certificate signed by tls.client_ca is required (Alertmanager's http_config.tls_config)",
    )
}

/// One alert of a notification refused: `s`, naming the alert.
pub fn in_alert(i: usize, s: &Status) -> Status {
    Status::new(s.code(), format!("alerts[{i}]: {}", s.message()))
}

/// A dual-control approval refused (docs/SECURITY.md "Dual control").
pub fn dual_control(e: &ledger::approval::dual::DualControlError) -> Status {
    use ledger::approval::dual::DualControlError as D;
    match e {
        D::NotARequest { .. } => Status::invalid_argument(e.to_string()),
        D::SameActor { .. } => Status::permission_denied(e.to_string()),
        D::Expired { .. } => Status::failed_precondition(e.to_string()),
    }
}

/// An `approval` of a dual-control request sent as a plain Append: only
/// AdminService.Approve approves (and carries out) one.
pub fn admin_request_by_append(seq: u64) -> Status {
    Status::failed_precondition(format!(
        "payload.approved_seq: entry {seq} is an admin_request (dual control): approve it with `ledger admin approve \
         {seq} --reason …` (AdminService.Approve), which also carries it out"
    ))
}

/// A dual-control action that failed after its approval was written:
/// `s`'s code, saying that a rerun completes it.
pub fn effect_failed(approval_seq: u64, request_seq: u64, s: &Status) -> Status {
    Status::new(
        s.code(),
        format!(
            "admin request {request_seq} is approved (approval entry {approval_seq}) but was not carried out: {}; \
             once that is fixed, run `ledger admin approve {request_seq} --reason …` again: it carries it out \
             without a second approval",
            s.message()
        ),
    )
}

/// An approved reload-policy request on a node that cannot write the
/// log's entry now (a follower): nothing more was done.
pub fn reload_deferred(log: &str) -> Status {
    Status::unavailable(format!(
        "log {log:?}: this node cannot write the policy_reload entry now (it follows); run the approval again \
         against the leader: it completes the reload without a second approval"
    ))
}

/// An approval refused (four eyes).
pub fn approval(e: &ledger::approval::ApprovalError) -> Status {
    use ledger::approval::ApprovalError as A;
    match e {
        A::LeafMismatch { .. } | A::NoRole { .. } | A::WrongRole { .. } => Status::invalid_argument(e.to_string()),
        A::SameActor { .. } | A::RoleNotHeld { .. } => Status::permission_denied(e.to_string()),
        A::TooLate { .. } => Status::failed_precondition(e.to_string()),
    }
}
