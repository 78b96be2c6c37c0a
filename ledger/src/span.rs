//! A length of time as policies write it: a whole number of `s`, `m`, `h`
//! or `d` (`"90s"`, `"5m"`, `"4h"`, `"7d"`).
//!
//! Owns: that syntax. Must not: know what the length limits.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Nanoseconds in `text`, or why it is not a length of time.
pub fn parse_ns(text: &str) -> Result<i64, String> {
    let bad = || format!("{text:?}: give a whole number of s, m, h or d (e.g. \"4h\", \"7d\")");
    let units = [("s", 1), ("m", 60), ("h", 3600), ("d", 86_400)];
    let (n, secs) = units.iter().find_map(|(u, secs)| text.strip_suffix(u).map(|n| (n, *secs))).ok_or_else(bad)?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n: i64 = n.parse().map_err(|_| bad())?;
    n.checked_mul(secs * 1_000_000_000).filter(|ns| *ns > 0).ok_or_else(bad)
}

/// A validated length of time; serialised as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    text: String,
    ns: i64,
}

impl Span {
    /// Parses `text` (see [`parse_ns`]).
    pub fn new(text: &str) -> Result<Self, String> {
        Ok(Self { ns: parse_ns(text)?, text: text.to_owned() })
    }

    /// Its length in nanoseconds (> 0).
    pub fn ns(&self) -> i64 {
        self.ns
    }

    /// As written.
    pub fn text(&self) -> &str {
        &self.text
    }
}

impl std::fmt::Display for Span {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for Span {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Span::new(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// `ns` as a short human length: `9d 2h`, `4m 10s`, `0s`.
pub fn human(ns: i64) -> String {
    let s = (ns / 1_000_000_000).max(0);
    let parts = [(s / 86_400, "d"), (s % 86_400 / 3600, "h"), (s % 3600 / 60, "m"), (s % 60, "s")];
    let out: Vec<String> = parts.iter().filter(|(n, _)| *n > 0).take(2).map(|(n, u)| format!("{n}{u}")).collect();
    if out.is_empty() { "0s".into() } else { out.join(" ") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses() {
        assert_eq!(parse_ns("5m"), Ok(300_000_000_000));
        assert_eq!(parse_ns("7d"), Ok(7 * 86_400_000_000_000));
        for bad in ["", "7", "d", "0h", "-1h", "1w", "1.5h", "99999999999999d", "7д", "д", "+1h"] {
            assert!(parse_ns(bad).is_err(), "{bad:?}");
        }
        assert_eq!(human(9 * 86_400_000_000_000 + 2 * 3_600_000_000_000 + 5), "9d 2h");
        assert_eq!(human(250_000_000_000), "4m 10s");
        assert_eq!(human(-5), "0s");
    }
}
