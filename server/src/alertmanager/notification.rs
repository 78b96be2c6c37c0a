//! Alertmanager's webhook notification (payload version 4) read into
//! entries: one per alert, `alert_fired` or `alert_resolved`, with the
//! subject, time, request id and payload docs/API.md gives.
//!
//! Owns: which bodies are accepted (every refusal names the field, e.g.
//! `alerts[2].startsAt`, and the reason) and the entry each alert becomes.
//! Must not: authenticate, or write anything.

use ledger::entry::{Actor, Category, Limits, NewEntry, Payload, RequestId, Subject, ValidationError};
use serde_json::{Map, Value, json};

/// What a notification's alerts become, for one log.
pub struct Mapping<'a> {
    /// the label naming the incident (`[logs.alertmanager] subject_label`)
    pub subject_label: &'a str,
    /// who sent it (the certificate's identity, else `alertmanager`)
    pub actor: &'a str,
    /// the log's input limits
    pub limits: &'a Limits,
}

/// The fields of the notification shared by its alerts.
struct Group<'a> {
    receiver: &'a str,
    group_key: &'a str,
    external_url: &'a str,
}

/// The entries of a notification body, in its alerts' order.
pub fn entries(body: &[u8], m: &Mapping<'_>) -> Result<Vec<NewEntry>, ValidationError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| ValidationError::new("body", format!("not JSON: {e}")))?;
    let top = v.as_object().ok_or_else(|| ValidationError::new("body", "not a JSON object"))?;
    let version = text(top, "", "version")?;
    if version != "4" {
        return Err(ValidationError::new(
            "version",
            format!("{version:?}: only webhook payload version \"4\" is read"),
        ));
    }
    let group = Group {
        receiver: text(top, "", "receiver")?,
        group_key: text(top, "", "groupKey")?,
        external_url: optional_text(top, "", "externalURL")?.unwrap_or(""),
    };
    let alerts = top
        .get("alerts")
        .and_then(Value::as_array)
        .ok_or_else(|| ValidationError::new("alerts", "missing, or not an array"))?;
    if alerts.is_empty() {
        return Err(ValidationError::new("alerts", "is empty: a notification carries at least one alert"));
    }
    alerts.iter().enumerate().map(|(i, a)| alert(&format!("alerts[{i}]"), a, &group, m)).collect()
}

/// One alert's entry.
fn alert(at: &str, a: &Value, g: &Group<'_>, m: &Mapping<'_>) -> Result<NewEntry, ValidationError> {
    let a = a.as_object().ok_or_else(|| ValidationError::new(at, "not a JSON object"))?;
    let status = text(a, at, "status")?;
    let category = match status {
        "firing" => "alert_fired",
        "resolved" => "alert_resolved",
        other => return Err(field(at, "status", format!("{other:?}: must be \"firing\" or \"resolved\""))),
    };
    let fingerprint = text(a, at, "fingerprint")?;
    if fingerprint.is_empty() || fingerprint.len() > 64 || !fingerprint.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(field(at, "fingerprint", format!("{fingerprint:?}: must be 1 to 64 letters and digits")));
    }
    let labels = strings(a, at, "labels")?;
    let annotations = if a.contains_key("annotations") { strings(a, at, "annotations")? } else { Map::new() };
    let starts_at = text(a, at, "startsAt")?;
    let started = time(at, "startsAt", starts_at)?.ok_or_else(|| field(at, "startsAt", "is Go's zero time"))?;
    let ends_at = optional_text(a, at, "endsAt")?;
    let ended = match ends_at {
        Some(t) => time(at, "endsAt", t)?,
        None => None,
    };
    let occurred_at = if status == "resolved" {
        ended.ok_or_else(|| field(at, "endsAt", "a resolved alert needs the time it ended"))?
    } else {
        started
    };
    let alertname = labels.get("alertname").and_then(Value::as_str).unwrap_or("");
    let subject = match labels.get(m.subject_label).and_then(Value::as_str).filter(|s| !s.is_empty()) {
        Some(s) => s.to_owned(),
        None => format!("{}/{fingerprint}", if alertname.is_empty() { "alert" } else { alertname }),
    };
    let mut payload = json!({
        "alertname": alertname, "fingerprint": fingerprint, "status": status,
        "labels": labels, "annotations": annotations, "starts_at": starts_at,
        "generator_url": optional_text(a, at, "generatorURL")?.unwrap_or(""),
        "receiver": g.receiver, "group_key": g.group_key, "external_url": g.external_url,
    });
    if ended.is_some() {
        payload["ends_at"] = json!(ends_at);
    }
    let bytes = serde_json::to_vec(&payload).expect("a JSON value serializes");
    let request_id = format!("am:{fingerprint}:{started}:{status}");
    let within = |e: ValidationError| ValidationError::new(format!("{at}: {}", e.field), e.reason);
    Ok(NewEntry {
        category: Category::new(category).map_err(within)?,
        subject: Some(Subject::new(&subject, m.limits).map_err(within)?),
        actor: Actor::new(m.actor, m.limits).map_err(within)?,
        request_id: Some(RequestId::new(&request_id, m.limits).map_err(within)?),
        occurred_at: Some(occurred_at),
        payload: Payload::new(bytes, m.limits).map_err(within)?,
        artifacts: Vec::new(),
    })
}

fn field(at: &str, name: &str, reason: impl Into<String>) -> ValidationError {
    let name = if at.is_empty() { name.to_owned() } else { format!("{at}.{name}") };
    ValidationError::new(name, reason)
}

/// A string member.
fn text<'a>(o: &'a Map<String, Value>, at: &str, name: &str) -> Result<&'a str, ValidationError> {
    optional_text(o, at, name)?.ok_or_else(|| field(at, name, "missing"))
}

/// A string member that may be absent (or null).
fn optional_text<'a>(o: &'a Map<String, Value>, at: &str, name: &str) -> Result<Option<&'a str>, ValidationError> {
    match o.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(field(at, name, "not a string")),
    }
}

/// An object of strings (labels, annotations).
fn strings(o: &Map<String, Value>, at: &str, name: &str) -> Result<Map<String, Value>, ValidationError> {
    let m = o.get(name).and_then(Value::as_object).ok_or_else(|| field(at, name, "missing, or not an object"))?;
    if let Some((k, _)) = m.iter().find(|(_, v)| !v.is_string()) {
        return Err(field(at, &format!("{name}.{k}"), "not a string"));
    }
    Ok(m.clone())
}

/// An RFC 3339 time as unix ns; `None` for Go's zero time (Alertmanager's
/// "not ended yet"), an error for anything else before 1970.
fn time(at: &str, name: &str, t: &str) -> Result<Option<i64>, ValidationError> {
    if t.starts_with("0001-01-01T00:00:00") {
        return Ok(None);
    }
    match ledger::rfc3339::parse_ns(t) {
        Ok(ns) if ns > 0 => Ok(Some(ns)),
        Ok(_) => Err(field(at, name, format!("{t:?} is before 1970"))),
        Err(why) => Err(field(at, name, format!("{t:?} is not an RFC 3339 time: {why}"))),
    }
}

#[cfg(test)]
mod tests;
