//! Checking a payload's JSON without building it: the text is walked as
//! `serde_json::Value` would parse it (numbers, strings and nesting checked
//! the same way), but only the top-level keys are kept, each with whether
//! its value is non-null (what the policy's required fields need). The same
//! pass enforces payload rule 2, I-JSON (FORMAT.md §3.4): unique member
//! names at every depth, no number of magnitude 2^53 or more. The writer
//! walks with [`shape`]; the verifier, checking stored payloads, with
//! [`kind`], the same walk keeping no keys.
//!
//! Owns: that walk, and where a rule-2 violation is. Must not: accept a
//! text `serde_json::Value` refuses, or parse the payload a second time.

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::collections::HashSet;

use serde::Deserializer;
use serde::de::{DeserializeSeed, Error, MapAccess, SeqAccess, Visitor};

/// The top-level fields of a JSON object, in text order: name and whether
/// the value is not null (names are unique: rule 2).
pub(super) type Fields = Vec<(String, bool)>;

/// The largest integer every JSON parser reads exactly (2^53 − 1).
const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// What a payload text is.
pub(super) enum Shape {
    /// an object and its fields
    Object(Fields),
    /// another JSON value: its kind ("an array", …)
    Other(&'static str),
}

/// One step of a JSON path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Step {
    /// an object member
    Name(String),
    /// an array element
    Index(usize),
}

/// Where a text breaks payload rule 2, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Violation {
    /// what is wrong
    pub reason: &'static str,
    /// the path from the payload's top, outermost first
    pub path: Vec<Step>,
}

impl Violation {
    /// The path as a field name: `payload.a.b[2]`, `payload["a b"]`.
    pub fn field(&self) -> String {
        let mut out = String::from("payload");
        for step in &self.path {
            match step {
                Step::Index(i) => out.push_str(&format!("[{i}]")),
                Step::Name(n)
                    if !n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') =>
                {
                    out.push('.');
                    out.push_str(n);
                }
                Step::Name(n) => out.push_str(&format!("[{}]", serde_json::Value::String(n.clone()))),
            }
        }
        out
    }
}

/// Why a text is not an acceptable payload.
#[derive(Debug)]
pub(super) enum Refused {
    /// not JSON (or too deep for the parser)
    Json(serde_json::Error),
    /// JSON, but not I-JSON (rule 2)
    Rule2(Violation),
}

/// Walks `text` as one JSON value; returns its shape and its nesting depth
/// (of `[`/`{`, as `json_depth` counts it). serde_json's recursion limit
/// (128) bounds the stack; a deeper text is an error here.
pub(super) fn shape(text: &str) -> Result<(Shape, usize), Refused> {
    let fields = RefCell::new(Vec::new());
    let (kind, depth) = walk_text(text, Some(&fields))?;
    let shape = match kind {
        "an object" => Shape::Object(fields.into_inner()),
        other => Shape::Other(other),
    };
    Ok((shape, depth))
}

/// The same walk as [`shape`], keeping no fields: the kind of the value
/// `text` holds ("an object", …) and its nesting depth. The verifier's
/// check of stored payloads.
pub(super) fn kind(text: &str) -> Result<(&'static str, usize), Refused> {
    walk_text(text, None)
}

/// The one walk behind [`shape`] and [`kind`]: the value's kind and depth,
/// the top-level names kept in `fields` when given.
fn walk_text(text: &str, fields: Option<&RefCell<Fields>>) -> Result<(&'static str, usize), Refused> {
    let (max, bad) = (Cell::new(0), RefCell::new(None));
    let mut de = serde_json::Deserializer::from_str(text);
    let walk = Walk { depth: 0, max: &max, fields, bad: &bad };
    let kind = de.deserialize_any(walk).and_then(|k| de.end().map(|()| k));
    match (kind, bad.into_inner()) {
        (Err(_), Some(mut v)) => {
            v.path.reverse(); // steps were noted innermost first, while unwinding
            Err(Refused::Rule2(v))
        }
        (Err(e), None) => Err(Refused::Json(e)),
        (Ok(kind), _) => Ok((kind, max.get())),
    }
}

/// Walks one JSON value nested `depth` deep, keeping the deepest nesting in
/// `max`; yields the value's kind ("null", "an object", …). With `fields`
/// (the top level), an object's names are kept there. A rule-2 violation
/// is recorded in `bad`, and each enclosing value adds its step while the
/// error unwinds.
#[derive(Clone, Copy)]
struct Walk<'a> {
    depth: usize,
    max: &'a Cell<usize>,
    fields: Option<&'a RefCell<Fields>>,
    bad: &'a RefCell<Option<Violation>>,
}

impl Walk<'_> {
    /// The walk of the values inside this one.
    fn inner(self) -> Self {
        self.max.set(self.max.get().max(self.depth + 1));
        Self { depth: self.depth + 1, max: self.max, fields: None, bad: self.bad }
    }

    /// Records a violation here; the error that carries it up.
    fn refuse<E: Error>(self, reason: &'static str) -> E {
        *self.bad.borrow_mut() = Some(Violation { reason, path: Vec::new() });
        E::custom(reason)
    }

    /// Adds `step` to a violation found inside it (a parse error has none).
    fn note<E>(self, step: impl FnOnce() -> Step, e: E) -> E {
        if let Some(v) = self.bad.borrow_mut().as_mut() {
            v.path.push(step());
        }
        e
    }

    fn integer<E: Error>(self, magnitude: u64) -> Result<&'static str, E> {
        if magnitude > MAX_SAFE_INTEGER {
            return Err(self.refuse("integer beyond 2^53, send it as a string"));
        }
        Ok("a number")
    }
}

/// The member names of one object, to find a repeated one (a linear scan
/// while few, a set beyond).
#[derive(Default)]
struct Names<'de> {
    few: Vec<Cow<'de, str>>,
    many: Option<HashSet<Cow<'de, str>>>,
}

impl<'de> Names<'de> {
    /// False when `name` was seen before.
    fn insert(&mut self, name: Cow<'de, str>) -> bool {
        if let Some(set) = &mut self.many {
            return set.insert(name);
        }
        if self.few.contains(&name) {
            return false;
        }
        self.few.push(name);
        if self.few.len() > 16 {
            self.many = Some(self.few.drain(..).collect());
        }
        true
    }
}

/// A member name, borrowed from the text unless it has escapes.
struct Name;

impl<'de> DeserializeSeed<'de> for Name {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Cow<'de, str>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Name {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a member name")
    }
    fn visit_borrowed_str<E: Error>(self, v: &'de str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Borrowed(v))
    }
    fn visit_str<E: Error>(self, v: &str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
    fn visit_string<E: Error>(self, v: String) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(v))
    }
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = &'static str;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<&'static str, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = &'static str;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E: Error>(self) -> Result<&'static str, E> {
        Ok("null")
    }
    fn visit_bool<E: Error>(self, _: bool) -> Result<&'static str, E> {
        Ok("a boolean")
    }
    fn visit_i64<E: Error>(self, v: i64) -> Result<&'static str, E> {
        self.integer(v.unsigned_abs())
    }
    fn visit_u64<E: Error>(self, v: u64) -> Result<&'static str, E> {
        self.integer(v)
    }
    fn visit_f64<E: Error>(self, v: f64) -> Result<&'static str, E> {
        // every double of magnitude 2^53 or more is an integer
        if v.abs() > MAX_SAFE_INTEGER as f64 {
            return Err(self.refuse("integer beyond 2^53, send it as a string"));
        }
        Ok("a number")
    }
    fn visit_str<E: Error>(self, _: &str) -> Result<&'static str, E> {
        Ok("a string")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<&'static str, A::Error> {
        let inner = self.inner();
        let mut i = 0;
        while seq.next_element_seed(inner).map_err(|e| self.note(|| Step::Index(i), e))?.is_some() {
            i += 1;
        }
        Ok("an array")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<&'static str, A::Error> {
        let inner = self.inner();
        let mut names = Names::default();
        while let Some(name) = map.next_key_seed(Name)? {
            if !names.insert(name.clone()) {
                let e = self.refuse("duplicate member name");
                return Err(self.note(|| Step::Name(name.into_owned()), e));
            }
            let kind = map.next_value_seed(inner).map_err(|e| self.note(|| Step::Name(name.to_string()), e))?;
            if let Some(fields) = self.fields {
                fields.borrow_mut().push((name.into_owned(), kind != "null"));
            }
        }
        Ok("an object")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The walk accepts exactly what `serde_json::Value` accepts, less what
    /// rule 2 refuses, and reports the same top-level fields.
    #[test]
    fn the_walk_agrees_with_serde_json_value() {
        let texts = [
            r#"{"a":1,"b":null,"c":[1,{"d":null}],"e":"x\u00e9\"","f":-1.5e3,"g":{}}"#,
            r#"{"a":null,"a":2}"#,
            r#"{"a":2,"a":null}"#,
            "{}",
            " { \"k\" : true } ",
            "[1,2]",
            "null",
            "\"s\"",
            "12",
            "1e400",
            "{\"a\":1e400}",
            "{\"a\":01}",
            "{\"a\":1,}",
            "{\"a\" 1}",
            "{\"a\":1} x",
            "{\"a\":\"\\ud800\"}",
            "{\"a\":\"\\x\"}",
            "[1,]",
            "{\"a\":[1 2]}",
            "",
            "{\"a\":tru}",
            "{\"a\":18446744073709551616}",
            "{\"a\":-9223372036854775809}",
            "[[1],[[2]],{\"a\":[[[]]]}]",
            "{\"a\":{\"b\":{\"[\":\"{{\"}}}",
        ];
        for text in texts {
            let value: Result<serde_json::Value, _> = serde_json::from_str(text);
            let walked = shape(text);
            if let Ok((_, depth)) = &walked {
                assert_eq!(*depth, super::super::json_depth(text.as_bytes()), "{text}");
            }
            let rule2 = [
                "{\"a\":null,\"a\":2}",
                "{\"a\":2,\"a\":null}",
                "{\"a\":18446744073709551616}",
                "{\"a\":-9223372036854775809}",
            ];
            if rule2.contains(&text) {
                assert!(value.is_ok() && matches!(walked, Err(Refused::Rule2(_))), "{text}: JSON, but not I-JSON");
                continue;
            }
            match (value, walked.map(|w| w.0)) {
                (Ok(serde_json::Value::Object(m)), Ok(Shape::Object(fields))) => {
                    for (k, v) in &m {
                        let last = fields.iter().rev().find(|(n, _)| n == k).map(|f| f.1);
                        assert_eq!(last, Some(!v.is_null()), "{text}: field {k}");
                    }
                    assert!(fields.iter().all(|(n, _)| m.contains_key(n)), "{text}");
                }
                (Ok(v), Ok(Shape::Other(kind))) => assert!(!v.is_object(), "{text} is {kind}"),
                (Err(_), Err(_)) => {}
                (v, s) => panic!("{text}: Value {:?}, walk {:?}", v.map(|_| ()), s.map(|_| ())),
            }
        }
    }

    fn refused(text: &str) -> (String, &'static str) {
        match shape(text) {
            Err(Refused::Rule2(v)) => (v.field(), v.reason),
            Err(Refused::Json(e)) => panic!("{text}: not JSON: {e}"),
            Ok(_) => panic!("{text}: accepted"),
        }
    }

    /// Rule 2 (FORMAT.md §3.4): a repeated member name at any depth and an
    /// number of magnitude 2^53 or more, however written, are refused,
    /// naming the member's path; the largest safe integers, fractions and
    /// the same name in two objects are not.
    #[test]
    fn rule_2_refuses_duplicates_and_unsafe_integers_naming_the_path() {
        let dup = "duplicate member name";
        let big = "integer beyond 2^53, send it as a string";
        let cases = [
            (r#"{"model":"m1","accepted":true,"accepted":false}"#, "payload.accepted", dup),
            (r#"{"x":{"y":1,"y":2}}"#, "payload.x.y", dup),
            (r#"{"a":[1,{"b":0,"c":1,"b":2}]}"#, "payload.a[1].b", dup),
            (r#"{"a\u0062":1,"ab":2}"#, "payload.ab", dup),
            (r#"{"n":123456789012345678901234567890}"#, "payload.n", big),
            (r#"{"n":9007199254740992}"#, "payload.n", big),
            (r#"{"n":-9007199254740992}"#, "payload.n", big),
            (r#"{"n":1e16}"#, "payload.n", big),
            (r#"{"list":[0,[1,2,9007199254740993]]}"#, "payload.list[1][2]", big),
            (r#"{"a b":{"c":1e300}}"#, r#"payload["a b"].c"#, big),
        ];
        for (text, field, reason) in cases {
            assert_eq!(refused(text), (field.to_owned(), reason), "{text}");
        }
        let many: String = (0..40).map(|i| format!("\"k{i}\":{i},")).collect();
        assert_eq!(refused(&format!("{{{many}\"k7\":0}}")), ("payload.k7".to_owned(), dup), "past the linear scan");
        for ok in [
            r#"{"n":9007199254740991,"m":-9007199254740991,"f":1.5e15,"g":0.1,"h":1e15,"e":-2.5e-300}"#,
            r#"{"a":{"x":1},"b":{"x":1},"c":[{"x":1},{"x":2}]}"#,
        ] {
            assert!(matches!(shape(ok), Ok((Shape::Object(_), _))), "{ok}");
        }
    }
}
