//! A rule's expression in CEL (the Common Expression Language,
//! <https://cel.dev>, evaluated by the `cel` crate): compiled once when the
//! policy is read, evaluated against an entry's `payload` and `entry`
//! variables, or an aggregate's `entries` list (docs/OPERATIONS.md
//! "Acceptance rules").
//!
//! Owns: compiling, the variables an expression sees and their values,
//! evaluation to a boolean. Must not: pick entries (`super::eval` does).

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use cel::{Context, Env, Program, Value};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::log::StoredEntry;

/// The standard CEL environment, built once.
static ENV: LazyLock<Arc<Env>> = LazyLock::new(|| Arc::new(Env::stdlib()));

/// A compiled CEL expression that must yield a boolean.
#[derive(Clone)]
pub struct Expr {
    source: String,
    program: Arc<Program>,
    /// it reads `entry` (else the variable is not built)
    uses_entry: bool,
}

impl Expr {
    /// Compiles `source`; the error is the parser's, with the position.
    pub fn new(source: &str) -> Result<Self, String> {
        if source.trim().is_empty() {
            return Err("is empty; give a CEL expression (e.g. payload.bundle == \"core-oem\")".into());
        }
        let program = ENV.compile(source).map_err(|e| format!("is not valid CEL: {}", one_line(&e.to_string())))?;
        let uses_entry = program.references().has_variable("entry");
        Ok(Self { source: source.to_owned(), program: Arc::new(program), uses_entry })
    }

    /// The text it was compiled from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Evaluates with `payload` and `entry` bound to `e`'s.
    pub fn holds(&self, e: &StoredEntry) -> Result<bool, String> {
        if self.uses_entry {
            self.eval(&[("payload", payload_value(e)), ("entry", entry_value(e))])
        } else {
            self.eval(&[("payload", payload_value(e))])
        }
    }

    /// Evaluates with the given variables; anything but a boolean is an error.
    pub fn eval(&self, vars: &[(&str, Value)]) -> Result<bool, String> {
        let mut ctx = Context::with_env(ENV.clone());
        for (name, v) in vars {
            ctx.add_variable_from_value(*name, v.clone());
        }
        match self.program.execute(&ctx) {
            Ok(Value::Bool(b)) => Ok(b),
            Ok(other) => Err(format!("{:?} yields {other:?}, not a boolean", self.source)),
            Err(err) => Err(format!("{:?} cannot be evaluated: {err}", self.source)),
        }
    }
}

fn one_line(s: &str) -> String {
    s.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ")
}

impl std::fmt::Debug for Expr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Expr({:?})", self.source)
    }
}

impl PartialEq for Expr {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for Expr {}

impl Serialize for Expr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.source)
    }
}

impl<'de> Deserialize<'de> for Expr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Expr::new(&s).map_err(|e| serde::de::Error::custom(format!("{s:?} {e}")))
    }
}

/// The entry's payload as a CEL map (`{}` when redacted or not an object).
pub fn payload_value(e: &StoredEntry) -> Value {
    match serde_json::from_slice::<serde_json::Value>(&e.payload) {
        Ok(v @ serde_json::Value::Object(_)) => json(&v),
        _ => Value::Map(HashMap::<String, Value>::new().into()),
    }
}

/// `entry`: seq, category, subject, actor, recorded_at and occurred_at
/// (unix ns; 0 when absent), redacted.
pub fn entry_value(e: &StoredEntry) -> Value {
    let l = &e.leaf;
    let mut m: HashMap<String, Value> = HashMap::new();
    m.insert("seq".into(), Value::Int(i64::try_from(e.seq).unwrap_or(i64::MAX)));
    m.insert("category".into(), Value::String(Arc::new(l.category.clone())));
    m.insert("subject".into(), Value::String(Arc::new(l.subject.clone())));
    m.insert("actor".into(), Value::String(Arc::new(l.actor.clone())));
    m.insert("recorded_at".into(), Value::Int(l.recorded_at));
    m.insert("occurred_at".into(), Value::Int(l.occurred_at));
    m.insert("redacted".into(), Value::Bool(e.redacted_by != 0));
    Value::Map(m.into())
}

/// JSON as CEL: whole numbers that fit are `int`, other numbers `double`.
pub fn json(v: &serde_json::Value) -> Value {
    use serde_json::Value as J;
    match v {
        J::Null => Value::Null,
        J::Bool(b) => Value::Bool(*b),
        J::Number(n) => n.as_i64().map_or_else(|| Value::Float(n.as_f64().unwrap_or(f64::NAN)), Value::Int),
        J::String(s) => Value::String(Arc::new(s.clone())),
        J::Array(a) => Value::List(Arc::new(a.iter().map(json).collect())),
        J::Object(o) => {
            let m: HashMap<String, Value> = o.iter().map(|(k, v)| (k.clone(), json(v))).collect();
            Value::Map(m.into())
        }
    }
}
