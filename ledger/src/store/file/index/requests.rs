//! The request-id index (FORMAT.md §10.3): flat open-addressing hash tables
//! of 16-byte records `h (u64le) ‖ seq + 1 (u64le)`, where
//! `h = u64le(BLAKE3(request_id)[0..8])`. No sled keys: their count and
//! rewrite cost grew with the log.
//!
//! Level `k` is the file `requests-<k>.tbl`: a 4,096-byte header, then
//! `2^(16+k)` slots plus 1,024 overflow slots (probes run past the end
//! instead of wrapping). A record's home slot is the top bits of `h`; linear
//! probing. Only the newest level takes inserts; once it is half full, the
//! next (twice as large) starts. A lookup probes every level and returns the
//! seqs whose `h` matches; the caller confirms each against the entry's leaf
//! (hash collisions are possible, wrong answers are not).
//!
//! A level that is no longer the newest is sealed: it never changes again
//! and gets a Bloom filter (`filter`) on disk. The newest level's filter is
//! kept in memory (built in the background on open), so a lookup of a new
//! request id usually reads no level at all; with it the newest level's used
//! slots, so inserting a new record is one 16-byte write and no read.
//!
//! Durability: inserts are written at once and fdatasynced about once a
//! second; after each sync the newest header's `through` says which entries'
//! records the sync covered (that header write is itself durable at the next
//! sync, so it never claims more than is on disk). `Index::open` starts
//! catch-up no later than that `through`; a replayed record already in the
//! newest level is skipped.
//!
//! Owns: the table files. Must not: claim a `through` before its records
//! are synced.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use super::filter::Filter;
use super::{IndexError, io};
use crate::sync;

/// Bytes per record.
const RECORD: u64 = 16;
/// Bytes of the header (the slots follow it; files are whole blocks of it).
const BLOCK: u64 = 4096;
/// Slots per block.
const BLOCK_SLOTS: u64 = BLOCK / RECORD;
/// Slots of level 0 are `2^FIRST_BITS`.
const FIRST_BITS: u32 = 16;
/// Slots after the last home slot that probes may use.
const OVERFLOW_SLOTS: u64 = 1024;
/// Slots a lookup reads at a time.
const PROBE_SLOTS: u64 = 16;
/// The header's magic.
const MAGIC: &[u8; 8] = b"LRQTBL01";

pub use crate::store::request_hash as hash;

/// One table file.
struct Level {
    file: File,
    path: PathBuf,
    bits: u32,
    /// records in it
    count: u64,
    /// a Bloom filter of its hashes: a sealed level's from its `.flt` file;
    /// the newest level's kept in memory (`None` while it is being built)
    filter: Option<Filter>,
    /// the newest level's used slots, kept with its filter (built with it;
    /// `None` for a sealed level): a record its filter lacks is written
    /// straight into its first free slot, without reading its window
    used: Option<Slots>,
    /// (hash, slot) of records inserted while the newest level's filter is
    /// being built
    building: Option<Vec<(u64, u64)>>,
}

/// The home slot of `h` in a level of `2^bits` home slots: its top bits.
fn home(h: u64, bits: u32) -> u64 {
    h >> (64 - bits)
}

fn overflow() -> IndexError {
    IndexError::Decode { tree: "request", reason: "request table overflow".into() }
}

/// One bit per slot of a level: set when the slot holds a record.
struct Slots(Vec<u64>);

impl Slots {
    fn new(slots: u64) -> Self {
        Self(vec![0; slots.div_ceil(64) as usize])
    }

    fn get(&self, slot: u64) -> bool {
        self.0[(slot / 64) as usize] & (1 << (slot % 64)) != 0
    }

    fn set(&mut self, slot: u64) {
        self.0[(slot / 64) as usize] |= 1 << (slot % 64);
    }
}

impl Level {
    fn slots(&self) -> u64 {
        (1u64 << self.bits) + OVERFLOW_SLOTS
    }

    fn home(&self, h: u64) -> u64 {
        home(h, self.bits)
    }

    fn create(dir: &Path, k: u32, through: u64) -> Result<Self, IndexError> {
        let path = dir.join(format!("requests-{k:02}.tbl"));
        let file =
            OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&path).map_err(io(&path))?;
        let bits = FIRST_BITS + k;
        let filter = Some(Filter::with_capacity(1u64 << (bits - 1)));
        let used = Some(Slots::new((1u64 << bits) + OVERFLOW_SLOTS));
        let level = Self { file, path, bits, count: 0, filter, used, building: None };
        let blocks = level.slots().div_ceil(BLOCK_SLOTS);
        level.file.set_len(BLOCK + blocks * BLOCK).map_err(io(&level.path))?;
        level.write_header(through)?;
        Ok(level)
    }

    fn open(path: PathBuf) -> Result<(Self, u64), IndexError> {
        let file = OpenOptions::new().read(true).write(true).open(&path).map_err(io(&path))?;
        let bad =
            |reason: String| IndexError::Decode { tree: "request", reason: format!("{}: {reason}", path.display()) };
        let mut h = [0u8; 32];
        match file.read_exact_at(&mut h, 0) {
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return Err(bad("shorter than its header".into()));
            }
            r => r.map_err(io(&path))?,
        }
        if &h[0..8] != MAGIC {
            return Err(bad("not a request table".into()));
        }
        let word = |i: usize| u64::from_le_bytes(h[i..i + 8].try_into().expect("8 bytes"));
        let (bits, count, through) = (word(8) as u32, word(16), word(24));
        if !(FIRST_BITS..48).contains(&bits) {
            return Err(bad(format!("{bits} slot bits")));
        }
        let want = BLOCK + ((1u64 << bits) + OVERFLOW_SLOTS).div_ceil(BLOCK_SLOTS) * BLOCK;
        let len = file.metadata().map_err(io(&path))?.len();
        if len < want {
            return Err(bad(format!("{len} bytes, expected {want}")));
        }
        Ok((Self { file, path, bits, count, filter: None, used: None, building: None }, through))
    }

    fn write_header(&self, through: u64) -> Result<(), IndexError> {
        let mut h = Vec::with_capacity(32);
        h.extend_from_slice(MAGIC);
        for w in [u64::from(self.bits), self.count, through] {
            h.extend_from_slice(&w.to_le_bytes());
        }
        self.file.write_all_at(&h, 0).map_err(io(&self.path))
    }

    /// Gives a sealed level its filter: the one kept while it was the
    /// newest (saved), else loaded from `requests-<KK>.flt`, else built from
    /// the level (reading it once) and saved.
    fn seal(&mut self) -> Result<(), IndexError> {
        let path = self.path.with_extension("flt");
        (self.building, self.used) = (None, None);
        if let Some(f) = &self.filter {
            return f.save(&path).map_err(io(&path));
        }
        if let Some(f) = Filter::load(&path) {
            self.filter = Some(f);
            return Ok(());
        }
        let (f, _) = scan_level(&self.file, &self.path, self.bits, false)?;
        f.save(&path).map_err(io(&path))?;
        self.filter = Some(f);
        Ok(())
    }

    /// Notes a record put into `slot` in the filter and the used slots (or,
    /// while those are being built, for them).
    fn note(&mut self, h: u64, slot: u64) {
        if let Some(f) = &mut self.filter {
            f.add(h);
        }
        if let Some(u) = &mut self.used {
            u.set(slot);
        }
        if let Some(b) = &mut self.building {
            b.push((h, slot));
        }
    }

    /// Seqs recorded under `h`: reads `PROBE_SLOTS` slots at a time from
    /// the home slot (probe runs are short at half load).
    fn lookup(&self, h: u64, out: &mut Vec<u64>) -> Result<(), IndexError> {
        if self.filter.as_ref().is_some_and(|f| !f.may_contain(h)) {
            return Ok(());
        }
        let mut buf = [0u8; (PROBE_SLOTS * RECORD) as usize];
        let mut slot = self.home(h);
        while slot < self.slots() {
            let n = PROBE_SLOTS.min(self.slots() - slot);
            let bytes = &mut buf[..(n * RECORD) as usize];
            self.file.read_exact_at(bytes, BLOCK + slot * RECORD).map_err(io(&self.path))?;
            for i in 0..n {
                let (rh, seq1) = record_at(bytes, i);
                if seq1 == 0 {
                    return Ok(());
                }
                if rh == h {
                    out.push(seq1 - 1);
                }
            }
            slot += n;
        }
        Ok(())
    }

    /// Places records (skipping one already there), in memory only. A
    /// record whose hash the level's filter lacks is new: it gets its first
    /// free slot (known from `used`) and is returned, sorted by slot, for
    /// `write_slots` (one 16-byte write each). The others (a replayed batch,
    /// a filter's false positive, a level whose filter is still being built)
    /// are returned for `insert_reading`, which goes after those writes.
    fn place(&mut self, records: &[(u64, u64)]) -> Result<Placed, IndexError> {
        let (slots, bits) = (self.slots(), self.bits);
        let (Some(filter), Some(used)) = (&self.filter, &mut self.used) else {
            return Ok(Placed { fresh: Vec::new(), others: records.to_vec() });
        };
        let (mut fresh, mut others) = (Vec::with_capacity(records.len()), Vec::new());
        for &(h, seq) in records {
            if filter.may_contain(h) {
                others.push((h, seq));
                continue;
            }
            let mut slot = home(h, bits);
            while slot < slots && used.get(slot) {
                slot += 1;
            }
            if slot >= slots {
                return Err(overflow());
            }
            used.set(slot);
            fresh.push((slot, h, seq));
        }
        fresh.sort_unstable();
        self.count += fresh.len() as u64;
        for &(slot, h, _) in &fresh {
            self.note(h, slot);
        }
        Ok(Placed { fresh, others })
    }

    /// Writes records into their slots (sorted), a run of adjacent slots at
    /// a time.
    fn write_slots(&self, sorted: &[(u64, u64, u64)]) -> Result<(), IndexError> {
        let mut buf = Vec::with_capacity(RECORD as usize * 4);
        let mut i = 0;
        while i < sorted.len() {
            let first = sorted[i].0;
            buf.clear();
            while i < sorted.len() && sorted[i].0 == first + (buf.len() as u64 / RECORD) {
                let (_, h, seq) = sorted[i];
                buf.extend_from_slice(&h.to_le_bytes());
                buf.extend_from_slice(&(seq + 1).to_le_bytes());
                i += 1;
            }
            self.file.write_all_at(&buf, BLOCK + first * RECORD).map_err(io(&self.path))?;
        }
        Ok(())
    }

    /// Inserts records by reading their probe windows (skipping one already
    /// there); one read per window touched and one write per window that
    /// took a record (`PROBE_SLOTS` slots, 256 bytes).
    fn insert_reading(&mut self, records: &[(u64, u64)]) -> Result<(), IndexError> {
        const WINDOW: usize = (PROBE_SLOTS * RECORD) as usize;
        // window → (its slots, whether a record was put in it)
        let mut windows: crate::FastMap<u64, ([u8; WINDOW], bool)> = crate::FastMap::default();
        let mut pending = Vec::new();
        for &(h, seq) in records {
            let mut slot = self.home(h);
            loop {
                if slot >= self.slots() {
                    return Err(overflow());
                }
                let w = slot / PROBE_SLOTS;
                let (buf, dirty) = match windows.entry(w) {
                    std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                    std::collections::hash_map::Entry::Vacant(v) => {
                        let mut buf = [0u8; WINDOW];
                        self.file.read_exact_at(&mut buf, BLOCK + w * WINDOW as u64).map_err(io(&self.path))?;
                        v.insert((buf, false))
                    }
                };
                let i = slot % PROBE_SLOTS;
                let (rh, seq1) = record_at(buf, i);
                if seq1 == 0 {
                    let at = (i * RECORD) as usize;
                    buf[at..at + 8].copy_from_slice(&h.to_le_bytes());
                    buf[at + 8..at + 16].copy_from_slice(&(seq + 1).to_le_bytes());
                    *dirty = true;
                    self.count += 1;
                    pending.push((h, slot));
                    break;
                }
                if (rh, seq1) == (h, seq + 1) {
                    break; // a replayed batch
                }
                slot += 1;
            }
        }
        let mut dirty: Vec<_> = windows.into_iter().filter(|(_, (_, d))| *d).map(|(w, (buf, _))| (w, buf)).collect();
        dirty.sort_unstable_by_key(|(w, _)| *w);
        for (w, buf) in dirty {
            self.file.write_all_at(&buf, BLOCK + w * WINDOW as u64).map_err(io(&self.path))?;
        }
        for (h, slot) in pending {
            self.note(h, slot);
        }
        Ok(())
    }
}

/// Builds the filter of a level (and, for the newest, its used slots) by
/// reading all of its slots once.
fn scan_level(file: &File, path: &Path, bits: u32, slots: bool) -> Result<(Filter, Option<Slots>), IndexError> {
    let mut f = Filter::with_capacity(1u64 << (bits - 1));
    let total_slots = (1u64 << bits) + OVERFLOW_SLOTS;
    let mut used = slots.then(|| Slots::new(total_slots));
    let mut buf = vec![0u8; 1 << 20];
    let total = total_slots * RECORD;
    let mut at = 0;
    while at < total {
        let n = (total - at).min(buf.len() as u64) as usize;
        file.read_exact_at(&mut buf[..n], BLOCK + at).map_err(io(path))?;
        for i in 0..(n as u64 / RECORD) {
            let (h, seq1) = record_at(&buf, i);
            if seq1 != 0 {
                f.add(h);
                if let Some(u) = &mut used {
                    u.set(at / RECORD + i);
                }
            }
        }
        at += n as u64;
    }
    Ok((f, used))
}

/// Builds the newest level's filter on a thread of its own (a large level
/// takes a while to read; lookups read the level until it is there). The
/// level notes what is inserted meanwhile, and those hashes are added last.
fn build_newest_filter(levels: &Arc<RwLock<Vec<Level>>>) -> Result<(), IndexError> {
    let (k, file, path, bits) = {
        let mut lv = sync::write(levels);
        let k = lv.len() - 1;
        let newest = &mut lv[k];
        if newest.filter.is_some() {
            return Ok(()); // created empty: its filter is complete
        }
        let file = newest.file.try_clone().map_err(io(&newest.path))?;
        newest.building = Some(Vec::new());
        (k, file, newest.path.clone(), newest.bits)
    };
    let levels = Arc::clone(levels);
    let thread_path = path.clone();
    let build = move || {
        let built = scan_level(&file, &path, bits, true);
        finish_filter(&mut sync::write(&levels)[k], built);
    };
    std::thread::Builder::new().name("ledger-reqfilter".into()).spawn(build).map_err(io(&thread_path))?;
    Ok(())
}

/// Installs a filter and used slots built from the level's file, plus what
/// was inserted while it was read; a level sealed meanwhile has its filter
/// already, and an unreadable one keeps none (lookups and inserts read the
/// level).
fn finish_filter(level: &mut Level, built: Result<(Filter, Option<Slots>), IndexError>) {
    match (built, level.building.take()) {
        (Ok((mut f, Some(mut used))), Some(meanwhile)) if level.filter.is_none() => {
            for (h, slot) in meanwhile {
                f.add(h);
                used.set(slot);
            }
            (level.filter, level.used) = (Some(f), Some(used));
        }
        _ => {}
    }
}

fn record_at(block: &[u8], i: u64) -> (u64, u64) {
    let at = (i * RECORD) as usize;
    let word = |o: usize| u64::from_le_bytes(block[o..o + 8].try_into().expect("8 bytes"));
    (word(at), word(at + 8))
}

/// Records placed by `Level::place`: (slot, hash, seq) to write, and those
/// that need `insert_reading`.
struct Placed {
    fresh: Vec<(u64, u64, u64)>,
    others: Vec<(u64, u64)>,
}

/// The levels of one index.
pub(super) struct RequestIndex {
    dir: PathBuf,
    levels: Arc<RwLock<Vec<Level>>>,
    sync: std::sync::Mutex<SyncState>,
}

/// What is durable: inserts are written at once but synced at most every
/// `SYNC_EVERY`; the newest header's `through` names what a sync covered.
struct SyncState {
    /// entries whose records are durable (the newest header says so, or will after the next sync)
    synced: u64,
    /// entries whose records are written
    written: u64,
    /// levels written since the last sync
    dirty: Vec<usize>,
    last: std::time::Instant,
}

/// How often the tables are fdatasynced (and their `through` moved).
const SYNC_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

impl RequestIndex {
    /// Opens the tables in `dir` (creating level 0 when there is none) and
    /// returns them with the entries their records are durable for.
    pub fn open(dir: &Path) -> Result<(Self, u64), IndexError> {
        let (mut levels, mut through) = (Vec::new(), 0);
        for k in 0.. {
            let path = dir.join(format!("requests-{k:02}.tbl"));
            if !path.exists() {
                break;
            }
            let (level, t) = Level::open(path)?;
            levels.push(level);
            through = t;
        }
        if levels.is_empty() {
            levels.push(Level::create(dir, 0, 0)?);
        }
        let sealed = levels.len() - 1;
        for level in &mut levels[..sealed] {
            level.seal()?;
        }
        let levels = Arc::new(RwLock::new(levels));
        build_newest_filter(&levels)?;
        let sync = SyncState { synced: through, written: through, dirty: Vec::new(), last: std::time::Instant::now() };
        Ok((Self { dir: dir.to_owned(), levels, sync: std::sync::Mutex::new(sync) }, through))
    }

    /// The seqs that may hold `h`, ascending.
    pub fn lookup(&self, h: u64) -> Result<Vec<u64>, IndexError> {
        let mut out = Vec::new();
        for level in sync::read(&self.levels).iter() {
            level.lookup(h, &mut out)?;
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    /// Adds the records (`(h, seq)`; a replayed one is skipped) of the
    /// entries before `through`, starting a new level when the newest would
    /// be over half full; syncs when the last sync is `SYNC_EVERY` old.
    pub fn insert(&self, records: &[(u64, u64)], through: u64) -> Result<(), IndexError> {
        let mut st = sync::lock(&self.sync);
        if !records.is_empty() {
            let mut levels = sync::write(&self.levels);
            loop {
                let newest = levels.last().expect("a level");
                if (newest.count + records.len() as u64) * 2 <= 1u64 << newest.bits {
                    break;
                }
                let k = levels.len() as u32;
                levels.last_mut().expect("a level").seal()?;
                levels.push(Level::create(&self.dir, k, st.synced)?);
            }
            let placed = levels.last_mut().expect("a level").place(records)?;
            let newest = levels.len() - 1;
            if !st.dirty.contains(&newest) {
                st.dirty.push(newest);
            }
            // The writes go under the read lock: lookups (the writer's
            // duplicate checks) do not wait for them. A lookup of a record
            // being written may miss it; the writer never asks before the
            // index thread applied its batch (it drains the index first).
            drop(levels);
            sync::read(&self.levels)[newest].write_slots(&placed.fresh)?;
            if !placed.others.is_empty() {
                sync::write(&self.levels)[newest].insert_reading(&placed.others)?;
            }
        }
        st.written = st.written.max(through);
        if st.last.elapsed() >= SYNC_EVERY {
            self.sync_locked(&mut st)?;
        }
        Ok(())
    }

    /// fdatasyncs what was written, then records (in the newest header,
    /// durable at the next sync) that it is durable.
    /// At a close, the new header is synced too.
    pub fn sync(&self) -> Result<(), IndexError> {
        let mut st = sync::lock(&self.sync);
        self.sync_locked(&mut st)?;
        let levels = sync::read(&self.levels);
        let newest = levels.last().expect("a level");
        newest.file.sync_data().map_err(io(&newest.path))
    }

    fn sync_locked(&self, st: &mut SyncState) -> Result<(), IndexError> {
        let levels = sync::read(&self.levels);
        let newest = levels.len() - 1;
        if !st.dirty.contains(&newest) {
            st.dirty.push(newest);
        }
        for &k in &st.dirty {
            levels[k].file.sync_data().map_err(io(&levels[k].path))?;
        }
        st.dirty.clear();
        st.synced = st.written;
        levels[newest].write_header(st.synced)?;
        st.last = std::time::Instant::now();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_insert_idempotently_grow_levels_and_look_up_by_hash() {
        let dir = tempfile::tempdir().unwrap();
        let (t, through) = RequestIndex::open(dir.path()).unwrap();
        assert_eq!(through, 0);
        t.insert(&[(7, 1), (9, 4)], 5).unwrap();
        t.insert(&[(9, 4), (7, 8)], 9).unwrap();
        assert_eq!(t.lookup(7).unwrap(), vec![1, 8]);
        assert_eq!(t.lookup(9).unwrap(), vec![4], "the replayed record is not added twice");
        assert!(t.lookup(5).unwrap().is_empty());
        // Enough records for three levels; all found after a reopen.
        let many: Vec<(u64, u64)> = (10..100_010u64).map(|s| (hash(&format!("req-{s}")), s)).collect();
        for chunk in many.chunks(4096) {
            t.insert(chunk, chunk.last().unwrap().1 + 1).unwrap();
        }
        t.sync().unwrap();
        drop(t);
        let (t, through) = RequestIndex::open(dir.path()).unwrap();
        assert_eq!(through, 100_010, "the header names what the sync covered");
        assert!(t.levels.read().unwrap().len() >= 3);
        assert!(dir.path().join("requests-00.flt").exists(), "sealed levels have filters");
        for &(h, s) in &many {
            assert!(t.lookup(h).unwrap().contains(&s), "record of seq {s}");
        }
        assert_eq!(t.lookup(7).unwrap(), vec![1, 8]);
        assert_eq!(hash("req-1"), hash("req-1"));
        // The newest level's filter is built in the background after a reopen.
        let waited = std::time::Instant::now();
        while t.levels.read().unwrap().last().unwrap().filter.is_none() {
            assert!(waited.elapsed().as_secs() < 30, "the newest level's filter is never built");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        for &(h, s) in many.iter().step_by(997) {
            assert!(t.lookup(h).unwrap().contains(&s));
        }
        // With the filter the used slots are known: a batch of new records
        // (written without reading) and replayed ones (read, skipped).
        let newer: Vec<(u64, u64)> = (100_010..120_010u64).map(|s| (hash(&format!("req-{s}")), s)).collect();
        let mut mixed = many[many.len() - 500..].to_vec();
        mixed.extend_from_slice(&newer);
        let count = t.levels.read().unwrap().last().unwrap().count;
        t.insert(&mixed, 120_010).unwrap();
        assert_eq!(t.levels.read().unwrap().last().unwrap().count, count + newer.len() as u64);
        for &(h, s) in many.iter().chain(&newer) {
            assert_eq!(t.lookup(h).unwrap(), vec![s], "record of seq {s}");
        }
    }

    /// Records inserted while the newest level's filter is read from its
    /// file are added to it: the filter never says "absent" for a record.
    #[test]
    fn records_inserted_while_the_newest_filter_is_built_are_in_it() {
        let dir = tempfile::tempdir().unwrap();
        let (t, _) = RequestIndex::open(dir.path()).unwrap();
        let early: Vec<(u64, u64)> = (0..500u64).map(|s| (hash(&format!("early-{s}")), s)).collect();
        t.insert(&early, 500).unwrap();
        let late: Vec<(u64, u64)> = (500..1000u64).map(|s| (hash(&format!("late-{s}")), s)).collect();
        {
            let mut lv = t.levels.write().unwrap();
            let newest = lv.last_mut().unwrap();
            (newest.filter, newest.used, newest.building) = (None, None, Some(Vec::new()));
            let read = scan_level(&newest.file, &newest.path, newest.bits, true);
            newest.insert_reading(&late).unwrap(); // after the file was read (no filter: every record reads its window)
            finish_filter(newest, read);
            let f = newest.filter.as_ref().expect("installed");
            assert!(early.iter().chain(&late).all(|&(h, _)| f.may_contain(h)));
            assert!(newest.building.is_none());
        }
        // The used slots came back too: new records written straight into
        // "free" slots overwrite none of those.
        let more: Vec<(u64, u64)> = (1000..3000u64).map(|s| (hash(&format!("more-{s}")), s)).collect();
        t.insert(&more, 3000).unwrap();
        for &(h, s) in early.iter().chain(&late).chain(&more) {
            assert_eq!(t.lookup(h).unwrap(), vec![s]);
        }
    }

    #[test]
    fn probe_runs_cross_windows_within_a_batch_and_into_the_overflow_slots() {
        let dir = tempfile::tempdir().unwrap();
        let (t, _) = RequestIndex::open(dir.path()).unwrap();
        // 40 hashes with one home slot (the top bits), in the middle of the
        // table and in its last slot: each run spans three 16-slot windows,
        // the second one past the last home slot.
        for top in [1u64 << 63 | 5, u64::MAX] {
            let run: Vec<(u64, u64)> = (0..40u64).map(|i| (top - i, 1000 + i)).collect();
            t.insert(&run[..25], 2000).unwrap();
            t.insert(&run[20..], 2000).unwrap();
            for &(h, s) in &run {
                assert_eq!(t.lookup(h).unwrap(), vec![s], "hash {h:#x}");
            }
        }
    }
}
