use super::*;

fn rule(within: Option<&str>) -> ApprovalRule {
    ApprovalRule {
        role: "risk_officer".into(),
        distinct_actor: true,
        within: within.map(str::to_owned),
        when: Some(Condition::Contains { field: "reasons".into(), contains: "ai_degraded".into() }),
    }
}

#[test]
fn the_rules_of_four_eyes() {
    let r = rule(Some("4h"));
    let approved = Approved { leaf_hash: [1; 32], actor: "svc", recorded_at: 0, rule: Some(&r) };
    let claim = Claim { seq: 7, leaf_hash: [1; 32], role: None };
    let risk = |role: &str| role == "risk_officer";
    assert_eq!(check(&claim, &approved, "ann", risk, 3_600_000_000_000), Ok("risk_officer".into()));
    assert_eq!(check(&claim, &approved, "svc", risk, 1), Err(ApprovalError::SameActor { actor: "svc".into(), seq: 7 }));
    assert_eq!(
        check(&claim, &approved, "bob", |_| false, 1),
        Err(ApprovalError::RoleNotHeld { identity: "bob".into(), role: "risk_officer".into() })
    );
    assert_eq!(
        check(&claim, &approved, "ann", risk, 5 * 3_600_000_000_000),
        Err(ApprovalError::TooLate { seq: 7, within: "4h".into() })
    );
    let other = Claim { leaf_hash: [2; 32], ..claim.clone() };
    assert_eq!(check(&other, &approved, "ann", risk, 1), Err(ApprovalError::LeafMismatch { seq: 7 }));
    let wrong = Claim { role: Some("operator".into()), ..claim.clone() };
    assert!(matches!(check(&wrong, &approved, "ann", risk, 1), Err(ApprovalError::WrongRole { .. })));
    // a sign-off of an entry whose category asks for none: the role named
    let plain = Approved { rule: None, ..approved };
    assert_eq!(check(&claim, &plain, "ann", risk, 1), Err(ApprovalError::NoRole { seq: 7 }));
    let signoff = Claim { role: Some("incident_manager".into()), ..claim };
    assert_eq!(check(&signoff, &plain, "ann", |r| r == "incident_manager", 1), Ok("incident_manager".into()));
}

#[test]
fn conditions_limits_and_claims_are_read_strictly() {
    let r = rule(None);
    assert!(r.applies(br#"{"reasons":["x","ai_degraded"]}"#));
    assert!(r.applies(br#"{"reasons":"ai_degraded"}"#));
    assert!(!r.applies(br#"{"reasons":["x"]}"#));
    assert!(!r.applies(b"{}"));
    assert_eq!(rule(Some("30m")).within_ns(), Ok(Some(1_800_000_000_000)));
    assert!(rule(Some("4 hours")).within_ns().is_err());
    assert!(rule(Some("0h")).within_ns().is_err());
    let c = Claim::parse(
        format!(r#"{{"approved_seq":3,"approved_leaf_hash":"{}","reason":"ok"}}"#, "ab".repeat(32)).as_bytes(),
    )
    .unwrap();
    assert_eq!((c.seq, c.leaf_hash, c.role), (3, [0xab; 32], None));
    assert_eq!(Claim::parse(br#"{"approved_seq":"3"}"#).unwrap_err().field, "payload.approved_seq");
    let bad_hash = br#"{"approved_seq":3,"approved_leaf_hash":"zz"}"#;
    assert_eq!(Claim::parse(bad_hash).unwrap_err().field, "payload.approved_leaf_hash");
}

#[test]
fn a_cel_condition_chooses_the_entries_and_an_error_makes_one_wait() {
    let r: ApprovalRule = toml::from_str(
        "role = \"risk_officer\"\nwhen = '\"ai_degraded\" in payload.reasons && payload.model != \"shadow\"'",
    )
    .unwrap();
    assert!(r.applies(br#"{"reasons":["ai_degraded"],"model":"v3"}"#));
    assert!(!r.applies(br#"{"reasons":["ai_degraded"],"model":"shadow"}"#));
    assert!(!r.applies(br#"{"reasons":[],"model":"v3"}"#));
    assert!(r.applies(br#"{"model":"v3"}"#), "no reasons: cannot be evaluated, so it waits");
    let table: ApprovalRule =
        toml::from_str("role = \"r\"\nwhen = { field = \"reasons\", contains = \"ai_degraded\" }").unwrap();
    assert_eq!(table, ApprovalRule { role: "r".into(), ..rule(None) });
    let typo = toml::from_str::<ApprovalRule>("role = \"r\"\nwhen = { field = \"reasons\", contain = \"x\" }");
    assert!(typo.unwrap_err().to_string().contains("unknown field `contain`"));
    let bad = toml::from_str::<ApprovalRule>("role = \"r\"\nwhen = 'payload.reasons >'").unwrap_err();
    assert!(bad.to_string().contains("is not valid CEL"), "{bad}");
}

#[test]
fn an_approved_admin_request_stays_pending_until_its_effect_is_written() {
    use super::dual::{AdminAction, AdminRequest};
    let log = crate::rules::fixture::Log::new();
    let admin = crate::Actor::new("admin-a", &Default::default()).unwrap();
    let target = log.add("stage4_incident", "INC-1", serde_json::json!({"ssn": "x"}));
    let req = AdminRequest::new(AdminAction::Redact { target_seq: target }, "erasure", None).unwrap();
    let request = log.log.request_admin_action(&admin, &req).unwrap().seq;
    let listed = |log: &crate::rules::fixture::Log| -> Vec<u64> {
        let (p, _) = super::pending(&log.log.reader(), Some("admin_request"), 100).unwrap();
        p.iter().map(|p| p.entry.seq).collect()
    };
    assert_eq!(listed(&log), vec![request]);
    log.approve(request, Some("admin"));
    assert_eq!(listed(&log), vec![request], "approved, not carried out: still listed");
    let b = crate::Actor::new("admin-b", &Default::default()).unwrap();
    log.log.redact_as_requested(&b, target, "erasure", request).unwrap();
    assert_eq!(listed(&log), Vec::<u64>::new());
}
