//! `ledger artifact add|get|verify`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use ledger_proto::v1 as pb;
use ledger_proto::v1::artifact_service_client::ArtifactServiceClient;
use serde_json::json;
use tokio::io::AsyncReadExt as _;
use tonic::transport::Channel;

use crate::cli::ArtifactCmd;
use crate::client::{Ctx, new_request_id, print_json};
use crate::error::{CliError, CliResult};

const CHUNK: usize = 256 * 1024;

fn media_type(p: &Path) -> &'static str {
    match p.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("pdf") => "application/pdf",
        Some("json") => "application/json",
        Some("csv") => "text/csv",
        Some("txt" | "log" | "md") => "text/plain",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("mp4") => "video/mp4",
        Some("pptx") => "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        Some("zip") => "application/zip",
        Some("sig") => "application/octet-stream",
        _ => "application/octet-stream",
    }
}

/// Uploads a file; returns its reference and the registration receipt.
/// The upload is a write ([`Ctx::write`]): on a follower it goes to the
/// leader, and it carries a fresh request_id so a retry registers it once.
pub async fn upload(
    ctx: &Ctx,
    path: &Path,
    subject: Option<&str>,
    media: Option<&str>,
) -> CliResult<(pb::ArtifactRef, pb::Receipt)> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| CliError::Usage(format!("{}: not a file name", path.display())))?
        .to_owned();
    // A missing file is reported before any server is contacted.
    drop(tokio::fs::File::open(path).await.map_err(|e| CliError::io(path, e))?);
    let header = pb::UploadHeader {
        log: ctx.log.clone(),
        name: name.clone(),
        media_type: media.unwrap_or_else(|| media_type(path)).to_owned(),
        subject: subject.unwrap_or_default().to_owned(),
        actor: ctx.actor.clone(),
        request_id: new_request_id(),
    };
    let r = ctx.write(|ch| upload_once(ch, path, header.clone())).await?;
    let art = pb::ArtifactRef { blake3: r.blake3, sha256: r.sha256, size: r.size, name, media_type: header.media_type };
    Ok((art, r.receipt.unwrap_or_default()))
}

/// One upload attempt of the file at `path` on `ch`.
async fn upload_once(ch: Channel, path: &Path, header: pb::UploadHeader) -> CliResult<pb::UploadResponse> {
    let mut f = tokio::fs::File::open(path).await.map_err(|e| CliError::io(path, e))?;
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(pb::UploadRequest { item: Some(pb::upload_request::Item::Header(header)) }).await.expect("open channel");
    let p = path.to_owned();
    let reader = tokio::spawn(async move {
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = f.read(&mut buf).await.map_err(|e| CliError::io(&p, e))?;
            if n == 0 {
                return Ok::<(), CliError>(());
            }
            if tx
                .send(pb::UploadRequest { item: Some(pb::upload_request::Item::Chunk(buf[..n].to_vec())) })
                .await
                .is_err()
            {
                return Ok(());
            }
        }
    });
    let resp = ArtifactServiceClient::new(ch).upload(tokio_stream::wrappers::ReceiverStream::new(rx)).await;
    reader.await.expect("reader task")?;
    Ok(resp?.into_inner())
}

/// Runs the command.
pub async fn run(ctx: &Ctx, cmd: ArtifactCmd) -> CliResult {
    match cmd {
        ArtifactCmd::Add { file, subject, media_type } => {
            let (a, r) = upload(ctx, &file, subject.as_deref(), media_type.as_deref()).await?;
            if ctx.json() {
                print_json(
                    &json!({"blake3": hex::encode(&a.blake3), "sha256": hex::encode(&a.sha256), "size": a.size, "name": a.name,
                    "media_type": a.media_type, "receipt": crate::render::receipt_json(&r)}),
                );
            } else {
                println!(
                    "stored {} ({} bytes)\nblake3 {}\nsha256 {}\nregistered as entry {}",
                    a.name,
                    a.size,
                    hex::encode(&a.blake3),
                    hex::encode(&a.sha256),
                    r.seq
                );
            }
            Ok(())
        }
        ArtifactCmd::Get { hash, out } => get(ctx, &hash, &out).await,
        ArtifactCmd::Verify { paths } => verify(ctx, &paths).await,
    }
}

fn parse_hash(s: &str) -> CliResult<Vec<u8>> {
    let b = hex::decode(s).map_err(|_| CliError::Usage(format!("{s:?}: expected a BLAKE3 hash in hex")))?;
    if b.len() != 32 {
        return Err(CliError::Usage(format!("{s:?}: a BLAKE3 hash is 32 bytes (64 hex digits)")));
    }
    Ok(b)
}

async fn get(ctx: &Ctx, hash: &str, out: &Path) -> CliResult {
    let b3 = parse_hash(hash)?;
    let mut st = ctx
        .artifacts()
        .await?
        .download(pb::DownloadRequest { log: ctx.log.clone(), blake3: b3.clone() })
        .await?
        .into_inner();
    let tmp = out.with_extension("part");
    let mut file = std::fs::File::create(&tmp).map_err(|e| CliError::io(&tmp, e))?;
    let (mut hasher, mut size) = (blake3::Hasher::new(), 0u64);
    let written = async {
        while let Some(c) = st.message().await? {
            hasher.update(&c.data);
            size += c.data.len() as u64;
            std::io::Write::write_all(&mut file, &c.data).map_err(|e| CliError::io(&tmp, e))?;
        }
        if hasher.finalize().as_bytes().as_slice() != b3.as_slice() {
            return Err(CliError::Negative(format!("the downloaded content does not hash to {hash}; nothing written")));
        }
        file.sync_all().map_err(|e| CliError::io(&tmp, e))
    }
    .await;
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, out).map_err(|e| CliError::io(out, e))?;
    if ctx.json() {
        print_json(&json!({"blake3": hash, "size": size, "path": out}));
    } else {
        println!("wrote {} ({size} bytes, blake3 checked)", out.display());
    }
    Ok(())
}

fn files_under(p: &Path, out: &mut Vec<PathBuf>) -> CliResult {
    let meta = std::fs::metadata(p).map_err(|e| CliError::io(p, e))?;
    if meta.is_file() {
        out.push(p.to_owned());
        return Ok(());
    }
    for e in std::fs::read_dir(p).map_err(|e| CliError::io(p, e))? {
        files_under(&e.map_err(|e| CliError::io(p, e))?.path(), out)?;
    }
    Ok(())
}

/// Registered artifacts (blake3 → name), from the log's `artifact` entries.
async fn registered(ctx: &Ctx) -> CliResult<HashMap<Vec<u8>, String>> {
    let mut out = HashMap::new();
    let f = pb::Filter { category: "artifact".into(), ..Default::default() };
    crate::client::scan(ctx, f, false, u64::MAX, |e| {
        for a in e.decoded.unwrap_or_default().artifacts {
            out.insert(a.blake3, a.name);
        }
    })
    .await?;
    Ok(out)
}

async fn verify(ctx: &Ctx, paths: &[PathBuf]) -> CliResult {
    let mut files = Vec::new();
    for p in paths {
        files_under(p, &mut files)?;
    }
    let known = registered(ctx).await?;
    let mut report: BTreeMap<&str, Vec<serde_json::Value>> = BTreeMap::new();
    let mut seen = std::collections::HashSet::new();
    for f in &files {
        let data = std::fs::read(f).map_err(|e| CliError::io(f, e))?;
        let h = blake3::hash(&data).as_bytes().to_vec();
        let named_as =
            f.file_name().and_then(|n| n.to_str()).and_then(|n| hex::decode(n).ok()).filter(|b| b.len() == 32);
        let (kind, hash) = match named_as {
            Some(n) if n != h => ("altered", n),
            _ if known.contains_key(&h) => ("ok", h),
            _ => ("unknown", h),
        };
        seen.insert(hash.clone());
        report
            .entry(kind)
            .or_default()
            .push(json!({"path": f, "blake3": hex::encode(&hash), "name": known.get(&hash)}));
    }
    if paths.iter().any(|p| p.is_dir()) {
        for (h, name) in &known {
            if !seen.contains(h) {
                report.entry("missing").or_default().push(json!({"blake3": hex::encode(h), "name": name}));
            }
        }
    }
    let bad: usize = ["altered", "missing", "unknown"].iter().map(|k| report.get(k).map_or(0, Vec::len)).sum();
    if ctx.json() {
        print_json(&json!({"ok": bad == 0, "checked": files.len(), "results": report}));
    } else {
        for (kind, items) in &report {
            for i in items {
                let what = i["path"].as_str().map(str::to_owned).unwrap_or_else(|| {
                    format!("{} ({})", i["name"].as_str().unwrap_or("?"), i["blake3"].as_str().unwrap_or(""))
                });
                println!("{:<8} {what}", kind.to_uppercase());
            }
        }
        println!("{} files checked, {} registered artifacts, {bad} problems", files.len(), known.len());
    }
    if bad > 0 { Err(CliError::Negative(format!("{bad} artifacts missing, altered or unknown"))) } else { Ok(()) }
}
