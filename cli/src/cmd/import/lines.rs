//! Reading the decision log line by line in bounded memory, hashing every
//! byte of the file on the way (the source file's SHA-256).
//!
//! Owns: line splitting and numbering (1-based; a line ends at `\n`, a `\r`
//! before it is dropped, a last line without `\n` counts) and the file hash.
//! Must not: interpret a line.

use std::fs::File;
use std::io::{BufRead as _, BufReader, Read};
use std::path::Path;

use sha2::{Digest as _, Sha256};

/// One line as read.
pub struct Line {
    /// 1-based
    pub number: u64,
    /// its length in bytes, without the line end (may exceed what was kept)
    pub len: u64,
}

/// The file, hashing every byte read from it.
struct Hashing {
    file: File,
    hasher: Sha256,
    bytes: u64,
}

impl Read for Hashing {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = self.file.read(out)?;
        self.hasher.update(&out[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

/// The lines of a file.
pub struct Lines {
    inner: BufReader<Hashing>,
    number: u64,
    keep: usize,
}

impl Lines {
    /// Opens `path`; each line keeps at most `keep + 1` bytes (a longer one
    /// is read to its end and hashed, and reported by its length).
    pub fn open(path: &Path, keep: usize) -> std::io::Result<Self> {
        let file = Hashing { file: File::open(path)?, hasher: Sha256::new(), bytes: 0 };
        Ok(Self { inner: BufReader::with_capacity(1 << 20, file), number: 0, keep })
    }

    /// Bytes read from the file so far.
    pub fn bytes(&self) -> u64 {
        self.inner.get_ref().bytes
    }

    /// The next line into `buf` (cleared first); `None` at the end.
    pub fn next_into(&mut self, buf: &mut Vec<u8>) -> std::io::Result<Option<Line>> {
        buf.clear();
        // keep + 1 bytes of the line, and its `\n`
        let n = (&mut self.inner).take(self.keep as u64 + 2).read_until(b'\n', buf)?;
        if n == 0 {
            return Ok(None);
        }
        let mut len = n as u64;
        if buf.ends_with(b"\n") {
            buf.pop();
            len -= 1;
            if buf.ends_with(b"\r") {
                buf.pop();
                len -= 1;
            }
        } else if buf.len() > self.keep {
            buf.truncate(self.keep + 1);
            len += self.skip_line()?;
        }
        self.number += 1;
        Ok(Some(Line { number: self.number, len }))
    }

    /// Reads past the rest of a long line; returns its bytes before the `\n`.
    fn skip_line(&mut self) -> std::io::Result<u64> {
        let mut len = 0;
        loop {
            let avail = self.inner.fill_buf()?;
            if avail.is_empty() {
                return Ok(len);
            }
            let end = avail.iter().position(|&b| b == b'\n');
            let used = end.map_or(avail.len(), |i| i + 1);
            len += end.unwrap_or(used) as u64;
            self.inner.consume(used);
            if end.is_some() {
                return Ok(len);
            }
        }
    }

    /// The SHA-256 of every byte read (the whole file once at the end).
    pub fn sha256(&self) -> [u8; 32] {
        self.inner.get_ref().hasher.clone().finalize().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (number, length, bytes kept) of each line.
    type Read = Vec<(u64, u64, Vec<u8>)>;

    fn all(content: &[u8], keep: usize) -> (Read, [u8; 32]) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.jsonl");
        std::fs::write(&p, content).unwrap();
        let mut l = Lines::open(&p, keep).unwrap();
        let (mut out, mut buf) = (Vec::new(), Vec::new());
        while let Some(line) = l.next_into(&mut buf).unwrap() {
            out.push((line.number, line.len, buf.clone()));
        }
        assert_eq!(l.bytes(), content.len() as u64);
        (out, l.sha256())
    }

    #[test]
    fn lines_are_numbered_and_the_file_hashed() {
        let (lines, h) = all(b"{\"a\":1}\r\n\n{\"b\":2}", 100);
        assert_eq!(lines, [(1, 7, b"{\"a\":1}".to_vec()), (2, 0, Vec::new()), (3, 7, b"{\"b\":2}".to_vec())]);
        assert_eq!(h, ledger::hash::sha256(b"{\"a\":1}\r\n\n{\"b\":2}"));
        assert_eq!(all(b"", 100).0.len(), 0);
        assert_eq!(all(b"x\n", 100).0.len(), 1, "a final newline ends the last line, it adds none");
    }

    #[test]
    fn a_long_line_keeps_only_what_is_asked_but_counts_its_length() {
        let (lines, _) = all(b"0123456789\nab\n", 4);
        assert_eq!(lines, [(1, 10, b"01234".to_vec()), (2, 2, b"ab".to_vec())]);
        let (lines, _) = all(b"0123456\r\n", 4);
        assert_eq!(lines, [(1, 8, b"01234".to_vec())], "a long line's length counts its \\r");
        let (lines, _) = all(b"01234\n012345", 4);
        assert_eq!(lines, [(1, 5, b"01234".to_vec()), (2, 6, b"01234".to_vec())]);
    }
}
