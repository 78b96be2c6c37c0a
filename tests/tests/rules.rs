//! The acceptance rules through the real binaries (docs/OPERATIONS.md
//! "Acceptance rules"): rules in ledgerd's policy evaluated by `ledger
//! compliance check` (exit 1 on a failing rule, the entry named), a past
//! verdict with `--as-of`, a profile file with `--rules`, and refusals
//! naming the key: a bad rules file, a prefix beyond the log, a bad rule
//! in the configuration (ledgerd does not start).

use std::path::Path;
use std::process::Command;

use ledger_e2e::{Ledgerd, Run, bin_dir, ledger};
use serde_json::Value;

const RULES: &str = r#"
[[policy.rules]]
name = "acceptance-run-fresh"
kind = "freshness"
category = "acceptance_run"
max_age = "7d"

[[policy.rules]]
name = "tco-within-threshold"
kind = "check"
category = "tco_report"
expr = 'double(payload.avg_cost_per_trade) <= 2.0 * double(payload.threshold)'
"#;

fn check(server: &Ledgerd, root: &Path, extra: &[&str]) -> (Run, Value) {
    let mut args = vec!["compliance", "check", "--output", "json"];
    args.extend(extra);
    let run = ledger(&server.url, root, &args);
    let v = if run.code <= 1 { run.json() } else { Value::Null };
    (run, v)
}

fn outcome<'a>(v: &'a Value, rule: &str) -> &'a Value {
    v["rules"]["outcomes"].as_array().unwrap().iter().find(|o| o["rule"] == rule).unwrap()
}

#[test]
fn policy_rules_now_and_as_of_a_past_size() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("ledgerd.toml");
    std::fs::write(&conf, RULES).unwrap();
    let server = Ledgerd::start(&dir.path().join("data"), &["--config", conf.to_str().unwrap()]);
    let root = dir.path();

    let (run, v) = check(&server, root, &[]);
    assert_eq!(run.code, 1, "{run:?}");
    let fresh = outcome(&v, "acceptance-run-fresh");
    assert_eq!(fresh["verdict"], "fail");
    assert!(fresh["detail"].as_str().unwrap().starts_with("no acceptance_run entry"), "{fresh}");

    let add = |args: &[&str]| {
        let r = ledger(&server.url, root, &[&["append"], args].concat());
        assert_eq!(r.code, 0, "{r:?}");
    };
    add(&["--category", "acceptance_run", "--subject", "oem", "--field", "run=1"]);
    let tco_report = |avg: &str| {
        let avg = format!("avg_cost_per_trade={avg}");
        add(&["--category", "tco_report", "--subject", "INC-1", "--field", &avg, "--field", "threshold=0.004"]);
    };
    tco_report("0.0095");
    let (run, v) = check(&server, root, &[]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(
        (outcome(&v, "acceptance-run-fresh")["verdict"].as_str(), outcome(&v, "acceptance-run-fresh")["seq"].as_u64()),
        (Some("pass"), Some(0))
    );
    let tco = outcome(&v, "tco-within-threshold");
    assert_eq!((tco["verdict"].as_str(), tco["seq"].as_u64()), (Some("fail"), Some(1)), "{tco}");
    assert!(tco["detail"].as_str().unwrap().contains("does not hold"), "{tco}");

    tco_report("0.0042");
    let (run, v) = check(&server, root, &[]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        (v["verdict"].as_str(), v["rules"]["verdict"].as_str(), v["rules"]["size"].as_u64()),
        (Some("pass"), Some("pass"), Some(3))
    );
    assert!(!v["checks"].as_array().unwrap().is_empty());

    // the auditor's historical verdict: at size 2 the TCO report failed
    let (run, v) = check(&server, root, &["--as-of", "2"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(v["checks"].as_array().map(Vec::len), Some(0), "--as-of evaluates the rules only");
    assert_eq!(v["rules"]["size"], 2);
    assert_eq!(outcome(&v, "tco-within-threshold")["seq"], 1);

    // text output names each rule
    let text = ledger(&server.url, root, &["compliance", "check", "--as-of", "2"]);
    assert!(text.stdout.contains("acceptance rules over the first 2 entries"), "{text:?}");
    assert!(text.stdout.lines().any(|l| l.starts_with("FAIL  tco-within-threshold")), "{text:?}");

    let zero = ledger(&server.url, root, &["compliance", "check", "--as-of", "0"]);
    assert_eq!(zero.code, 2, "an empty prefix has no verdict: {zero:?}");
    let far = ledger(&server.url, root, &["compliance", "check", "--as-of", "99"]);
    assert_eq!(far.code, 4, "{far:?}");
    assert!(far.stderr.contains("as_of: 99 is beyond the log's size 3"), "{far:?}");
}

#[test]
fn a_profile_file_instead_of_the_policy_and_bad_rules_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = Ledgerd::start(&dir.path().join("data"), &[]);
    let root = dir.path();
    let profile = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/policy/stage5.toml");
    let (run, v) = check(&server, root, &["--rules", profile.to_str().unwrap()]);
    assert_eq!(run.code, 1, "{run:?}");
    let names: Vec<&str> =
        v["rules"]["outcomes"].as_array().unwrap().iter().map(|o| o["rule"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 10, "{names:?}");
    assert_eq!(outcome(&v, "acceptance-run-fresh")["verdict"], "fail");
    assert_eq!(outcome(&v, "rotation-reference")["verdict"], "pass");

    // without --rules the server's policy has none: nothing to fail
    let (run, v) = check(&server, root, &[]);
    assert_eq!((run.code, v["rules"]["outcomes"].as_array().map(Vec::len)), (0, Some(0)), "{run:?}");

    let bad = root.join("bad.toml");
    std::fs::write(&bad, "[[policy.rules]]\nname = \"x\"\nkind = \"freshness\"\ncategory = \"acceptance_run\"\nmax_age = \"7d\"\nexpr = 'true'\n").unwrap();
    let run = ledger(&server.url, root, &["compliance", "check", "--rules", bad.to_str().unwrap()]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("rule \"x\": expr: does not apply to kind freshness"), "{run:?}");
    std::fs::write(&bad, "[[policy.rules]]\nname = \"x\"\nkind = \"approved\"\ncategory = \"no_such\"\n").unwrap();
    let run = ledger(&server.url, root, &["compliance", "check", "--rules", bad.to_str().unwrap()]);
    assert_eq!(run.code, 4, "{run:?}");
    assert!(run.stderr.contains("category \"no_such\" is not declared"), "{run:?}");
}

#[test]
fn ledgerd_refuses_a_bad_rule_in_its_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("ledgerd.toml");
    std::fs::write(&conf, "[[policy.rules]]\nname = \"x\"\nkind = \"response\"\ncategory = \"alert_fired\"\nresponse = \"pager_ack\"\nwithin = \"5m\"\n").unwrap();
    let out = Command::new(bin_dir().join("ledgerd"))
        .args(["--config", conf.to_str().unwrap(), "--data-dir", dir.path().join("data").to_str().unwrap()])
        .args(["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("policy.rules[0].response"), "{err}");
    assert!(err.contains("\"pager_ack\" is not declared"), "{err}");
}
