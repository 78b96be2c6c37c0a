//! The time of a decision-log line as unix nanoseconds: RFC 3339 text with
//! `Z` or a numeric offset, or unix seconds as a JSON number.
//!
//! Owns: which time forms `ledger import` accepts (docs/CLI.md). Must not:
//! guess a time zone or a unit — a time without an offset, or a number too
//! large for unix seconds (milliseconds?), is refused, never read some way.

use serde_json::Value;

/// The latest time accepted: 9999-12-31T23:59:59Z.
const MAX_UNIX_SECONDS: f64 = 253_402_300_799.0;

/// `v` as unix nanoseconds (> 0), or why it is not a time.
pub fn parse(v: &Value) -> Result<i64, String> {
    let ns = match v {
        Value::Number(n) => unix_seconds(n)?,
        Value::String(s) => {
            ledger::rfc3339::parse_ns(s).map_err(|why| format!("{s:?} is not an RFC 3339 time: {why}"))?
        }
        other => return Err(format!("must be an RFC 3339 string or unix seconds, got {}", kind(other))),
    };
    if ns <= 0 {
        return Err("must be after 1970-01-01T00:00:00Z".into());
    }
    Ok(ns)
}

/// The JSON kind of `v`, for messages.
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn unix_seconds(n: &serde_json::Number) -> Result<i64, String> {
    let out_of_range = || format!("{n} is out of range for unix seconds (milliseconds? give seconds)");
    if let Some(i) = n.as_i64() {
        if !(0..=MAX_UNIX_SECONDS as i64).contains(&i) {
            return Err(out_of_range());
        }
        return Ok(i * 1_000_000_000);
    }
    let f = n.as_f64().filter(|f| f.is_finite()).ok_or_else(|| format!("{n} is not a finite number"))?;
    if !(0.0..=MAX_UNIX_SECONDS).contains(&f) {
        return Err(out_of_range());
    }
    // From the decimal text when it has no exponent: a double holds only
    // about 0.2 µs at today's unix seconds, the text holds what was written.
    let text = n.to_string();
    if let Some((int, frac)) = text.split_once('.').filter(|_| !text.contains(['e', 'E'])) {
        let kept = &frac[..frac.len().min(9)];
        let ns = kept.parse::<i64>().map_err(|_| out_of_range())? * 10i64.pow(9 - kept.len() as u32);
        return Ok(int.parse::<i64>().map_err(|_| out_of_range())? * 1_000_000_000 + ns);
    }
    Ok((f * 1e9).round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rfc3339_with_zones_and_fractions() {
        let t0 = 1_795_255_200_000_000_000; // 2026-11-21T10:00:00Z
        assert_eq!(parse(&json!("2026-11-21T10:00:00Z")), Ok(t0));
        assert_eq!(parse(&json!("2026-11-21t10:00:00z")), Ok(t0));
        assert_eq!(parse(&json!("2026-11-21 11:00:00+01:00")), Ok(t0));
        assert_eq!(parse(&json!("2026-11-21T05:30:00-04:30")), Ok(t0));
        assert_eq!(parse(&json!("2026-11-21T10:00:00.5Z")), Ok(t0 + 500_000_000));
        assert_eq!(parse(&json!("2026-11-21T10:00:00.1234567891Z")), Ok(t0 + 123_456_789));
        assert_eq!(parse(&json!("2024-02-29T00:00:00Z")), Ok(1_709_164_800_000_000_000));
        assert_eq!(parse(&json!("1970-01-01T00:00:01Z")), Ok(1_000_000_000));
    }

    #[test]
    fn unix_seconds_as_numbers() {
        assert_eq!(parse(&json!(1_795_255_200)), Ok(1_795_255_200_000_000_000));
        assert_eq!(parse(&json!(1_795_255_200.25)), Ok(1_795_255_200_250_000_000));
        let python_time: Value = serde_json::from_str("1795255200.123456").unwrap();
        assert_eq!(parse(&python_time), Ok(1_795_255_200_123_456_000));
        let exp: Value = serde_json::from_str("1.7952552e9").unwrap();
        assert_eq!(parse(&exp), Ok(1_795_255_200_000_000_000));
    }

    #[test]
    fn refusals_say_why() {
        let why = |v: Value| parse(&v).unwrap_err();
        assert!(why(json!("2026-11-21T10:00:00")).contains("no UTC offset"));
        assert!(why(json!("2026-02-30T10:00:00Z")).contains("day out of range"));
        assert!(why(json!("2026-11-21T24:00:00Z")).contains("out of range"));
        assert!(why(json!("yesterday")).contains("not an RFC 3339 time"));
        assert!(why(json!("1795255200")).contains("not an RFC 3339 time"));
        assert!(why(json!(1_795_255_200_000i64)).contains("milliseconds?"));
        assert!(why(json!(-1)).contains("out of range"));
        assert!(why(json!(0)).contains("after 1970"));
        assert!(why(json!(true)).contains("got a boolean"));
    }
}
