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
        Value::String(s) => rfc3339(s).map_err(|why| format!("{s:?} is not an RFC 3339 time: {why}"))?,
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

/// `YYYY-MM-DD(T|t| )HH:MM:SS[.fraction](Z|z|±HH:MM)` → unix ns.
fn rfc3339(s: &str) -> Result<i64, &'static str> {
    let b = s.as_bytes();
    if b.len() < 19 {
        return Err("too short (expected e.g. 2026-11-21T10:00:00Z)");
    }
    let (date, rest) = b.split_at(10);
    let days = civil_days(date)?;
    if !matches!(rest[0], b'T' | b't' | b' ') {
        return Err("no 'T' between date and time");
    }
    let (secs, rest) = clock(&rest[1..])?;
    let (frac_ns, zone) = fraction(rest)?;
    let offset = offset_seconds(zone)?;
    let total = days * 86_400 + secs - offset;
    Ok(total * 1_000_000_000 + frac_ns)
}

/// Digits of `b` as a number, or `err`.
fn digits(b: &[u8], err: &'static str) -> Result<i64, &'static str> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return Err(err);
    }
    Ok(b.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0')))
}

/// `YYYY-MM-DD` → days since 1970-01-01 (H. Hinnant's days_from_civil).
fn civil_days(d: &[u8]) -> Result<i64, &'static str> {
    if d[4] != b'-' || d[7] != b'-' {
        return Err("the date is not YYYY-MM-DD");
    }
    let (y, m, day) = (digits(&d[..4], "bad year")?, digits(&d[5..7], "bad month")?, digits(&d[8..10], "bad day")?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_days = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if !(1..=12).contains(&m) {
        return Err("month out of range");
    }
    if !(1..=month_days[(m - 1) as usize]).contains(&day) {
        return Err("day out of range for its month");
    }
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Ok(era * 146_097 + doe - 719_468)
}

/// `HH:MM:SS…` → (seconds of the day, what follows).
fn clock(t: &[u8]) -> Result<(i64, &[u8]), &'static str> {
    if t.len() < 8 || t[2] != b':' || t[5] != b':' {
        return Err("the time is not HH:MM:SS");
    }
    let (h, m, s) = (digits(&t[..2], "bad hour")?, digits(&t[3..5], "bad minute")?, digits(&t[6..8], "bad second")?);
    if h > 23 || m > 59 || s > 60 {
        return Err("hour, minute or second out of range");
    }
    Ok((h * 3600 + m * 60 + s, &t[8..]))
}

/// `[.digits]zone` → (nanoseconds, zone); digits past the ninth are dropped.
fn fraction(t: &[u8]) -> Result<(i64, &[u8]), &'static str> {
    let Some(rest) = t.strip_prefix(b".") else { return Ok((0, t)) };
    let n = rest.iter().take_while(|c| c.is_ascii_digit()).count();
    if n == 0 {
        return Err("no digits after the decimal point");
    }
    let kept = &rest[..n.min(9)];
    let ns = digits(kept, "bad fraction")? * 10i64.pow(9 - kept.len() as u32);
    Ok((ns, &rest[n..]))
}

/// `Z` or `±HH:MM` → seconds east of UTC.
fn offset_seconds(z: &[u8]) -> Result<i64, &'static str> {
    match z {
        b"Z" | b"z" => Ok(0),
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let (h, m) = (digits(&[*h1, *h2], "bad offset")?, digits(&[*m1, *m2], "bad offset")?);
            if h > 23 || m > 59 {
                return Err("offset out of range");
            }
            Ok(if *sign == b'-' { -1 } else { 1 } * (h * 3600 + m * 60))
        }
        [] => Err("no UTC offset (add Z or +HH:MM: a time without one is not read as any zone)"),
        _ => Err("the offset is not Z or +HH:MM"),
    }
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
