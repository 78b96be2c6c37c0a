//! RFC 3339 times as unix nanoseconds: the one parser the CLI (`ledger
//! import`) and ledgerd (Alertmanager's `startsAt`/`endsAt`) share.
//!
//! Owns: which RFC 3339 forms are accepted. Must not: guess a time zone — a
//! time without `Z` or a numeric offset is refused, never read as some zone.

/// `YYYY-MM-DD(T|t| )HH:MM:SS[.fraction](Z|z|±HH:MM)` → unix ns.
pub fn parse_ns(s: &str) -> Result<i64, &'static str> {
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
    total
        .checked_mul(1_000_000_000)
        .and_then(|ns| ns.checked_add(frac_ns))
        .ok_or("out of range for unix nanoseconds (years 1678 to 2262)")
}

/// Unix ns → `YYYY-MM-DDTHH:MM:SSZ` (whole seconds, UTC; H. Hinnant's
/// civil_from_days).
pub fn format_secs(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", sod / 3600, sod % 3600 / 60, sod % 60)
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
    use super::{format_secs, parse_ns};

    #[test]
    fn formats_what_it_parses() {
        for t in ["1970-01-01T00:00:00Z", "2000-02-29T23:59:59Z", "2026-12-06T01:02:03Z", "2262-04-11T00:00:00Z"] {
            assert_eq!(format_secs(parse_ns(t).unwrap()), t);
        }
    }

    #[test]
    fn go_times_as_alertmanager_sends_them() {
        // Go's time.Time JSON: RFC 3339 with nanoseconds and the zone it had
        assert_eq!(parse_ns("2026-12-05T21:25:15.123456789Z"), Ok(1_796_505_915_123_456_789));
        assert_eq!(parse_ns("2026-12-05T22:25:15.123456789+01:00"), Ok(1_796_505_915_123_456_789));
        // Alertmanager's "not ended" is Go's zero time, year 1: no unix ns
        assert!(parse_ns("0001-01-01T00:00:00Z").unwrap_err().contains("out of range"));
        assert_eq!(
            parse_ns("2026-12-05T21:25:15"),
            Err("no UTC offset (add Z or +HH:MM: a time without one is not read as any zone)")
        );
    }
}
