//! `ledger get`, `ledger query`, `ledger tail`.

use ledger_proto::v1 as pb;

use crate::cli::{Filters, GetArgs, QueryArgs, TailArgs};
use crate::client::{Ctx, field, print_json, time_arg};
use crate::error::CliResult;
use crate::render;

fn filter(f: &Filters) -> CliResult<pb::Filter> {
    let mut fields = Vec::new();
    for kv in &f.fields {
        let (key, v) = field(kv)?;
        fields.push(pb::FieldEquals { key, json_value: v.to_string() });
    }
    Ok(pb::Filter {
        category: f.category.clone().unwrap_or_default(),
        subject: f.subject.clone().unwrap_or_default(),
        actor: f.actor_is.clone().unwrap_or_default(),
        since: f.since.as_deref().map(|s| time_arg("--since", s)).transpose()?.unwrap_or(0),
        until: f.until.as_deref().map(|s| time_arg("--until", s)).transpose()?.unwrap_or(0),
        fields,
    })
}

fn print_entry(ctx: &Ctx, e: &pb::Entry) {
    if ctx.json() {
        print_json(&render::entry_json(e));
    } else {
        println!("{}", render::entry_text(e));
    }
}

/// `ledger get`.
pub async fn get(ctx: &Ctx, a: GetArgs) -> CliResult {
    let r = ctx
        .ledger()
        .await?
        .get(pb::GetRequest { log: ctx.log.clone(), seq: a.seq, with_proof: a.proof })
        .await?
        .into_inner();
    let e = r.entry.unwrap_or_default();
    if ctx.json() {
        let mut v = render::entry_json(&e);
        if let Some(rc) = &r.receipt {
            v["proof"] = render::receipt_json(rc);
        }
        print_json(&v);
    } else {
        println!("{}", serde_json::to_string_pretty(&render::entry_json(&e)).expect("json"));
        if let Some(rc) = &r.receipt {
            print!("{}", rc.tlog_proof);
        }
    }
    Ok(())
}

/// `ledger query`: follows pages up to --limit.
pub async fn query(ctx: &Ctx, a: QueryArgs) -> CliResult {
    let printed = crate::client::scan(ctx, filter(&a.filters)?, a.desc, a.limit, |e| print_entry(ctx, &e)).await?;
    if !ctx.json() && printed == 0 {
        eprintln!("no matching entries");
    }
    Ok(())
}

/// `ledger tail`: follows until interrupted (Ctrl-C exits 0).
pub async fn tail(ctx: &Ctx, a: TailArgs) -> CliResult {
    let mut client = ctx.ledger().await?;
    let from = match a.from {
        Some(f) => f,
        None => {
            client.get_checkpoint(pb::GetCheckpointRequest { log: ctx.log.clone(), size: 0 }).await?.into_inner().size
        }
    };
    let req = pb::TailRequest { log: ctx.log.clone(), from_seq: from, filter: Some(filter(&a.filters)?) };
    let mut st = client.tail(req).await?.into_inner();
    loop {
        tokio::select! {
            m = st.message() => match m? {
                Some(e) => print_entry(ctx, &e),
                None => return Ok(()),
            },
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}
