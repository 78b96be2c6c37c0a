//! `ledger ack --alert FINGERPRINT|SEQ`: the acknowledgement of an alert
//! entry (`alert_fired`, written by ledgerd's Alertmanager receiver), linked
//! to it by seq and leaf hash (docs/CLI.md, docs/API.md).
//!
//! Owns: finding the alert entry and the `alert_ack` payload. Must not:
//! append any other way than `append::send`.

use ledger_proto::v1 as pb;
use serde_json::{Map, Value, json};

use crate::cli::AckArgs;
use crate::client::{Ctx, field, scan};
use crate::error::{CliError, CliResult};

/// `--alert`: a seq (decimal, fewer than 16 digits) or Alertmanager's
/// fingerprint (16 hexadecimal digits).
#[derive(Debug, PartialEq, Eq)]
enum AlertRef {
    Seq(u64),
    Fingerprint(String),
}

fn alert_ref(s: &str) -> CliResult<AlertRef> {
    if s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(AlertRef::Fingerprint(s.to_ascii_lowercase()));
    }
    match s.parse::<u64>() {
        Ok(n) if s.len() < 16 => Ok(AlertRef::Seq(n)),
        _ => Err(CliError::Usage(format!(
            "--alert {s:?}: give the alert entry's seq (decimal) or Alertmanager's fingerprint (16 hex digits)"
        ))),
    }
}

/// The alert entry `r` names: by seq, or the newest `alert_fired` with the
/// fingerprint.
async fn find(ctx: &Ctx, r: &AlertRef) -> CliResult<pb::Entry> {
    match r {
        AlertRef::Seq(seq) => {
            let req = pb::GetRequest { log: ctx.log.clone(), seq: *seq, with_proof: false };
            let e = ctx.ledger().await?.get(req).await?.into_inner().entry.unwrap_or_default();
            let category = e.decoded.as_ref().map(|l| l.category.as_str()).unwrap_or_default();
            if category != "alert_fired" {
                return Err(CliError::Usage(format!(
                    "--alert {seq}: entry {seq} is {category:?}, not an alert_fired entry"
                )));
            }
            Ok(e)
        }
        AlertRef::Fingerprint(fp) => {
            let filter = pb::Filter {
                category: "alert_fired".into(),
                fields: vec![pb::FieldEquals { key: "fingerprint".into(), json_value: json!(fp).to_string() }],
                ..Default::default()
            };
            let mut found = None;
            scan(ctx, filter, true, 1, |e| found = Some(e)).await?;
            found.ok_or_else(|| CliError::Usage(format!("--alert {fp}: no alert_fired entry has this fingerprint")))
        }
    }
}

/// The acknowledgement's payload: the link to the alert, then `--field`s.
fn payload(alert: &pb::Entry, fields: &[String]) -> CliResult<Vec<u8>> {
    let p: Value = serde_json::from_slice(&alert.payload).unwrap_or(Value::Null);
    let mut obj = Map::new();
    obj.insert("alert_seq".into(), json!(alert.seq));
    obj.insert("alert_leaf_hash".into(), json!(hex::encode(&alert.leaf_hash)));
    obj.insert("fingerprint".into(), p.get("fingerprint").cloned().unwrap_or(Value::Null));
    obj.insert("alertname".into(), p.get("alertname").cloned().unwrap_or(Value::Null));
    obj.insert("status".into(), json!("acknowledged"));
    for f in fields {
        let (k, v) = field(f)?;
        if k.starts_with("alert_") {
            return Err(CliError::Usage(format!(
                "--field {k}: the alert_* fields are the link to the alert, set by ack"
            )));
        }
        obj.insert(k, v);
    }
    Ok(serde_json::to_vec(&Value::Object(obj)).expect("serialisable"))
}

/// Runs the command.
pub async fn run(ctx: &Ctx, args: AckArgs) -> CliResult {
    let alert = find(ctx, &alert_ref(&args.alert)?).await?;
    let leaf = alert.decoded.clone().unwrap_or_default();
    let subject = args.subject.clone().unwrap_or(leaf.subject);
    // One acknowledgement per alert entry unless told otherwise: re-running
    // the command adds nothing.
    let request_id = args.request_id.clone().unwrap_or_else(|| format!("ack:{}", alert.seq));
    let entry = pb::EntryInput {
        category: "alert_ack".into(),
        subject,
        payload: payload(&alert, &args.fields)?,
        occurred_at: 0,
        request_id: request_id.clone(),
        artifacts: Vec::new(),
    };
    let r = super::append::send(ctx, entry).await?;
    super::append::print(ctx, &r, request_id, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alert_is_a_seq_or_a_fingerprint() {
        assert_eq!(alert_ref("42").unwrap(), AlertRef::Seq(42));
        assert_eq!(alert_ref("A1b2c3d4e5f60718").unwrap(), AlertRef::Fingerprint("a1b2c3d4e5f60718".into()));
        // 16 digits are a fingerprint, as Alertmanager may print one
        assert_eq!(alert_ref("1234567890123456").unwrap(), AlertRef::Fingerprint("1234567890123456".into()));
        assert!(alert_ref("INC-1").is_err());
        assert!(alert_ref("12345678901234567").is_err());
    }

    #[test]
    fn the_link_fields_are_not_overridden() {
        let e = pb::Entry {
            seq: 7,
            leaf_hash: vec![0xab; 32],
            payload: br#"{"fingerprint":"f","alertname":"a"}"#.to_vec(),
            ..Default::default()
        };
        let p: Value = serde_json::from_slice(&payload(&e, &["note=on it".into()]).unwrap()).unwrap();
        assert_eq!(p["alert_seq"], 7);
        assert_eq!(p["alert_leaf_hash"], "ab".repeat(32));
        assert_eq!(p["fingerprint"], "f");
        assert_eq!(p["note"], "on it");
        assert!(payload(&e, &["alert_seq=1".into()]).is_err());
    }
}
