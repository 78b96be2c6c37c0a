//! `ledger import FILE.jsonl`: moves an existing decision log (one JSON
//! object per line, e.g. the playbooks' `audit/decision_logs/runtime.jsonl`)
//! into the ledger — one entry per line, then one `import` entry with the
//! counts (docs/CLI.md "ledger import", docs/OPERATIONS.md).
//!
//! Two passes over the file. The first checks every line and hashes the
//! file; a bad line stops the run there with nothing written (with
//! `--skip-bad` it is left out and listed). The second sends the lines in
//! batches over `AppendStream` (`crate::bulk`) while a thread reads ahead,
//! in bounded memory; request ids derive from the file's hash and the line
//! number, so a second run writes nothing new and counts duplicates.
//!
//! Owns: the run and its errors. Must not: write anything before every line
//! was checked, show the old HMAC key, or hide a signature mismatch.

mod line;
mod lines;
mod oldsig;
mod report;
mod when;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use ledger_proto::v1 as pb;
use tokio::sync::mpsc;

use self::line::{IMPORT_CATEGORY, LineFault, Source, Spec};
use self::lines::Lines;
use self::oldsig::{KeyError, OldKey, Verdict};
use self::report::{Closing, MAX_SKIPPED, Run, Skipped, Tally};
use crate::bulk::{self, Outcome};
use crate::cli::ImportArgs;
use crate::client::{Ctx, ledger_client, print_json};
use crate::error::{CliError, CliResult};

/// Most entries per `AppendStream` call.
const BATCH: usize = 2048;
/// Most payload bytes per `AppendStream` call (then the batch is cut
/// earlier): four batches at most are held (being read, two waiting, being
/// sent, that one copied once more), so a file of 64 KiB lines holds
/// about 20 MiB, not 512.
const BATCH_BYTES: usize = 4 << 20;

/// Why an import stopped.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// A flag names no field.
    #[error("{flag} {field:?}: {why}")]
    Flag {
        /// the flag
        flag: &'static str,
        /// its value
        field: String,
        /// what is wrong
        why: &'static str,
    },
    /// The old HMAC key cannot be used.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The file cannot be read.
    #[error("{}: {source}", file.display())]
    Read {
        /// the file
        file: PathBuf,
        /// the OS error
        source: std::io::Error,
    },
    /// A line failed a check (without `--skip-bad`); nothing was written.
    #[error(
        "{}: line {line}: {fault} (nothing was written; fix the line, or pass --skip-bad to import the others and list it in the import entry)",
        file.display()
    )]
    BadLine {
        /// the file
        file: PathBuf,
        /// 1-based
        line: u64,
        /// why
        fault: LineFault,
    },
    /// More bad lines than an import entry lists; nothing was written.
    #[error(
        "{}: {count} bad lines, more than the {max} an import entry lists (the first: line {first_line}: {first_fault}); nothing was written: fix the file",
        file.display()
    )]
    TooManyBad {
        /// the file
        file: PathBuf,
        /// bad lines
        count: u64,
        /// the most a run skips
        max: usize,
        /// the first bad line
        first_line: u64,
        /// why it is bad
        first_fault: LineFault,
    },
    /// The file is not the one the first pass checked.
    #[error(
        "{} changed during the import ({what}); {written} entries of this run were written: run the import again on the file as it is now",
        file.display()
    )]
    Changed {
        /// the file
        file: PathBuf,
        /// what differs
        what: String,
        /// entries this run wrote
        written: u64,
    },
    /// ledgerd refused a line.
    #[error(
        "{}: line {line}: {message}; {written} entries of this run were written (a run after the fix finds them as duplicates)",
        file.display()
    )]
    Refused {
        /// the file
        file: PathBuf,
        /// 1-based
        line: u64,
        /// ledgerd's status code
        code: tonic::Code,
        /// ledgerd's reason
        message: String,
        /// entries this run wrote
        written: u64,
    },
    /// A batch could not be sent (ledgerd unreachable, or `UNAVAILABLE`
    /// past `--write-retry`).
    #[error(
        "{source}; {written} entries of this run were written before (run the import again: they come back as duplicates)"
    )]
    Stopped {
        /// entries this run wrote
        written: u64,
        /// the error, whose kind sets the exit code
        source: CliError,
    },
}

impl From<ImportError> for CliError {
    fn from(e: ImportError) -> Self {
        match e {
            ImportError::Read { file, source } => CliError::io(file, source),
            ImportError::Refused { code, .. } => CliError::Remote(tonic::Status::new(code, e.to_string())),
            ImportError::Stopped { written: 0, source } => source,
            ImportError::Stopped { written, source } => with_note(source, written),
            other => CliError::Usage(other.to_string()),
        }
    }
}

/// `e` of the same kind (and exit code), saying how many entries were written.
fn with_note(e: CliError, written: u64) -> CliError {
    noted(
        e,
        &format!("; {written} entries of this run were written (run the import again: they come back as duplicates)"),
    )
}

/// `e` of the same kind (and exit code), `note` added to its message.
fn noted(e: CliError, note: &str) -> CliError {
    match e {
        CliError::Usage(m) => CliError::Usage(m + note),
        CliError::Negative(m) => CliError::Negative(m + note),
        CliError::Unreachable { server, detail } => CliError::Unreachable { server, detail: detail + note },
        CliError::Fetch { url, detail } => CliError::Fetch { url, detail: detail + note },
        CliError::Remote(st) => CliError::Remote(tonic::Status::new(st.code(), format!("{}{note}", st.message()))),
        io @ CliError::Io { .. } => io,
    }
}

/// Runs the command.
pub async fn run(ctx: &Ctx, args: ImportArgs) -> CliResult {
    let started = Instant::now();
    let spec = Arc::new(spec(&args)?);
    let checked = check_file(&args.file, &spec, args.skip_bad)?;
    let source = Source::new(hex::encode(checked.sha256));
    let mut tally = Tally {
        lines: checked.lines,
        skipped: checked.skipped,
        hmac: spec.hmac.as_ref().map(|_| [0; 3]),
        ..Default::default()
    };
    write_lines(ctx, &args.file, spec.clone(), &source, &mut tally).await?;
    let file = args.file.display().to_string();
    let hmac_field = spec.hmac.as_ref().map(|(_, f)| f.as_str());
    let fields = [Some(spec.category.as_str()), Some(spec.subject.as_str()), Some(spec.time.as_str()), hmac_field];
    let run = Run { file: &file, sha256: &source.sha256, fields };
    let closing = close(ctx, &run, &tally, &source).await?;
    let seconds = started.elapsed().as_secs_f64();
    if ctx.json() {
        print_json(&report::output_json(&run, &tally, &closing, seconds));
    } else {
        println!("{}", report::output_text(&run, &tally, &closing, seconds));
    }
    if let Some([0, mismatch, _]) = tally.hmac
        && mismatch > 0
    {
        eprintln!(
            "warning: no line's signature matched: a wrong --hmac-key, or the log signs another way than docs/CLI.md \"ledger import\" assumes"
        );
    }
    Ok(())
}

/// The checks the flags ask for.
fn spec(args: &ImportArgs) -> Result<Spec, ImportError> {
    let named = |flag: &'static str, field: &str| {
        if field.is_empty() {
            return Err(ImportError::Flag { flag, field: field.to_owned(), why: "the field name is empty" });
        }
        Ok(field.to_owned())
    };
    let hmac = match (&args.hmac_key, &args.hmac_field) {
        (Some(key), Some(field)) => Some((OldKey::load(key)?, named("--hmac-field", field)?)),
        _ => None,
    };
    Ok(Spec {
        category: named("--category-field", &args.category_field)?,
        subject: named("--subject-field", &args.subject_field)?,
        time: named("--time-field", &args.time_field)?,
        hmac,
        policy: (!args.no_policy_check).then(ledger::policy::Policy::default),
        limits: ledger::entry::Limits::default(),
    })
}

/// What the first pass found.
struct Checked {
    sha256: [u8; 32],
    lines: u64,
    skipped: Vec<Skipped>,
}

fn read_error(file: &Path) -> impl Fn(std::io::Error) -> ImportError + '_ {
    move |source| ImportError::Read { file: file.to_owned(), source }
}

/// The first pass: every line checked, the file hashed; nothing sent.
fn check_file(file: &Path, spec: &Spec, skip_bad: bool) -> Result<Checked, ImportError> {
    let size = std::fs::metadata(file).map_err(read_error(file))?.len();
    let mut lines = Lines::open(file, spec.limits.max_payload_bytes).map_err(read_error(file))?;
    let bar = crate::progress::interactive_bytes_bar(size, "checking");
    let stand_in = Source::stand_in();
    let (mut buf, mut count, mut skipped, mut bad) = (Vec::new(), 0, Vec::new(), 0u64);
    let mut first_bad = None;
    while let Some(l) = lines.next_into(&mut buf).map_err(read_error(file))? {
        count = l.number;
        if let Err(fault) = spec.check(l.number, &buf, l.len, &stand_in) {
            if !skip_bad {
                return Err(ImportError::BadLine { file: file.to_owned(), line: l.number, fault });
            }
            bad += 1;
            if skipped.len() < MAX_SKIPPED {
                skipped.push(Skipped::new(l.number, &fault.to_string()));
            }
            first_bad.get_or_insert((l.number, fault));
        }
        if count.is_multiple_of(4096) {
            bar.set_position(lines.bytes());
        }
    }
    bar.finish_and_clear();
    if let Some((first_line, first_fault)) = first_bad.filter(|_| bad > MAX_SKIPPED as u64) {
        return Err(ImportError::TooManyBad {
            file: file.to_owned(),
            count: bad,
            max: MAX_SKIPPED,
            first_line,
            first_fault,
        });
    }
    Ok(Checked { sha256: lines.sha256(), lines: count, skipped })
}

/// A checked line of the second pass, ready to send.
struct Ready {
    line: u64,
    entry: pb::EntryInput,
    verdict: Option<Verdict>,
}

/// What the reading thread hands over: a batch, or the file's hash at its end.
enum Piece {
    Batch(Vec<Ready>),
    End([u8; 32]),
}

/// The second pass: a thread reads and checks the lines again (they were
/// checked, but the file could have changed since) in batches; each batch
/// goes over `AppendStream` while the next is read (two at most wait).
async fn write_lines(
    ctx: &Ctx,
    file: &Path,
    spec: Arc<Spec>,
    source: &Source,
    tally: &mut Tally,
) -> Result<(), ImportError> {
    let (tx, mut rx) = mpsc::channel(2);
    let skip: Vec<u64> = tally.skipped.iter().map(|s| s.line).collect();
    let (path, sha) = (file.to_owned(), source.sha256.clone());
    let expected = tally.lines;
    std::thread::spawn(move || read_batches(&path, &spec, &Source::new(sha), &skip, &tx));
    let bar = crate::progress::count_bar(expected - tally.skipped.len() as u64, "importing", "lines");
    while let Some(piece) = rx.recv().await {
        let piece = match piece {
            Err(ImportError::Changed { file, what, .. }) => {
                return Err(ImportError::Changed { file, what, written: tally.written });
            }
            other => other?,
        };
        match piece {
            Piece::Batch(batch) => {
                let n = batch.len() as u64;
                send(ctx, file, batch, tally).await?;
                bar.inc(n);
            }
            Piece::End(sha) if hex::encode(sha) != source.sha256 => {
                let what = "its SHA-256 is not the one checked".to_owned();
                return Err(ImportError::Changed { file: file.to_owned(), what, written: tally.written });
            }
            Piece::End(_) => {}
        }
    }
    bar.finish_and_clear();
    Ok(())
}

/// The reading thread of the second pass; stops when the receiver is gone.
fn read_batches(
    file: &Path,
    spec: &Spec,
    source: &Source,
    skip: &[u64],
    tx: &mpsc::Sender<Result<Piece, ImportError>>,
) {
    let changed = |what: String| ImportError::Changed { file: file.to_owned(), what, written: 0 };
    let run = || -> Result<(), ImportError> {
        let mut lines = Lines::open(file, spec.limits.max_payload_bytes).map_err(read_error(file))?;
        let (mut buf, mut batch, mut bytes) = (Vec::new(), Vec::with_capacity(BATCH), 0);
        while let Some(l) = lines.next_into(&mut buf).map_err(read_error(file))? {
            if skip.binary_search(&l.number).is_ok() {
                continue;
            }
            let good =
                spec.check(l.number, &buf, l.len, source).map_err(|f| changed(format!("line {}: {f}", l.number)))?;
            bytes += good.entry.payload.len();
            batch.push(Ready { line: l.number, entry: good.entry, verdict: good.verdict });
            if batch.len() == BATCH || bytes >= BATCH_BYTES {
                bytes = 0;
                if tx.blocking_send(Ok(Piece::Batch(std::mem::take(&mut batch)))).is_err() {
                    return Ok(());
                }
            }
        }
        if !batch.is_empty() && tx.blocking_send(Ok(Piece::Batch(batch))).is_err() {
            return Ok(());
        }
        let _ = tx.blocking_send(Ok(Piece::End(lines.sha256())));
        Ok(())
    };
    if let Err(e) = run() {
        let _ = tx.blocking_send(Err(e));
    }
}

/// Sends one batch and counts its receipts; the first line ledgerd refused
/// stops the import (after the whole batch is counted).
async fn send(ctx: &Ctx, file: &Path, batch: Vec<Ready>, tally: &mut Tally) -> Result<(), ImportError> {
    let mut meta = Vec::with_capacity(batch.len());
    let mut reqs = Vec::with_capacity(batch.len());
    for r in batch {
        meta.push((r.line, r.verdict));
        reqs.push(pb::AppendRequest { log: ctx.log.clone(), entry: Some(r.entry), actor: ctx.actor.clone() });
    }
    let outcomes = bulk::append_batch(ctx, &reqs).await.map_err(|e| stopped(e, tally.written))?;
    let mut refused = None;
    for ((line, verdict), outcome) in meta.into_iter().zip(outcomes) {
        match outcome {
            Outcome::Receipt(r) => tally.entry(r.seq, r.duplicate, verdict),
            Outcome::Refused(st) => {
                refused.get_or_insert((line, st));
            }
        }
    }
    match refused {
        None => Ok(()),
        Some((line, st)) => Err(ImportError::Refused {
            file: file.to_owned(),
            line,
            code: st.code(),
            message: refusal(&st),
            written: tally.written,
        }),
    }
}

/// ledgerd's refusal of a line, with what it means for an import.
fn refusal(st: &tonic::Status) -> String {
    if st.code() == tonic::Code::AlreadyExists {
        return format!(
            "imported before with other content ({}): an earlier run of this file with other flags?",
            st.message()
        );
    }
    format!("ledgerd refused it: {}", st.message())
}

/// A batch that could not be sent at all: the error as it is.
fn stopped(e: CliError, written: u64) -> ImportError {
    ImportError::Stopped { written, source: e }
}

/// Writes the run's `import` entry (request id `import-<hash>-end`, subject
/// `import-<hash>`). When an earlier run of the same file wrote one, ledgerd
/// refuses this one as other content under its request id: that entry is
/// reported instead (its seq looked up when the log can be read).
async fn close(ctx: &Ctx, run: &Run<'_>, tally: &Tally, source: &Source) -> CliResult<Closing> {
    let request_id = source.request_id("end");
    let subject = format!("import-{}", &source.sha256[..32]);
    let entry = pb::EntryInput {
        category: IMPORT_CATEGORY.to_owned(),
        subject: subject.clone(),
        payload: report::closing_payload(run, tally),
        occurred_at: 0,
        request_id: request_id.clone(),
        artifacts: Vec::new(),
    };
    let req = pb::AppendRequest { log: ctx.log.clone(), entry: Some(entry), actor: ctx.actor.clone() };
    let sent = ctx
        .write(|ch| {
            let req = req.clone();
            async move { Ok(ledger_client(ch).append(req).await?.into_inner()) }
        })
        .await;
    match sent {
        Ok(resp) => {
            let r = resp.receipt.ok_or_else(|| CliError::Usage("the server sent no receipt".into()))?;
            let tree_size = crate::render::receipt_json(&r)["tree_size"].as_u64();
            Ok(Closing { seq: Some(r.seq), request_id, written: !r.duplicate, tree_size })
        }
        Err(CliError::Remote(st)) if st.code() == tonic::Code::AlreadyExists => {
            let (seq, tree_size) = earlier_closing(ctx, &subject).await;
            Ok(Closing { seq, request_id, written: false, tree_size })
        }
        Err(e) => Err(noted(
            e,
            &format!(
                "; the import entry was not written, every line is in the log ({} written by this run): run the import again to write it (ledgerd's policy must declare category import)",
                tally.written
            ),
        )),
    }
}

/// The seq of the import entry an earlier run wrote, and the log's size
/// now; `None` when the log cannot be read (a writer without the reader role).
async fn earlier_closing(ctx: &Ctx, subject: &str) -> (Option<u64>, Option<u64>) {
    let filter = pb::Filter { category: IMPORT_CATEGORY.into(), subject: subject.into(), ..Default::default() };
    let mut seq = None;
    let _ = crate::client::scan(ctx, filter, false, 1, |e| seq = Some(e.seq)).await;
    let size = match ctx.ledger().await {
        Ok(mut c) => c.get_checkpoint(pb::GetCheckpointRequest { log: ctx.log.clone(), size: 0 }).await.ok(),
        Err(_) => None,
    };
    (seq, size.map(|r| r.into_inner().size))
}
