//! One decision-log line: every check the CLI can make before anything is
//! written, and the entry it becomes.
//!
//! Owns: the line → entry mapping (category, subject, occurred_at from the
//! named fields; the payload is the line's own text with an `import` member
//! added) and the reason a line is bad. Must not: send anything, or change
//! a byte of the line's own text (the payload carries it as it is).

use ledger::entry::Limits;
use ledger::policy::{ADMIN_CATEGORIES, Policy, PolicyError};
use ledger::{EntryInput, ValidationError};
use ledger_proto::v1 as pb;
use serde_json::{Map, Value, json};

use super::oldsig::{OldKey, Verdict};
use super::when;

/// The category of the entry `ledger import` closes a run with; a line may
/// not claim it.
pub const IMPORT_CATEGORY: &str = "import";

/// Where each line keeps what, and the checks to make.
pub struct Spec {
    /// `--category-field`
    pub category: String,
    /// `--subject-field`
    pub subject: String,
    /// `--time-field`
    pub time: String,
    /// `--hmac-key` and `--hmac-field`
    pub hmac: Option<(OldKey, String)>,
    /// ledgerd's default policy, unless `--no-policy-check`
    pub policy: Option<Policy>,
    /// the limits an entry is checked against (ledgerd's defaults)
    pub limits: Limits,
}

/// The source file's part in each entry: its hash and request id prefix.
pub struct Source {
    /// hex SHA-256 of the file
    pub sha256: String,
    /// check each line's own signature (else its verdict is a stand-in)
    pub verdicts: bool,
}

impl Source {
    /// The file with hash `sha256` (hex).
    pub fn new(sha256: String) -> Self {
        Self { sha256, verdicts: true }
    }

    /// The first pass's stand-in, before the hash is known: entries of the
    /// same size as the real ones (a zero hash, and `mismatch`, the longest
    /// verdict, for each signature, unchecked).
    pub fn stand_in() -> Self {
        Self { sha256: "0".repeat(64), verdicts: false }
    }

    /// The request id of line `n`: `import-<32 hex digits of the file hash>-<n>`.
    pub fn request_id(&self, n: &str) -> String {
        format!("import-{}-{n}", &self.sha256[..32])
    }
}

/// A line that passed every check.
#[derive(Debug)]
pub struct Good {
    /// what to send
    pub entry: pb::EntryInput,
    /// its own signature's verdict, with `--hmac-key`
    pub verdict: Option<Verdict>,
}

/// Why a line is bad.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LineFault {
    /// Nothing but whitespace.
    #[error("empty line")]
    Empty,
    /// Longer than a payload may be.
    #[error("{len} bytes, more than the {max} bytes of a payload")]
    TooLong {
        /// the line's length
        len: u64,
        /// the payload limit
        max: usize,
    },
    /// Not JSON.
    #[error("not valid JSON: {0}")]
    NotJson(String),
    /// JSON, but not an object.
    #[error("not a JSON object (got {0})")]
    NotObject(&'static str),
    /// It has the member `import` holds the import's own metadata in.
    #[error("has a member \"import\", where ledger import records its metadata (rename it in the file)")]
    ImportMember,
    /// A field named by a flag is absent or null.
    #[error("field {field:?} ({flag}) is missing")]
    Missing {
        /// the flag naming the field
        flag: &'static str,
        /// the field
        field: String,
    },
    /// A field named by a flag has the wrong kind or value.
    #[error("field {field:?} ({flag}): {why}")]
    BadField {
        /// the flag naming the field
        flag: &'static str,
        /// the field
        field: String,
        /// what is wrong
        why: String,
    },
    /// The entry would be invalid (the field and reason as ledgerd names them).
    #[error("the entry would be invalid: {0}")]
    Invalid(ValidationError),
    /// ledgerd's default policy would refuse it.
    #[error("{0} (ledgerd's default policy; --no-policy-check for a ledgerd configured otherwise)")]
    Policy(PolicyError),
}

impl Spec {
    /// Checks line `number` (`text`: its bytes, `len`: its full length) and
    /// builds its entry for `source`.
    pub fn check(&self, number: u64, text: &[u8], len: u64, source: &Source) -> Result<Good, LineFault> {
        if len > self.limits.max_payload_bytes as u64 {
            return Err(LineFault::TooLong { len, max: self.limits.max_payload_bytes });
        }
        if text.trim_ascii().is_empty() {
            return Err(LineFault::Empty);
        }
        let obj = match serde_json::from_slice::<Value>(text) {
            Ok(Value::Object(o)) => o,
            Ok(other) => return Err(LineFault::NotObject(when::kind(&other))),
            Err(e) => return Err(LineFault::NotJson(e.to_string())),
        };
        if obj.contains_key("import") {
            return Err(LineFault::ImportMember);
        }
        let category = self.category(&obj)?;
        let subject = text_field(&obj, "--subject-field", &self.subject)?;
        let time = obj.get(&self.time).filter(|v| !v.is_null()).ok_or_else(|| missing("--time-field", &self.time))?;
        let occurred_at = when::parse(time).map_err(|why| bad("--time-field", &self.time, why))?;
        let verdict = self.hmac.as_ref().map(|(key, field)| match source.verdicts {
            true => key.verdict(&obj, field),
            false => Verdict::Mismatch,
        });
        let meta = meta(number, text, source, verdict);
        let entry = EntryInput {
            category: category.to_owned(),
            subject: subject.to_owned(),
            payload: splice(text, &meta),
            occurred_at,
            request_id: source.request_id(&number.to_string()),
            artifacts: Vec::new(),
        };
        self.validate(entry.clone())?;
        Ok(Good { entry: to_proto(entry), verdict })
    }

    /// The category field: a string no admin action or import reserves.
    fn category<'a>(&self, obj: &'a Map<String, Value>) -> Result<&'a str, LineFault> {
        let c = text_field(obj, "--category-field", &self.category)?;
        let reserved = if c == IMPORT_CATEGORY {
            "the import entry that ends each run of ledger import"
        } else if ADMIN_CATEGORIES.contains(&c) {
            "ledgerd's admin actions (ledgerd refuses it from a client)"
        } else {
            return Ok(c);
        };
        Err(bad("--category-field", &self.category, format!("category {c:?} is reserved for {reserved}")))
    }

    /// ledgerd's own validation (limits as by default), and the policy.
    fn validate(&self, entry: EntryInput) -> Result<(), LineFault> {
        let e = entry.validate("ledger-import", &self.limits).map_err(|v| self.named(v))?;
        match &self.policy {
            Some(p) => p.check(&e).map_err(LineFault::Policy),
            None => Ok(()),
        }
    }

    /// A validation error on the category or subject names its field and flag.
    fn named(&self, v: ValidationError) -> LineFault {
        match v.field.as_str() {
            "category" => bad("--category-field", &self.category, v.to_string()),
            "subject" => bad("--subject-field", &self.subject, v.to_string()),
            _ => LineFault::Invalid(v),
        }
    }
}

fn missing(flag: &'static str, field: &str) -> LineFault {
    LineFault::Missing { flag, field: field.to_owned() }
}

fn bad(flag: &'static str, field: &str, why: String) -> LineFault {
    LineFault::BadField { flag, field: field.to_owned(), why }
}

/// The string in `field` of `obj` (absent or null: missing).
fn text_field<'a>(obj: &'a Map<String, Value>, flag: &'static str, field: &str) -> Result<&'a str, LineFault> {
    match obj.get(field) {
        None | Some(Value::Null) => Err(missing(flag, field)),
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(bad(flag, field, format!("must be a string, got {}", when::kind(other)))),
    }
}

/// The `import` member of line `number`'s entry.
fn meta(number: u64, text: &[u8], source: &Source, verdict: Option<Verdict>) -> Value {
    let mut m = json!({
        "source_sha256": source.sha256,
        "line": number,
        "line_sha256": hex::encode(ledger::hash::sha256(text)),
    });
    if let Some(v) = verdict {
        m["hmac"] = json!(v.name());
    }
    m
}

/// The line's object text with `"import": meta` added as its last member.
fn splice(text: &[u8], meta: &Value) -> Vec<u8> {
    let t = text.trim_ascii();
    let inner = &t[..t.len() - 1]; // an object: it ends with '}'
    let empty = inner[1..].trim_ascii().is_empty();
    let mut out = Vec::with_capacity(t.len() + 200);
    out.extend_from_slice(inner);
    out.extend_from_slice(if empty { b"\"import\":" } else { b",\"import\":" });
    serde_json::to_writer(&mut out, meta).expect("serialisable");
    out.push(b'}');
    out
}

fn to_proto(e: EntryInput) -> pb::EntryInput {
    pb::EntryInput {
        category: e.category,
        subject: e.subject,
        payload: e.payload,
        occurred_at: e.occurred_at,
        request_id: e.request_id,
        artifacts: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Spec {
        Spec {
            category: "cat".into(),
            subject: "id".into(),
            time: "ts".into(),
            hmac: None,
            policy: Some(Policy::default()),
            limits: Limits::default(),
        }
    }

    fn src() -> Source {
        Source::new("ab".repeat(32))
    }

    fn check(line: &str) -> Result<Good, String> {
        spec().check(7, line.as_bytes(), line.len() as u64, &src()).map_err(|e| e.to_string())
    }

    #[test]
    fn a_good_line_keeps_its_text_and_gains_the_import_member() {
        let line = r#"{"cat":"alert_ack", "id":"INC-1","ts":"2026-11-21T10:00:00Z","x":[1,2]}"#;
        let g = check(line).unwrap();
        let payload = String::from_utf8(g.entry.payload).unwrap();
        assert!(payload.starts_with(&line[..line.len() - 1]), "{payload}");
        let v: Value = serde_json::from_str(&payload).unwrap();
        assert_eq!(v["import"]["line"], 7);
        assert_eq!(v["import"]["source_sha256"], "ab".repeat(32));
        assert_eq!(v["import"]["line_sha256"], hex::encode(ledger::hash::sha256(line.as_bytes())));
        assert!(v["import"].get("hmac").is_none());
        assert_eq!((g.entry.category.as_str(), g.entry.subject.as_str()), ("alert_ack", "INC-1"));
        assert_eq!(g.entry.occurred_at, 1_795_255_200_000_000_000);
        assert_eq!(g.entry.request_id, format!("import-{}-7", "ab".repeat(16)));
        let empty = splice(b" {  } ", &json!({"line": 1}));
        assert_eq!(empty, br#"{  "import":{"line":1}}"#);
    }

    #[test]
    fn bad_lines_are_named_with_their_field_and_flag() {
        let t = r#""ts":"2026-11-21T10:00:00Z""#;
        for (line, want) in [
            ("  ".to_owned(), "empty line".to_owned()),
            ("{\"cat\":".to_owned(), "not valid JSON: ".to_owned()),
            ("[1]".to_owned(), "not a JSON object (got an array)".to_owned()),
            (format!(r#"{{"id":"I",{t}}}"#), r#"field "cat" (--category-field) is missing"#.to_owned()),
            (format!(r#"{{"cat":1,"id":"I",{t}}}"#), "must be a string, got a number".to_owned()),
            (
                format!(r#"{{"cat":"Alert","id":"I",{t}}}"#),
                r#"field "cat" (--category-field): invalid category"#.into(),
            ),
            (format!(r#"{{"cat":"alert_ack",{t}}}"#), r#"field "id" (--subject-field) is missing"#.to_owned()),
            (r#"{"cat":"alert_ack","id":"I"}"#.to_owned(), r#"field "ts" (--time-field) is missing"#.to_owned()),
            (r#"{"cat":"alert_ack","id":"I","ts":"now"}"#.to_owned(), "not an RFC 3339 time".to_owned()),
            (format!(r#"{{"cat":"key_rotation","id":"I",{t}}}"#), "reserved for ledgerd's admin actions".into()),
            (format!(r#"{{"cat":"import","id":"I",{t}}}"#), "reserved for the import entry".to_owned()),
            (format!(r#"{{"cat":"nope","id":"I",{t}}}"#), "not declared in the policy".to_owned()),
            (format!(r#"{{"cat":"override","id":"I",{t}}}"#), "requires payload fields missing here".into()),
            (format!(r#"{{"cat":"alert_ack","id":"I",{t},"import":1}}"#), "has a member \"import\"".into()),
            (format!(r#"{{"cat":"alert_ack","id":"I",{t},"a":1,"a":2}}"#), "payload.a: duplicate member".into()),
            (format!(r#"{{"cat":"alert_ack","id":"I",{t},"n":1e16}}"#), "payload.n: ".into()),
        ] {
            let e = check(&line).err().unwrap_or_else(|| panic!("{line} passed"));
            assert!(e.contains(&want), "{line}: {e}");
        }
        let long = format!(r#"{{"cat":"alert_ack","id":"I",{t},"x":"{}"}}"#, "y".repeat(70_000));
        assert!(check(&long).unwrap_err().contains("more than the 65536 bytes"));
    }

    #[test]
    fn without_the_policy_check_undeclared_categories_pass() {
        let mut s = spec();
        s.policy = None;
        let line = r#"{"cat":"legacy_note","id":"I","ts":1795255200}"#;
        assert!(s.check(1, line.as_bytes(), line.len() as u64, &src()).is_ok());
    }
}
