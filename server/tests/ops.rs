//! The shipped configuration example and ops files stay true: the example
//! equals the defaults, the alert rules and dashboard parse, and every metric
//! they use is one ledgerd exports.

use std::path::Path;

use ledger_server::Config;

fn doc(p: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs").join(p)).unwrap()
}

#[test]
fn example_config_is_the_defaults_and_valid() {
    let c = Config::from_toml(Path::new("docs/ledgerd.example.toml"), &doc("ledgerd.example.toml")).unwrap();
    c.validate().unwrap();
    assert_eq!(c, Config::default(), "docs/ledgerd.example.toml drifted from Config::default()");
}

#[test]
fn config_refuses_unknown_fields_and_bad_values_naming_them() {
    let e =
        Config::from_toml(Path::new("x.toml"), "listen = \"127.0.0.1:1\"\nlisten_addr = 3\n").unwrap_err().to_string();
    assert!(e.contains("x.toml") && e.contains("listen_addr"), "{e}");
    let mut c = Config::default();
    c.logs.push(c.logs[0].clone());
    assert!(c.validate().unwrap_err().to_string().contains("logs[1].name"));
    let mut c = Config { max_batch: 0, ..Config::default() };
    assert!(c.validate().unwrap_err().to_string().contains("max_batch"));
    c.max_batch = 10;
    c.logs[0].name = "Stage5/../x".into();
    assert!(c.validate().unwrap_err().to_string().contains("logs[0].name"));
    let mut c = Config::default();
    c.apply_env([("LEDGER_LISTEN".to_string(), "0.0.0.0:7000".to_string()), ("LEDGER_DATA_DIR".into(), "/d".into())])
        .unwrap();
    assert_eq!((c.listen.port(), c.data_dir.to_str().unwrap()), (7000, "/d"));
    let e = c.apply_env([("LEDGER_QUEUE_DEPTH".to_string(), "many".to_string())]).unwrap_err().to_string();
    assert!(e.contains("LEDGER_QUEUE_DEPTH"), "{e}");
}

#[test]
fn http_tls_and_the_alertmanager_receiver_are_checked_naming_the_field() {
    let check =
        |text: &str| Config::from_toml(Path::new("x.toml"), text).unwrap().validate().map_err(|e| e.to_string());
    let e = check("http_tls = true\n").unwrap_err();
    assert!(e.contains("http_tls") && e.contains("[tls]"), "{e}");
    let tls = "[tls]\ncert = \"c\"\nkey = \"k\"\nclient_ca = \"ca\"\n";
    let e = check(&format!("{tls}[[logs]]\nname = \"default\"\n[logs.alertmanager]\n")).unwrap_err();
    assert!(e.contains("logs[0].alertmanager.token_file"), "{e}");
    check(&format!("http_tls = true\n{tls}[[logs]]\nname = \"default\"\n[logs.alertmanager]\n")).unwrap();
    let e = check("[[logs]]\nname = \"default\"\n[logs.alertmanager]\nsubject_label = \"\"\n").unwrap_err();
    assert!(e.contains("logs[0].alertmanager.subject_label"), "{e}");
    let c = Config::from_toml(Path::new("x.toml"), "[[logs]]\nname = \"default\"\n[logs.alertmanager]\n").unwrap();
    assert_eq!(c.logs[0].alertmanager.as_ref().unwrap().subject_label, "incident");
}

#[test]
fn storage_config_is_checked_naming_the_field_and_never_shows_the_url() {
    let pg = |extra: &str| {
        let text = format!("[storage]\nkind = \"postgres\"\n{extra}");
        Config::from_toml(Path::new("x.toml"), &text).unwrap().validate().map_err(|e| e.to_string())
    };
    assert!(pg("").unwrap_err().starts_with("config: storage.url: is needed"));
    let url = "url = \"postgresql://ledger:s3cret@db1,db2/ledger\"\n";
    assert!(pg(url).is_ok());
    for (extra, field) in [
        ("lease = \"500ms\"", "storage.lease"),
        ("lease = \"ten\"", "storage.lease"),
        ("advertise = \"ledgerd-a:50051\"", "storage.advertise"),
        ("cert = \"c.pem\"", "storage.cert"),
        ("cert = \"c.pem\"\nkey = \"k.pem\"", "storage.ca"),
    ] {
        let e = pg(&format!("{url}{extra}\n")).unwrap_err();
        assert!(e.starts_with(&format!("config: {field}: ")), "{extra}: {e}");
    }
    let e = Config::from_toml(Path::new("x.toml"), "[storage]\nkind = \"cassandra\"\n").unwrap_err().to_string();
    assert!(e.contains("kind"), "{e}");
    let mut c = Config::default();
    c.apply_env([("LEDGER_STORAGE_URL".to_string(), "host=db password=s3cret".to_string())]).unwrap();
    assert_eq!(c.storage.url, "host=db password=s3cret");
    assert!(!format!("{c:?}").contains("s3cret"), "the URL may hold a password: never printed");
    c.storage.ca = Some("/nonexistent/ca.pem".into());
    let e = c.storage.transport().unwrap_err().to_string();
    assert!(e.starts_with("config: storage.ca: ") && e.contains("/nonexistent/ca.pem"), "{e}");
}

/// `ledger_*` metric names in a PromQL expression, without histogram suffixes.
fn metrics_in(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let b = expr.as_bytes();
    let mut i = 0;
    while let Some(p) = expr[i..].find("ledger_") {
        let start = i + p;
        let mut end = start;
        while end < b.len() && (b[end].is_ascii_alphanumeric() || b[end] == b'_') {
            end += 1;
        }
        let name = &expr[start..end];
        let base = ["_bucket", "_sum", "_count"].iter().fold(name, |n, s| n.strip_suffix(s).unwrap_or(n));
        out.push(base.to_owned());
        i = end;
    }
    out
}

#[test]
fn prometheus_rules_parse_and_use_only_exported_metrics() {
    let rules: serde_yaml_ng::Value = serde_yaml_ng::from_str(&doc("ops/prometheus-rules.yml")).unwrap();
    let mut alerts = Vec::new();
    for g in rules["groups"].as_sequence().unwrap() {
        for r in g["rules"].as_sequence().unwrap() {
            let name = r["alert"].as_str().unwrap().to_owned();
            let expr = r["expr"].as_str().unwrap();
            let used = metrics_in(expr);
            assert!(!used.is_empty(), "{name} uses no ledger metric");
            for m in used {
                assert!(ledger_server::metrics::NAMES.contains(&m.as_str()), "{name} uses unknown metric {m}");
            }
            alerts.push(name);
        }
    }
    for want in [
        "LedgerKeyNotRotated",
        "LedgerKeyExpiringSoon",
        "LedgerNoCheckpoint",
        "LedgerAppendErrors",
        "LedgerAppendLatencyP95",
    ] {
        assert!(alerts.iter().any(|a| a == want), "missing alert {want}");
    }
}

#[test]
fn grafana_dashboard_parses_and_uses_only_exported_metrics() {
    let d: serde_json::Value = serde_json::from_str(&doc("ops/grafana-dashboard.json")).unwrap();
    let mut n = 0;
    for p in d["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().unwrap() {
            for m in metrics_in(t["expr"].as_str().unwrap()) {
                assert!(ledger_server::metrics::NAMES.contains(&m.as_str()), "{} uses unknown metric {m}", p["title"]);
                n += 1;
            }
        }
    }
    assert!(n >= 10);
}

#[test]
fn dual_control_settings_are_checked_naming_the_field() {
    let mut c = Config::default();
    c.logs[0].dual_control_within = Some("1h".into());
    let e = c.validate().unwrap_err().to_string();
    assert!(e.contains("logs[0].dual_control_within") && e.contains("dual_control is off"), "{e}");
    c.logs[0].dual_control = true;
    c.validate().unwrap();
    c.logs[0].dual_control_within = Some("1 day".into());
    let e = c.validate().unwrap_err().to_string();
    assert!(e.contains("logs[0].dual_control_within") && e.contains("whole number"), "{e}");
    let toml = "[[logs]]\nname = \"default\"\ndual_control = true\ndual_control_within = \"24h\"\n";
    let c = Config::from_toml(Path::new("x.toml"), toml).unwrap();
    c.validate().unwrap();
    assert_eq!((c.logs[0].dual_control, c.logs[0].dual_control_within.as_deref()), (true, Some("24h")));
}
