//! The playbooks' acceptance rules as policy: each rule names a category,
//! optionally a CEL condition (`when`) on its entries, and what must hold —
//! a fresh enough latest entry, references that resolve, an expression on
//! the latest or every entry, approvals present, a response in time, a
//! figure over the last N entries (docs/OPERATIONS.md "Acceptance rules").
//! Each evaluates to pass / warn / fail with a detail naming the entry, or
//! the missing one.
//!
//! Owns: the rule types, their validation (once, when the policy is read)
//! and their evaluation over a log's prefix (`eval`, `kinds`). Must not:
//! read files or talk to a server (the server's RPC and the CLI call
//! [`evaluate`]).

mod approved;
mod eval;
pub mod expr;
#[cfg(test)]
pub(crate) mod fixture;
mod kinds;
#[cfg(test)]
mod profiles;
mod raw;
mod response;
#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

pub use eval::{AsOf, Outcome, evaluate};
pub use expr::Expr;

use crate::span::Span;

/// A rules file as `ledger compliance check --rules` reads it and the
/// profiles under docs/policy/ are written: `[[policy.rules]]` tables only
/// (deserialise it with any serde format; the callers use TOML).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesFile {
    /// the `policy` table
    pub policy: RulesTable,
}

/// The `policy` table of a [`RulesFile`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesTable {
    /// the rules
    pub rules: Vec<Rule>,
}

/// A rule's result, worst last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// holds
    Pass,
    /// holds, but not for long, or the rule only warns
    Warn,
    /// does not hold
    Fail,
}

impl Verdict {
    /// `pass`, `warn`, `fail`.
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Warn => "warn",
            Verdict::Fail => "fail",
        }
    }
}

/// One rule, validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "raw::RawRule", into = "raw::RawRule")]
pub struct Rule {
    /// unique in the policy; names the rule in every result
    pub name: String,
    /// what the playbook asks, for people
    pub description: Option<String>,
    /// the category whose entries the rule is about
    pub category: String,
    /// only entries for which this holds count
    pub when: Option<Expr>,
    /// only entries recorded within this long before the evaluation's time
    pub over: Option<Span>,
    /// the verdict when the rule does not hold (`fail`, or `warn`)
    pub severity: Verdict,
    /// what must hold
    pub kind: Kind,
}

/// What a rule requires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// the latest matching entry is younger than `max_age`; warn from
    /// `warn_before` ahead of that
    Freshness {
        /// the limit
        max_age: Span,
        /// warn this long before the limit
        warn_before: Option<Span>,
    },
    /// every matching entry's `field` equals `target_field` of some entry
    /// of `target_category`
    Reference {
        /// the referring payload field
        field: String,
        /// the category referred to
        target_category: String,
        /// its payload field (default: `field`)
        target_field: String,
    },
    /// `expr` holds for the latest matching entry, or every one
    Check {
        /// the condition
        expr: Expr,
        /// latest or all
        scope: Scope,
    },
    /// every matching entry is approved (an `approval` entry names it),
    /// by a holder of `role` when given (a sign-off)
    Approved {
        /// the approver role that counts (`None`: any approval)
        role: Option<String>,
    },
    /// each matching entry is followed, for the same subject, by an entry
    /// of `response` within `within`, or else by an `otherwise` entry
    Response {
        /// the category answering
        response: String,
        /// how soon
        within: Span,
        /// the category that excuses a late answer (an escalation)
        otherwise: Option<String>,
        /// the condition an `otherwise` entry must meet
        otherwise_when: Option<Expr>,
    },
    /// `expr` holds over `entries`, the last `last` matching entries
    Aggregate {
        /// how many
        last: usize,
        /// the condition, over the list `entries`
        expr: Expr,
    },
}

impl Kind {
    /// The name written as `kind`.
    pub fn name(&self) -> &'static str {
        match self {
            Kind::Freshness { .. } => "freshness",
            Kind::Reference { .. } => "reference",
            Kind::Check { .. } => "check",
            Kind::Approved { .. } => "approved",
            Kind::Response { .. } => "response",
            Kind::Aggregate { .. } => "aggregate",
        }
    }
}

/// Which entries a `check` rule reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scope {
    /// the newest matching entry
    #[default]
    Latest,
    /// every matching entry
    All,
}

/// A refusal of a rule set: the rule (by name, or position), the field,
/// the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rules[{index}] ({name}): {field}: {reason}")]
pub struct RulesError {
    /// its position in the list
    pub index: usize,
    /// its name
    pub name: String,
    /// the offending field
    pub field: String,
    /// why
    pub reason: String,
}

/// Checks a rule set as a whole: names unique, categories declared (when
/// `declared` says so).
pub fn check_set(rules: &[Rule], declared: impl Fn(&str) -> bool) -> Result<(), RulesError> {
    let err = |i: usize, r: &Rule, field: &str, reason: String| RulesError {
        index: i,
        name: r.name.clone(),
        field: field.to_owned(),
        reason,
    };
    for (i, r) in rules.iter().enumerate() {
        if rules[..i].iter().any(|o| o.name == r.name) {
            return Err(err(i, r, "name", format!("{:?} is used by an earlier rule; names must be unique", r.name)));
        }
        let mut cats = vec![("category", r.category.as_str())];
        match &r.kind {
            Kind::Reference { target_category, .. } => cats.push(("target_category", target_category)),
            Kind::Response { response, otherwise, .. } => {
                cats.push(("response", response));
                cats.extend(otherwise.as_deref().map(|o| ("otherwise", o)));
            }
            _ => {}
        }
        if let Some((field, c)) = cats.into_iter().find(|(_, c)| !declared(c)) {
            return Err(err(i, r, field, format!("category {c:?} is not declared in the policy")));
        }
    }
    Ok(())
}
