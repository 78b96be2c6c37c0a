//! `ledger status`: every node of `--server`, its role in the log, its size
//! and how far it is behind the database's head (docs/HA.md "Clients").
//!
//! Owns: asking each node in turn and the table / JSON. Must not: stop at
//! the first node that does not answer (it is reported, and the exit code
//! says so).

use ledger_proto::v1 as pb;
use serde_json::json;

use crate::client::{Ctx, ledger_client, parse_nodes, print_json};
use crate::error::{CliError, CliResult};

/// One node's answer, or why there is none.
fn row(node: &str, r: Result<pb::NodeStatusResponse, String>) -> serde_json::Value {
    match r {
        Err(error) => json!({"server": node, "reachable": false, "error": error}),
        Ok(s) => {
            let lag = s.head_size.saturating_sub(s.size);
            json!({
                "server": node, "reachable": true, "node": s.node, "storage": s.storage, "role": s.role,
                "epoch": s.epoch, "size": s.size, "head_size": s.head_size, "lag": lag,
                "leader": s.leader, "leader_address": s.leader_address, "halted": s.halted,
            })
        }
    }
}

/// `ledger status`: exit 0 when every node answered and none halted, 1
/// otherwise.
pub async fn run(ctx: &Ctx) -> CliResult {
    let mut rows = Vec::new();
    for node in parse_nodes(&ctx.server)? {
        let one = ctx.for_node(&node);
        let r = async {
            let mut c = ledger_client(one.channel().await.map_err(|e| e.to_string())?);
            let s = c.node_status(pb::NodeStatusRequest { log: ctx.log.clone() }).await.map_err(|e| e.to_string())?;
            Ok::<_, String>(s.into_inner())
        }
        .await;
        rows.push(row(&node, r));
    }
    let bad = rows.iter().filter(|r| r["reachable"] == false || r["halted"].as_str().is_some_and(|h| !h.is_empty()));
    let bad = bad.count();
    if ctx.json() {
        print_json(&json!({"log": ctx.log, "nodes": rows}));
    } else {
        print_table(&rows);
    }
    if bad > 0 {
        return Err(CliError::Negative(format!("{bad} of {} nodes unreachable or halted", rows.len())));
    }
    Ok(())
}

fn print_table(rows: &[serde_json::Value]) {
    println!("{:<28} {:<12} {:<9} {:>6} {:>10} {:>8}  leader", "server", "node", "role", "epoch", "size", "lag");
    for r in rows {
        let s = |k: &str| r[k].as_str().unwrap_or("").to_owned();
        if r["reachable"] == false {
            println!("{:<28} unreachable: {}", s("server"), s("error"));
            continue;
        }
        let leader =
            if s("leader").is_empty() { "-".to_owned() } else { format!("{} {}", s("leader"), s("leader_address")) };
        println!(
            "{:<28} {:<12} {:<9} {:>6} {:>10} {:>8}  {leader}",
            s("server"),
            s("node"),
            s("role"),
            r["epoch"],
            r["size"],
            r["lag"]
        );
        if !s("halted").is_empty() {
            println!("{:<28} HALTED: {}", "", s("halted"));
        }
    }
}
