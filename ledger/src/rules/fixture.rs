//! A file-store log with a hand-set clock for the rules' tests.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use serde_json::{Value, json};

use super::{AsOf, Outcome, Rule, evaluate};
use crate::policy::Policy;

/// 2026-11-01T00:00:00Z
pub const T0: i64 = 1_793_491_200 * 1_000_000_000;
pub const MIN: i64 = 60 * 1_000_000_000;
pub const DAY: i64 = 86_400 * 1_000_000_000;

pub struct Log {
    _dir: tempfile::TempDir,
    pub log: crate::Ledger,
    clock: Arc<AtomicI64>,
}

/// The rules of a `[[policy.rules]]` file.
pub fn rules(toml_text: &str) -> Result<Vec<Rule>, String> {
    toml::from_str::<super::RulesFile>(toml_text).map(|f| f.policy.rules).map_err(|e| e.to_string())
}

impl Log {
    /// Any category, no required fields.
    pub fn new() -> Self {
        Self::with(Policy { categories: Default::default(), allow_undeclared: true, rules: Vec::new() })
    }

    /// The default categories, with their required fields.
    pub fn with(policy: Policy) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(AtomicI64::new(T0));
        let mut opts = crate::LogOptions::new("test.local/rules");
        let c = clock.clone();
        opts.clock = Arc::new(move || c.load(Ordering::SeqCst));
        opts.policy = policy;
        let (log, _) = crate::store::file::open(dir.path(), opts).unwrap();
        Self { _dir: dir, log, clock }
    }

    /// Sets the clock to `T0 + t`.
    pub fn at(&self, t: i64) -> &Self {
        self.clock.store(T0 + t, Ordering::SeqCst);
        self
    }

    pub fn now(&self) -> i64 {
        self.clock.load(Ordering::SeqCst)
    }

    /// Appends; returns the seq.
    pub fn add(&self, category: &str, subject: &str, payload: Value) -> u64 {
        self.add_as("svc", category, subject, payload)
    }

    pub fn add_as(&self, actor: &str, category: &str, subject: &str, payload: Value) -> u64 {
        let e = crate::EntryInput {
            category: category.into(),
            subject: subject.into(),
            payload: payload.to_string().into_bytes(),
            ..Default::default()
        };
        self.log.append(e.validate(actor, &Default::default()).unwrap()).unwrap().seq
    }

    /// An approval of `seq` (as `role`, when given) by "ann".
    pub fn approve(&self, seq: u64, role: Option<&str>) -> u64 {
        let hash = hex::encode(self.log.reader().get(seq).unwrap().leaf_hash);
        let mut p = json!({"approved_seq": seq, "approved_leaf_hash": hash, "reason": "checked"});
        if let Some(r) = role {
            p["role"] = r.into();
        }
        self.add_as("ann", "approval", "", p)
    }

    /// Every rule, over the whole log at the clock's time.
    pub fn eval(&self, rules: &[Rule]) -> Vec<Outcome> {
        let r = self.log.reader();
        evaluate(&r, rules, AsOf::current(&r, self.now())).unwrap()
    }
}

/// The outcome of the rule named `name`.
pub fn of<'a>(out: &'a [Outcome], name: &str) -> &'a Outcome {
    out.iter().find(|o| o.rule == name).unwrap_or_else(|| panic!("no outcome for {name}"))
}
