//! `ledger.v1.LedgerService`: appends, reads, proofs, tail, summaries,
//! export (docs/API.md).

use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use ledger::log::{AppendError, Inclusion, Receipt};
use ledger_proto::v1 as pb;
use ledger_proto::v1::ledger_service_server::{LedgerService, LedgerServiceServer};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::auth::{Access, Caller};
use crate::config::Role;
use crate::limits::Slot;
use crate::logs::LogHandle;
use crate::{MAX_MESSAGE_BYTES, State, convert, status};

type Stream_<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;
type Pending = oneshot::Receiver<Vec<Result<Receipt, AppendError>>>;
/// An append on its way: its log, category, and the writer's answer to
/// come, holding one of its identity's queue slots until then.
type Queued = Result<(Arc<LogHandle>, String, Result<Pending, Status>, Slot), Status>;

/// Entries per page read for Tail and Export-like loops.
const PAGE: usize = 256;
/// Entries a Tail buffers for a client that does not keep up.
const TAIL_BUFFER: usize = 16;

/// The service.
pub struct LedgerSvc {
    state: Arc<State>,
}

/// The service wrapped with message-size limits.
pub fn service(state: Arc<State>) -> LedgerServiceServer<LedgerSvc> {
    LedgerServiceServer::new(LedgerSvc { state })
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

/// Most blocking tasks (reads of the journal and index, mostly) running at
/// once; more wait for a permit as futures. Unbounded, a burst of reads on
/// cold pages had ~500 threads waiting on the disk at once, each adding to
/// the queue that slowed the others (docs/BENCHMARKS.md, fifth run).
const MAX_BLOCKING: usize = 32;

static BLOCKING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(MAX_BLOCKING);

/// Runs blocking ledger work off the async threads, at most `MAX_BLOCKING`
/// at once.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Status> + Send + 'static,
) -> Result<T, Status> {
    let _permit = BLOCKING.acquire().await.map_err(|_| status::blocking_closed())?;
    tokio::task::spawn_blocking(f).await.map_err(|e| status::task_failed(&e))?
}

impl LedgerSvc {
    fn log(&self, name: &str) -> Result<Arc<LogHandle>, Status> {
        self.state.logs.get(name).cloned()
    }

    fn category_label(&self, log: &LogHandle, category: &str) -> String {
        let known = log.reader().policy().categories.contains_key(category);
        if known { category.to_owned() } else { "undeclared".to_owned() }
    }

    fn record(&self, log: &LogHandle, category: &str, outcome: &str, started: Instant) {
        let m = &self.state.metrics;
        m.appends.with_label_values(&[&log.name, &self.category_label(log, category), outcome]).inc();
        if outcome == "ok" || outcome == "duplicate" {
            m.append_latency.with_label_values(&[&log.name]).observe(started.elapsed().as_secs_f64());
        }
    }

    /// Checks the caller's writer grant under `access` (the table in force)
    /// and validates one append request (counting refused and invalid ones).
    fn prepare(
        &self,
        access: &Access,
        caller: &Caller,
        r: pb::AppendRequest,
    ) -> Result<(Arc<LogHandle>, String, ledger::NewEntry), Status> {
        let log = self.log(&r.log)?;
        let category = r.entry.as_ref().map(|e| e.category.clone()).unwrap_or_default();
        if let Err(s) = access.require_writer(caller, &log.name, &category) {
            self.record(&log, &category, "denied", Instant::now());
            return Err(s);
        }
        if let Err(s) = log.writable() {
            self.record(&log, &category, "not_leader", Instant::now());
            return Err(s);
        }
        match convert::entry(r.entry, &caller.identity, &log.reader().options().limits) {
            Ok(e) if category == "approval" => match crate::approvals::check(access, caller, &log, &e) {
                Ok(()) => Ok((log, category, e)),
                Err(s) => {
                    self.record(&log, &category, "denied", Instant::now());
                    Err(s)
                }
            },
            Ok(e) => Ok((log, category, e)),
            Err(s) => {
                self.record(&log, &category, "invalid", Instant::now());
                Err(s)
            }
        }
    }

    async fn finish_append(
        &self,
        log: &LogHandle,
        category: &str,
        pending: Result<Pending, Status>,
        started: Instant,
    ) -> Result<Receipt, Status> {
        let rx = pending.inspect_err(|s| self.record(log, category, outcome_of_status(s), started))?;
        let mut results = rx.await.map_err(|_| status::shutting_down())?;
        let r = results.pop().ok_or_else(status::writer_no_result)?;
        match &r {
            Ok(rc) => self.record(log, category, if rc.duplicate { "duplicate" } else { "ok" }, started),
            Err(e) => self.record(log, category, outcome_of(e), started),
        }
        r.map_err(|e| status::append(&e))
    }
}

fn outcome_of(e: &AppendError) -> &'static str {
    match e {
        AppendError::Invalid(_) => "invalid",
        AppendError::Policy(_) => "rejected",
        AppendError::Conflict { .. } => "conflict",
        AppendError::Storage { .. } => "error",
        AppendError::Unavailable(_) => "unavailable",
    }
}

fn outcome_of_status(s: &Status) -> &'static str {
    match s.code() {
        tonic::Code::ResourceExhausted => "queue_full",
        tonic::Code::Unavailable => "unavailable",
        _ => "error",
    }
}

#[tonic::async_trait]
impl LedgerService for LedgerSvc {
    async fn append(&self, req: Request<pb::AppendRequest>) -> Result<Response<pb::AppendResponse>, Status> {
        let started = Instant::now();
        let access = self.state.access.current();
        let caller = access.caller(&req, &req.get_ref().actor)?;
        let (log, category, entry) = self.prepare(&access, &caller, req.into_inner())?;
        let Some(_slot) = log.shares.try_take(&caller.identity) else {
            self.record(&log, &category, "identity_limit", started);
            let m = &self.state.metrics;
            m.identity_refusals.with_label_values(&[crate::metrics::identity_label(&caller), "append_queue"]).inc();
            let limit = log.shares.limit();
            return Err(status::identity_limit(&caller.identity, "queued appends on this log", limit, "queue_share"));
        };
        let pending = log.submit(vec![entry]);
        let r = self.finish_append(&log, &category, pending, started).await?;
        Ok(Response::new(pb::AppendResponse { receipt: Some(convert::receipt(&r)) }))
    }

    type AppendStreamStream = Stream_<pb::AppendStreamResponse>;

    async fn append_stream(
        &self,
        req: Request<Streaming<pb::AppendRequest>>,
    ) -> Result<Response<Self::AppendStreamStream>, Status> {
        let caller = self.state.access.current().caller(&req, "")?;
        let guard_caller = caller.clone();
        let mut inbound = req.into_inner();
        let (out_tx, out_rx) = mpsc::channel(256);
        let (pend_tx, mut pend_rx) = mpsc::channel::<(u64, Instant, Queued)>(1024);
        let svc = LedgerSvc { state: self.state.clone() };
        let mut stop = self.state.shutdown.clone();
        tokio::spawn(async move {
            let mut i = 0u64;
            loop {
                let msg = tokio::select! {
                    m = inbound.message() => m,
                    _ = stop.wait_for(|s| *s) => break,
                };
                let Ok(Some(r)) = msg else { break };
                let started = Instant::now();
                // Without TLS each message may declare its own actor.
                let caller = if caller.authenticated { caller.clone() } else { Caller::declared(&r.actor) };
                // Each message is checked under the table in force then.
                let queued = match svc.prepare(&svc.state.access.current(), &caller, r) {
                    Ok((log, category, e)) => {
                        // Over its share, the identity waits (and its
                        // stream's flow control slows it down).
                        let slot = tokio::select! {
                            s = log.shares.take(&caller.identity) => s,
                            _ = stop.wait_for(|s| *s) => break,
                        };
                        let pending = log.submit_wait(vec![e]).await;
                        Ok((log, category, pending, slot))
                    }
                    Err(s) => Err(s),
                };
                if pend_tx.send((i, started, queued)).await.is_err() {
                    break;
                }
                i += 1;
            }
        });
        let svc = LedgerSvc { state: self.state.clone() };
        tokio::spawn(async move {
            while let Some((index, started, s)) = pend_rx.recv().await {
                let result = match s {
                    Err(st) => Err(st),
                    Ok((log, category, pending, _slot)) => svc.finish_append(&log, &category, pending, started).await,
                };
                let result = Some(match result {
                    Ok(r) => pb::append_stream_response::Result::Receipt(convert::receipt(&r)),
                    Err(st) => pb::append_stream_response::Result::Error(pb::Error {
                        code: status::code_number(st.code()),
                        message: st.message().to_owned(),
                    }),
                });
                if out_tx.send(Ok(pb::AppendStreamResponse { index, result })).await.is_err() {
                    break;
                }
            }
        });
        let out = Box::pin(ReceiverStream::new(out_rx));
        Ok(Response::new(self.state.guarded(out, &guard_caller, None, &[Role::Writer])))
    }

    async fn get(&self, req: Request<pb::GetRequest>) -> Result<Response<pb::GetResponse>, Status> {
        let (_, r, log) = self.state.authorized_log(req, &[Role::Reader])?;
        let reader = log.reader();
        let metrics = self.state.metrics.clone();
        blocking(move || {
            let e = reader.get(r.seq).map_err(|e| read_error(&metrics, &log, &e))?;
            let receipt = if r.with_proof {
                // the newest cosigned checkpoint when it holds the entry: its proof carries the cosignatures
                let cosigned = log.cosignatures.latest().filter(|c| r.seq < c.checkpoint.checkpoint.size);
                let rc = match &cosigned {
                    Some(c) => reader.receipt_at(r.seq, &c.checkpoint),
                    None => reader.receipt(r.seq),
                };
                let rc = rc.map_err(|e| read_error(&metrics, &log, &e))?;
                Some(convert::cosigned_receipt(
                    &rc,
                    cosigned.map(|c| c.lines.into_values().collect()).unwrap_or_default(),
                ))
            } else {
                None
            };
            Ok(Response::new(pb::GetResponse { entry: Some(convert::stored(e)), receipt }))
        })
        .await
    }

    type QueryStream = Stream_<pb::QueryResponse>;

    async fn query(&self, req: Request<pb::QueryRequest>) -> Result<Response<Self::QueryStream>, Status> {
        let (caller, r, log) = self.state.authorized_log(req, &[Role::Reader])?;
        let proof_size = r.proof_tree_size;
        let to_seq = proof_bound(r.to_seq, proof_size);
        let q = convert::query(r.filter, r.from_seq, to_seq, r.desc, r.limit, r.cursor)?;
        let permit = self.state.read_stream(&caller)?;
        let name = log.name.clone();
        let reader = log.reader();
        let metrics = self.state.metrics.clone();
        let (page, entries) = blocking(move || {
            if proof_size > reader.size() {
                let e = ledger::merkle::ProofError::SizeBeyondLog { size: proof_size, available: reader.size() };
                return Err(status::ledger(&e.into()));
            }
            let mut page = reader.query(&q).map_err(|e| read_error(&metrics, &log, &e))?;
            let entries = std::mem::take(&mut page.entries);
            let entries = with_proofs(&reader, entries, proof_size).map_err(|e| read_error(&metrics, &log, &e))?;
            Ok((page, entries))
        })
        .await?;
        let mut items: Vec<Result<pb::QueryResponse, Status>> = entries
            .into_iter()
            .map(|e| Ok(pb::QueryResponse { item: Some(pb::query_response::Item::Entry(e)) }))
            .collect();
        if let Some(c) = page.next_cursor {
            items.push(Ok(pb::QueryResponse { item: Some(pb::query_response::Item::NextCursor(c)) }));
        }
        // The permit lives as long as the response stream.
        let items = tokio_stream::StreamExt::map(tokio_stream::iter(items), move |i| {
            let _held = &permit;
            i
        });
        Ok(Response::new(self.state.guarded(Box::pin(items), &caller, Some(&name), &[Role::Reader])))
    }

    type TailStream = Stream_<pb::Entry>;

    async fn tail(&self, req: Request<pb::TailRequest>) -> Result<Response<Self::TailStream>, Status> {
        let (caller, r, log) = self.state.authorized_log(req, &[Role::Reader])?;
        let base = convert::query(r.filter, 0, 0, false, PAGE as u32, None)?;
        let permit = self.state.read_stream(&caller)?;
        let name = log.name.clone();
        // A client that stops reading stalls this task at `send`: it then
        // holds at most one query page (QUERY_PAGE_BYTES) and TAIL_BUFFER
        // entries, whatever the log's size.
        let (tx, rx) = mpsc::channel(TAIL_BUFFER);
        let mut stop = self.state.shutdown.clone();
        let metrics = self.state.metrics.clone();
        tokio::spawn(async move {
            let _held = permit;
            let mut next = r.from_seq;
            let mut size_rx = log.size.clone();
            loop {
                let size = *size_rx.borrow_and_update();
                while next < size {
                    let q = ledger::log::Query { from_seq: Some(next), to_seq: Some(size), ..base.clone() };
                    let (reader, l2, m2) = (log.reader(), log.clone(), metrics.clone());
                    let page = match blocking(move || reader.query(&q).map_err(|e| read_error(&m2, &l2, &e))).await {
                        Ok(p) => p,
                        Err(s) => {
                            let _ = tx.send(Err(s)).await;
                            return;
                        }
                    };
                    for e in page.entries {
                        if tx.send(Ok(convert::stored(e))).await.is_err() {
                            return;
                        }
                    }
                    next = page.next_cursor.unwrap_or(size);
                }
                tokio::select! {
                    changed = size_rx.changed() => if changed.is_err() { return },
                    _ = stop.wait_for(|s| *s) => return,
                    _ = tx.closed() => return,
                }
            }
        });
        let out = Box::pin(ReceiverStream::new(rx));
        Ok(Response::new(self.state.guarded(out, &caller, Some(&name), &[Role::Reader])))
    }

    async fn node_status(
        &self,
        req: Request<pb::NodeStatusRequest>,
    ) -> Result<Response<pb::NodeStatusResponse>, Status> {
        let (_, _, log) = self.state.authorized_log(req, &[Role::Reader])?;
        let size = log.reader().size();
        let Some(r) = &log.replication else {
            let single =
                pb::NodeStatusResponse { storage: "local".into(), role: "single".into(), size, ..Default::default() };
            return Ok(Response::new(single));
        };
        let st = r.state();
        let (leader, leader_address) = st.leader().unwrap_or_default();
        Ok(Response::new(pb::NodeStatusResponse {
            node: r.node_name().to_owned(),
            storage: "postgres".into(),
            role: if st.is_leader() { "leader" } else { "follower" }.into(),
            epoch: st.epoch(),
            size,
            head_size: st.head_size().max(if st.is_leader() { size } else { 0 }),
            leader,
            leader_address,
            halted: st.halted().unwrap_or_default(),
        }))
    }

    async fn get_checkpoint(
        &self,
        req: Request<pb::GetCheckpointRequest>,
    ) -> Result<Response<pb::CheckpointResponse>, Status> {
        let (_, r, log) = self.state.authorized_log(req, &[Role::Reader])?;
        let reader = log.reader();
        let note = reader
            .checkpoint_note(r.size)
            .map_err(|e| status::ledger(&e))?
            .ok_or_else(|| status::checkpoint_not_kept(r.size, reader.options().checkpoint_interval))?;
        let cp = ledger::note::Checkpoint::parse_body(
            &ledger::note::Note::parse(&note).map_err(|e| status::checkpoint_unreadable(&e))?.text,
        )
        .map_err(|e| status::checkpoint_unreadable(&e))?;
        let note = log.cosignatures.on(&note);
        Ok(Response::new(pb::CheckpointResponse { note, size: cp.size, root: cp.root.to_vec(), origin: cp.origin }))
    }

    async fn prove_inclusion(
        &self,
        req: Request<pb::ProveInclusionRequest>,
    ) -> Result<Response<pb::ProveInclusionResponse>, Status> {
        let (_, r, log) = self.state.authorized_log(req, &[Role::Reader])?;
        let reader = log.reader();
        blocking(move || {
            let resp = match reader.inclusion(r.seq, r.tree_size).map_err(|e| status::ledger(&e))? {
                Inclusion::Signed(rc) => pb::ProveInclusionResponse {
                    seq: r.seq,
                    tree_size: rc.checkpoint.checkpoint.size,
                    leaf_hash: rc.leaf_hash.to_vec(),
                    proof: rc.proof.iter().map(|h| h.to_vec()).collect(),
                    checkpoint: rc.checkpoint.note.clone(),
                    tlog_proof: rc.tlog_proof().to_text(),
                },
                Inclusion::Unsigned { proof, size, leaf_hash } => pb::ProveInclusionResponse {
                    seq: r.seq,
                    tree_size: size,
                    leaf_hash: leaf_hash.to_vec(),
                    proof: proof.iter().map(|h| h.to_vec()).collect(),
                    checkpoint: String::new(),
                    tlog_proof: String::new(),
                },
            };
            Ok(Response::new(resp))
        })
        .await
    }

    async fn prove_consistency(
        &self,
        req: Request<pb::ProveConsistencyRequest>,
    ) -> Result<Response<pb::ProveConsistencyResponse>, Status> {
        let (_, r, log) = self.state.authorized_log(req, &[Role::Reader])?;
        let reader = log.reader();
        blocking(move || {
            let latest = reader.latest_checkpoint();
            let new = if r.new_size == 0 { latest.checkpoint.size } else { r.new_size };
            let (proof, new) = reader.prove_consistency(r.old_size, Some(new)).map_err(|e| status::ledger(&e))?;
            let old_root = reader.root_at(r.old_size).map_err(|e| status::ledger(&e))?;
            let new_root = reader.root_at(new).map_err(|e| status::ledger(&e))?;
            Ok(Response::new(pb::ProveConsistencyResponse {
                old_size: r.old_size,
                new_size: new,
                old_root: old_root.to_vec(),
                new_root: new_root.to_vec(),
                proof: proof.iter().map(|h| h.to_vec()).collect(),
                checkpoint: latest.note.clone(),
            }))
        })
        .await
    }

    async fn summarize(&self, req: Request<pb::SummarizeRequest>) -> Result<Response<pb::SummarizeResponse>, Status> {
        let (_, r, log) = self.state.authorized_log(req, &[Role::Auditor])?;
        let reader = log.reader();
        let opt = |s: String| (!s.is_empty()).then_some(s);
        let sr = ledger::summary::SummaryRequest {
            category: opt(r.category),
            subject: opt(r.subject),
            since: (r.since != 0).then_some(r.since),
            until: (r.until != 0).then_some(r.until),
            history: r.history as usize,
        };
        blocking(move || {
            let now = (ledger::log::system_clock())();
            let s = ledger::summary::summarize(&reader, &sr, now).map_err(|e| status::ledger(&e))?;
            let root = hex::decode(&s.checkpoint.root).unwrap_or_default();
            Ok(Response::new(pb::SummarizeResponse {
                json: serde_json::to_string(&s).map_err(|e| status::summary_unencodable(&e))?,
                tree_size: s.checkpoint.size,
                root,
            }))
        })
        .await
    }

    async fn pending_approvals(
        &self,
        req: Request<pb::PendingApprovalsRequest>,
    ) -> Result<Response<pb::PendingApprovalsResponse>, Status> {
        let (_, r, log) = self.state.authorized_log(req, &[Role::Reader])?;
        let reader = log.reader();
        let metrics = self.state.metrics.clone();
        blocking(move || {
            let only = Some(r.category.as_str()).filter(|c| !c.is_empty());
            let (list, truncated) =
                ledger::approval::pending(&reader, only, PENDING_MAX).map_err(|e| read_error(&metrics, &log, &e))?;
            let pending = list
                .into_iter()
                .map(|p| pb::PendingApproval {
                    entry: Some(convert::stored(p.entry)),
                    role: p.role,
                    due: p.due.unwrap_or(0),
                })
                .collect();
            Ok(Response::new(pb::PendingApprovalsResponse { pending, truncated }))
        })
        .await
    }

    async fn check_rules(
        &self,
        req: Request<pb::CheckRulesRequest>,
    ) -> Result<Response<pb::CheckRulesResponse>, Status> {
        crate::rules::check(&self.state, req).await
    }

    type ExportStream = Stream_<pb::ExportChunk>;

    async fn export(&self, req: Request<pb::ExportRequest>) -> Result<Response<Self::ExportStream>, Status> {
        let (caller, r, log) = self.state.authorized_log(req, &[Role::Auditor])?;
        let permit = self.state.read_stream(&caller)?;
        let (tx, rx) = mpsc::channel(8);
        let reader = log.reader();
        let cosigned = log.cosignatures.latest().filter(|c| c.checkpoint.checkpoint.size > r.from_seq);
        let cosigned = cosigned.map(|c| c.checkpoint.note.clone() + &c.lines.into_values().collect::<String>());
        let witnesses = self.state.config.logs.iter().find(|l| l.name == log.name).and_then(|l| l.witness_policy());
        tokio::task::spawn_blocking(move || {
            let _held = permit;
            crate::svc_artifact::export_blocking(&reader, r.from_seq, cosigned, witnesses, &tx)
        });
        let out = Box::pin(ReceiverStream::new(rx));
        Ok(Response::new(self.state.guarded(out, &caller, Some(&log.name), &[Role::Auditor])))
    }
}

/// Most entries `PendingApprovals` lists.
const PENDING_MAX: usize = 10_000;

/// A Query's `to_seq` with `proof_tree_size` (docs/API.md): entries at or
/// beyond the proofs' tree are not returned.
fn proof_bound(to_seq: u64, proof_size: u64) -> u64 {
    match (to_seq, proof_size) {
        (_, 0) => to_seq,
        (0, p) => p,
        (t, p) => t.min(p),
    }
}

/// The page's entries as messages, each with its inclusion proof in the
/// tree of `proof_size` when that is not 0 (the tree code of every proof,
/// the page's proofs sharing their common nodes).
fn with_proofs(
    reader: &ledger::LedgerReader,
    entries: Vec<ledger::log::StoredEntry>,
    proof_size: u64,
) -> Result<Vec<pb::Entry>, ledger::LedgerError> {
    let seqs: Vec<u64> = entries.iter().map(|e| e.seq).collect();
    let mut proofs = if proof_size == 0 { Vec::new() } else { reader.prove_inclusions(&seqs, proof_size)? }.into_iter();
    Ok(entries
        .into_iter()
        .map(|e| {
            let mut m = convert::stored(e);
            m.proof = proofs.next().unwrap_or_default().iter().map(|h| h.to_vec()).collect();
            m
        })
        .collect())
}

/// Maps a read failure, counting integrity failures.
fn read_error(m: &crate::metrics::Metrics, log: &LogHandle, e: &ledger::LedgerError) -> Status {
    let s = status::ledger(e);
    if s.code() == tonic::Code::DataLoss {
        m.verify_failures.with_label_values(&[&log.name]).inc();
        tracing::error!(log = %log.name, error = %e, "integrity failure while serving a read");
    }
    s
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

    /// However many are asked for at once, at most `MAX_BLOCKING` run.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn blocking_tasks_are_bounded() {
        static RUNNING: AtomicUsize = AtomicUsize::new(0);
        static MOST: AtomicUsize = AtomicUsize::new(0);
        let tasks: Vec<_> = (0..4 * super::MAX_BLOCKING)
            .map(|_| {
                tokio::spawn(super::blocking(|| {
                    let now = RUNNING.fetch_add(1, SeqCst) + 1;
                    MOST.fetch_max(now, SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    RUNNING.fetch_sub(1, SeqCst);
                    Ok(())
                }))
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let most = MOST.load(SeqCst);
        assert!(most <= super::MAX_BLOCKING, "{most} ran at once");
        assert!(most > 1, "they still run in parallel");
    }
}
