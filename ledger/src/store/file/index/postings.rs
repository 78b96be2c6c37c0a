//! Postings lists of the secondary indexes (FORMAT.md §10): per value, one
//! sled key per batch, `value ‖ 0x00 ‖ last seq (BE)`, whose value is the
//! batch's seqs of that value, ascending, as LEB128 deltas. The lists of one
//! value never overlap (batches are disjoint and in seq order), so key order
//! is seq order.

use super::IndexError;

/// The key of the list whose last seq is `last`.
pub(super) fn key(value: &str, last: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(value.len() + 9);
    k.extend_from_slice(value.as_bytes());
    k.push(0);
    k.extend_from_slice(&last.to_be_bytes());
    k
}

/// Encodes ascending seqs.
pub(super) fn encode(seqs: &[u64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(seqs.len() * 2 + 8);
    let mut prev = 0;
    for (i, &s) in seqs.iter().enumerate() {
        let mut d = if i == 0 { s } else { s - prev };
        prev = s;
        loop {
            let byte = (d & 0x7f) as u8;
            d >>= 7;
            if d == 0 {
                out.push(byte);
                break;
            }
            out.push(byte | 0x80);
        }
    }
    out
}

/// Decodes a list.
pub(super) fn decode(tree: &'static str, b: &[u8]) -> Result<Vec<u64>, IndexError> {
    let (mut out, mut cur, mut shift, mut acc) = (Vec::new(), 0u64, 0u32, 0u64);
    for &byte in b {
        if shift > 63 {
            return Err(IndexError::Decode { tree, reason: "postings varint too long".into() });
        }
        acc |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            cur = if out.is_empty() { acc } else { cur + acc };
            out.push(cur);
            (acc, shift) = (0, 0);
        } else {
            shift += 7;
        }
    }
    if shift != 0 {
        return Err(IndexError::Decode { tree, reason: "postings list ends inside a varint".into() });
    }
    Ok(out)
}

/// Seqs of `value` in `[from, to)`, ascending or descending, at most `limit`.
pub(super) fn scan(
    tree: &sled::Tree,
    name: &'static str,
    value: &str,
    (from, to): (u64, u64),
    desc: bool,
    limit: usize,
) -> Result<Vec<u64>, IndexError> {
    let mut out = Vec::new();
    if from >= to || limit == 0 {
        return Ok(out);
    }
    let (lo, hi) = (key(value, from), key(value, u64::MAX));
    // Only a value's last list changes while we read (the index thread
    // replaces it by a longer one under a larger key); the lists before it
    // never change. Ascending: a list may be seen before and after it grew,
    // so seqs already given are skipped.
    if !desc {
        for kv in tree.range(lo..=hi) {
            let seqs = decode(name, &kv?.1)?;
            if seqs.first().is_some_and(|&f| f >= to) {
                break;
            }
            let given = out.last().copied();
            for s in seqs.into_iter().filter(|s| (from..to).contains(s) && given.is_none_or(|g| *s > g)) {
                out.push(s);
                if out.len() >= limit {
                    return Ok(out);
                }
            }
        }
        return Ok(out);
    }
    // Descending: the list holding `to - 1` (or the first after it, else the
    // last one) is read in one step; every list before it lies below `to`
    // and does not change.
    let upper = match tree.range(key(value, to - 1)..=hi.clone()).next() {
        Some(kv) => Some(kv?),
        None => tree.range(lo.clone()..=hi).next_back().transpose()?,
    };
    let Some((upper_key, upper_value)) = upper else { return Ok(out) };
    let before = tree.range(lo..upper_key.to_vec()).rev();
    let lists = std::iter::once(Ok((upper_key, upper_value))).chain(before);
    for kv in lists {
        let seqs = decode(name, &kv?.1)?;
        for &s in seqs.iter().rev().filter(|s| (from..to).contains(*s)) {
            out.push(s);
            if out.len() >= limit {
                return Ok(out);
            }
        }
        if seqs.first().is_some_and(|&f| f < from) {
            break;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn varint_deltas_round_trip() {
        for seqs in [vec![], vec![0], vec![5, 6, 300, 70_000, u64::MAX - 1, u64::MAX]] {
            assert_eq!(super::decode("t", &super::encode(&seqs)).unwrap(), seqs);
        }
        assert!(super::decode("t", &[0x80]).is_err());
    }
}
