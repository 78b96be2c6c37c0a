//! `ledger import` against a real ledgerd (the e2e harness: loopback, the
//! process stopped at the end): a generated 100,000-line decision log
//! imported completely, each line's own HMAC verdict recorded (a line
//! changed after signing is a `mismatch`), a second run adding nothing; a
//! malformed line stopping the import with nothing written, and listed in
//! the import entry with `--skip-bad`.

#[allow(dead_code)]
#[path = "../../tests/src/lib.rs"]
mod harness;

use std::io::Write as _;
use std::path::Path;
use std::time::Instant;

use harness::{Ledgerd, Run, ledger};
use serde_json::Value;

/// The old decision log's HMAC key (it must never show up anywhere).
const OLD_KEY: &str = "runtime-decision-log-key-0xC0FFEE";
/// 2026-11-21T10:00:00Z in unix seconds.
const T0: i64 = 1_795_255_200;

fn ok(r: Run) -> Run {
    assert_eq!(r.code, 0, "{r:?}");
    r
}

fn json(url: &str, cwd: &Path, args: &[&str]) -> Value {
    let mut a = args.to_vec();
    a.extend(["--output", "json"]);
    ok(ledger(url, cwd, &a)).json()
}

fn tree_size(url: &str, cwd: &Path) -> u64 {
    json(url, cwd, &["checkpoint"])["size"].as_u64().unwrap()
}

/// Line `n` of the generated log, as its writer signed it: the object's
/// fields sorted and compact (Python's `json.dumps(sort_keys=True,
/// separators=(",", ":"))`), HMAC-SHA256 over that text, `sig` added.
fn signed_line(n: u64) -> String {
    let t = T0 + n as i64;
    // Every other line carries its time as RFC 3339 with an offset (+01:00).
    let ts = if n.is_multiple_of(2) {
        t.to_string()
    } else {
        // local time at +01:00: seconds since 2026-11-21T00:00:00+01:00 (n stays below a day and a half)
        let local = 11 * 3600 + n as i64;
        let (day, s) = (21 + local / 86_400, local % 86_400);
        format!("\"2026-11-{day:02}T{:02}:{:02}:{:02}+01:00\"", s / 3600, s % 3600 / 60, s % 60)
    };
    let body = match n % 3 {
        0 => format!(r#""category":"alert_ack","incident":"INC-{}","step":"L1.1","ts":{ts}"#, n % 97),
        1 => format!(r#""category":"stage4_incident","incident":"INC-{}","step":"L1.4","ts":{ts}"#, n % 97),
        _ => format!(
            r#""accepted":{},"category":"decision_evaluation","incident":"strat-{}","model":"autotrader-v3","ts":{ts}"#,
            !n.is_multiple_of(5),
            n % 7
        ),
    };
    let text = format!("{{{body}}}");
    let tag = hex::encode(ledger::hmac_tag::hmac_sha256(OLD_KEY.as_bytes(), text.as_bytes()));
    format!("{{{body},\"sig\":\"{tag}\"}}")
}

/// The unix ns line `n` happened at.
fn time_of(n: u64) -> i64 {
    (T0 + n as i64) * 1_000_000_000
}

fn write_lines(path: &Path, lines: impl Iterator<Item = String>) {
    let mut w = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for l in lines {
        writeln!(w, "{l}").unwrap();
    }
    w.flush().unwrap();
}

const FIELDS: [&str; 6] = ["--category-field", "category", "--subject-field", "incident", "--time-field", "ts"];

fn import(url: &str, cwd: &Path, file: &str, extra: &[&str]) -> Run {
    let mut a = vec!["import", file];
    a.extend(FIELDS);
    a.extend(extra);
    ledger(url, cwd, &a)
}

/// The entry at `seq`, as `ledger get --output json` prints it.
fn get(url: &str, cwd: &Path, seq: u64) -> Value {
    json(url, cwd, &["get", &seq.to_string()])
}

#[test]
fn a_100k_line_decision_log_imports_completely_and_a_second_run_adds_nothing() {
    const N: u64 = 100_000;
    const TAMPERED: u64 = 77_776; // a stage4_incident line (n % 3 == 1): it has a `step`
    const UNSIGNED: u64 = 500;
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path();
    std::fs::write(w.join("old.key"), format!("{OLD_KEY}\n")).unwrap();
    write_lines(
        &w.join("runtime.jsonl"),
        (1..=N).map(|n| match n {
            // changed after signing: the tag is the one of the original text
            TAMPERED => signed_line(n).replace(r#""step":"L1.4""#, r#""step":"L2.5""#),
            UNSIGNED => signed_line(n).split(",\"sig\"").next().unwrap().to_owned() + "}",
            _ => signed_line(n),
        }),
    );
    let file_sha = hex::encode(ledger::hash::sha256(&std::fs::read(w.join("runtime.jsonl")).unwrap()));
    let mut d = Ledgerd::start(&w.join("data"), &[]);
    let before = tree_size(&d.url, w);
    let hmac = ["--hmac-key", "old.key", "--hmac-field", "sig", "--output", "json"];

    let started = Instant::now();
    let r = ok(import(&d.url, w, "runtime.jsonl", &hmac));
    let took = started.elapsed();
    eprintln!("imported {N} lines in {:.2} s ({:.0} entries/s)", took.as_secs_f64(), N as f64 / took.as_secs_f64());
    assert!(!r.stdout.contains(OLD_KEY) && !r.stderr.contains(OLD_KEY), "the key was printed");
    let out = r.json();
    assert_eq!(
        (out["lines"].as_u64(), out["written"].as_u64(), out["duplicates"].as_u64(), out["skipped"].as_u64()),
        (Some(N), Some(N), Some(0), Some(0)),
        "{out}"
    );
    assert_eq!(out["hmac"], serde_json::json!({"ok": N - 2, "mismatch": 1, "missing": 1}));
    assert_eq!(out["source_sha256"].as_str(), Some(file_sha.as_str()));
    assert_eq!((out["first_seq"].as_u64(), out["last_seq"].as_u64()), (Some(before), Some(before + N - 1)));
    let closing = out["import_entry"]["seq"].as_u64().unwrap();
    assert_eq!((closing, out["import_entry"]["written"].as_bool()), (before + N, Some(true)));
    assert_eq!(tree_size(&d.url, w), before + N + 1);
    assert_eq!(out["tree_size"].as_u64(), Some(before + N + 1));

    // One entry: its time, category, subject and the import metadata.
    let line = 12_345;
    let e = get(&d.url, w, before + line - 1);
    assert_eq!(e["occurred_at"].as_i64(), Some(time_of(line)), "{e}");
    assert_eq!((e["category"].as_str(), e["subject"].as_str()), (Some("alert_ack"), Some("INC-26")));
    assert_eq!(e["request_id"].as_str(), Some(format!("import-{}-{line}", &file_sha[..32]).as_str()));
    let text = signed_line(line);
    let want: Value = serde_json::from_str(&text).unwrap();
    for (k, v) in want.as_object().unwrap() {
        assert_eq!(&e["payload"][k], v, "{k}");
    }
    let meta = &e["payload"]["import"];
    assert_eq!(meta["line"].as_u64(), Some(line));
    assert_eq!(meta["line_sha256"].as_str(), Some(hex::encode(ledger::hash::sha256(text.as_bytes())).as_str()));
    assert_eq!(meta["source_sha256"].as_str(), Some(file_sha.as_str()));
    assert_eq!(meta["hmac"].as_str(), Some("ok"));
    // An odd line's time was RFC 3339 with an offset.
    assert_eq!(get(&d.url, w, before + 12_344 - 1)["occurred_at"].as_i64(), Some(time_of(12_344)));
    assert_eq!(get(&d.url, w, before + 12_346 - 1)["occurred_at"].as_i64(), Some(time_of(12_346)));

    // The line changed after signing is recorded as a mismatch, not hidden.
    let t = get(&d.url, w, before + TAMPERED - 1);
    assert_eq!(
        (t["payload"]["step"].as_str(), t["payload"]["import"]["hmac"].as_str()),
        (Some("L2.5"), Some("mismatch"))
    );
    assert_eq!(get(&d.url, w, before + UNSIGNED - 1)["payload"]["import"]["hmac"].as_str(), Some("missing"));

    // The import entry.
    let c = get(&d.url, w, closing);
    assert_eq!(
        (c["category"].as_str(), c["subject"].as_str()),
        (Some("import"), Some(&*format!("import-{}", &file_sha[..32])))
    );
    let p = &c["payload"];
    assert_eq!(p["source_sha256"].as_str(), Some(file_sha.as_str()));
    assert_eq!((p["lines"].as_u64(), p["written"].as_u64(), p["duplicates"].as_u64()), (Some(N), Some(N), Some(0)));
    assert_eq!((p["skipped"].as_u64(), &p["skipped_lines"]), (Some(0), &serde_json::json!([])));
    assert_eq!(p["hmac"], out["hmac"]);
    assert_eq!(p["source_name"].as_str(), Some("runtime.jsonl"));
    assert!(!c.to_string().contains(OLD_KEY));

    // A second run writes nothing: every line comes back as a duplicate, and
    // the import entry is the first run's.
    let started = Instant::now();
    let r = ok(import(&d.url, w, "runtime.jsonl", &hmac));
    eprintln!("second run (all duplicates) in {:.2} s", started.elapsed().as_secs_f64());
    let again = r.json();
    assert_eq!(
        (again["written"].as_u64(), again["duplicates"].as_u64(), again["lines"].as_u64()),
        (Some(0), Some(N), Some(N)),
        "{again}"
    );
    assert_eq!(again["import_entry"]["written"].as_bool(), Some(false));
    assert_eq!(again["import_entry"]["seq"].as_u64(), Some(closing));
    assert_eq!(tree_size(&d.url, w), before + N + 1, "the second run added nothing");
    assert_eq!(d.stop(), Some(0));
}

#[test]
fn a_malformed_line_stops_the_import_with_nothing_written_and_skip_bad_lists_it() {
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path();
    let good = |n: u64| signed_line(n);
    write_lines(&w.join("bad.jsonl"), (1..=50).map(|n| if n == 23 { good(n)[..40].to_owned() } else { good(n) }));
    let d = Ledgerd::start(&w.join("data"), &[]);
    let before = tree_size(&d.url, w);

    let r = import(&d.url, w, "bad.jsonl", &[]);
    assert_eq!(r.code, 2, "{r:?}");
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(r.stderr.starts_with("error: bad.jsonl: line 23: not valid JSON: "), "{}", r.stderr);
    assert!(r.stderr.contains("nothing was written") && r.stderr.contains("--skip-bad"), "{}", r.stderr);
    assert_eq!(tree_size(&d.url, w), before, "nothing was written");

    let out = json(
        &d.url,
        w,
        &["import", "bad.jsonl", FIELDS[0], FIELDS[1], FIELDS[2], FIELDS[3], FIELDS[4], FIELDS[5], "--skip-bad"],
    );
    assert_eq!(
        (out["lines"].as_u64(), out["written"].as_u64(), out["skipped"].as_u64()),
        (Some(50), Some(49), Some(1))
    );
    assert_eq!(out["hmac"], Value::Null, "no --hmac-key, no verdicts");
    let closing = get(&d.url, w, out["import_entry"]["seq"].as_u64().unwrap());
    let skipped = closing["payload"]["skipped_lines"].as_array().unwrap();
    assert_eq!(skipped.len(), 1, "{closing}");
    assert_eq!(skipped[0]["line"].as_u64(), Some(23));
    assert!(skipped[0]["reason"].as_str().unwrap().starts_with("not valid JSON: "), "{skipped:?}");
    assert_eq!(closing["payload"]["skipped"].as_u64(), Some(1));
    assert_eq!(tree_size(&d.url, w), before + 50);
    // Line 24 is the 23rd entry: the skipped line left no gap in the log.
    assert_eq!(get(&d.url, w, before + 22)["payload"]["import"]["line"].as_u64(), Some(24));

    // The same file again with other flags makes other entries under the same
    // request ids: refused, the first line named, nothing written twice.
    std::fs::write(w.join("old.key"), OLD_KEY).unwrap();
    let r = import(&d.url, w, "bad.jsonl", &["--skip-bad", "--hmac-key", "old.key", "--hmac-field", "sig"]);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(
        r.stderr.starts_with("error: already exists: bad.jsonl: line 1: imported before with other content"),
        "{}",
        r.stderr
    );
    assert_eq!(tree_size(&d.url, w), before + 50);
}

#[test]
fn errors_name_the_flag_the_field_and_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path();
    let d = Ledgerd::start(&w.join("data"), &[]);
    let before = tree_size(&d.url, w);
    let t = r#""ts":"2026-11-21T10:00:00Z""#;
    for (line, want) in [
        (format!(r#"{{"incident":"INC-1",{t}}}"#), r#"line 2: field "category" (--category-field) is missing"#),
        (
            r#"{"category":"alert_ack","incident":"INC-1","ts":"2026-11-21T10:00:00"}"#.to_owned(),
            r#"line 2: field "ts" (--time-field): "2026-11-21T10:00:00" is not an RFC 3339 time: no UTC offset"#,
        ),
        (format!(r#"{{"category":"key_rotation","incident":"INC-1",{t}}}"#), "reserved for ledgerd's admin actions"),
        (
            format!(r#"{{"category":"override","incident":"INC-1",{t}}}"#),
            r#"category "override" requires payload fields missing here: component, reason (ledgerd's default policy"#,
        ),
    ] {
        write_lines(&w.join("one.jsonl"), [signed_line(3), line.clone()].into_iter());
        let r = import(&d.url, w, "one.jsonl", &[]);
        assert_eq!(r.code, 2, "{line}: {r:?}");
        assert!(r.stderr.starts_with("error: one.jsonl: ") && r.stderr.contains(want), "{line}: {}", r.stderr);
    }
    assert_eq!(tree_size(&d.url, w), before);
    // Flags: --hmac-key needs --hmac-field; a missing file or key file is named.
    let r = import(&d.url, w, "one.jsonl", &["--hmac-key", "old.key"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("--hmac-field"), "{}", r.stderr);
    let r = import(&d.url, w, "one.jsonl", &["--hmac-key", "none.key", "--hmac-field", "sig"]);
    assert!(r.code == 2 && r.stderr.starts_with("error: --hmac-key none.key: "), "{r:?}");
    let r = import(&d.url, w, "absent.jsonl", &[]);
    assert!(r.code == 2 && r.stderr.starts_with("error: absent.jsonl: "), "{r:?}");
    // A ledgerd that refuses a line the CLI could not check (a category its
    // default policy lacks, passed with --no-policy-check): exit 4, the line named.
    write_lines(&w.join("legacy.jsonl"), [format!(r#"{{"category":"legacy_note","incident":"I",{t}}}"#)].into_iter());
    let r = import(&d.url, w, "legacy.jsonl", &["--no-policy-check"]);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(
        r.stderr.contains("legacy.jsonl: line 1: ledgerd refused it: ") && r.stderr.contains("not declared"),
        "{}",
        r.stderr
    );
}
