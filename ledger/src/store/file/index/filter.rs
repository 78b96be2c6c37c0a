//! Bloom filters over the request tables' levels (FORMAT.md §10.3), so a
//! lookup of a new request id usually reads no level from disk.
//!
//! Blocked: the bits of one hash all lie in one 64-byte block (one cache
//! line), so a probe costs one memory miss per level instead of four; at
//! 10M entries a new request id probes nine levels.
//!
//! A filter file `requests-<KK>.flt` is `magic ‖ u64le bits ‖ u32le crc32c
//! of the bit array ‖ bit array`; a missing or damaged one (or one of an
//! older layout) is rebuilt from its level. Owns: the filter layout and its
//! hash positions. Must not: answer "absent" for a record its level holds.

use std::path::Path;

/// Bits per record (≈1.5 % false positives with `PROBES` probes in
/// 512-bit blocks).
const BITS_PER_RECORD: u64 = 10;
/// Probes per record.
const PROBES: u32 = 4;
/// Bits per block.
const BLOCK_BITS: u64 = 512;
const MAGIC: &[u8; 8] = b"LRQFLT02";

/// One cache line of bits.
#[derive(Clone, Copy, Default)]
#[repr(C, align(64))]
struct Block([u64; 8]);

/// A blocked Bloom filter of 64-bit request hashes.
pub(super) struct Filter {
    blocks: Vec<Block>,
}

impl Filter {
    /// An empty filter sized for `records`.
    pub fn with_capacity(records: u64) -> Self {
        let nbits = (records.max(1) * BITS_PER_RECORD).next_power_of_two().max(BLOCK_BITS);
        Self { blocks: vec![Block::default(); (nbits / BLOCK_BITS) as usize] }
    }

    /// The block of `h` and the bit (0..512) of each probe in it.
    fn place(&self, h: u64) -> (usize, [u32; PROBES as usize]) {
        // The home slot uses h's top bits; mix so the probes do not follow it.
        let a = h.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let block = ((a >> 32) & (self.blocks.len() as u64 - 1)) as usize;
        let bits = std::array::from_fn(|i| ((a >> (9 * i)) & (BLOCK_BITS - 1)) as u32);
        (block, bits)
    }

    /// Adds a hash.
    pub fn add(&mut self, h: u64) {
        let (b, bits) = self.place(h);
        let block = &mut self.blocks[b].0;
        for p in bits {
            block[(p / 64) as usize] |= 1 << (p % 64);
        }
    }

    /// False when `h` was never added.
    pub fn may_contain(&self, h: u64) -> bool {
        let (b, bits) = self.place(h);
        let block = &self.blocks[b].0;
        bits.iter().all(|&p| block[(p / 64) as usize] & (1 << (p % 64)) != 0)
    }

    fn bytes(&self) -> Vec<u8> {
        self.blocks.iter().flat_map(|b| b.0).flat_map(|w| w.to_le_bytes()).collect()
    }

    /// Writes the filter file (synced).
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let body = self.bytes();
        let mut out = Vec::with_capacity(20 + body.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(self.blocks.len() as u64 * BLOCK_BITS).to_le_bytes());
        out.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
        out.extend_from_slice(&body);
        let tmp = path.with_extension("flt.tmp");
        let mut f = std::fs::File::create(&tmp)?;
        std::io::Write::write_all(&mut f, &out)?;
        f.sync_data()?;
        std::fs::rename(&tmp, path)
    }

    /// Reads a filter file; `None` when it is missing, does not check, or
    /// is of another layout (`LRQFLT01`: unblocked bits).
    pub fn load(path: &Path) -> Option<Self> {
        let b = std::fs::read(path).ok()?;
        if b.len() < 20 || &b[0..8] != MAGIC {
            return None;
        }
        let nbits = u64::from_le_bytes(b[8..16].try_into().ok()?);
        let crc = u32::from_le_bytes(b[16..20].try_into().ok()?);
        let body = &b[20..];
        if !nbits.is_power_of_two()
            || nbits < BLOCK_BITS
            || body.len() as u64 * 8 != nbits
            || crc32c::crc32c(body) != crc
        {
            return None;
        }
        let words: Vec<u64> =
            body.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes"))).collect();
        let blocks = words.chunks_exact(8).map(|w| Block(w.try_into().expect("8 words"))).collect();
        Some(Self { blocks })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_false_negatives_few_false_positives_and_files_check() {
        let mut f = Filter::with_capacity(10_000);
        let hs: Vec<u64> = (0..10_000u64).map(|i| i.wrapping_mul(0xD6E8_FEB8_6659_FD93) ^ (i << 7)).collect();
        for &h in &hs {
            f.add(h);
        }
        assert!(hs.iter().all(|&h| f.may_contain(h)));
        let fp = (1_000_000u64..1_100_000).filter(|&h| f.may_contain(h.wrapping_mul(0x9E37_79B9))).count();
        assert!(fp < 3_000, "{fp} false positives in 100,000");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("requests-00.flt");
        f.save(&p).unwrap();
        let g = Filter::load(&p).unwrap();
        assert!(hs.iter().all(|&h| g.may_contain(h)));
        let mut b = std::fs::read(&p).unwrap();
        b[40] ^= 1;
        std::fs::write(&p, &b).unwrap();
        assert!(Filter::load(&p).is_none(), "a flipped bit fails the CRC");
        b[40] ^= 1;
        b[0..8].copy_from_slice(b"LRQFLT01");
        std::fs::write(&p, &b).unwrap();
        assert!(Filter::load(&p).is_none(), "a filter of the unblocked layout is rebuilt");
    }
}
