//! `ledger.v1.ArtifactService` (upload with streaming hashes, download
//! checked against the hash, stat) and the Export stream's file reader.

use std::io::Read;
use std::sync::Arc;

use ledger::LedgerReader;
use ledger::entry::{ArtifactRef, EntryInput, Limits, Subject};
use ledger_proto::v1 as pb;
use ledger_proto::v1::artifact_service_server::{ArtifactService, ArtifactServiceServer};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::config::Role;
use crate::svc_ledger::blocking;
use crate::{MAX_MESSAGE_BYTES, State, convert, status};

/// Bytes per streamed chunk.
const CHUNK: usize = 256 * 1024;

/// The service.
pub struct ArtifactSvc {
    state: Arc<State>,
}

/// The service wrapped with message-size limits.
pub fn service(state: Arc<State>) -> ArtifactServiceServer<ArtifactSvc> {
    ArtifactServiceServer::new(ArtifactSvc { state })
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

fn header_error(e: ledger::ValidationError) -> Status {
    let field = e.field.replace("artifacts[0]", "header");
    status::invalid(&field, e.reason)
}

#[tonic::async_trait]
impl ArtifactService for ArtifactSvc {
    async fn upload(&self, req: Request<Streaming<pb::UploadRequest>>) -> Result<Response<pb::UploadResponse>, Status> {
        let caller = self.state.access.current().caller(&req, "")?;
        let mut s = req.into_inner();
        let Some(pb::UploadRequest { item: Some(pb::upload_request::Item::Header(h)) }) = s.message().await? else {
            return Err(status::invalid("header", "the first message must be the upload header"));
        };
        let log = self.state.logs.get(&h.log)?.clone();
        let caller = if caller.authenticated { caller } else { crate::auth::Caller::declared(&h.actor) };
        self.state.access.current().require_writer(&caller, &log.name, "artifact")?;
        log.writable()?;
        let reader = log.reader();
        let limits: Limits = reader.options().limits.clone();
        ArtifactRef::new(0, &[0; 32], &[0; 32], 0, &h.name, &h.media_type).map_err(header_error)?;
        if !h.subject.is_empty() {
            Subject::new(&h.subject, &limits).map_err(|e| status::invalid("header.subject", e.reason))?;
        }
        let max = reader.options().max_artifact_bytes;
        let r2 = reader.clone();
        let mut w = Some(blocking(move || r2.blobs().begin(max).map_err(|e| status::ledger(&e.into()))).await?);
        while let Some(m) = s.message().await? {
            match m.item {
                Some(pb::upload_request::Item::Chunk(b)) => {
                    let mut cur = w.take().expect("writer");
                    w = Some(
                        blocking(move || cur.write(&b).map(|_| cur).map_err(|e| status::ledger(&e.into()))).await?,
                    );
                }
                _ => return Err(status::invalid("header", "sent twice; send content chunks after the header")),
            }
        }
        let cur = w.take().expect("writer");
        let blob = blocking(move || cur.finish().map_err(|e| status::ledger(&e.into()))).await?;
        let art =
            ArtifactRef::new(0, &blob.blake3, &blob.sha256, blob.size, &h.name, &h.media_type).map_err(header_error)?;
        let payload = serde_json::json!({
            "name": h.name, "media_type": h.media_type, "size": blob.size,
            "blake3": hex::encode(blob.blake3), "sha256": hex::encode(blob.sha256),
        });
        let input = EntryInput {
            category: "artifact".into(),
            subject: h.subject,
            payload: payload.to_string().into_bytes(),
            request_id: h.request_id,
            artifacts: vec![art],
            ..Default::default()
        };
        let entry = convert::client_entry(input, &caller.identity, &limits)?;
        // A reload during the upload may have revoked or withdrawn it.
        let access = self.state.access.current();
        access.recheck(&caller, Some(&log.name), &[Role::Writer])?;
        access.require_writer(&caller, &log.name, "artifact")?;
        let mut results = log.submit(vec![entry])?.await.map_err(|_| status::shutting_down())?;
        let receipt = results.pop().ok_or_else(status::upload_no_result)?.map_err(|e| status::append(&e))?;
        Ok(Response::new(pb::UploadResponse {
            blake3: blob.blake3.to_vec(),
            sha256: blob.sha256.to_vec(),
            size: blob.size,
            receipt: Some(convert::receipt(&receipt)),
        }))
    }

    type DownloadStream = crate::guard::Boxed<pb::DownloadChunk>;

    async fn download(&self, req: Request<pb::DownloadRequest>) -> Result<Response<Self::DownloadStream>, Status> {
        let (caller, r, log) = self.state.authorized_log(req, &[Role::Reader])?;
        let reader = log.reader();
        let b3 = convert::hash32("blake3", &r.blake3)?;
        let blob = blocking(move || {
            reader.blobs().verify(&b3).map_err(|e| status::ledger(&e.into()))?;
            reader.blobs().open(&b3).map_err(|e| status::ledger(&e.into()))
        })
        .await?;
        let permit = self.state.read_stream(&caller)?;
        let (tx, rx) = mpsc::channel(4);
        tokio::task::spawn_blocking(move || {
            let _held = permit;
            let mut f = blob;
            let mut buf = vec![0u8; CHUNK];
            loop {
                match f.read(&mut buf) {
                    Ok(0) => return,
                    Ok(n) => {
                        if tx.blocking_send(Ok(pb::DownloadChunk { data: buf[..n].to_vec() })).is_err() {
                            return;
                        }
                    }
                    Err(e) => return drop(tx.blocking_send(Err(status::internal_io(&e)))),
                }
            }
        });
        let out = Box::pin(ReceiverStream::new(rx));
        Ok(Response::new(self.state.guarded(out, &caller, Some(&log.name), &[Role::Reader])))
    }

    async fn stat(&self, req: Request<pb::StatRequest>) -> Result<Response<pb::StatResponse>, Status> {
        let (_, r, log) = self.state.authorized_log(req, &[Role::Reader])?;
        let reader = log.reader();
        let b3 = convert::hash32("blake3", &r.blake3)?;
        blocking(move || {
            let row = reader.artifact(&b3).map_err(|e| status::ledger(&e))?;
            let check = reader.blobs().verify(&b3);
            let present = !matches!(&check, Err(e) if e.kind == ledger::store::StoreErrorKind::NotFound);
            let mut resp =
                pb::StatResponse { registered: row.is_some(), present, intact: check.is_ok(), ..Default::default() };
            if let Some(row) = row {
                resp.artifact = Some(pb::ArtifactRef {
                    blake3: b3.to_vec(),
                    sha256: row.sha256.to_vec(),
                    size: row.size,
                    name: row.name,
                    media_type: row.media_type,
                });
                resp.subject = row.subject;
                resp.seq = row.seq;
            }
            Ok(Response::new(resp))
        })
        .await
    }
}

/// Streams an export: the latest checkpoint is taken first (or `cosigned`,
/// the newest checkpoint witnesses cosigned, with their lines), then the
/// journal's bundle parts up to their durable length (which covers it),
/// then keys and the log's witness policy.
pub fn export_blocking(
    reader: &LedgerReader,
    from_seq: u64,
    cosigned: Option<String>,
    witnesses: Option<String>,
    tx: &mpsc::Sender<Result<pb::ExportChunk, Status>>,
) {
    let send = |item: pb::export_chunk::Item| tx.blocking_send(Ok(pb::ExportChunk { item: Some(item) })).is_ok();
    let note = cosigned.unwrap_or_else(|| reader.latest_checkpoint().note.clone());
    let parts = match reader.bundle_parts() {
        Ok(p) => p,
        Err(e) => return drop(tx.blocking_send(Err(status::ledger(&e)))),
    };
    // Keep the part holding from_seq and every later one.
    let keep_from = parts.iter().rposition(|p| p.first_seq <= from_seq).unwrap_or(0);
    let parts = &parts[keep_from..];
    let first = parts.first().map_or(0, |p| p.first_seq);
    if first > 0 {
        let start = match reader.start_state(first) {
            Ok(s) => serde_json::to_string_pretty(&s).unwrap_or_default(),
            Err(e) => return drop(tx.blocking_send(Err(status::ledger(&e)))),
        };
        if !send(pb::export_chunk::Item::Start(start)) {
            return;
        }
    }
    let mut buf = vec![0u8; CHUNK];
    for part in parts {
        let mut offset = 0u64;
        loop {
            let n = match reader.read_part(part, offset, &mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => return drop(tx.blocking_send(Err(status::ledger(&e)))),
            };
            let chunk = pb::FileChunk { name: part.name.clone(), offset, data: buf[..n].to_vec() };
            if !send(pb::export_chunk::Item::File(chunk)) {
                return;
            }
            offset += n as u64;
        }
    }
    let vkeys: String = reader.verifiers().iter().map(|v| v.to_vkey() + "\n").collect();
    let hmac: Vec<_> = reader.public_keys().into_iter().filter(|k| k.vkey.is_none()).collect();
    let hmac = serde_json::to_string_pretty(&hmac).unwrap_or_default();
    if let Some(w) = witnesses
        && !send(pb::export_chunk::Item::Witnesses(w))
    {
        return;
    }
    let _ = send(pb::export_chunk::Item::Vkeys(vkeys))
        && send(pb::export_chunk::Item::HmacFingerprints(hmac))
        && send(pb::export_chunk::Item::Checkpoint(note));
}
