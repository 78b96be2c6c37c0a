//! The incident timeline for people: the text of `incident show`, and the
//! pack's `report.md`, `report.html` (self-contained, the timeline drawn by
//! `svg`) and `entries.csv` (FORMAT.md §14.1).
//!
//! Owns: these renderings. Must not: compute milestones or findings
//! (`ledger::pack::timeline` does): every figure comes from the timeline.

use ledger::pack::timeline::{Milestone, Milestones, Timeline, TimelineEntry};
use ledger_proto::v1 as pb;

use super::svg;
use crate::client::rfc3339;

/// The milestones by name, in playbook order.
pub fn milestone_list(m: &Milestones) -> [(&'static str, Option<Milestone>); 6] {
    [
        ("alert_fired", m.alert_fired),
        ("acknowledged", m.acknowledged),
        ("escalated", m.escalated),
        ("l2_confirmed", m.l2_confirmed),
        ("override", m.overridden),
        ("resolved", m.resolved),
    ]
}

fn secs(d: Option<f64>) -> String {
    d.map_or_else(|| "-".into(), |s| format!("{s:.0} s"))
}

fn payload_text(e: &TimelineEntry) -> String {
    if e.payload.is_null() { "<redacted or not JSON>".into() } else { e.payload.to_string() }
}

/// The durations on one line.
pub fn durations_line(t: &Timeline) -> String {
    let d = &t.durations;
    format!(
        "time to ack {}, to escalate {}, to L2 {}",
        secs(d.time_to_ack),
        secs(d.time_to_escalate),
        secs(d.time_to_l2)
    )
}

/// `ledger incident show`'s text.
pub fn text(t: &Timeline) -> String {
    let mut s = format!("incident {} at tree size {} root {}\n", t.subject, t.as_of.size, t.as_of.root);
    for e in &t.entries {
        s.push_str(&format!(
            "{:>8}  {}  {:<20} {:<16} {}\n",
            e.seq,
            rfc3339(e.at()),
            e.category,
            e.actor,
            payload_text(e)
        ));
    }
    s.push_str("milestones:\n");
    for (name, m) in milestone_list(&t.milestones) {
        let v = m.map_or_else(|| "-".to_owned(), |m| format!("seq {} at {}", m.seq, rfc3339(m.at)));
        s.push_str(&format!("  {name:<14} {v}\n"));
    }
    s.push_str(&format!("durations: {}\n", durations_line(t)));
    if t.findings.is_empty() {
        s.push_str("findings: none\n");
    }
    for f in &t.findings {
        let seq = f.seq.map_or_else(|| "-".to_owned(), |s| s.to_string());
        s.push_str(&format!("  {} seq {seq}: {}\n", f.kind, f.detail));
    }
    s
}

fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// `report.md`.
pub fn markdown(t: &Timeline) -> String {
    let mut s = format!(
        "# Incident {}\n\nRead at the checkpoint of tree size {} (root `{}`).\n\n",
        md_cell(&t.subject),
        t.as_of.size,
        t.as_of.root
    );
    s.push_str("## Milestones\n\n| milestone | seq | at (UTC) |\n| --- | --- | --- |\n");
    for (name, m) in milestone_list(&t.milestones) {
        let (seq, at) = m.map_or(("-".into(), "-".into()), |m| (m.seq.to_string(), rfc3339(m.at)));
        s.push_str(&format!("| {name} | {seq} | {at} |\n"));
    }
    s.push_str(&format!("\nDurations from the alert: {}.\n\n## Findings\n\n", durations_line(t)));
    if t.findings.is_empty() {
        s.push_str("None.\n");
    }
    for f in &t.findings {
        let seq = f.seq.map_or_else(|| "-".to_owned(), |s| s.to_string());
        s.push_str(&format!("- `{}` seq {seq}: {}\n", f.kind, md_cell(&f.detail)));
    }
    s.push_str("\n## Entries\n\n| seq | at (UTC) | category | actor | payload |\n| --- | --- | --- | --- | --- |\n");
    for e in &t.entries {
        s.push_str(&format!(
            "| {} | {} | {} | {} | `{}` |\n",
            e.seq,
            rfc3339(e.at()),
            e.category,
            md_cell(&e.actor),
            md_cell(&payload_text(e)).replace('`', "'")
        ));
    }
    s
}

/// Escapes text for HTML.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// `report.html`: one file, no external resource.
pub fn html(t: &Timeline) -> String {
    let mut s = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Incident {0}</title>\n<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:2px 6px;font-size:13px;text-align:left}}code{{font-size:12px}}</style></head><body>\n<h1>Incident {0}</h1>\n<p>Read at the checkpoint of tree size {1} (root <code>{2}</code>).</p>\n",
        esc(&t.subject),
        t.as_of.size,
        t.as_of.root
    );
    s.push_str(&svg::timeline(t));
    s.push_str(&format!("<p>Durations from the alert: {}.</p>\n<h2>Findings</h2>\n<ul>\n", esc(&durations_line(t))));
    if t.findings.is_empty() {
        s.push_str("<li>None.</li>\n");
    }
    for f in &t.findings {
        let seq = f.seq.map_or_else(|| "-".to_owned(), |s| s.to_string());
        s.push_str(&format!("<li><code>{}</code> seq {seq}: {}</li>\n", esc(&f.kind), esc(&f.detail)));
    }
    s.push_str("</ul>\n<h2>Entries</h2>\n<table><tr><th>seq</th><th>at (UTC)</th><th>category</th><th>actor</th><th>payload</th></tr>\n");
    for e in &t.entries {
        s.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>\n",
            e.seq,
            rfc3339(e.at()),
            esc(&e.category),
            esc(&e.actor),
            esc(&payload_text(e))
        ));
    }
    s.push_str("</table>\n</body></html>\n");
    s
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_owned() }
}

/// `entries.csv` (RFC 4180, CRLF line ends).
pub fn csv(entries: &[pb::Entry]) -> String {
    let mut s = String::from("seq,recorded_at,occurred_at,category,actor,payload_sha256,payload\r\n");
    for e in entries {
        let l = e.decoded.clone().unwrap_or_default();
        let payload = String::from_utf8_lossy(&e.payload);
        let row = [
            e.seq.to_string(),
            l.recorded_at.to_string(),
            l.occurred_at.to_string(),
            csv_field(&l.category),
            csv_field(&l.actor),
            hex::encode(&l.payload_sha256),
            csv_field(&payload),
        ];
        s.push_str(&row.join(","));
        s.push_str("\r\n");
    }
    s
}
