//! A rule as the policy file writes it: every key optional here, then
//! checked against its `kind` — a key the kind needs and lacks, or one it
//! does not read, is refused naming the rule and the key.
//!
//! Owns: that mapping, both ways. Must not: evaluate anything.

use serde::{Deserialize, Serialize};

use super::{Expr, Kind, Rule, Scope, Verdict};
use crate::span::Span;

/// The keys of `[[policy.rules]]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    when: Option<Expr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    over: Option<Span>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    severity: Option<Verdict>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_age: Option<Span>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    warn_before: Option<Span>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    field: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    target_category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    target_field: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expr: Option<Expr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    response: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    within: Option<Span>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    otherwise: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    otherwise_when: Option<Expr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    role: Option<String>,
}

/// The most entries an `aggregate` reads.
pub const MAX_LAST: usize = 100_000;

const KINDS: &str = "freshness, reference, check, approved, response, aggregate";

impl TryFrom<RawRule> for Rule {
    type Error = String;

    fn try_from(mut r: RawRule) -> Result<Self, String> {
        let name = match r.name.take() {
            Some(n) if !n.trim().is_empty() => n,
            _ => return Err("a rule needs a non-empty name".into()),
        };
        let e = |key: &str, why: &str| format!("rule {name:?}: {key}: {why}");
        let category = r.category.take().filter(|c| !c.is_empty()).ok_or_else(|| e("category", "is required"))?;
        let severity = match r.severity.take() {
            None | Some(Verdict::Fail) => Verdict::Fail,
            Some(Verdict::Warn) => Verdict::Warn,
            Some(Verdict::Pass) => return Err(e("severity", "must be \"fail\" or \"warn\"")),
        };
        let kind_name = r.kind.take().ok_or_else(|| e("kind", &format!("is required: one of {KINDS}")))?;
        let kind = kind(&kind_name, &mut r).map_err(|(key, why)| e(key, &why))?;
        if let Some(key) = r.leftover() {
            return Err(e(key, &format!("does not apply to kind {kind_name}")));
        }
        Ok(Rule { name, description: r.description, category, when: r.when, over: r.over, severity, kind })
    }
}

type KeyErr = (&'static str, String);

fn need<T>(v: Option<T>, key: &'static str, kind: &str) -> Result<T, KeyErr> {
    v.ok_or_else(|| (key, format!("is required for kind {kind}")))
}

fn kind(name: &str, r: &mut RawRule) -> Result<Kind, KeyErr> {
    Ok(match name {
        "freshness" => {
            let max_age = need(r.max_age.take(), "max_age", name)?;
            let warn_before = r.warn_before.take();
            if warn_before.as_ref().is_some_and(|w| w.ns() >= max_age.ns()) {
                return Err((
                    "warn_before",
                    format!("must be shorter than max_age ({max_age}): the rule would always warn"),
                ));
            }
            Kind::Freshness { max_age, warn_before }
        }
        "reference" => {
            let field = need(r.field.take(), "field", name)?;
            let target_field = r.target_field.take().unwrap_or_else(|| field.clone());
            Kind::Reference {
                field,
                target_category: need(r.target_category.take(), "target_category", name)?,
                target_field,
            }
        }
        "check" => {
            let scope = match r.scope.take().as_deref() {
                None | Some("latest") => Scope::Latest,
                Some("all") => Scope::All,
                Some(other) => return Err(("scope", format!("{other:?} is not \"latest\" or \"all\""))),
            };
            Kind::Check { expr: need(r.expr.take(), "expr", name)?, scope }
        }
        "approved" => Kind::Approved { role: r.role.take() },
        "response" => Kind::Response {
            response: need(r.response.take(), "response", name)?,
            within: need(r.within.take(), "within", name)?,
            otherwise_when: r.otherwise_when.take(),
            otherwise: r.otherwise.take(),
        },
        "aggregate" => {
            let last = need(r.last.take(), "last", name)?;
            if !(1..=MAX_LAST).contains(&last) {
                return Err(("last", format!("{last} is outside 1..={MAX_LAST} (the entries are held in memory)")));
            }
            Kind::Aggregate { last, expr: need(r.expr.take(), "expr", name)? }
        }
        other => return Err(("kind", format!("{other:?} is not one of {KINDS}"))),
    })
}

impl RawRule {
    /// The first kind-specific key still set after the kind took its own.
    fn leftover(&self) -> Option<&'static str> {
        [
            ("max_age", self.max_age.is_some()),
            ("warn_before", self.warn_before.is_some()),
            ("field", self.field.is_some()),
            ("target_category", self.target_category.is_some()),
            ("target_field", self.target_field.is_some()),
            ("expr", self.expr.is_some()),
            ("scope", self.scope.is_some()),
            ("response", self.response.is_some()),
            ("within", self.within.is_some()),
            ("otherwise", self.otherwise.is_some()),
            ("otherwise_when", self.otherwise_when.is_some()),
            ("last", self.last.is_some()),
            ("role", self.role.is_some()),
        ]
        .into_iter()
        .find_map(|(k, set)| set.then_some(k))
    }
}

impl From<Rule> for RawRule {
    fn from(r: Rule) -> Self {
        let mut raw = RawRule {
            name: Some(r.name),
            description: r.description,
            kind: Some(r.kind.name().to_owned()),
            category: Some(r.category),
            when: r.when,
            over: r.over,
            severity: (r.severity != Verdict::Fail).then_some(r.severity),
            ..Default::default()
        };
        match r.kind {
            Kind::Freshness { max_age, warn_before } => (raw.max_age, raw.warn_before) = (Some(max_age), warn_before),
            Kind::Reference { field, target_category, target_field } => {
                (raw.field, raw.target_category, raw.target_field) =
                    (Some(field), Some(target_category), Some(target_field));
            }
            Kind::Check { expr, scope } => {
                raw.expr = Some(expr);
                raw.scope = (scope == Scope::All).then(|| "all".to_owned());
            }
            Kind::Approved { role } => raw.role = role,
            Kind::Response { response, within, otherwise, otherwise_when } => {
                (raw.response, raw.within, raw.otherwise, raw.otherwise_when) =
                    (Some(response), Some(within), otherwise, otherwise_when);
            }
            Kind::Aggregate { last, expr } => (raw.last, raw.expr) = (Some(last), Some(expr)),
        }
        raw
    }
}
