//! Four eyes: an `approval` entry names an earlier entry (its seq and leaf
//! hash) and is written by someone else who holds the approver role the
//! approved entry's category asks for (`requires_approval`), within its
//! time limit (docs/SECURITY.md "Four eyes").
//!
//! Owns: the approval payload's reading and the rules of [`check`];
//! `pending` lists what still waits; `dual` holds the rules of dual
//! control (admin requests). Must not: decide who holds a role
//! (the server tells it).

use serde::{Deserialize, Serialize};

use crate::entry::ValidationError;
use crate::hash::Hash;

/// A category's approval rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalRule {
    /// the approver role, e.g. `risk_officer` (granted with `approves` in
    /// the log's access list)
    pub role: String,
    /// the approver must not be the approved entry's actor
    #[serde(default = "yes")]
    pub distinct_actor: bool,
    /// the approval must come within this long of the entry (e.g. `4h`)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within: Option<String>,
    /// only entries whose payload matches need it
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<Condition>,
}

fn yes() -> bool {
    true
}

/// Which entries need an approval: a CEL expression over `payload`
/// (docs/OPERATIONS.md "Acceptance rules": `'"ai_degraded" in
/// payload.reasons'`), or the table `{ field, contains }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawCondition", into = "RawCondition")]
pub enum Condition {
    /// `payload[field]` is `contains`, or an array holding it
    Contains {
        /// a top-level payload field
        field: String,
        /// the string it is, or holds
        contains: String,
    },
    /// a CEL expression over `payload`; one that cannot be evaluated for
    /// a payload counts as holding (the entry waits for its approval)
    Cel(crate::rules::Expr),
}

/// `when` as written: a string (CEL) or a table (read strictly, so a
/// mistyped key is named).
#[derive(Serialize)]
#[serde(untagged)]
enum RawCondition {
    Text(String),
    Table(ContainsTable),
}

impl<'de> Deserialize<'de> for RawCondition {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = RawCondition;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a CEL expression (a string) or a table { field, contains }")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<RawCondition, E> {
                Ok(RawCondition::Text(s.to_owned()))
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(self, m: M) -> Result<RawCondition, M::Error> {
                ContainsTable::deserialize(serde::de::value::MapAccessDeserializer::new(m)).map(RawCondition::Table)
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ContainsTable {
    field: String,
    contains: String,
}

impl TryFrom<RawCondition> for Condition {
    type Error = String;

    fn try_from(r: RawCondition) -> Result<Self, String> {
        match r {
            RawCondition::Text(t) => {
                crate::rules::Expr::new(&t).map(Condition::Cel).map_err(|e| format!("when {t:?} {e}"))
            }
            RawCondition::Table(t) => Ok(Condition::Contains { field: t.field, contains: t.contains }),
        }
    }
}

impl From<Condition> for RawCondition {
    fn from(c: Condition) -> Self {
        match c {
            Condition::Contains { field, contains } => RawCondition::Table(ContainsTable { field, contains }),
            Condition::Cel(e) => RawCondition::Text(e.source().to_owned()),
        }
    }
}

impl Condition {
    /// Whether the payload (JSON bytes) matches.
    pub fn holds(&self, payload: &[u8]) -> bool {
        let v: serde_json::Value = serde_json::from_slice(payload).unwrap_or_default();
        match self {
            Condition::Contains { field, contains } => match &v[field.as_str()] {
                serde_json::Value::String(s) => s == contains,
                serde_json::Value::Array(a) => a.iter().any(|x| x.as_str() == Some(contains.as_str())),
                _ => false,
            },
            Condition::Cel(e) => {
                let payload = if v.is_object() { v } else { serde_json::json!({}) };
                e.eval(&[("payload", crate::rules::expr::json(&payload))]).unwrap_or(true)
            }
        }
    }
}

impl ApprovalRule {
    /// Whether an entry with this payload needs an approval.
    pub fn applies(&self, payload: &[u8]) -> bool {
        self.when.as_ref().is_none_or(|c| c.holds(payload))
    }

    /// `within` in nanoseconds: a whole number of `s`, `m`, `h` or `d`.
    pub fn within_ns(&self) -> Result<Option<i64>, String> {
        self.within.as_deref().map(duration_ns).transpose()
    }
}

/// A time limit such as `4h` in nanoseconds: a whole, positive number of
/// `s`, `m`, `h` or `d` (a rule's `within`, the config's
/// `dual_control_within`).
pub fn duration_ns(w: &str) -> Result<i64, String> {
    crate::span::parse_ns(w).map_err(|e| format!("within {e}"))
}

/// What an approval entry's payload claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// the approved entry
    pub seq: u64,
    /// its leaf hash
    pub leaf_hash: Hash,
    /// the role it is approved as (`None`: the rule's)
    pub role: Option<String>,
}

impl Claim {
    /// Reads `approved_seq`, `approved_leaf_hash` (hex) and `role`.
    pub fn parse(payload: &[u8]) -> Result<Self, ValidationError> {
        let v: serde_json::Value = serde_json::from_slice(payload).unwrap_or_default();
        let seq = v["approved_seq"].as_u64().ok_or_else(|| {
            ValidationError::new("payload.approved_seq", "must be the approved entry's seq (a number)")
        })?;
        let leaf_hash = v["approved_leaf_hash"]
            .as_str()
            .and_then(|h| hex::decode(h).ok())
            .and_then(|b| crate::hash::from_slice(&b))
            .ok_or_else(|| ValidationError::new("payload.approved_leaf_hash", "must be 64 hex digits"))?;
        let role = match &v["role"] {
            serde_json::Value::Null => None,
            serde_json::Value::String(r) if !r.is_empty() => Some(r.clone()),
            _ => return Err(ValidationError::new("payload.role", "must be a non-empty string")),
        };
        Ok(Self { seq, leaf_hash, role })
    }
}

/// The approved entry, as the log holds it.
pub struct Approved<'a> {
    /// its leaf hash
    pub leaf_hash: Hash,
    /// who wrote it
    pub actor: &'a str,
    /// when it was recorded (unix ns)
    pub recorded_at: i64,
    /// its category's rule, if any
    pub rule: Option<&'a ApprovalRule>,
}

/// Why an approval is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApprovalError {
    /// The leaf hash is not the entry's.
    #[error("payload.approved_leaf_hash: entry {seq} has another leaf hash")]
    LeafMismatch {
        /// the approved seq
        seq: u64,
    },
    /// Four eyes: the approver wrote the entry.
    #[error("{actor:?} wrote entry {seq}: an approval must come from someone else")]
    SameActor {
        /// the actor of both
        actor: String,
        /// the approved seq
        seq: u64,
    },
    /// No role named and no rule to take it from.
    #[error("payload.role: entry {seq}'s category asks for no approval; name the role you sign off as (--as)")]
    NoRole {
        /// the approved seq
        seq: u64,
    },
    /// A role other than the rule's.
    #[error("payload.role: entry {seq} needs an approval as {required:?}, not {given:?}")]
    WrongRole {
        /// the approved seq
        seq: u64,
        /// the rule's role
        required: String,
        /// the role named
        given: String,
    },
    /// The approver does not hold the role.
    #[error("{identity:?} does not hold the approver role {role:?} on this log (grant it with approves = [{role:?}])")]
    RoleNotHeld {
        /// the approver
        identity: String,
        /// the role
        role: String,
    },
    /// Past the rule's time limit.
    #[error("entry {seq} had to be approved within {within}; it is too late (record an escalation instead)")]
    TooLate {
        /// the approved seq
        seq: u64,
        /// the limit
        within: String,
    },
}

/// Checks an approval by `approver` at `now` (unix ns); `holds` says
/// whether the approver holds a role. Returns the role it approves as.
pub fn check(
    claim: &Claim,
    approved: &Approved<'_>,
    approver: &str,
    holds: impl Fn(&str) -> bool,
    now: i64,
) -> Result<String, ApprovalError> {
    let seq = claim.seq;
    if claim.leaf_hash != approved.leaf_hash {
        return Err(ApprovalError::LeafMismatch { seq });
    }
    let role = match (approved.rule, &claim.role) {
        (Some(r), Some(given)) if *given != r.role => {
            return Err(ApprovalError::WrongRole { seq, required: r.role.clone(), given: given.clone() });
        }
        (Some(r), _) => r.role.clone(),
        (None, Some(given)) => given.clone(),
        (None, None) => return Err(ApprovalError::NoRole { seq }),
    };
    if approved.rule.is_none_or(|r| r.distinct_actor) && approver == approved.actor {
        return Err(ApprovalError::SameActor { actor: approver.to_owned(), seq });
    }
    if !holds(&role) {
        return Err(ApprovalError::RoleNotHeld { identity: approver.to_owned(), role });
    }
    if let Some(r) = approved.rule
        && let Ok(Some(limit)) = r.within_ns()
        && now.saturating_sub(approved.recorded_at) > limit
    {
        return Err(ApprovalError::TooLate { seq, within: r.within.clone().unwrap_or_default() });
    }
    Ok(role)
}

pub mod dual;
mod pending;
pub use pending::{Pending, pending};

#[cfg(test)]
mod tests;
