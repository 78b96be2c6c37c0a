//! Writing a pack (FORMAT.md §14.1–§14.3): entry lines from the log's
//! bytes, each file with its digest, and the manifest last.
//!
//! Owns: the encodings the verifier reads back. Must not: decide what goes
//! in a pack (the CLI's `incident pack` does) or talk to a server.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use super::types::files;
use super::{FileDigest, Manifest, PackError, PackLine, Role};

/// An entry's stored bytes as the log serves them, and its inclusion proof.
#[derive(Debug, Clone, Copy)]
pub struct StoredBytes<'a> {
    /// its seq
    pub seq: u64,
    /// the leaf bytes
    pub leaf: &'a [u8],
    /// the payload bytes; `None` when redacted
    pub payload: Option<&'a [u8]>,
    /// seq+1 of the redaction entry, 0 if none
    pub redacted_by: u64,
    /// the HMAC key id
    pub hmac_key_id: &'a str,
    /// the HMAC tag
    pub hmac: &'a [u8],
    /// the inclusion proof's hashes
    pub proof: &'a [Vec<u8>],
}

/// One entry as its `entries.jsonl` line (FORMAT.md §14.3): the stored
/// bytes in base64, the tag and proof in hex.
pub fn line_for(role: Role, e: &StoredBytes<'_>) -> PackLine {
    PackLine {
        seq: e.seq,
        role,
        leaf: B64.encode(e.leaf),
        payload: e.payload.map(|p| B64.encode(p)),
        redacted_by: e.redacted_by,
        hmac_key_id: e.hmac_key_id.to_owned(),
        hmac: lower_hex(e.hmac),
        proof: e.proof.iter().map(|h| lower_hex(h)).collect(),
    }
}

/// Lowercase hex (FORMAT.md §1) by table: a 10,000-entry pack writes
/// about 250,000 proof hashes, and `hex::encode`'s char iterator was a tenth
/// of `incident pack`'s time.
fn lower_hex(b: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = Vec::with_capacity(b.len() * 2);
    for &x in b {
        out.extend_from_slice(&[DIGITS[usize::from(x >> 4)], DIGITS[usize::from(x & 15)]]);
    }
    String::from_utf8(out).expect("hex digits are ASCII")
}

/// The text of `entries.jsonl`: one line per entry, each ended by `\n`.
pub fn entries_text(lines: &[PackLine]) -> String {
    let mut s = String::new();
    for l in lines {
        s.push_str(&serde_json::to_string(l).expect("a pack line serialises"));
        s.push('\n');
    }
    s
}

/// Writes a pack's files into a new directory, recording each file's
/// digest for the manifest.
pub struct PackWriter {
    dir: PathBuf,
    files: BTreeMap<String, FileDigest>,
}

fn io(name: &str) -> impl FnOnce(std::io::Error) -> PackError + '_ {
    move |source| PackError::Io { name: name.to_owned(), source }
}

impl PackWriter {
    /// Creates `dir` (and `dir/artifacts`); it must not exist or be empty.
    pub fn create(dir: &Path) -> Result<Self, PackError> {
        std::fs::create_dir_all(dir.join(files::ARTIFACTS)).map_err(io(files::ARTIFACTS))?;
        Ok(Self { dir: dir.to_owned(), files: BTreeMap::new() })
    }

    /// Writes the file `name` and records its digest.
    pub fn file(&mut self, name: &str, bytes: &[u8]) -> Result<(), PackError> {
        std::fs::write(self.dir.join(name), bytes).map_err(io(name))?;
        self.files.insert(name.to_owned(), FileDigest::of(bytes));
        Ok(())
    }

    /// Writes `entries.jsonl`.
    pub fn entries(&mut self, lines: &[PackLine]) -> Result<(), PackError> {
        self.file(files::ENTRIES, entries_text(lines).as_bytes())
    }

    /// Writes `artifacts/<blake3 hex>` (the leaves' references prove it).
    pub fn artifact(&mut self, blake3: &[u8], bytes: &[u8]) -> Result<(), PackError> {
        let name = format!("{}/{}", files::ARTIFACTS, hex::encode(blake3));
        std::fs::write(self.dir.join(&name), bytes).map_err(io(&name))
    }

    /// Writes `pack.json`: `manifest` with the digests of the files written.
    pub fn finish(self, mut manifest: Manifest) -> Result<Manifest, PackError> {
        manifest.files = self.files;
        let mut text = serde_json::to_vec_pretty(&manifest).expect("the manifest serialises");
        text.push(b'\n');
        std::fs::write(self.dir.join(files::MANIFEST), text).map_err(io(files::MANIFEST))?;
        Ok(manifest)
    }
}
