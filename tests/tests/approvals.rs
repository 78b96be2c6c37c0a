//! Four eyes through the real CLI over mutual TLS (docs/SECURITY.md "Four
//! eyes"): a `decision_evaluation` with `ai_degraded` waits for a
//! `risk_officer`'s approval (`approvals pending`); its own writer, a
//! certificate without the role, the wrong role and a wrong leaf hash are
//! refused naming why; the risk officer's approval empties the list; a
//! sign-off of an incident entry needs the role it names.

#[path = "../../server/tests/common/pki.rs"]
mod pki;

use std::path::Path;

use ledger_e2e::{Ledgerd, Run, ledger};
use pki::{Pair, Pki};

fn config(pki: &Pki, server: &Pair) -> String {
    format!(
        r#"{tls}
[[logs]]
name = "default"
[logs.policy.categories.decision_evaluation]
required = ["model", "accepted"]
requires_approval = {{ role = "risk_officer", within = "4h", when = {{ field = "reasons", contains = "ai_degraded" }} }}
[logs.policy.categories.approval]
required = ["approved_seq", "approved_leaf_hash", "reason"]
[logs.policy.categories.stage4_incident]
required = []
[[logs.access]]
identity = "spiffe://ops/engine"
roles = ["writer", "reader"]
categories = ["decision_evaluation", "approval"]
approves = ["risk_officer"]
[[logs.access]]
identity = "risk-1"
roles = ["writer", "reader"]
categories = ["approval"]
approves = ["risk_officer"]
[[logs.access]]
identity = "ops-2"
roles = ["writer", "reader"]
categories = ["approval", "stage4_incident"]
[[logs.access]]
identity = "im-3"
roles = ["writer", "reader"]
categories = ["approval"]
approves = ["incident_manager"]
"#,
        tls = pki.tls_section(server)
    )
}

fn as_(server: &Ledgerd, root: &Path, ca: &Path, who: &Pair, args: &[&str]) -> Run {
    ledger(&server.url, root, &[&who.cli_args(ca)[..], args].concat())
}

#[test]
fn four_eyes_approvals_hold_through_the_cli_over_mutual_tls() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let pki = Pki::new(&root.join("pki"), "ops");
    std::fs::write(root.join("ledgerd.toml"), config(&pki, &pki.server())).unwrap();
    let server = Ledgerd::start(&root.join("data"), &["--config", root.join("ledgerd.toml").to_str().unwrap()]);
    let ca = pki.ca_pem.clone();
    let engine = pki.client_uri("engine", "spiffe://ops/engine");
    let (risk, ops, im) = (pki.client_cn("risk", "risk-1"), pki.client_cn("ops", "ops-2"), pki.client_cn("im", "im-3"));
    let run = |who: &Pair, args: &[&str]| as_(&server, root, &ca, who, args);

    let degraded =
        ["--field", "model=autotrader-v3", "--field", "accepted=false", "--field", r#"reasons=["ai_degraded"]"#];
    let r = run(
        &engine,
        &[&["append", "--category", "decision_evaluation", "--subject", "autotrader"][..], &degraded].concat(),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = run(
        &engine,
        &["append", "--category", "decision_evaluation", "--field", "model=autotrader-v3", "--field", "accepted=true"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);

    // only the ai_degraded one waits, for a risk officer, with a due time 4 h after it
    let pending = run(&risk, &["approvals", "pending", "--output", "json"]).json();
    assert_eq!(pending["pending"].as_array().unwrap().len(), 1, "{pending}");
    let p = &pending["pending"][0];
    assert_eq!(
        (p["entry"]["seq"].clone(), p["role"].clone()),
        (serde_json::json!(0), serde_json::json!("risk_officer"))
    );
    let recorded = p["entry"]["recorded_at"].as_i64().unwrap();
    assert_eq!(p["due"].as_i64().unwrap(), recorded + 4 * 3_600_000_000_000);

    // refusals, each naming why, writing nothing
    let refused = |who: &Pair, args: &[&str], why: &str| {
        let r = run(who, args);
        assert_eq!(r.code, 4, "{args:?}: {}{}", r.stdout, r.stderr);
        assert!(r.stderr.contains(why), "{args:?}: {}", r.stderr);
    };
    refused(&engine, &["approve", "0", "--reason", "mine"], "must come from someone else");
    refused(&ops, &["approve", "0", "--reason", "ok", "--as", "risk_officer"], "does not hold the approver role");
    refused(&risk, &["approve", "0", "--reason", "ok", "--as", "operator"], "needs an approval as \"risk_officer\"");
    let zeros = format!("approved_leaf_hash={}", "0".repeat(64));
    let forged =
        ["append", "--category", "approval", "--field", "approved_seq=0", "--field", &zeros, "--field", "reason=x"];
    refused(&risk, &forged, "approved_leaf_hash");
    assert_eq!(
        run(&risk, &["approvals", "pending", "--output", "json"]).json()["pending"].as_array().unwrap().len(),
        1
    );

    // the risk officer's approval: nothing waits any more
    let r = run(&risk, &["approve", "0", "--reason", "checked the degraded inputs", "--output", "json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = run(&risk, &["approvals", "pending", "--output", "json"]);
    assert_eq!(r.json()["pending"], serde_json::json!([]), "{}", r.stdout);

    // a sign-off of the incident's closing entry, by role
    let r = run(
        &ops,
        &["append", "--category", "stage4_incident", "--subject", "INC-9", "--field", "step=close", "--output", "json"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let closing = r.json()["seq"].to_string();
    assert_eq!(closing, "3", "the refusals wrote nothing: 0 and 1 evaluations, 2 the approval");
    refused(&im, &["approve", &closing, "--reason", "closed"], "name the role you sign off as");
    refused(
        &ops,
        &["approve", &closing, "--reason", "closed", "--as", "incident_manager"],
        "must come from someone else",
    );
    let r = run(&im, &["approve", &closing, "--reason", "closed", "--as", "incident_manager"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
}
