//! The decision log's own signatures: each line's HMAC-SHA256, checked
//! with the log's old key, as a verdict (`ok`, `mismatch`, `missing`).
//!
//! The scheme assumed (the playbooks say only "signed with HMAC", docs/CLI.md
//! "ledger import"): the field `--hmac-field` holds HMAC-SHA256(key, text),
//! hex or base64, where text is the line's object without that field as
//! Python's `json.dumps(obj, sort_keys=True, separators=(",", ":"))` writes
//! it — with `ensure_ascii` (the default) or, also accepted, without.
//!
//! Owns: the old key and the verdict. Must not: show the key — in output,
//! errors, entries or `Debug` — nor hide a mismatch.

use std::path::Path;

use base64::Engine as _;
use serde_json::{Map, Value};

/// The verdict on one line's signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// it is the HMAC of the line's other fields under the key
    Ok,
    /// it is not (the line changed after signing, or another key or scheme)
    Mismatch,
    /// the line has no signature (field absent, null or empty)
    Missing,
}

impl Verdict {
    /// The name recorded in entries and counts.
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Mismatch => "mismatch",
            Verdict::Missing => "missing",
        }
    }
}

/// Why the key file cannot be used (never its content).
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// It cannot be read.
    #[error("--hmac-key {path}: {source}")]
    Unreadable {
        /// the file
        path: String,
        /// the OS error
        source: std::io::Error,
    },
    /// It holds nothing.
    #[error("--hmac-key {path}: the file is empty (expected the decision log's HMAC key)")]
    Empty {
        /// the file
        path: String,
    },
}

/// The old key; its bytes never leave this type.
pub struct OldKey(Vec<u8>);

impl std::fmt::Debug for OldKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OldKey(<secret>)")
    }
}

impl OldKey {
    /// Reads the key: the file's bytes, less one trailing `\n` or `\r\n`.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let shown = path.display().to_string();
        let mut b = std::fs::read(path).map_err(|source| KeyError::Unreadable { path: shown.clone(), source })?;
        if b.ends_with(b"\n") {
            b.pop();
            if b.ends_with(b"\r") {
                b.pop();
            }
        }
        if b.is_empty() {
            return Err(KeyError::Empty { path: shown });
        }
        Ok(Self(b))
    }

    /// The verdict on `obj`'s signature in `field`.
    pub fn verdict(&self, obj: &Map<String, Value>, field: &str) -> Verdict {
        let tag = match obj.get(field) {
            None | Some(Value::Null) => return Verdict::Missing,
            Some(Value::String(s)) if s.is_empty() => return Verdict::Missing,
            Some(Value::String(s)) => match decode_tag(s) {
                Some(t) => t,
                None => return Verdict::Mismatch,
            },
            Some(_) => return Verdict::Mismatch,
        };
        let mut rest = obj.clone();
        rest.remove(field);
        let rest = Value::Object(rest);
        let ascii = canonical(&rest, true);
        if self.matches(&ascii, &tag) {
            return Verdict::Ok;
        }
        let utf8 = canonical(&rest, false);
        if utf8 != ascii && self.matches(&utf8, &tag) { Verdict::Ok } else { Verdict::Mismatch }
    }

    fn matches(&self, text: &str, tag: &[u8; 32]) -> bool {
        let mac = ledger::hmac_tag::hmac_sha256(&self.0, text.as_bytes());
        mac.iter().zip(tag).fold(0u8, |d, (a, b)| d | (a ^ b)) == 0
    }
}

/// A 32-byte tag from hex (either case) or base64 (standard or URL-safe,
/// padded or not).
fn decode_tag(s: &str) -> Option<[u8; 32]> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let s = s.trim();
    let bytes = hex::decode(s)
        .ok()
        .or_else(|| [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD].iter().find_map(|e| e.decode(s).ok()))?;
    bytes.try_into().ok()
}

/// `v` as Python's `json.dumps(v, sort_keys=True, separators=(",", ":"),
/// ensure_ascii=ascii)` writes it (serde_json's maps are sorted by key, the
/// order of Python's `sort_keys` for str keys).
pub fn canonical(v: &Value, ascii: bool) -> String {
    let mut out = String::new();
    write_value(&mut out, v, ascii);
    out
}

fn write_value(out: &mut String, v: &Value, ascii: bool) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => out.push_str(&i.to_string()),
            (_, Some(u), _) => out.push_str(&u.to_string()),
            (_, _, Some(f)) => out.push_str(&python_float(f)),
            _ => out.push_str(&n.to_string()),
        },
        Value::String(s) => write_string(out, s, ascii),
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, x, ascii);
            }
            out.push(']');
        }
        Value::Object(m) => {
            out.push('{');
            for (i, (k, x)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(out, k, ascii);
                out.push(':');
                write_value(out, x, ascii);
            }
            out.push('}');
        }
    }
}

/// A JSON string as Python escapes it: `\"`, `\\`, `\n`, `\r`, `\t`, `\b`,
/// `\f`, other controls as `\u00xx`; with `ascii`, every character outside
/// `' '..='~'` (DEL and non-ASCII) as `\uxxxx` (UTF-16, lowercase hex).
fn write_string(out: &mut String, s: &str, ascii: bool) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (ascii && !(' '..='~').contains(&c)) => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{u:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A float as Python's `repr`: the shortest digits that round-trip, fixed
/// notation for 1e-4 <= |f| < 1e16 (with `.0` when integral), else
/// `d[.ddd]e±XX`.
pub fn python_float(f: f64) -> String {
    let sci = format!("{f:e}"); // shortest round-trip digits: "-1.5e-7", "1e16", "0e0"
    let (mantissa, exp) = sci.split_once('e').expect("LowerExp has an exponent");
    let exp: i32 = exp.parse().expect("LowerExp exponent");
    let (sign, mantissa) = mantissa.strip_prefix('-').map_or(("", mantissa), |m| ("-", m));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    if f != 0.0 && !(-4..16).contains(&exp) {
        let (first, rest) = digits.split_at(1);
        let dot = if rest.is_empty() { String::new() } else { format!(".{rest}") };
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{first}{dot}e{esign}{:02}", exp.abs());
    }
    let point = exp + 1; // digits before the decimal point
    let body = if point <= 0 {
        format!("0.{}{digits}", "0".repeat((-point) as usize))
    } else if point as usize >= digits.len() {
        format!("{digits}{}.0", "0".repeat(point as usize - digits.len()))
    } else {
        let (int, frac) = digits.split_at(point as usize);
        format!("{int}.{frac}")
    };
    format!("{sign}{body}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn floats_print_as_python_repr() {
        // Each pair is (value, Python 3's repr of it).
        for (f, py) in [
            (1.0, "1.0"),
            (0.1, "0.1"),
            (-0.0, "-0.0"),
            (0.0, "0.0"),
            (1.5, "1.5"),
            (100000.0, "100000.0"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (1e16, "1e+16"),
            (9007199254740991.0, "9007199254740991.0"),
            (1.5e300, "1.5e+300"),
            (123.456, "123.456"),
            (-2.5e-10, "-2.5e-10"),
            (0.0042, "0.0042"),
        ] {
            assert_eq!(python_float(f), py, "{f}");
        }
    }

    #[test]
    fn canonical_text_is_pythons_sorted_compact_dump() {
        let v = json!({"b": [1, 2.0, "x"], "a": {"z": null, "y": true}, "é": "ü\n\"😀", "c": -3});
        // json.dumps(v, sort_keys=True, separators=(",", ":"))
        assert_eq!(
            canonical(&v, true),
            r#"{"a":{"y":true,"z":null},"b":[1,2.0,"x"],"c":-3,"\u00e9":"\u00fc\n\"\ud83d\ude00"}"#
        );
        // the same with ensure_ascii=False
        assert_eq!(
            canonical(&v, false),
            "{\"a\":{\"y\":true,\"z\":null},\"b\":[1,2.0,\"x\"],\"c\":-3,\"é\":\"ü\\n\\\"😀\"}"
        );
        assert_eq!(canonical(&json!({"k": "\u{1}\u{7f}"}), true), r#"{"k":"\u0001\u007f"}"#);
        assert_eq!(canonical(&json!({"k": "\u{1}\u{7f}"}), false), "{\"k\":\"\\u0001\u{7f}\"}");
    }

    #[test]
    fn verdicts() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("key");
        std::fs::write(&p, "old-secret\n").unwrap();
        let key = OldKey::load(&p).unwrap();
        assert_eq!(format!("{key:?}"), "OldKey(<secret>)");
        let mut line = json!({"category": "alert_ack", "n": 1, "note": "żółw"});
        let text = canonical(&line, true);
        let tag = ledger::hmac_tag::hmac_sha256(b"old-secret", text.as_bytes());
        let obj = |v: &Value| v.as_object().unwrap().clone();
        line["sig"] = json!(hex::encode(tag));
        assert_eq!(key.verdict(&obj(&line), "sig"), Verdict::Ok);
        line["sig"] = json!(base64::engine::general_purpose::STANDARD.encode(tag));
        assert_eq!(key.verdict(&obj(&line), "sig"), Verdict::Ok);
        line["n"] = json!(2);
        assert_eq!(key.verdict(&obj(&line), "sig"), Verdict::Mismatch);
        line["sig"] = json!("not a tag");
        assert_eq!(key.verdict(&obj(&line), "sig"), Verdict::Mismatch);
        line["sig"] = Value::Null;
        assert_eq!(key.verdict(&obj(&line), "sig"), Verdict::Missing);
        // signed without ensure_ascii
        let mut line = json!({"note": "żółw"});
        let tag = ledger::hmac_tag::hmac_sha256(b"old-secret", canonical(&line, false).as_bytes());
        line["sig"] = json!(hex::encode(tag));
        assert_eq!(key.verdict(&obj(&line), "sig"), Verdict::Ok);
        std::fs::write(&p, "\n").unwrap();
        assert!(matches!(OldKey::load(&p), Err(KeyError::Empty { .. })));
    }
}
