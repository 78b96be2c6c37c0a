//! The offline verifier (FORMAT.md §11): replays a journal directory with
//! public keys only (plus the HMAC key file when the auditor holds it) and
//! reports every finding with its kind and seq, and apart, as warnings that
//! do not fail verification, stored payloads that break the payload rules
//! (entries written before payload rule 2, FORMAT.md §3.4).
//!
//! Owns: the checks and the report. Must not: open the index, write
//! anything, or trust anything in the directory but what the keys verify.
//! Streams in bounded memory (plus one map entry per distinct subject):
//! one thread reads, one per core decodes and hashes, this one replays.

mod batch;
pub(crate) mod produce;
mod report;
mod tiles;

use std::path::Path;

pub use batch::{BatchStart, verify_batch};
pub use report::{Finding, FindingKind, Redacted, Report};
pub use tiles::{TileSource, verify_tiles, verify_tiles_from};

use crate::hash::{Hash, to_hex};
use crate::keys::HmacKeySet;
use crate::merkle::CompactRange;
use crate::note::{Checkpoint, Note, NoteError, NoteVerifier};
use produce::{Chunk, HmacOutcome, Item, LeafItem};

/// Decoding and hashing threads at most (one per core below that).
const MAX_WORKERS: usize = 8;

/// Where a partial journal (an export `--from` a seq) starts: the tree and
/// chain state just before its first entry. It needs no trust: a wrong value
/// makes every later checkpoint root mismatch (FORMAT.md §11).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StartState {
    /// seq of the first entry in the journal
    pub first_seq: u64,
    /// leaf hash of `first_seq - 1` (hex)
    pub prev_hash: String,
    /// recorded_at of `first_seq - 1`
    pub prev_recorded_at: i64,
    /// the RFC 6962 compact range of the first `first_seq` leaves (hex, largest subtree first)
    pub compact_range: Vec<String>,
}

impl StartState {
    fn parts(&self) -> Option<(Hash, CompactRange)> {
        let prev = hex::decode(&self.prev_hash).ok().and_then(|b| crate::hash::from_slice(&b))?;
        let nodes: Option<Vec<Hash>> =
            self.compact_range.iter().map(|h| hex::decode(h).ok().and_then(|b| crate::hash::from_slice(&b))).collect();
        Some((prev, CompactRange::from_parts(self.first_seq, nodes?)?))
    }
}

/// What to verify against.
pub struct VerifyInput<'a> {
    /// the `journal/` directory (of an export or a stopped log)
    pub journal_dir: &'a Path,
    /// trusted checkpoint keys
    pub vkeys: &'a [NoteVerifier],
    /// HMAC keys, when the auditor holds them
    pub hmac_keys: Option<&'a HmacKeySet>,
    /// a checkpoint the auditor saw before (note text)
    pub trusted_checkpoint: Option<&'a str>,
    /// called with (bytes done, bytes total) as the journal is read
    pub progress: Option<&'a (dyn Fn(u64, u64) + Sync)>,
    /// for a partial journal: the state before its first entry
    pub start: Option<&'a StartState>,
}

/// Verification could not run at all (distinct from findings).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The journal directory cannot be read.
    #[error(transparent)]
    Journal(#[from] crate::journal::JournalError),
    /// The trusted checkpoint does not verify with the given keys.
    #[error("the trusted checkpoint does not verify: {0}")]
    TrustedCheckpoint(NoteError),
    /// No keys were given.
    #[error("no verifier keys given: pass the log's vkeys")]
    NoKeys,
    /// The start state of a partial journal does not parse.
    #[error("the start state is malformed: hashes must be 32 bytes of hex, one per set bit of first_seq")]
    BadStart,
}

/// Replays the journal and returns the report.
pub fn verify(input: &VerifyInput<'_>) -> Result<Report, VerifyError> {
    if input.vkeys.is_empty() {
        return Err(VerifyError::NoKeys);
    }
    let trusted = match input.trusted_checkpoint {
        Some(t) => Some(Checkpoint::open(t, input.vkeys).map_err(VerifyError::TrustedCheckpoint)?),
        None => None,
    };
    let segments = crate::journal::list_segments(input.journal_dir)?;
    let total: u64 = segments.iter().filter_map(|(_, p)| std::fs::metadata(p).ok()).map(|m| m.len()).sum();
    let mut state = Replay::new(input.vkeys, trusted);
    if let Some(s) = input.start {
        let (prev, range) = s.parts().ok_or(VerifyError::BadStart)?;
        (state.expect, state.prev_hash, state.prev_time, state.range) = (s.first_seq, prev, s.prev_recorded_at, range);
        state.report.first_seq = s.first_seq;
    }
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, MAX_WORKERS);
    let (raw_tx, raw_rx) = std::sync::mpsc::sync_channel::<Chunk<produce::Raw>>(2 * workers);
    let raw_rx = std::sync::Mutex::new(raw_rx);
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Chunk<Item>>(2 * workers);
        scope.spawn(move || produce::read(&segments, &raw_tx));
        for _ in 0..workers {
            let (tx, raw_rx) = (tx.clone(), &raw_rx);
            scope.spawn(move || produce::work(raw_rx, &tx, input.hmac_keys));
        }
        drop(tx);
        let (mut waiting, mut next) = (std::collections::BTreeMap::new(), 0u64);
        for (n, chunk) in rx {
            waiting.insert(n, chunk);
            while let Some(chunk) = waiting.remove(&next) {
                for item in chunk {
                    state.item(item);
                }
                next += 1;
            }
            if let Some(p) = input.progress {
                p(state.bytes, total);
            }
        }
    });
    Ok(state.finish())
}

struct Replay<'a> {
    vkeys: &'a [NoteVerifier],
    trusted: Option<Checkpoint>,
    report: Report,
    expect: u64,
    prev_hash: Hash,
    prev_time: i64,
    range: CompactRange,
    subjects: crate::FastMap<String, u64>,
    /// redaction seq → the entry it redacted, until that seq is replayed
    redactions: crate::FastMap<u64, u64>,
    segment_first: Option<u64>,
    bytes: u64,
}

impl<'a> Replay<'a> {
    fn new(vkeys: &'a [NoteVerifier], trusted: Option<Checkpoint>) -> Self {
        Self {
            vkeys,
            trusted,
            report: Report::default(),
            expect: 0,
            prev_hash: [0; 32],
            prev_time: i64::MIN,
            range: CompactRange::new(),
            subjects: crate::FastMap::default(),
            redactions: crate::FastMap::default(),
            segment_first: None,
            bytes: 0,
        }
    }

    fn find(&mut self, kind: FindingKind, seq: Option<u64>, detail: String) {
        self.report.add(Finding { kind, seq, detail });
    }

    fn item(&mut self, item: Item) {
        match item {
            Item::Segment { first_seq } => self.segment_first = Some(first_seq),
            Item::Bad { kind, detail, bytes } => {
                self.bytes += bytes;
                self.find(kind, None, detail);
            }
            Item::Checkpoint { note, bytes } => {
                self.bytes += bytes;
                self.checkpoint(&note);
            }
            Item::Leaf(l) => {
                self.bytes += l.bytes;
                self.entry(&l);
            }
        }
    }

    fn checkpoint(&mut self, note: &str) {
        self.report.checkpoints += 1;
        let at = Some(self.range.size());
        let parsed = Note::parse(note).and_then(|n| {
            n.verify(self.vkeys)?;
            Checkpoint::parse_body(&n.text)
        });
        match parsed {
            Err(e) => self.find(
                FindingKind::CheckpointUntrusted,
                at,
                format!("checkpoint frame after {} entries: {e}", self.range.size()),
            ),
            Ok(c) if c.size != self.range.size() => self.find(
                FindingKind::CheckpointMismatch,
                at,
                format!("checkpoint says size {} but {} entries precede it", c.size, self.range.size()),
            ),
            Ok(c) if c.root != self.range.root() => self.find(
                FindingKind::CheckpointMismatch,
                at,
                format!(
                    "checkpoint root {} at size {} differs from the replayed root {}",
                    to_hex(&c.root),
                    c.size,
                    to_hex(&self.range.root())
                ),
            ),
            Ok(_) => {}
        }
    }

    fn entry(&mut self, l: &LeafItem) {
        let seq = self.expect;
        if let Some(first) = self.segment_first.take()
            && l.leaf.as_ref().is_some_and(|x| x.seq != first)
        {
            self.find(
                FindingKind::SegmentHeader,
                Some(seq),
                format!("{}: first entry is not seq {first}", l.segment.display()),
            );
        }
        self.report.entries += 1;
        let Some(leaf) = l.leaf.as_ref() else {
            self.find(FindingKind::LeafInvalid, Some(seq), l.leaf_error.clone().unwrap_or_default());
            self.advance(seq, l);
            return;
        };
        if let Some(e) = &l.leaf_error {
            self.find(FindingKind::LeafNotCanonical, Some(leaf.seq), e.clone());
        }
        if leaf.seq != seq {
            let at = format!("{} offset {}", l.segment.display(), l.offset);
            self.find(
                FindingKind::SeqMismatch,
                Some(seq),
                format!("expected seq {seq}, found seq {} at {at}", leaf.seq),
            );
        }
        self.chain_checks(leaf, l);
        self.hmac_check(leaf, l);
        self.advance(leaf.seq, l);
    }

    fn chain_checks(&mut self, leaf: &crate::leaf::Leaf, l: &LeafItem) {
        let seq = leaf.seq;
        if leaf.prev_hash != self.prev_hash {
            self.find(
                FindingKind::PrevHashMismatch,
                Some(seq),
                format!(
                    "prev_hash {} is not the previous leaf hash {}",
                    hex::encode(&leaf.prev_hash),
                    to_hex(&self.prev_hash)
                ),
            );
        }
        if leaf.recorded_at < self.prev_time {
            self.find(
                FindingKind::TimeBackwards,
                Some(seq),
                format!("recorded_at {} is before the previous entry's {}", leaf.recorded_at, self.prev_time),
            );
        }
        self.redaction_checks(leaf, l);
        self.payload_checks(leaf, l);
        let expected = if leaf.subject.is_empty() { 0 } else { self.subjects.get(&leaf.subject).copied().unwrap_or(0) };
        let before_start = expected == 0
            && leaf.subject_prev != 0
            && leaf.subject_prev <= self.report.first_seq
            && !leaf.subject.is_empty();
        if leaf.subject_prev != expected && !before_start {
            let want = if expected == 0 { "none".to_owned() } else { format!("seq {}", expected - 1) };
            self.find(
                FindingKind::SubjectChainBroken,
                Some(seq),
                format!(
                    "subject {:?}: subject_prev {} but the previous entry of this subject is {want}",
                    leaf.subject, leaf.subject_prev
                ),
            );
        }
        if !leaf.subject.is_empty() {
            match self.subjects.get_mut(&leaf.subject) {
                Some(last) => *last = seq + 1,
                None => {
                    self.subjects.insert(leaf.subject.clone(), seq + 1);
                }
            }
        }
    }

    /// The payload is the one the leaf commits to, unless redacted; that
    /// payload breaking the payload rules, as one written before rule 2 may,
    /// is a warning (FORMAT.md §3.4, §11).
    fn payload_checks(&mut self, leaf: &crate::leaf::Leaf, l: &LeafItem) {
        let seq = leaf.seq;
        if l.redacted_by != 0 && l.payload_len == 0 {
            self.report.redacted.push(Redacted { seq, redaction_seq: l.redacted_by - 1 });
        } else if leaf.payload_sha256 != l.payload_hash || leaf.payload_size != l.payload_len {
            self.find(
                FindingKind::PayloadMismatch,
                Some(seq),
                format!(
                    "payload hashes to {} ({} bytes); the leaf commits to {} ({} bytes)",
                    to_hex(&l.payload_hash),
                    l.payload_len,
                    hex::encode(&leaf.payload_sha256),
                    leaf.payload_size
                ),
            );
        } else if let Some(w) = &l.payload_warning {
            self.find(FindingKind::PayloadNotIjson, Some(seq), w.clone());
        }
    }

    /// A redacted record must name a later `redaction` entry, and that
    /// entry must be the redaction of this one (FORMAT.md §6.4).
    fn redaction_checks(&mut self, leaf: &crate::leaf::Leaf, l: &LeafItem) {
        let seq = leaf.seq;
        if let Some(target) = self.redactions.remove(&seq) {
            let want = crate::log::redaction_request_id(target);
            if leaf.category != crate::log::REDACTION || leaf.request_id != want {
                let detail = format!(
                    "entry {target} claims to be redacted by entry {seq}, which is a {:?} entry with request_id {:?}, not its redaction",
                    leaf.category, leaf.request_id
                );
                self.find(FindingKind::RedactionUnbacked, Some(target), detail);
            }
        }
        if l.redacted_by != 0 {
            let by = l.redacted_by - 1;
            if by <= seq {
                let detail = format!("redacted_by names entry {by}, which is not after this entry");
                self.find(FindingKind::RedactionUnbacked, Some(seq), detail);
            } else {
                self.redactions.insert(by, seq);
            }
        }
    }

    /// Reports the HMAC outcome the worker found (FORMAT.md §5).
    fn hmac_check(&mut self, leaf: &crate::leaf::Leaf, l: &LeafItem) {
        let Some(outcome) = l.hmac else {
            return;
        };
        let (seq, id) = (leaf.seq, &l.hmac_key_id);
        if outcome != HmacOutcome::UnknownKey {
            self.report.hmac_checked += 1;
        }
        match outcome {
            HmacOutcome::Ok => {}
            HmacOutcome::UnknownKey => {
                self.find(FindingKind::HmacKeyUnknown, Some(seq), format!("HMAC key {id:?} is not in the key file"))
            }
            HmacOutcome::Mismatch => {
                self.find(FindingKind::HmacMismatch, Some(seq), format!("HMAC tag does not verify under key {id}"))
            }
            HmacOutcome::KeyNotValid => self.find(
                FindingKind::HmacKeyNotValid,
                Some(seq),
                format!("key {id} was not valid at recorded_at {}", leaf.recorded_at),
            ),
        }
    }

    fn advance(&mut self, seq: u64, l: &LeafItem) {
        self.expect = seq + 1;
        self.prev_hash = l.leaf_hash;
        if let Some(leaf) = &l.leaf {
            self.prev_time = self.prev_time.max(leaf.recorded_at);
        }
        self.range.push(l.leaf_hash, |_, _, _| {});
        self.check_trusted();
    }

    fn check_trusted(&mut self) {
        let Some(t) = &self.trusted else { return };
        if t.size == self.range.size() && t.size > self.report.first_seq && t.root != self.range.root() {
            let detail = format!(
                "the trusted checkpoint's root {} at size {} differs from the journal's {}: the log showed different histories",
                to_hex(&t.root),
                t.size,
                to_hex(&self.range.root())
            );
            self.find(FindingKind::SplitView, Some(t.size), detail);
        }
    }

    fn finish(mut self) -> Report {
        if let Some(t) = self.trusted.clone() {
            if t.size == 0 && t.root != crate::hash::empty_root() {
                self.find(
                    FindingKind::SplitView,
                    Some(0),
                    "the trusted checkpoint of size 0 has a non-empty root".into(),
                );
            }
            if t.size > self.range.size() {
                let detail = format!(
                    "the trusted checkpoint covers {} entries but the journal holds {}: entries were removed",
                    t.size,
                    self.range.size()
                );
                self.find(FindingKind::Truncated, Some(self.range.size()), detail);
            }
        }
        let mut dangling: Vec<(u64, u64)> = self.redactions.drain().collect();
        dangling.sort();
        for (by, target) in dangling {
            let detail = format!("redacted by entry {by}, which is not in the journal");
            self.find(FindingKind::RedactionUnbacked, Some(target), detail);
        }
        self.report.tree_size = self.range.size();
        self.report.root = to_hex(&self.range.root());
        self.report.ok = self.report.finding_count == 0;
        self.report
    }
}
