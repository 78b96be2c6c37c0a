//! Bulk appends: one batch of append requests sent over one `AppendStream`
//! (docs/API.md), with each request's own result back, in request order.
//!
//! Owns: the stream, and resending what a failed attempt left without a
//! result — on the leader, within `--write-retry`, as [`Ctx::write`] does
//! for a single append. Must not: build entries or decide what a refusal
//! means for the caller's command; and never send a request without a
//! request_id (a resent one must come back as a duplicate, not twice).

use std::sync::{Arc, Mutex};

use ledger_proto::v1 as pb;
use ledger_proto::v1::append_stream_response::Result as StreamResult;
use tonic::Status;
use tonic::transport::Channel;

use crate::client::{Ctx, ledger_client};
use crate::error::{CliError, CliResult};

/// What ledgerd answered to one request of a batch.
#[derive(Debug)]
pub enum Outcome {
    /// written, or a retry of a request_id it holds (`duplicate`)
    Receipt(pb::Receipt),
    /// refused (any status but `UNAVAILABLE`, which is retried)
    Refused(Status),
}

/// The results of a batch so far: one slot per request.
type Slots = Arc<Mutex<Vec<Option<Outcome>>>>;

/// Sends `reqs` (each with a request_id) over `AppendStream` and returns
/// one outcome per request, in order. A request answered `UNAVAILABLE`, or
/// left unanswered by a stream that broke, is sent again, with the others
/// still open, to the leader, within `--write-retry`; one that stays so ends
/// the batch with that error. Requests already answered are never sent
/// again.
pub async fn append_batch(ctx: &Ctx, reqs: &[pb::AppendRequest]) -> CliResult<Vec<Outcome>> {
    debug_assert!(reqs.iter().all(|r| r.entry.as_ref().is_some_and(|e| !e.request_id.is_empty())));
    let slots: Slots = Arc::new(Mutex::new(reqs.iter().map(|_| None).collect()));
    ctx.write(|ch| {
        let open: Vec<usize> = lock(&slots).iter().enumerate().filter(|(_, s)| s.is_none()).map(|(i, _)| i).collect();
        let slots = slots.clone();
        async move {
            match attempt(ch.clone(), &open, reqs, &slots).await {
                Err(CliError::Remote(st)) if st.code() == tonic::Code::Unavailable => probe(ch, reqs, &slots, st).await,
                other => other,
            }
        }
    })
    .await?;
    let done = std::mem::take(&mut *lock(&slots));
    Ok(done.into_iter().map(|s| s.expect("every slot is filled when the write succeeds")).collect())
}

fn lock(slots: &Slots) -> std::sync::MutexGuard<'_, Vec<Option<Outcome>>> {
    slots.lock().expect("slots lock")
}

/// One attempt: sends the requests of slots `open`, fills the slots
/// answered; `UNAVAILABLE` when one was answered so or left unanswered.
async fn attempt(ch: Channel, open: &[usize], reqs: &[pb::AppendRequest], slots: &Slots) -> CliResult<()> {
    if open.is_empty() {
        return Ok(());
    }
    let sent: Vec<pb::AppendRequest> = open.iter().map(|&i| reqs[i].clone()).collect();
    let n = sent.len();
    let mut stream = ledger_client(ch).append_stream(tokio_stream::iter(sent)).await?.into_inner();
    let mut unavailable = None;
    while let Some(m) = stream.message().await? {
        let Some(&slot) = usize::try_from(m.index).ok().and_then(|i| open.get(i)) else {
            return Err(CliError::Remote(Status::internal(format!(
                "AppendStream answered index {} of a stream of {n} requests",
                m.index
            ))));
        };
        let outcome = match m.result {
            Some(StreamResult::Receipt(r)) => Outcome::Receipt(r),
            Some(StreamResult::Error(e)) => {
                let st = Status::new(tonic::Code::from(e.code), e.message);
                if st.code() == tonic::Code::Unavailable {
                    unavailable = Some(st);
                    continue;
                }
                Outcome::Refused(st)
            }
            None => Outcome::Refused(Status::internal("AppendStream answered with neither a receipt nor an error")),
        };
        lock(slots)[slot] = Some(outcome);
    }
    let left = open.iter().filter(|&&i| lock(slots)[i].is_none()).count();
    match unavailable {
        Some(st) => Err(CliError::Remote(st)),
        None if left > 0 => Err(CliError::Remote(Status::unavailable(format!(
            "AppendStream ended with {left} of {n} requests unanswered (ledgerd stopping?)"
        )))),
        None => Ok(()),
    }
}

/// After an attempt ended `UNAVAILABLE` (`st`): a follower refuses each
/// entry of a stream without saying where the leader is (per-entry errors
/// carry no metadata), so the first open request goes once as a unary
/// `Append`, whose refusal names the leader (`ledger-leader`) for
/// [`Ctx::write`] to follow. Taken (the node leads now), it fills its slot,
/// and the rest is retried all the same.
async fn probe(ch: Channel, reqs: &[pb::AppendRequest], slots: &Slots, st: Status) -> CliResult<()> {
    let Some(first) = lock(slots).iter().position(Option::is_none) else { return Ok(()) };
    match ledger_client(ch).append(reqs[first].clone()).await {
        Ok(r) => {
            if let Some(receipt) = r.into_inner().receipt {
                lock(slots)[first] = Some(Outcome::Receipt(receipt));
            }
            if lock(slots).iter().all(Option::is_some) { Ok(()) } else { Err(CliError::Remote(st)) }
        }
        Err(refused) if refused.code() == tonic::Code::Unavailable => Err(CliError::Remote(refused)),
        Err(other) => {
            lock(slots)[first] = Some(Outcome::Refused(other));
            Err(CliError::Remote(st))
        }
    }
}
