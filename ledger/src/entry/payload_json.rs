//! Checking a payload's JSON without building it: the text is walked as
//! `serde_json::Value` would parse it (numbers, strings and nesting checked
//! the same way, so exactly the same texts are accepted), but only the
//! top-level keys are kept, each with whether its value is non-null (what
//! the policy's required fields need).
//!
//! Owns: that walk. Must not: accept a text `serde_json::Value` refuses.

use std::cell::{Cell, RefCell};

use serde::Deserializer;
use serde::de::{DeserializeSeed, Error, MapAccess, SeqAccess, Visitor};

/// The top-level fields of a JSON object, in text order: name and whether
/// the value is not null (a repeated name: the last one counts).
pub(super) type Fields = Vec<(String, bool)>;

/// What a payload text is.
pub(super) enum Shape {
    /// an object and its fields
    Object(Fields),
    /// another JSON value: its kind ("an array", …)
    Other(&'static str),
}

/// Walks `text` as one JSON value; returns its shape and its nesting depth
/// (of `[`/`{`, as `json_depth` counts it). serde_json's recursion limit
/// (128) bounds the stack; a deeper text is an error here.
pub(super) fn shape(text: &str) -> Result<(Shape, usize), serde_json::Error> {
    let (max, fields) = (Cell::new(0), RefCell::new(Vec::new()));
    let mut de = serde_json::Deserializer::from_str(text);
    let kind = de.deserialize_any(Walk { depth: 0, max: &max, fields: Some(&fields) })?;
    de.end()?;
    let shape = match kind {
        "an object" => Shape::Object(fields.into_inner()),
        other => Shape::Other(other),
    };
    Ok((shape, max.get()))
}

/// Walks one JSON value nested `depth` deep, keeping the deepest nesting in
/// `max`; yields the value's kind ("null", "an object", …). With `fields`
/// (the top level), an object's names are kept there.
#[derive(Clone, Copy)]
struct Walk<'a> {
    depth: usize,
    max: &'a Cell<usize>,
    fields: Option<&'a RefCell<Fields>>,
}

impl Walk<'_> {
    /// The walk of the values inside this one.
    fn inner(self) -> Self {
        self.max.set(self.max.get().max(self.depth + 1));
        Self { depth: self.depth + 1, max: self.max, fields: None }
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
    fn visit_i64<E: Error>(self, _: i64) -> Result<&'static str, E> {
        Ok("a number")
    }
    fn visit_u64<E: Error>(self, _: u64) -> Result<&'static str, E> {
        Ok("a number")
    }
    fn visit_f64<E: Error>(self, _: f64) -> Result<&'static str, E> {
        Ok("a number")
    }
    fn visit_str<E: Error>(self, _: &str) -> Result<&'static str, E> {
        Ok("a string")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<&'static str, A::Error> {
        let inner = self.inner();
        while seq.next_element_seed(inner)?.is_some() {}
        Ok("an array")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<&'static str, A::Error> {
        let inner = self.inner();
        match self.fields {
            Some(fields) => {
                while let Some(name) = map.next_key::<String>()? {
                    let kind = map.next_value_seed(inner)?;
                    fields.borrow_mut().push((name, kind != "null"));
                }
            }
            None => {
                while map.next_key_seed(inner)?.is_some() {
                    map.next_value_seed(inner)?;
                }
            }
        }
        Ok("an object")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The walk accepts exactly what `serde_json::Value` accepts, and
    /// reports the same top-level fields.
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
}
