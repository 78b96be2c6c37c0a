//! The postings tail (FORMAT.md §10.2): per secondary-index value, the seqs
//! after its last list in sled, held in memory until `READY_VALUES` values
//! hold a full list (`POSTINGS_MAX` seqs) or the index writes the whole tail
//! out (every `FLUSH_ENTRIES` entries, and on close); then they are written
//! as new lists.
//!
//! Owns: the in-memory lists and which of them are ready to write. Must not:
//! touch sled (the index writes what `ready` returns, then calls `written`),
//! or drop a seq before it was written (readers look here first, then in
//! sled).

use super::Secondary;

/// Most seqs in one postings list.
pub(super) const POSTINGS_MAX: usize = 128;
/// Entries indexed at most between two writes of the whole tail (which
/// move sled's `indexed_through`, and so bound the catch-up after a crash).
pub(super) const FLUSH_ENTRIES: u64 = 1 << 16;

/// Values holding a full list before the full lists are written (or the
/// whole tail, whichever comes first): each write to sled costs a log write
/// on its I/O threads, so lists go in groups rather than one by one.
pub(super) const READY_VALUES: usize = 32;

/// A secondary index and one of its values.
pub(super) type Key = (Secondary, String);

#[derive(Default)]
struct Held {
    /// seqs not yet in sled, ascending
    seqs: Vec<u64>,
    /// the last seq this value has, held or written (`None`: not known to have any)
    last: Option<u64>,
}

/// The unwritten postings of every value.
#[derive(Default)]
pub(super) struct Tail {
    values: crate::FastMap<Key, Held>,
    held: usize,
    /// values holding a full list (so `ready` need not look at every value)
    full: Vec<Key>,
}

impl Tail {
    /// Whether `key` has been seen since the tail was last emptied.
    pub fn knows(&self, key: &Key) -> bool {
        self.values.contains_key(key)
    }

    /// Adds ascending seqs of `key`; seqs at or below its last one (held,
    /// or `written`: the last in sled, for a value the tail does not know)
    /// are ignored, so a replayed batch adds nothing.
    pub fn add(&mut self, key: &Key, seqs: &[u64], written: Option<u64>) {
        let held = match self.values.get_mut(key) {
            Some(h) => h,
            None => self.values.entry(key.clone()).or_insert(Held { seqs: Vec::new(), last: written }),
        };
        let before = held.seqs.len();
        for &s in seqs {
            if held.last.is_none_or(|l| s > l) {
                held.seqs.push(s);
                held.last = Some(s);
                self.held += 1;
            }
        }
        if before < POSTINGS_MAX && held.seqs.len() >= POSTINGS_MAX {
            self.full.push(key.clone());
        }
    }

    /// The lists to write now: every full one, or (`all`) every held seq.
    /// Each is a copy of the value's first seqs; `written` removes them
    /// afterwards.
    pub fn ready(&self, all: bool) -> Vec<(Key, Vec<u64>)> {
        let mut out = Vec::new();
        let mut add = |key: &Key, held: &Held| {
            for chunk in held.seqs.chunks(POSTINGS_MAX).filter(|c| all || c.len() == POSTINGS_MAX) {
                out.push((key.clone(), chunk.to_vec()));
            }
        };
        if all {
            self.values.iter().for_each(|(key, held)| add(key, held));
        } else {
            self.full.iter().for_each(|key| add(key, &self.values[key]));
        }
        out
    }

    /// Drops what `ready` returned, once it is in sled (every full list of
    /// a value, so none holds a full list afterwards); forgets the values
    /// that hold nothing when the tail is empty.
    pub fn written(&mut self, lists: &[(Key, Vec<u64>)]) {
        self.full.clear();
        for (key, seqs) in lists {
            if let Some(h) = self.values.get_mut(key) {
                debug_assert!(h.seqs.starts_with(seqs), "written lists are a value's first seqs");
                h.seqs.drain(..seqs.len());
                self.held -= seqs.len();
            }
        }
        if self.held == 0 {
            self.values.clear();
        }
    }

    /// How many values hold a full list.
    pub fn full_values(&self) -> usize {
        self.full.len()
    }

    /// True when every seq added has been written.
    pub fn is_empty(&self) -> bool {
        self.held == 0
    }

    /// The held seqs of `key` (a copy).
    pub fn seqs(&self, key: &Key) -> Vec<u64> {
        self.values.get(key).map(|h| h.seqs.clone()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(v: &str) -> Key {
        (Secondary::Subject, v.to_owned())
    }

    #[test]
    fn full_lists_are_ready_first_and_the_rest_on_a_flush() {
        let mut t = Tail::default();
        let seqs: Vec<u64> = (0..300).collect();
        t.add(&key("a"), &seqs, None);
        t.add(&key("b"), &[5, 7], None);
        let ready = t.ready(false);
        assert_eq!(ready.len(), 2, "two full lists of a, none of b");
        assert!(ready.iter().all(|(k, s)| k == &key("a") && s.len() == POSTINGS_MAX));
        t.written(&ready);
        assert_eq!(t.seqs(&key("a")), (256..300).collect::<Vec<u64>>());
        let rest = t.ready(true);
        assert_eq!(rest.len(), 2);
        t.written(&rest);
        assert!(t.is_empty());
        assert!(!t.knows(&key("a")), "an empty tail forgets its values");
    }

    /// A value that fills a list again after its full lists were written
    /// is ready again; one that filled none is not.
    #[test]
    fn a_value_is_ready_each_time_it_fills_a_list() {
        let mut t = Tail::default();
        t.add(&key("a"), &(0..100).collect::<Vec<u64>>(), None);
        t.add(&key("b"), &[1], None);
        assert!(t.ready(false).is_empty());
        t.add(&key("a"), &(100..130).collect::<Vec<u64>>(), None);
        let ready = t.ready(false);
        assert_eq!(ready, vec![(key("a"), (0..128).collect::<Vec<u64>>())]);
        t.written(&ready);
        assert!(t.ready(false).is_empty(), "a holds 2 seqs");
        t.add(&key("a"), &(130..400).collect::<Vec<u64>>(), None);
        let ready = t.ready(false);
        assert_eq!(ready.len(), 2, "272 held: two full lists");
        t.written(&ready);
        assert_eq!(t.seqs(&key("a")), (384..400).collect::<Vec<u64>>());
        assert_eq!(t.seqs(&key("b")), vec![1]);
    }

    #[test]
    fn seqs_at_or_below_the_last_are_ignored() {
        let mut t = Tail::default();
        t.add(&key("a"), &[3, 4, 5], Some(4));
        assert_eq!(t.seqs(&key("a")), vec![5]);
        t.add(&key("a"), &[5, 6], None);
        assert_eq!(t.seqs(&key("a")), vec![5, 6]);
    }
}
