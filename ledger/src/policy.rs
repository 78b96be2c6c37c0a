//! Category policy: which categories exist, their required payload fields
//! and their allowed writers. Defaults cover the two playbooks.
//!
//! Owns: the policy check of a validated entry. Must not: read config files
//! (the server deserialises [`Policy`] from its own config).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::entry::NewEntry;

/// Categories only ledgerd's audited admin actions write (FORMAT.md §6.4,
/// docs/SECURITY.md; `admin_request`: dual control's requests): a client's
/// Append of one is refused.
pub const ADMIN_CATEGORIES: [&str; 5] = ["redaction", "reindex", "policy_reload", "key_rotation", "admin_request"];

/// A policy refusal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The category is not declared.
    #[error("invalid category: {category:?} is not declared in the policy")]
    Undeclared {
        /// the category
        category: String,
    },
    /// The actor may not write this category.
    #[error("{actor:?} may not write category {category:?}")]
    NotAllowed {
        /// who tried
        actor: String,
        /// the category
        category: String,
    },
    /// The category is written only by admin actions.
    #[error(
        "category {category:?} is reserved for ledgerd's admin actions (redaction, reindex, policy reload, key rotation, dual-control requests); use the admin and keys commands"
    )]
    Reserved {
        /// the category
        category: String,
    },
    /// Required payload fields are missing.
    #[error("category {category:?} requires payload fields missing here: {}", fields.join(", "))]
    MissingFields {
        /// the category
        category: String,
        /// the missing fields
        fields: Vec<String>,
    },
}

/// Rules for one category.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CategoryPolicy {
    /// top-level payload fields that must be present (and not null)
    #[serde(default)]
    pub required: Vec<String>,
    /// actors allowed to write it; absent = any authenticated writer
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub writers: Option<Vec<String>>,
    /// four eyes: its entries (those matching `when`) wait for an
    /// `approval` entry by a holder of `role` (docs/SECURITY.md)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requires_approval: Option<crate::approval::ApprovalRule>,
}

/// The categories of a log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// declared categories (absent: the default ones, so that a policy
    /// may add rules alone)
    #[serde(default = "default_categories")]
    pub categories: BTreeMap<String, CategoryPolicy>,
    /// accept categories that are not declared (no required fields)
    #[serde(default)]
    pub allow_undeclared: bool,
    /// the playbooks' acceptance rules (`ledger compliance check`,
    /// crate::rules); checked by [`Policy::check_rules`]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<crate::rules::Rule>,
}

impl Default for Policy {
    fn default() -> Self {
        let req = |fields: &[&str]| CategoryPolicy {
            required: fields.iter().map(|s| s.to_string()).collect(),
            writers: None,
            requires_approval: None,
        };
        let categories = [
            ("stage4_incident", req(&[])),
            ("stage5_incident", req(&["tco_kpi", "decision_path", "rotation_event_id"])),
            ("stage5_training", req(&[])),
            // Alertmanager's notifications (POST /alertmanager/v1/<log>,
            // docs/API.md) and their acknowledgements (`ledger ack`).
            ("alert_fired", req(&["fingerprint"])),
            ("alert_resolved", req(&["fingerprint"])),
            ("alert_ack", req(&[])),
            ("key_rotation", req(&["rotation_event_id"])),
            ("override", req(&["component", "reason"])),
            ("compliance_audit", req(&[])),
            ("tco_report", req(&[])),
            ("smoke_test", req(&[])),
            ("decision_evaluation", req(&["model", "accepted"])),
            ("artifact", req(&["name"])),
            // Records of the platform the playbooks run, apart from the
            // ledger's own (`key_rotation` is ledgerd's own keys, written
            // only by `ledger keys rotate`): a rotation of one of its TLS or
            // RBAC key bundles (`kind`: "tls" or "rbac"; `not_after`: the new
            // key's end of validity), and an OEM acceptance run.
            ("platform_key_rotation", req(&["bundle", "kind", "not_after"])),
            ("acceptance_run", req(&[])),
            // The entry that ends each run of `ledger import` (docs/CLI.md).
            ("import", req(&["source_sha256"])),
            // A second person's approval or sign-off of an entry (`ledger
            // approve`, crate::approval).
            ("approval", req(&["approved_seq", "approved_leaf_hash", "reason"])),
        ];
        Self {
            categories: categories.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
            allow_undeclared: false,
            rules: Vec::new(),
        }
    }
}

fn default_categories() -> BTreeMap<String, CategoryPolicy> {
    Policy::default().categories
}

impl Policy {
    /// The required fields of a category.
    pub fn required(&self, category: &str) -> &[String] {
        self.categories.get(category).map_or(&[], |c| &c.required)
    }

    /// Checks the rules as a set: unique names, declared categories.
    pub fn check_rules(&self) -> Result<(), crate::rules::RulesError> {
        self.check_rule_set(&self.rules)
    }

    /// Checks `rules` (its own or others to evaluate against this log) as
    /// a set against this policy's categories.
    pub fn check_rule_set(&self, rules: &[crate::rules::Rule]) -> Result<(), crate::rules::RulesError> {
        crate::rules::check_set(rules, |c| self.allow_undeclared || self.categories.contains_key(c))
    }

    /// Checks an entry against the policy.
    pub fn check(&self, e: &NewEntry) -> Result<(), PolicyError> {
        let category = e.category.as_str();
        let Some(rule) = self.categories.get(category) else {
            return if self.allow_undeclared {
                Ok(())
            } else {
                Err(PolicyError::Undeclared { category: category.to_owned() })
            };
        };
        if let Some(writers) = &rule.writers
            && !writers.iter().any(|w| w == e.actor.as_str())
        {
            return Err(PolicyError::NotAllowed { actor: e.actor.to_string(), category: category.to_owned() });
        }
        let missing: Vec<String> = rule.required.iter().filter(|f| !e.payload.has_field(f)).cloned().collect();
        if !missing.is_empty() {
            return Err(PolicyError::MissingFields { category: category.to_owned(), fields: missing });
        }
        Ok(())
    }
}
