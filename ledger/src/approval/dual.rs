//! Dual control of admin actions (docs/SECURITY.md "Dual control"): with it
//! on, `admin redact`, `keys rotate` and `admin reload-policy` first write
//! an `admin_request` entry; the action happens only when another admin
//! approves it (an `approval` entry naming the request), and the action's
//! own entry names the request in `request_seq`.
//!
//! Owns: the request payload (its reading and writing) and the pure rules
//! of an admin approval ([`check_admin_approval`]). Must not: read the log
//! or carry out an action (the server does both, in that order).

use serde::{Deserialize, Serialize};

use crate::entry::ValidationError;

/// The category of dual-control requests (one of `policy::ADMIN_CATEGORIES`).
pub const ADMIN_REQUEST: &str = "admin_request";
/// The approver role an admin approval records (the caller holds the
/// `admin` access role).
pub const ADMIN_ROLE: &str = "admin";

/// The action a request asks for, with its parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum AdminAction {
    /// `ledger admin redact TARGET_SEQ`
    Redact {
        /// the entry whose payload goes
        target_seq: u64,
    },
    /// `ledger keys rotate`
    RotateKeys,
    /// `ledger admin reload-policy`, of the configuration file as it was
    /// when requested: the approval carries out exactly what the second
    /// admin could review
    ReloadPolicy {
        /// SHA-256 (hex) of the configuration file's bytes at the request
        config_sha256: String,
    },
}

impl AdminAction {
    /// Its name in the payload (`action`).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Redact { .. } => "redact",
            Self::RotateKeys => "rotate_keys",
            Self::ReloadPolicy { .. } => "reload_policy",
        }
    }

    /// The category of the entry that carries it out.
    pub fn effect_category(&self) -> &'static str {
        match self {
            Self::Redact { .. } => crate::log::REDACTION,
            Self::RotateKeys => crate::log::KEY_ROTATION,
            Self::ReloadPolicy { .. } => crate::log::POLICY_RELOAD,
        }
    }
}

/// An `admin_request` entry's payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminRequest {
    /// what is asked for
    #[serde(flatten)]
    pub action: AdminAction,
    /// why (the action's own entry records it too)
    pub reason: String,
    /// how long after its entry's `recorded_at` it may be approved (e.g.
    /// `24h`, the config's `dual_control_within`; `None`: no limit)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within: Option<String>,
}

impl AdminRequest {
    /// A request that may wait `within` (a valid [`super::duration_ns`]);
    /// the reason must say something.
    pub fn new(action: AdminAction, reason: &str, within: Option<&str>) -> Result<Self, ValidationError> {
        if reason.trim().is_empty() {
            return Err(ValidationError::new("reason", "is empty; say why (the second admin reads it)"));
        }
        if let Some(Err(e)) = within.map(super::duration_ns) {
            return Err(ValidationError::new("within", e));
        }
        Ok(Self { action, reason: reason.to_owned(), within: within.map(str::to_owned) })
    }

    /// When the request of an entry recorded at `recorded_at` (unix ns)
    /// expires (`None`: never).
    pub fn expires_at(&self, recorded_at: i64) -> Option<i64> {
        let w = super::duration_ns(self.within.as_deref()?).ok()?;
        Some(recorded_at.saturating_add(w))
    }

    /// Reads an `admin_request` entry's payload.
    pub fn parse(payload: &[u8]) -> Result<Self, ValidationError> {
        serde_json::from_slice(payload)
            .map_err(|e| ValidationError::new("payload", format!("not an admin request: {e}")))
    }

    /// The payload.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("serialisable")
    }
}

/// The request id of the approval of request `seq` (one per request: a
/// rerun finds it and does not write another).
pub fn approval_request_id(seq: u64) -> String {
    format!("admin_request/{seq}/approval")
}

/// Why an admin approval is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DualControlError {
    /// The entry is not an admin request.
    #[error(
        "seq: entry {seq} is a {category:?} entry, not an admin_request (list them with `ledger approvals pending --category admin_request`)"
    )]
    NotARequest {
        /// the entry
        seq: u64,
        /// its category
        category: String,
    },
    /// The approver made the request.
    #[error("{approver:?} made admin request {seq} (requested by {requester:?}): a second admin must approve it")]
    SameActor {
        /// the request
        seq: u64,
        /// who asked
        requester: String,
        /// who approves
        approver: String,
    },
    /// Past its window.
    #[error(
        "admin request {seq} expired: it had to be approved within {within} (dual_control_within); make a new request"
    )]
    Expired {
        /// the request
        seq: u64,
        /// its window
        within: String,
    },
}

/// The request entry an approval names, as the log holds it.
pub struct Requested<'a> {
    /// its seq
    pub seq: u64,
    /// its payload
    pub request: &'a AdminRequest,
    /// its actor
    pub requester: &'a str,
    /// its `recorded_at` (unix ns)
    pub recorded_at: i64,
}

/// Checks an approval of a request by `approver` at `now` (unix ns). `now`
/// is `None` when the request is approved already (a rerun completing its
/// action): the approval came in time, so the window no longer applies;
/// the approver must still be someone else.
pub fn check_admin_approval(r: &Requested<'_>, approver: &str, now: Option<i64>) -> Result<(), DualControlError> {
    let seq = r.seq;
    if approver == r.requester {
        let (requester, approver) = (r.requester.to_owned(), approver.to_owned());
        return Err(DualControlError::SameActor { seq, requester, approver });
    }
    match (r.request.expires_at(r.recorded_at), now) {
        (Some(expires_at), Some(now)) if now > expires_at => {
            Err(DualControlError::Expired { seq, within: r.request.within.clone().unwrap_or_default() })
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_and_name_their_action() {
        let r = AdminRequest::new(AdminAction::Redact { target_seq: 4 }, "PRIV-12", Some("2h")).unwrap();
        let v = r.to_json();
        assert_eq!(v, serde_json::json!({"action": "redact", "target_seq": 4, "reason": "PRIV-12", "within": "2h"}));
        assert_eq!(AdminRequest::parse(v.to_string().as_bytes()).unwrap(), r);
        assert_eq!(r.expires_at(10), Some(10 + 7_200_000_000_000));
        let rot = AdminRequest::new(AdminAction::RotateKeys, "30 days", None).unwrap();
        assert_eq!(rot.expires_at(10), None);
        assert_eq!(rot.to_json(), serde_json::json!({"action": "rotate_keys", "reason": "30 days"}));
        assert_eq!(rot.action.effect_category(), "key_rotation");
        assert_eq!(AdminAction::ReloadPolicy { config_sha256: "ab".into() }.effect_category(), "policy_reload");
        assert_eq!(AdminRequest::new(AdminAction::RotateKeys, " ", None).unwrap_err().field, "reason");
        assert_eq!(AdminRequest::new(AdminAction::RotateKeys, "x", Some("1 day")).unwrap_err().field, "within");
        assert!(AdminRequest::parse(br#"{"action":"drop_table","reason":"x"}"#).is_err());
        assert!(AdminRequest::parse(br#"{"action":"redact","reason":"x"}"#).is_err(), "target_seq is needed");
    }

    #[test]
    fn a_second_admin_approves_within_the_window() {
        let r = AdminRequest::new(AdminAction::RotateKeys, "leak", Some("1s")).unwrap();
        let req = Requested { seq: 7, request: &r, requester: "alice", recorded_at: 100 };
        let limit = 100 + 1_000_000_000;
        assert_eq!(check_admin_approval(&req, "bob", Some(limit)), Ok(()));
        assert_eq!(check_admin_approval(&req, "bob", None), Ok(()), "approved already: no window");
        assert_eq!(
            check_admin_approval(&req, "alice", None),
            Err(DualControlError::SameActor { seq: 7, requester: "alice".into(), approver: "alice".into() })
        );
        assert_eq!(
            check_admin_approval(&req, "bob", Some(limit + 1)),
            Err(DualControlError::Expired { seq: 7, within: "1s".into() })
        );
        let open = AdminRequest { within: None, ..r.clone() };
        let req = Requested { request: &open, ..req };
        assert_eq!(check_admin_approval(&req, "bob", Some(i64::MAX)), Ok(()));
    }
}
