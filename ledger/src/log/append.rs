//! The append path: validate → dedup by request_id → sequence → leaf, hash,
//! HMAC → records; then one write to the store, one checkpoint signature,
//! one sync, and the receipts (docs/ARCHITECTURE.md "The write path").

use std::sync::Arc;

use bytes::Bytes;

use super::group::PendingBatch;
use super::{Ledger, LedgerError, LedgerReader, SignedCheckpoint, StoreNodes, Tip, Writer};
use crate::entry::{NewEntry, ValidationError};
use crate::hash::{Hash, leaf_hash};
use crate::hmac_tag::HmacKey;
use crate::journal::{FRAME_HEADER_LEN, encode_frame};
use crate::keys::{Keyring, Rotation};
use crate::leaf::{Leaf, Sequencing, build_leaf, encode_leaf};
use crate::merkle::{CompactRange, NodeSource, ProofError, inclusion_proof};
use crate::note::{Checkpoint, NoteSigner};
use crate::policy::PolicyError;
use crate::receipt::TlogProof;
use crate::record::{self, EntryRecord};
use crate::store::{BatchEntry, Secondary, StoreError, WriteBatch};
use crate::sync::{lock, read};

/// Why one entry was not appended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppendError {
    /// A field is invalid.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// The category policy refused it.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// The request id was used before for different content.
    #[error("request_id {request_id:?} was already used for different content (entry {seq})")]
    Conflict {
        /// the request id
        request_id: String,
        /// the entry that holds it
        seq: u64,
    },
    /// The batch could not be made durable; nothing of it was acknowledged.
    #[error("storage failure, nothing was written: {reason}")]
    Storage {
        /// what failed
        reason: String,
        /// the disk is full
        disk_full: bool,
    },
    /// The log no longer accepts writes.
    #[error("{0}")]
    Unavailable(String),
}

/// Proof that an entry is in the log: offline-verifiable with the log's vkey.
#[derive(Debug, Clone, PartialEq)]
pub struct Receipt {
    /// position
    pub seq: u64,
    /// leaf hash
    pub leaf_hash: Hash,
    /// the stored leaf bytes
    pub leaf: Bytes,
    /// inclusion proof in `checkpoint`
    pub proof: Vec<Hash>,
    /// the signed checkpoint the proof leads to
    pub checkpoint: Arc<SignedCheckpoint>,
    /// true when this repeats an earlier append with the same request_id
    pub duplicate: bool,
}

impl Receipt {
    /// The C2SP tlog-proof of this receipt (FORMAT.md §8).
    pub fn tlog_proof(&self) -> TlogProof {
        TlogProof {
            extra: Some(self.leaf.to_vec()),
            index: self.seq,
            proof: self.proof.clone(),
            checkpoint: self.checkpoint.note.clone(),
        }
    }
}

/// Request-id hashes of committed batches that the store may not serve
/// yet: a hit makes the writer wait for the store, then ask it.
#[derive(Default)]
pub(super) struct UnindexedRequests {
    batches: std::collections::VecDeque<(u64, Vec<u64>)>,
    hashes: crate::FastMap<u64, u32>,
}

impl UnindexedRequests {
    pub(super) fn add(&mut self, through: u64, hashes: Vec<u64>) {
        for &h in &hashes {
            *self.hashes.entry(h).or_default() += 1;
        }
        self.batches.push_back((through, hashes));
    }

    /// Forgets batches the index holds (`visible` entries).
    pub(super) fn prune(&mut self, visible: u64) {
        while self.batches.front().is_some_and(|(through, _)| *through <= visible) {
            let (_, hashes) = self.batches.pop_front().expect("a front batch");
            for h in hashes {
                if let Some(n) = self.hashes.get_mut(&h) {
                    *n -= 1;
                    if *n == 0 {
                        self.hashes.remove(&h);
                    }
                }
            }
        }
    }

    fn contains(&self, h: u64) -> bool {
        self.hashes.contains_key(&h)
    }
}

/// What became of one input of a batch.
enum Slot {
    Failed(AppendError),
    New { seq: u64, leaf: Bytes, hash: Hash },
    SameAsInBatch(usize),
    SameAsStored(u64),
}

/// Perfect subtrees completed by this batch, per level (FORMAT.md §4): level
/// `l` holds indexes `[start >> l, end >> l)`.
struct BatchNodes {
    start: u64,
    levels: Vec<Vec<Hash>>,
}

impl BatchNodes {
    fn record(&mut self, level: u8, index: u64, h: &Hash) {
        let l = level as usize;
        if self.levels.len() <= l {
            self.levels.resize_with(l + 1, Vec::new);
        }
        debug_assert_eq!(index, (self.start >> level) + self.levels[l].len() as u64);
        self.levels[l].push(*h);
    }
}

/// Proof source during a batch: its new nodes, the old compact range, then
/// the store.
struct BatchSource<'a> {
    nodes: &'a BatchNodes,
    old: &'a CompactRange,
    store: StoreNodes<'a>,
}

impl NodeSource for BatchSource<'_> {
    fn node(&self, level: u8, index: u64) -> Result<Hash, ProofError> {
        if let Some(v) = self.nodes.levels.get(level as usize) {
            let base = self.nodes.start >> level;
            if let Some(h) = index.checked_sub(base).and_then(|i| v.get(i as usize)) {
                return Ok(*h);
            }
        }
        if let Some(h) = self.old.piece(level, index) {
            return Ok(h);
        }
        self.store.node(level, index)
    }
}

/// Everything one batch builds before its single write.
struct Batch<'a> {
    ledger: &'a Ledger,
    /// an admin action: may write ADMIN_CATEGORIES
    admin: bool,
    policy: Arc<crate::policy::Policy>,
    hmac: &'a HmacKey,
    now: i64,
    tip: Tip,
    /// the new entries' journal frames, back to back
    frames: Vec<u8>,
    /// the new entries, in seq order
    entries: Vec<BatchEntry>,
    /// the new entry of each input slot (`usize::MAX`: none)
    slot_entry: Vec<usize>,
    by_request: crate::FastMap<String, usize>,
    by_subject: crate::FastMap<String, u64>,
    known_subjects: &'a crate::FastMap<String, u64>,
    unindexed: &'a UnindexedRequests,
    nodes: BatchNodes,
    /// every node the batch completed above level 0, for the store
    new_nodes: Vec<(u8, u64, Hash)>,
    old: CompactRange,
    /// request-id hashes of the batch once written
    sent: Vec<u64>,
}

fn same_content(leaf: &Leaf, e: &NewEntry) -> bool {
    let fresh = build_leaf(e, crate::leaf::Sequencing { seq: 0, recorded_at: 0, prev_hash: [0; 32], subject_prev: 0 });
    leaf.category == fresh.category
        && leaf.subject == fresh.subject
        && leaf.actor == fresh.actor
        && leaf.occurred_at == fresh.occurred_at
        && leaf.payload_sha256 == fresh.payload_sha256
        && leaf.payload_size == fresh.payload_size
        && leaf.artifacts == fresh.artifacts
}

impl Batch<'_> {
    fn sequence(&mut self, slot: usize, mut e: NewEntry) -> Result<Slot, AppendError> {
        if crate::policy::ADMIN_CATEGORIES.contains(&e.category.as_str()) {
            if !self.admin {
                return Err(PolicyError::Reserved { category: e.category.to_string() }.into());
            }
        } else {
            self.policy.check(&e)?;
        }
        let mut request_hash = None;
        if let Some(id) = &e.request_id {
            let h = crate::store::request_hash(id.as_str()); // once: both lookups and the store
            if let Some(dup) = self.dedup(id.as_str(), h, &e)? {
                return Ok(dup);
            }
            request_hash = Some(h);
        }
        let seq = self.tip.next_seq;
        let subject_prev = match &e.subject {
            None => 0,
            Some(s) => self.subject_prev(s.as_str(), seq)?,
        };
        let recorded_at = self.now.max(self.tip.last_time);
        let leaf = build_leaf(&e, Sequencing { seq, recorded_at, prev_hash: self.tip.last_hash, subject_prev });
        let leaf_bytes = Bytes::from(encode_leaf(&leaf));
        let hash = leaf_hash(&leaf_bytes);
        let rec = EntryRecord {
            leaf: leaf_bytes.clone(),
            payload: Bytes::from(e.payload.take_bytes()),
            hmac_key_id: self.hmac.id().to_owned(),
            hmac: Bytes::copy_from_slice(&self.hmac.tag(&hash)),
            redacted_by: 0,
            padding: Bytes::new(),
        };
        let (nodes, new_nodes) = (&mut self.nodes, &mut self.new_nodes);
        self.tip.range.push(hash, |l, i, h| {
            nodes.record(l, i, h);
            new_nodes.push((l, i, *h));
        });
        if let Some(s) = &e.subject {
            self.by_subject.insert(s.as_str().to_owned(), seq);
        }
        if let Some(id) = &e.request_id {
            self.by_request.insert(id.as_str().to_owned(), slot);
        }
        let body = record::encode_entry(rec);
        encode_frame(&body, &mut self.frames);
        let frame_len = (FRAME_HEADER_LEN as usize + body.len()) as u32;
        self.slot_entry[slot] = self.entries.len();
        self.entries.push(BatchEntry { frame_len, leaf, leaf_hash: hash, request_hash });
        // In place: the compact range was pushed above (cloning the Tip
        // copied it, one allocation per entry).
        (self.tip.next_seq, self.tip.last_hash, self.tip.last_time) = (seq + 1, hash, recorded_at);
        Ok(Slot::New { seq, leaf: leaf_bytes, hash })
    }

    /// `subject_prev` of a new entry `seq` of `subject`: seq + 1 of the
    /// subject's previous entry (this batch, the writer's cache, then the
    /// store), 0 for its first.
    fn subject_prev(&self, subject: &str, seq: u64) -> Result<u64, AppendError> {
        if let Some(prev) = self.by_subject.get(subject).or_else(|| self.known_subjects.get(subject)) {
            return Ok(prev + 1);
        }
        let last = self.ledger.s.store.scan(Secondary::Subject, subject, 0, seq, true, 1).map_err(storage)?;
        Ok(last.first().map_or(0, |p| p + 1))
    }

    fn dedup(&self, id: &str, h: u64, e: &NewEntry) -> Result<Option<Slot>, AppendError> {
        if let Some(&j) = self.by_request.get(id) {
            let leaf = &self.entries[self.slot_entry[j]].leaf;
            if same_content(leaf, e) {
                return Ok(Some(Slot::SameAsInBatch(j)));
            }
            return Err(AppendError::Conflict { request_id: id.to_owned(), seq: leaf.seq });
        }
        if self.unindexed.contains(h) {
            // an earlier batch may hold it: made durable and readable first
            self.ledger.s.flush_written()?;
            self.ledger.s.vis.drain();
        }
        for seq in self.ledger.s.store.request_candidates(h).map_err(storage)? {
            let stored = self.ledger.get(seq).map_err(storage)?;
            if stored.leaf.request_id != id {
                continue; // another request id with the same 64-bit hash
            }
            if same_content(&stored.leaf, e) {
                return Ok(Some(Slot::SameAsStored(seq)));
            }
            return Err(AppendError::Conflict { request_id: id.to_owned(), seq });
        }
        Ok(None)
    }
}

fn storage(e: impl std::fmt::Display) -> AppendError {
    AppendError::Storage { reason: e.to_string(), disk_full: false }
}

pub(super) fn store_failed(e: StoreError) -> AppendError {
    match e.kind {
        crate::store::StoreErrorKind::Unavailable => AppendError::Unavailable(e.to_string()),
        _ => AppendError::Storage { disk_full: e.is_disk_full(), reason: e.to_string() },
    }
}

impl Ledger {
    /// Appends one entry and returns its receipt.
    pub fn append(&self, entry: NewEntry) -> Result<Receipt, AppendError> {
        self.append_batch(vec![entry]).pop().expect("one result per entry")
    }

    /// Appends a batch with one fdatasync and one checkpoint signature;
    /// returns one result per entry, in order. Callers on several threads
    /// overlap: one batch is sequenced while an earlier one syncs.
    pub fn append_batch(&self, entries: Vec<NewEntry>) -> Vec<Result<Receipt, AppendError>> {
        self.begin_batch(entries).wait()
    }

    /// Sequences a batch and writes its frames, without waiting for them to
    /// be durable: the caller may begin the next batch while this one syncs
    /// (pipelined group commit). Nothing of it is acknowledged, visible to
    /// readers or indexed before `PendingBatch::wait` (or a later batch's
    /// sync) makes it durable.
    pub fn begin_batch(&self, entries: Vec<NewEntry>) -> PendingBatch {
        let pending = {
            let mut w = lock(&self.writer);
            let ring = read(&self.s.keyring);
            self.begin(&mut w, &ring, entries, &[], false)
        };
        PendingBatch::new(self.reader(), pending)
    }

    /// Rotates the log's keys and writes the `key_rotation` entry; the
    /// checkpoint of that batch is signed by the old and the new key
    /// (FORMAT.md §9).
    pub fn rotate_keys(&self, actor: &crate::entry::Actor, reason: &str) -> Result<(Receipt, Rotation), AppendError> {
        self.rotate(actor, reason, false, None)
    }

    /// [`rotate_keys`](Self::rotate_keys) (`staged_only`:
    /// [`rotate_to_staged_keys`](Self::rotate_to_staged_keys)) carrying out
    /// the approved dual-control request `request_seq` (its entry names it
    /// in `request_seq`).
    pub fn rotate_keys_as_requested(
        &self,
        actor: &crate::entry::Actor,
        reason: &str,
        staged_only: bool,
        request_seq: u64,
    ) -> Result<(Receipt, Rotation), AppendError> {
        self.rotate(actor, reason, staged_only, Some(request_seq))
    }

    /// Checks, writing nothing, that a rotation could be done now: with
    /// `staged_only` (a shared keyring) the keyring file must hold a staged
    /// pair (a dual-control request is refused before it is recorded).
    pub fn check_rotatable(&self, staged_only: bool) -> Result<(), AppendError> {
        if !staged_only {
            return Ok(());
        }
        let path = crate::sync::read(&self.s.keyring).path().to_owned();
        let ring = crate::keys::Keyring::load(&path).map_err(storage)?;
        if !ring.has_staged() {
            let reason = format!(
                "{} holds no staged keys: run `ledger keys stage`, copy the keyring to every node, then rotate",
                path.display()
            );
            return Err(crate::entry::ValidationError::new("keyring", reason).into());
        }
        Ok(())
    }

    /// Rotates to the staged keys only (`Keyring::stage`), after reading
    /// the keyring file again: what a log whose nodes share one keyring
    /// (the PostgreSQL store) does, since every node already holds them.
    /// Refused, changing nothing, when no pair is staged.
    pub fn rotate_to_staged_keys(
        &self,
        actor: &crate::entry::Actor,
        reason: &str,
    ) -> Result<(Receipt, Rotation), AppendError> {
        self.rotate(actor, reason, true, None)
    }

    fn rotate(
        &self,
        actor: &crate::entry::Actor,
        reason: &str,
        staged_only: bool,
        request_seq: Option<u64>,
    ) -> Result<(Receipt, Rotation), AppendError> {
        let mut w = lock(&self.writer);
        let mut ring = crate::sync::write(&self.s.keyring);
        if staged_only {
            ring.reload().map_err(storage)?;
            if !ring.has_staged() {
                let reason = format!(
                    "{} holds no staged keys: run `ledger keys stage`, copy the keyring to every node, then rotate",
                    ring.path().display()
                );
                return Err(crate::entry::ValidationError::new("keyring", reason).into());
            }
        }
        // activating staged keys can be undone without losing a key; freshly
        // generated ones stay (the entry may be on disk though not durable)
        let undo = ring.has_staged().then(|| ring.snapshot());
        let now = (self.s.opts.clock)().max(w.tip.last_time);
        let old: Vec<NoteSigner> = ring.active_signers().into_iter().cloned().collect();
        let rotation = ring.rotate(now, &self.s.opts.key_policy).map_err(storage)?;
        let mut payload = serde_json::json!({
            "rotation_event_id": format!("rotation-{}-{}", now, rotation.new_ed25519_id),
            "reason": reason,
            "new_keys": [
                {"id": rotation.new_ed25519_id, "kind": "ed25519", "vkey": rotation.new_vkey},
                {"id": rotation.new_hmac_id, "kind": "hmac-sha256", "fingerprint": rotation.new_hmac_id},
            ],
            "retired": rotation.retired,
        });
        if let Some(r) = request_seq {
            payload["request_seq"] = r.into();
        }
        let entry = super::admin::AdminEntry::new(super::KEY_ROTATION, payload);
        match self.commit_admin(&mut w, &ring, actor.as_str(), entry, &old) {
            Ok(receipt) => Ok((receipt, rotation)),
            Err(e) => {
                // the log does not record it: the keys it uses stay the active ones
                if let Some(before) = undo {
                    ring.restore(before).map_err(storage)?;
                }
                Err(e)
            }
        }
    }

    /// Sequences, writes and syncs one entry (it may be of
    /// ADMIN_CATEGORIES) as its own batch while the caller holds the writer.
    pub(super) fn commit_batch_of_one(
        &self,
        w: &mut Writer,
        ring: &Keyring,
        entry: NewEntry,
        extra: &[NoteSigner],
    ) -> Result<Receipt, AppendError> {
        let sequenced = self.begin(w, ring, vec![entry], extra, true);
        self.reader.finish(sequenced).pop().expect("one result")
    }

    /// Sequences one batch and writes its frames (not yet synced).
    fn begin(
        &self,
        w: &mut Writer,
        ring: &Keyring,
        entries: Vec<NewEntry>,
        extra: &[NoteSigner],
        admin: bool,
    ) -> Sequenced {
        if let Some(p) = self.s.vis.stopped() {
            let e = AppendError::Unavailable(LedgerError::Poisoned(p).to_string());
            return Sequenced::refused(
                entries.iter().map(|_| Slot::Failed(e.clone())).collect(),
                self.latest_checkpoint(),
            );
        }
        let n = entries.len();
        w.unindexed.prune(self.s.vis.indexed());
        let known = std::mem::take(&mut w.subjects);
        let mut unindexed = std::mem::take(&mut w.unindexed);
        let mut b = self.new_batch(w, ring, admin, n, &known, &unindexed);
        let slots: Vec<Slot> =
            entries.into_iter().enumerate().map(|(i, e)| b.sequence(i, e).unwrap_or_else(Slot::Failed)).collect();
        let latest = if b.tip.next_seq == w.tip.next_seq {
            Ok(self.latest_checkpoint())
        } else {
            self.write(w, &mut b, ring, extra)
        };
        let committed = w.tip.next_seq == b.tip.next_seq && b.nodes.start < b.tip.next_seq;
        let (by_subject, sent, start) = (std::mem::take(&mut b.by_subject), std::mem::take(&mut b.sent), b.nodes.start);
        let pending = Sequenced {
            slots,
            nodes: std::mem::replace(&mut b.nodes, BatchNodes { start: 0, levels: Vec::new() }),
            old: std::mem::take(&mut b.old),
            latest,
            end: if committed { w.tip.next_seq } else { 0 },
        };
        drop(b);
        let mut known = known;
        if committed {
            unindexed.add(w.tip.next_seq, sent);
            if known.len() + by_subject.len() > super::SUBJECT_CACHE {
                // a miss asks the store: it must serve every batch before the next one
                let _ = self.s.flush_written();
                self.s.vis.reach(start, std::time::Duration::from_secs(60));
                known.clear();
            }
            known.extend(by_subject);
        }
        (w.subjects, w.unindexed) = (known, unindexed);
        pending
    }

    /// An empty batch that starts at the writer's tip.
    fn new_batch<'a>(
        &'a self,
        w: &Writer,
        ring: &'a Keyring,
        admin: bool,
        n: usize,
        known: &'a crate::FastMap<String, u64>,
        unindexed: &'a UnindexedRequests,
    ) -> Batch<'a> {
        Batch {
            ledger: self,
            admin,
            policy: self.policy(),
            hmac: ring.active_hmac(),
            now: (self.s.opts.clock)(),
            tip: w.tip.clone(),
            frames: Vec::with_capacity(n * 640),
            entries: Vec::with_capacity(n),
            slot_entry: vec![usize::MAX; n],
            by_request: crate::FastMap::default(),
            by_subject: crate::FastMap::default(),
            known_subjects: known,
            unindexed,
            nodes: BatchNodes { start: w.tip.next_seq, levels: Vec::new() },
            new_nodes: Vec::with_capacity(n + 8),
            old: w.tip.range.clone(),
            sent: Vec::new(),
        }
    }

    /// The single write of a batch: its records (and a history
    /// checkpoint) handed to the store and queued for the group sync, which
    /// publishes it after the store's sync. On a write failure nothing
    /// changes.
    fn write(
        &self,
        w: &mut Writer,
        b: &mut Batch<'_>,
        ring: &Keyring,
        extra: &[NoteSigner],
    ) -> Result<Arc<SignedCheckpoint>, AppendError> {
        let checkpoint =
            Checkpoint { origin: self.s.opts.origin.clone(), size: b.tip.next_seq, root: b.tip.range.root() };
        let note = checkpoint.sign(&Self::signers_with(ring, extra));
        let mut history = None;
        if b.tip.next_seq - b.tip.last_history >= self.s.opts.checkpoint_interval {
            encode_frame(&record::encode_checkpoint(&note), &mut b.frames);
            history = Some(note.clone());
            b.tip.last_history = checkpoint.size;
        }
        let latest = Arc::new(SignedCheckpoint { checkpoint, note });
        let sent = b.entries.iter().filter_map(|e| e.request_hash).collect();
        let batch = WriteBatch {
            first_seq: b.nodes.start,
            frames: std::mem::take(&mut b.frames),
            entries: std::mem::take(&mut b.entries),
            nodes: std::mem::take(&mut b.new_nodes),
            history,
            checkpoint: latest.clone(),
            replicated: false,
        };
        let store = &mut w.store;
        self.s.group.append(b.tip.next_seq, latest.clone(), || store.write(batch).map_err(store_failed))?;
        w.tip = b.tip.clone();
        b.sent = sent;
        if w.store.wants_durable_point() && self.s.flush_written().is_ok() {
            // e.g. a segment is sealed only once the batches in it are durable
            if let Err(e) = w.store.durable_point() {
                self.s.vis.stop(format!("the store failed at a durable point: {e}"));
            }
        }
        Ok(latest)
    }
}

/// A sequenced, written batch: what its receipts are built from once it is
/// durable.
pub(super) struct Sequenced {
    slots: Vec<Slot>,
    nodes: BatchNodes,
    old: CompactRange,
    latest: Result<Arc<SignedCheckpoint>, AppendError>,
    /// entries in the log once it is durable; 0 when it wrote nothing
    end: u64,
}

impl Sequenced {
    fn refused(slots: Vec<Slot>, latest: Arc<SignedCheckpoint>) -> Self {
        Self {
            slots,
            nodes: BatchNodes { start: 0, levels: Vec::new() },
            old: CompactRange::default(),
            latest: Ok(latest),
            end: 0,
        }
    }

    /// Entries in the log once this batch is durable (0: it wrote nothing).
    pub fn end(&self) -> u64 {
        self.end
    }
}

impl LedgerReader {
    /// Waits for the sync that covers a written batch, then builds its
    /// receipts (or its failures).
    pub(super) fn finish(&self, p: Sequenced) -> Vec<Result<Receipt, AppendError>> {
        let latest = p.latest.and_then(|cp| self.s.sync_through(p.end).map(|()| cp));
        match latest {
            Ok(latest) => self.receipts(p.slots, &p.nodes, &p.old, latest),
            Err(e) => p.slots.into_iter().map(|s| Err(if let Slot::Failed(f) = s { f } else { e.clone() })).collect(),
        }
    }

    fn receipts(
        &self,
        slots: Vec<Slot>,
        nodes: &BatchNodes,
        old: &CompactRange,
        latest: Arc<SignedCheckpoint>,
    ) -> Vec<Result<Receipt, AppendError>> {
        if slots.iter().any(|s| matches!(s, Slot::SameAsStored(_))) {
            self.s.vis.drain(); // a stored entry's proof needs the index up to `latest`
        }
        let src = BatchSource { nodes, old, store: StoreNodes(self.s.store.as_ref()) };
        let size = latest.checkpoint.size;
        let mut out: Vec<Result<Receipt, AppendError>> = Vec::with_capacity(slots.len());
        for slot in slots {
            let r = match slot {
                Slot::Failed(e) => Err(e),
                Slot::New { seq, leaf, hash } => inclusion_proof(&src, seq, size)
                    .map(|proof| Receipt {
                        seq,
                        leaf_hash: hash,
                        leaf,
                        proof,
                        checkpoint: latest.clone(),
                        duplicate: false,
                    })
                    .map_err(storage),
                Slot::SameAsInBatch(j) => match &out[j] {
                    Ok(r) => Ok(Receipt { duplicate: true, ..r.clone() }),
                    Err(e) => Err(e.clone()),
                },
                Slot::SameAsStored(seq) => {
                    self.receipt_at(seq, &latest).map(|r| Receipt { duplicate: true, ..r }).map_err(storage)
                }
            };
            out.push(r);
        }
        out
    }
}
