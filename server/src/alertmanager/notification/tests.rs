use super::*;

/// A notification as Alertmanager 0.25 sends it (one firing, one resolved).
fn body() -> Value {
    json!({
        "receiver": "ledger", "status": "firing", "version": "4",
        "groupKey": "{}:{alertname=\"stage4_pnl_drawdown\"}", "truncatedAlerts": 0,
        "groupLabels": {"alertname": "stage4_pnl_drawdown"}, "commonLabels": {}, "commonAnnotations": {},
        "externalURL": "http://am.example:9093",
        "alerts": [
            {"status": "firing", "labels": {"alertname": "stage4_pnl_drawdown", "incident": "INC-2041"},
             "annotations": {"summary": "no signals for 6 min"},
             "startsAt": "2026-12-05T21:25:15.123456789Z", "endsAt": "0001-01-01T00:00:00Z",
             "generatorURL": "http://prom.example/graph", "fingerprint": "a1b2c3d4e5f60718"},
            {"status": "resolved", "labels": {"alertname": "stage5_tco_cost_spike"},
             "annotations": {}, "startsAt": "2026-12-05T21:00:00Z", "endsAt": "2026-12-05T22:25:15+01:00",
             "generatorURL": "", "fingerprint": "ffee000011112222"}
        ]
    })
}

fn map(v: &Value) -> Result<Vec<NewEntry>, ValidationError> {
    let limits = Limits::default();
    entries(v.to_string().as_bytes(), &Mapping { subject_label: "incident", actor: "alertmanager", limits: &limits })
}

#[test]
fn each_alert_becomes_its_entry() {
    let e = map(&body()).unwrap();
    assert_eq!(e.len(), 2);
    assert_eq!(e[0].category.as_str(), "alert_fired");
    assert_eq!(e[0].subject.as_ref().unwrap().as_str(), "INC-2041");
    assert_eq!(e[0].occurred_at, Some(1_796_505_915_123_456_789));
    assert_eq!(e[0].request_id.as_ref().unwrap().as_str(), "am:a1b2c3d4e5f60718:1796505915123456789:firing");
    let p: Value = serde_json::from_slice(e[0].payload.bytes()).unwrap();
    assert_eq!(p["fingerprint"], "a1b2c3d4e5f60718");
    assert_eq!(p["labels"]["incident"], "INC-2041");
    assert_eq!(p["annotations"]["summary"], "no signals for 6 min");
    assert_eq!(p["group_key"], "{}:{alertname=\"stage4_pnl_drawdown\"}");
    assert!(p.get("ends_at").is_none(), "Go's zero time is 'not ended'");
    // resolved: no incident label, so alertname/fingerprint; the time it ended
    assert_eq!(e[1].category.as_str(), "alert_resolved");
    assert_eq!(e[1].subject.as_ref().unwrap().as_str(), "stage5_tco_cost_spike/ffee000011112222");
    assert_eq!(e[1].occurred_at, Some(1_796_505_915_000_000_000));
    let p: Value = serde_json::from_slice(e[1].payload.bytes()).unwrap();
    assert_eq!(p["ends_at"], "2026-12-05T22:25:15+01:00");
}

#[test]
fn refusals_name_the_field() {
    let why = |f: &dyn Fn(&mut Value)| {
        let mut v = body();
        f(&mut v);
        let e = map(&v).unwrap_err();
        (e.field, e.reason)
    };
    assert_eq!(why(&|v| v["version"] = json!("3")).0, "version");
    assert_eq!(why(&|v| v["alerts"] = json!([])).0, "alerts");
    assert_eq!(why(&|v| v["alerts"][1]["status"] = json!("pending")).0, "alerts[1].status");
    assert_eq!(why(&|v| v["alerts"][0]["startsAt"] = json!("yesterday")).0, "alerts[0].startsAt");
    assert_eq!(why(&|v| v["alerts"][1]["endsAt"] = json!("0001-01-01T00:00:00Z")).0, "alerts[1].endsAt");
    assert_eq!(why(&|v| v["alerts"][0]["fingerprint"] = json!("a b")).0, "alerts[0].fingerprint");
    assert_eq!(why(&|v| v["alerts"][0]["labels"]["x"] = json!(1)).0, "alerts[0].labels.x");
    assert_eq!(why(&|v| v["alerts"][0]["labels"]["incident"] = json!("A\u{7}")).0, "alerts[0]: subject");
    assert_eq!(why(&|v| v["receiver"] = json!(7)).1, "not a string");
    let limits = Limits::default();
    let m = Mapping { subject_label: "incident", actor: "am", limits: &limits };
    assert_eq!(entries(b"{", &m).unwrap_err().field, "body");
}
