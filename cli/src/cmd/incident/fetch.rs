//! What `incident show` and `incident pack` read from ledgerd: the
//! checkpoint (latest or `--as-of`), the subject's entries bounded by it
//! (with their inclusion proofs in it, for a pack: the Query RPC's
//! `proof_tree_size`), and the timeline's context (approvals, the
//! artifact store, the log's clock).
//!
//! Owns: those RPCs. Must not: decide milestones or findings
//! (`ledger::pack::timeline` does) or write files.

use std::collections::BTreeSet;

use ledger::pack::timeline::{self, AsOf, Context, MissingArtifact, Timeline, TimelineEntry};
use ledger_proto::v1 as pb;
use ledger_proto::v1::ledger_service_client::LedgerServiceClient;
use tonic::transport::Channel;

use crate::client::Ctx;
use crate::error::{CliError, CliResult};

/// Entries per Query page (the RPC's maximum).
const PAGE: u32 = 10_000;

/// The timeline and what it was made from.
pub struct Read {
    /// the checkpoint read at
    pub checkpoint: pb::CheckpointResponse,
    /// the subject's entries, in seq order (with proofs when asked)
    pub entries: Vec<pb::Entry>,
    /// the timeline
    pub timeline: Timeline,
}

/// The checkpoint of `as_of` entries (a kept one), or the latest.
pub async fn checkpoint(
    ctx: &Ctx,
    client: &mut LedgerServiceClient<Channel>,
    as_of: Option<u64>,
) -> CliResult<pb::CheckpointResponse> {
    if as_of == Some(0) {
        return Err(CliError::Usage("--as-of 0: the empty tree has no entries; give a size of 1 or more".into()));
    }
    let req = pb::GetCheckpointRequest { log: ctx.log.clone(), size: as_of.unwrap_or(0) };
    Ok(client.get_checkpoint(req).await?.into_inner())
}

/// Every entry of `subject` below `size`, in seq order; with `proofs`, each
/// with its inclusion proof in the tree of `size`.
pub async fn subject_entries(
    ctx: &Ctx,
    client: &mut LedgerServiceClient<Channel>,
    subject: &str,
    size: u64,
    proofs: bool,
) -> CliResult<Vec<pb::Entry>> {
    let (mut out, mut cursor): (Vec<pb::Entry>, Option<u64>) = (Vec::new(), None);
    // each page moves the cursor forward, so this runs at most `size` times
    for _ in 0..=size {
        let req = pb::QueryRequest {
            log: ctx.log.clone(),
            filter: Some(pb::Filter { subject: subject.to_owned(), ..Default::default() }),
            to_seq: size,
            limit: PAGE,
            cursor,
            proof_tree_size: if proofs { size } else { 0 },
            ..Default::default()
        };
        let mut st = client.query(req).await?.into_inner();
        let before = cursor;
        cursor = None;
        while let Some(m) = st.message().await? {
            match m.item {
                Some(pb::query_response::Item::Entry(e)) => out.push(e),
                Some(pb::query_response::Item::NextCursor(c)) => cursor = Some(c),
                None => {}
            }
        }
        match cursor {
            None => return Ok(out),
            Some(c) if before.is_some_and(|b| c <= b) => {
                return Err(CliError::Usage(format!("the server's query cursor did not advance ({c})")));
            }
            Some(_) => {}
        }
    }
    Ok(out)
}

/// An entry as the timeline shows it (payload null when redacted or not JSON).
pub fn timeline_entry(e: &pb::Entry) -> TimelineEntry {
    let l = e.decoded.clone().unwrap_or_default();
    let payload = serde_json::from_slice(&e.payload).unwrap_or(serde_json::Value::Null);
    TimelineEntry {
        seq: e.seq,
        recorded_at: l.recorded_at,
        occurred_at: l.occurred_at,
        category: l.category,
        actor: l.actor,
        payload,
    }
}

/// Reads the checkpoint, the subject's entries and the context, and makes
/// the timeline.
pub async fn read(ctx: &Ctx, subject: &str, as_of: Option<u64>, proofs: bool) -> CliResult<Read> {
    let mut client = ctx.ledger().await?;
    let checkpoint = checkpoint(ctx, &mut client, as_of).await?;
    let entries = subject_entries(ctx, &mut client, subject, checkpoint.size, proofs).await?;
    let shown: Vec<TimelineEntry> = entries.iter().map(timeline_entry).collect();
    let context = context(ctx, &mut client, &entries, &shown, checkpoint.size).await?;
    let as_of = AsOf { size: checkpoint.size, root: hex::encode(&checkpoint.root) };
    let timeline = timeline::timeline(subject, as_of, shown, &context);
    Ok(Read { checkpoint, entries, timeline })
}

/// The log's clock at the checkpoint, the approved degraded evaluations,
/// the referenced artifacts the server's store lacks.
async fn context(
    ctx: &Ctx,
    client: &mut LedgerServiceClient<Channel>,
    entries: &[pb::Entry],
    shown: &[TimelineEntry],
    size: u64,
) -> CliResult<Context> {
    let now = if size == 0 {
        0
    } else {
        let last = client.get(pb::GetRequest { log: ctx.log.clone(), seq: size - 1, with_proof: false }).await?;
        last.into_inner().entry.and_then(|e| e.decoded).map_or(0, |l| l.recorded_at)
    };
    let mut approved = BTreeSet::new();
    for seq in timeline::degraded_evaluations(shown) {
        if approval_exists(ctx, client, seq, size).await? {
            approved.insert(seq);
        }
    }
    let missing_artifacts = missing_artifacts(ctx, entries).await?;
    Ok(Context { now, approved, missing_artifacts })
}

/// Whether an `approval` entry below `size` names `seq` by `approved_seq`.
/// Follows the cursor: a Query page may end before it finds a match (it
/// examines a bounded number of entries), which is not "none".
async fn approval_exists(ctx: &Ctx, client: &mut LedgerServiceClient<Channel>, seq: u64, size: u64) -> CliResult<bool> {
    let filter = pb::Filter {
        category: "approval".into(),
        fields: vec![pb::FieldEquals { key: "approved_seq".into(), json_value: seq.to_string() }],
        ..Default::default()
    };
    let mut cursor = None;
    loop {
        let req = pb::QueryRequest {
            log: ctx.log.clone(),
            filter: Some(filter.clone()),
            to_seq: size,
            limit: 1,
            cursor,
            ..Default::default()
        };
        let mut st = client.query(req).await?.into_inner();
        let mut next = None;
        while let Some(m) = st.message().await? {
            match m.item {
                Some(pb::query_response::Item::Entry(_)) => return Ok(true),
                Some(pb::query_response::Item::NextCursor(c)) => next = Some(c),
                None => {}
            }
        }
        // each page moves the cursor forward, so this ends at the log's size
        match next {
            Some(c) if Some(c) != cursor => cursor = Some(c),
            _ => return Ok(false),
        }
    }
}

/// The distinct artifacts the entries reference, each with the first
/// entry referencing it, in order.
pub fn referenced(entries: &[pb::Entry]) -> Vec<(u64, pb::ArtifactRef)> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for e in entries {
        for a in e.decoded.iter().flat_map(|l| l.artifacts.iter()) {
            if seen.insert(a.blake3.clone()) {
                out.push((e.seq, a.clone()));
            }
        }
    }
    out
}

/// What the artifact store says of `a`: `None` when it holds it intact,
/// else why not.
pub async fn store_lacks(ctx: &Ctx, a: &pb::ArtifactRef) -> CliResult<Option<String>> {
    let req = pb::StatRequest { log: ctx.log.clone(), blake3: a.blake3.clone() };
    let st = match ctx.artifacts().await?.stat(req).await {
        Ok(r) => r.into_inner(),
        Err(s) if s.code() == tonic::Code::NotFound => return Ok(Some("not registered in the artifact store".into())),
        Err(s) => return Err(s.into()),
    };
    Ok(match (st.registered, st.present, st.intact) {
        (false, _, _) => Some("not registered in the artifact store".into()),
        (_, false, _) => Some("registered, but absent from the artifact store".into()),
        (_, _, false) => Some("altered in the artifact store (its bytes no longer hash to it)".into()),
        _ => None,
    })
}

async fn missing_artifacts(ctx: &Ctx, entries: &[pb::Entry]) -> CliResult<Vec<MissingArtifact>> {
    let mut out = Vec::new();
    for (seq, a) in referenced(entries) {
        if let Some(reason) = store_lacks(ctx, &a).await? {
            out.push(MissingArtifact { seq, name: a.name.clone(), blake3: hex::encode(&a.blake3), reason });
        }
    }
    Ok(out)
}
