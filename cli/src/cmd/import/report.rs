//! What a run of `ledger import` did: the counts, the import entry's
//! payload, and the command's output (text, or the stable JSON of
//! docs/CLI.md).
//!
//! Owns: the names and shape of the counts, wherever they appear. Must not:
//! read the file or talk to ledgerd.

use serde_json::{Value, json};

use super::oldsig::Verdict;

/// Most skipped lines a run lists (the import entry must stay within the
/// 64 KiB payload limit); more bad lines stop the import instead.
pub const MAX_SKIPPED: usize = 100;
/// Longest reason kept for a skipped line, in bytes (then `…`).
const MAX_REASON_BYTES: usize = 160;

/// A line `--skip-bad` left out.
#[derive(Debug, Clone)]
pub struct Skipped {
    /// 1-based
    pub line: u64,
    /// why (shortened to 160 bytes)
    pub reason: String,
}

impl Skipped {
    /// Line `line`, bad for `reason` (control characters made spaces, so
    /// that no reason takes more than twice its bytes in JSON).
    pub fn new(line: u64, reason: &str) -> Self {
        let reason: String = reason.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
        let mut end = reason.len().min(MAX_REASON_BYTES);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        let more = if end < reason.len() { "…" } else { "" };
        Self { line, reason: format!("{}{more}", &reason[..end]) }
    }
}

/// The counts of a run.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    /// lines in the file
    pub lines: u64,
    /// entries this run wrote
    pub written: u64,
    /// entries ledgerd already held (an earlier run)
    pub duplicates: u64,
    /// lines left out by --skip-bad
    pub skipped: Vec<Skipped>,
    /// verdicts on the lines' own signatures (with --hmac-key): ok, mismatch, missing
    pub hmac: Option<[u64; 3]>,
    /// lowest and highest seq of the file's entries
    pub seqs: Option<(u64, u64)>,
}

impl Tally {
    /// Counts one entry's receipt.
    pub fn entry(&mut self, seq: u64, duplicate: bool, verdict: Option<Verdict>) {
        if duplicate {
            self.duplicates += 1;
        } else {
            self.written += 1;
        }
        self.seqs = Some(self.seqs.map_or((seq, seq), |(lo, hi)| (lo.min(seq), hi.max(seq))));
        if let (Some(h), Some(v)) = (&mut self.hmac, verdict) {
            let i = match v {
                Verdict::Ok => 0,
                Verdict::Mismatch => 1,
                Verdict::Missing => 2,
            };
            h[i] += 1;
        }
    }

    fn hmac_json(&self) -> Value {
        self.hmac
            .map_or(Value::Null, |[ok, mismatch, missing]| json!({"ok": ok, "mismatch": mismatch, "missing": missing}))
    }

    fn skipped_json(&self) -> Value {
        self.skipped.iter().map(|s| json!({"line": s.line, "reason": s.reason})).collect()
    }
}

/// Where the run's entries came from.
pub struct Run<'a> {
    /// the file as given
    pub file: &'a str,
    /// its hex SHA-256
    pub sha256: &'a str,
    /// the flags' field names: category, subject, time, hmac
    pub fields: [Option<&'a str>; 4],
}

/// The payload of the `import` entry that ends a run.
pub fn closing_payload(run: &Run, t: &Tally) -> Vec<u8> {
    let name = std::path::Path::new(run.file).file_name().map(|n| n.to_string_lossy().into_owned());
    let [category, subject, time, hmac] = run.fields;
    let (first, last) = t.seqs.map_or((None, None), |(a, b)| (Some(a), Some(b)));
    let v = json!({
        "source_sha256": run.sha256,
        "source_name": name,
        "fields": {"category": category, "subject": subject, "time": time, "hmac": hmac},
        "lines": t.lines,
        "written": t.written,
        "duplicates": t.duplicates,
        "skipped": t.skipped.len(),
        "hmac": t.hmac_json(),
        "skipped_lines": t.skipped_json(),
        "first_seq": first,
        "last_seq": last,
    });
    serde_json::to_vec(&v).expect("serialisable")
}

/// The import entry as the output shows it.
pub struct Closing {
    /// its seq (unknown when an earlier run wrote it and the log could not be read)
    pub seq: Option<u64>,
    /// its request id
    pub request_id: String,
    /// written by this run (false: an earlier run's import entry of the same file)
    pub written: bool,
    /// the tree size of its receipt's checkpoint
    pub tree_size: Option<u64>,
}

/// The command's JSON output (docs/CLI.md "JSON output").
pub fn output_json(run: &Run, t: &Tally, c: &Closing, seconds: f64) -> Value {
    let (first, last) = t.seqs.map_or((None, None), |(a, b)| (Some(a), Some(b)));
    json!({
        "file": run.file,
        "source_sha256": run.sha256,
        "lines": t.lines,
        "written": t.written,
        "duplicates": t.duplicates,
        "skipped": t.skipped.len(),
        "hmac": t.hmac_json(),
        "skipped_lines": t.skipped_json(),
        "first_seq": first,
        "last_seq": last,
        "import_entry": {"seq": c.seq, "request_id": c.request_id, "written": c.written},
        "tree_size": c.tree_size,
        "seconds": seconds,
        "entries_per_second": rate(t, seconds),
    })
}

fn rate(t: &Tally, seconds: f64) -> f64 {
    let n = (t.written + t.duplicates) as f64;
    if seconds > 0.0 { (n / seconds).round() } else { 0.0 }
}

/// The command's text output.
pub fn output_text(run: &Run, t: &Tally, c: &Closing, seconds: f64) -> String {
    let mut s = format!(
        "imported {}: {} lines, {} written, {} duplicates, {} skipped\nsource sha256 {}\n",
        run.file,
        t.lines,
        t.written,
        t.duplicates,
        t.skipped.len(),
        run.sha256
    );
    if let Some([ok, mismatch, missing]) = t.hmac {
        s += &format!("old signatures: {ok} ok, {mismatch} mismatch, {missing} missing\n");
    }
    for k in &t.skipped {
        s += &format!("  skipped line {}: {}\n", k.line, k.reason);
    }
    let seq = c.seq.map_or_else(|| "unknown".to_owned(), |s| s.to_string());
    let by = if c.written { "" } else { " (written by an earlier run of this file)" };
    s += &format!("import entry seq {seq}{by}, request id {}\n", c.request_id);
    s += &format!("{seconds:.2} s, {} entries/s", rate(t, seconds));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_verdicts() {
        let mut t = Tally { lines: 4, hmac: Some([0; 3]), ..Default::default() };
        t.entry(5, false, Some(Verdict::Ok));
        t.entry(3, true, Some(Verdict::Mismatch));
        t.entry(9, false, Some(Verdict::Missing));
        t.skipped.push(Skipped::new(2, "not valid JSON"));
        assert_eq!((t.written, t.duplicates, t.hmac, t.seqs), (2, 1, Some([1, 1, 1]), Some((3, 9))));
        let run = Run { file: "a/runtime.jsonl", sha256: "00", fields: [Some("c"), Some("s"), Some("t"), None] };
        let p: Value = serde_json::from_slice(&closing_payload(&run, &t)).unwrap();
        assert_eq!(p["source_name"], "runtime.jsonl");
        assert_eq!(p["skipped_lines"], json!([{"line": 2, "reason": "not valid JSON"}]));
        assert_eq!(p["hmac"], json!({"ok": 1, "mismatch": 1, "missing": 1}));
        assert_eq!((p["first_seq"].as_u64(), p["last_seq"].as_u64()), (Some(3), Some(9)));
        assert_eq!(Skipped::new(1, &"x".repeat(500)).reason, format!("{}…", "x".repeat(MAX_REASON_BYTES)));
        assert_eq!(Skipped::new(1, &"x".repeat(MAX_REASON_BYTES)).reason.len(), MAX_REASON_BYTES);
        assert_eq!(Skipped::new(1, &"é".repeat(100)).reason, format!("{}…", "é".repeat(80)));
    }

    #[test]
    fn the_longest_import_entry_fits_the_payload_limit() {
        let worst = "\"".repeat(MAX_REASON_BYTES);
        assert_eq!(Skipped::new(1, "a\u{1}\nb").reason, "a  b");
        let n = (1u64 << 53) - 1;
        let t = Tally {
            lines: n,
            written: n,
            duplicates: n,
            skipped: (0..MAX_SKIPPED).map(|_| Skipped::new(n, &worst)).collect(),
            hmac: Some([n; 3]),
            seqs: Some((n, n)),
        };
        let field = "f".repeat(100);
        let run = Run { file: &"n".repeat(255), sha256: &"0".repeat(64), fields: [Some(field.as_str()); 4] };
        let p = closing_payload(&run, &t);
        let max = ledger::entry::Limits::default().max_payload_bytes;
        assert!(p.len() <= max, "{} bytes", p.len());
        let e = ledger::EntryInput { category: "import".into(), payload: p, ..Default::default() };
        e.validate("a", &Default::default()).unwrap();
    }
}
