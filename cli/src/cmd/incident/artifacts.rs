//! The pack's artifacts: every artifact the pack's leaves reference,
//! downloaded (checked against its BLAKE3 here too) when the server's store
//! holds it intact and it is at most `--max-artifact-bytes`, else listed by
//! its hashes with the reason (FORMAT.md §14.2).
//!
//! Owns: that choice and the Download RPC. Must not: write the manifest.

use std::path::Path;

use ledger::pack::{ManifestArtifact, PackWriter};
use ledger_proto::v1 as pb;

use super::fetch;
use crate::client::Ctx;
use crate::error::CliResult;

/// Why an artifact above the limit is not in the pack.
const TOO_LARGE: &str = "larger than max_artifact_bytes";

/// Downloads `a` whole; `None` when the server no longer serves it intact.
async fn download(ctx: &Ctx, a: &pb::ArtifactRef) -> CliResult<Option<Vec<u8>>> {
    let req = pb::DownloadRequest { log: ctx.log.clone(), blake3: a.blake3.clone() };
    let mut st = match ctx.artifacts().await?.download(req).await {
        Ok(s) => s.into_inner(),
        Err(s) if matches!(s.code(), tonic::Code::NotFound | tonic::Code::DataLoss) => return Ok(None),
        Err(s) => return Err(s.into()),
    };
    let mut bytes = Vec::with_capacity(usize::try_from(a.size).unwrap_or(0));
    loop {
        match st.message().await {
            Ok(Some(c)) if bytes.len() + c.data.len() <= usize::try_from(a.size).unwrap_or(usize::MAX) => {
                bytes.extend_from_slice(&c.data)
            }
            Ok(Some(_)) => return Ok(None),
            Ok(None) => break,
            Err(s) if s.code() == tonic::Code::DataLoss => return Ok(None),
            Err(s) => return Err(s.into()),
        }
    }
    Ok((blake3::hash(&bytes).as_bytes().as_slice() == a.blake3.as_slice()).then_some(bytes))
}

/// Writes the artifacts of `entries` into the pack; returns the manifest's list.
pub async fn fetch(
    ctx: &Ctx,
    w: &mut PackWriter,
    entries: &[pb::Entry],
    max_bytes: u64,
    out: &Path,
) -> CliResult<Vec<ManifestArtifact>> {
    let mut list = Vec::new();
    for (_, a) in fetch::referenced(entries) {
        let mut reason =
            if a.size > max_bytes { Some(TOO_LARGE.to_owned()) } else { fetch::store_lacks(ctx, &a).await? };
        if reason.is_none() {
            match download(ctx, &a).await? {
                Some(bytes) => w.artifact(&a.blake3, &bytes).map_err(|e| super::pack::pack_error(out, e))?,
                None => reason = Some("not held by the server (absent or altered in its artifact store)".into()),
            }
        }
        list.push(ManifestArtifact {
            blake3: hex::encode(&a.blake3),
            sha256: hex::encode(&a.sha256),
            size: a.size,
            name: a.name.clone(),
            included: reason.is_none(),
            reason: reason.unwrap_or_default(),
        });
    }
    Ok(list)
}
