//! `ledger mirror URL DIR` and `ledger verify --tiles DIR|URL`: a local
//! copy of a log's C2SP tiles (docs/FORMAT.md §12), fetched incrementally
//! (only tiles the copy lacks: full tiles and partial ones of a given width
//! never change) and verified before its checkpoint moves; the checkpoint
//! mirrored before must be in the new tree (consistency), else nothing
//! moves. The walk's state at the end (`verified-state.json`: the compact
//! range, the last leaf hash and time) lets the next run verify only the
//! new entries and the tiles above them: O(new).
//!
//! Owns: the copy's layout (the tile paths under DIR), the fetch order
//! (tiles and bundles first, the checkpoint last) and the JSON output.
//! Must not: verify anything itself (`ledger::verify::verify_tiles` does).

use std::path::{Path, PathBuf};
use std::time::Instant;

use ledger::note::{Checkpoint, NoteVerifier};
use ledger::tiles::{TilePath, tiles_of};
use ledger::verify::{Report, StartState, TileSource, verify_tiles, verify_tiles_from};
use serde_json::json;

use crate::cli::{MirrorArgs, VerifyArgs};
use crate::client::{Ctx, print_json, read_text};
use crate::cmd::prove::load_vkeys;
use crate::error::{CliError, CliResult};
use crate::http::Fetcher;

/// Tiles fetched at once.
const PARALLEL: usize = 16;

/// A copy of the tiles in a directory; its checkpoint may be given apart
/// (the one about to be mirrored).
struct DirSource {
    dir: PathBuf,
    checkpoint: Option<Vec<u8>>,
}

impl TileSource for DirSource {
    fn fetch(&mut self, path: &str) -> Result<Option<Vec<u8>>, String> {
        if path == "checkpoint"
            && let Some(c) = &self.checkpoint
        {
            return Ok(Some(c.clone()));
        }
        match std::fs::read(self.dir.join(path)) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("{}: {e}", self.dir.join(path).display())),
        }
    }
}

/// The tiles at a URL, fetched one at a time as the walk asks (on a
/// blocking thread).
struct UrlSource {
    fetcher: Fetcher,
    rt: tokio::runtime::Handle,
}

impl TileSource for UrlSource {
    fn fetch(&mut self, path: &str) -> Result<Option<Vec<u8>>, String> {
        self.rt.block_on(self.fetcher.get(path)).map_err(|e| e.to_string())
    }
}

/// Runs `ledger mirror`.
pub async fn run(ctx: &Ctx, a: MirrorArgs) -> CliResult {
    let keys = load_vkeys(&a.vkeys)?;
    let t0 = Instant::now();
    let (report, fetched) = mirror(&a.url, &a.dir, keys).await?;
    let seconds = t0.elapsed().as_secs_f64();
    if ctx.json() {
        let mut v = serde_json::to_value(&report).expect("serialisable");
        v["fetched"] = json!(fetched.0);
        v["fetched_bytes"] = json!(fetched.1);
        v["seconds"] = json!(seconds);
        print_json(&v);
    } else {
        print!("{}", report.to_text());
        println!("fetched {} tiles and bundles ({} bytes) in {seconds:.1} s", fetched.0, fetched.1);
    }
    if report.ok {
        Ok(())
    } else {
        Err(CliError::Negative(format!("{} findings: the copy's checkpoint was not moved", report.finding_count)))
    }
}

/// Mirrors `url` into `dir`: returns the report and (tiles fetched, bytes).
async fn mirror(url: &str, dir: &Path, keys: Vec<NoteVerifier>) -> CliResult<(Report, (u64, u64))> {
    let f = Fetcher::new(url)?;
    std::fs::create_dir_all(dir).map_err(|e| CliError::io(dir, e))?;
    let earlier = earlier_checkpoint(dir, &keys)?;
    let note = f.get("checkpoint").await?.ok_or_else(|| CliError::Fetch {
        url: format!("{url}/checkpoint"),
        detail: "404: the server serves no checkpoint there".into(),
    })?;
    let cp = Checkpoint::open(&String::from_utf8_lossy(&note), &keys).map_err(|e| {
        CliError::Negative(format!("INVALID: the served checkpoint does not verify with the given keys: {e}"))
    })?;
    let wanted: Vec<TilePath> = tiles_of(cp.size).into_iter().filter(|p| !dir.join(p.path()).is_file()).collect();
    let fetched = fetch_all(&f, dir, &wanted).await?;
    let (d, n, e) = (dir.to_owned(), note.clone(), earlier.clone());
    let start = std::fs::read(dir.join(STATE)).ok().and_then(|b| serde_json::from_slice::<StartState>(&b).ok());
    let (report, state) = tokio::task::spawn_blocking(move || {
        resume(DirSource { dir: d, checkpoint: Some(n) }, &keys, e.as_ref(), start.as_ref())
    })
    .await
    .map_err(|e| CliError::Usage(format!("the verification did not finish: {e}")))?;
    if report.ok {
        write_atomic(&dir.join("checkpoint"), &note)?;
        if let Some(s) = state {
            write_atomic(&dir.join(STATE), &serde_json::to_vec_pretty(&s).expect("serialisable"))?;
        }
        prune_partials(dir, earlier.as_ref(), cp.size);
    }
    Ok((report, fetched))
}

/// The walk's state at the copy's checkpoint (used only when it matches
/// that checkpoint's size and root).
const STATE: &str = "verified-state.json";

/// The checkpoint mirrored before, verified.
fn earlier_checkpoint(dir: &Path, keys: &[NoteVerifier]) -> CliResult<Option<Checkpoint>> {
    let path = dir.join("checkpoint");
    if !path.is_file() {
        return Ok(None);
    }
    let c = Checkpoint::open(&read_text(&path)?, keys).map_err(|e| {
        CliError::Usage(format!("{}: the mirrored checkpoint does not verify with the given keys: {e}", path.display()))
    })?;
    Ok(Some(c))
}

/// Fetches `wanted` into `dir`, `PARALLEL` at a time.
async fn fetch_all(f: &Fetcher, dir: &Path, wanted: &[TilePath]) -> CliResult<(u64, u64)> {
    let bar = crate::progress::count_bar(wanted.len() as u64, "fetching", "tiles and bundles");
    let mut set = tokio::task::JoinSet::new();
    let (mut count, mut bytes) = (0u64, 0u64);
    for p in wanted {
        if set.len() >= PARALLEL {
            bytes += set.join_next().await.expect("a task").map_err(join_error)??;
            count += 1;
            bar.inc(1);
        }
        let (f, path, file) = (f.clone(), p.path(), dir.join(p.path()));
        set.spawn(async move {
            let b = f.get(&path).await?.ok_or_else(|| CliError::Fetch {
                url: path.clone(),
                detail: "404: the server lacks a tile its checkpoint needs".into(),
            })?;
            write_atomic(&file, &b)?;
            Ok::<u64, CliError>(b.len() as u64)
        });
    }
    while let Some(r) = set.join_next().await {
        bytes += r.map_err(join_error)??;
        count += 1;
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok((count, bytes))
}

fn join_error(e: tokio::task::JoinError) -> CliError {
    CliError::Usage(format!("a fetch did not finish: {e}"))
}

fn write_atomic(path: &Path, bytes: &[u8]) -> CliResult {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| CliError::io(parent, e))?;
    }
    let tmp = path.with_extension("part");
    std::fs::write(&tmp, bytes).map_err(|e| CliError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| CliError::io(path, e))
}

/// Removes the earlier tree's partial tiles the new tree no longer has.
fn prune_partials(dir: &Path, earlier: Option<&Checkpoint>, size: u64) {
    let Some(e) = earlier else { return };
    let now: std::collections::HashSet<TilePath> = tiles_of(size).into_iter().collect();
    for p in tiles_of(e.size).into_iter().filter(|p| !p.is_full() && !now.contains(p)) {
        let _ = std::fs::remove_file(dir.join(p.path()));
    }
}

/// [`check`] from the state an earlier run left; also the state at the end.
fn resume(
    mut src: impl TileSource,
    keys: &[NoteVerifier],
    earlier: Option<&Checkpoint>,
    start: Option<&StartState>,
) -> (Report, Option<StartState>) {
    let bar = crate::progress::count_bar(0, "verifying", "entries");
    let progress = |done: u64, total: u64| {
        bar.set_length(total);
        bar.set_position(done);
    };
    let (report, _, state) = verify_tiles_from(&mut src, keys, earlier, start, Some(&progress));
    bar.finish_and_clear();
    (report, state)
}

fn check(mut src: impl TileSource, keys: &[NoteVerifier], earlier: Option<&Checkpoint>) -> Report {
    let bar = crate::progress::count_bar(0, "verifying", "entries");
    let progress = |done: u64, total: u64| {
        bar.set_length(total);
        bar.set_position(done);
    };
    let (report, _) = verify_tiles(&mut src, keys, earlier, Some(&progress));
    bar.finish_and_clear();
    report
}

/// Runs `ledger verify --tiles DIR|URL`.
pub async fn verify(ctx: &Ctx, a: VerifyArgs) -> CliResult {
    if a.vkeys.is_empty() {
        return Err(CliError::Usage("--tiles needs --vkey FILE (the log's vkeys, obtained independently)".into()));
    }
    let keys = load_vkeys(&a.vkeys)?;
    let earlier = match &a.trusted_checkpoint {
        Some(p) => Some(Checkpoint::open(&read_text(p)?, &keys).map_err(|e| {
            CliError::Negative(format!("INVALID: the trusted checkpoint does not verify with the given keys: {e}"))
        })?),
        None => None,
    };
    let target = a.path.to_string_lossy().into_owned();
    let report = if target.starts_with("http://") || target.starts_with("https://") {
        let src = UrlSource { fetcher: Fetcher::new(&target)?, rt: tokio::runtime::Handle::current() };
        tokio::task::spawn_blocking(move || check(src, &keys, earlier.as_ref())).await
    } else {
        let src = DirSource { dir: a.path.clone(), checkpoint: None };
        tokio::task::spawn_blocking(move || check(src, &keys, earlier.as_ref())).await
    }
    .map_err(|e| CliError::Usage(format!("the verification did not finish: {e}")))?;
    if ctx.json() {
        print_json(&serde_json::to_value(&report).expect("serialisable"));
    } else {
        print!("{}", report.to_text());
    }
    if report.ok { Ok(()) } else { Err(CliError::Negative(format!("{} findings", report.finding_count))) }
}
