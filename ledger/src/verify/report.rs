//! The verification report: counts, findings (kind + seq + detail), the
//! warnings (findings of a kind that does not fail verification), and its
//! human rendering. The JSON field names are stable.

use std::collections::BTreeMap;

use serde::Serialize;

/// Findings (and, apart, warnings) kept in full; beyond this only the
/// counts grow.
const MAX_FINDINGS: usize = 10_000;

/// What is wrong (FORMAT.md §11); [`FindingKind::is_warning`] tells the
/// kinds that are warnings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// bad segment header or first seq
    SegmentHeader,
    /// frame length, CRC or record damaged
    FrameCorrupt,
    /// leaf undecodable or out of range
    LeafInvalid,
    /// leaf bytes not canonical
    LeafNotCanonical,
    /// seq not the next expected
    SeqMismatch,
    /// hash chain broken
    PrevHashMismatch,
    /// recorded_at decreased
    TimeBackwards,
    /// payload does not match the leaf
    PayloadMismatch,
    /// per-subject chain broken
    SubjectChainBroken,
    /// HMAC tag wrong
    HmacMismatch,
    /// HMAC key not in the key file
    HmacKeyUnknown,
    /// HMAC key not valid at recorded_at
    HmacKeyNotValid,
    /// checkpoint not signed by a trusted key
    CheckpointUntrusted,
    /// checkpoint contradicts the replayed tree
    CheckpointMismatch,
    /// the journal is shorter than the trusted checkpoint
    Truncated,
    /// the trusted checkpoint contradicts the journal
    SplitView,
    /// a record claims a redaction that no matching `redaction` entry backs
    RedactionUnbacked,
    /// evidence pack: a leaf's inclusion proof does not lead to the checkpoint's root (FORMAT.md §14.5)
    InclusionFailed,
    /// evidence pack: an entry of another subject, or an alert entry nothing acknowledges
    SubjectMismatch,
    /// evidence pack: a referenced artifact is not in the pack, and not listed as omitted
    ArtifactMissing,
    /// evidence pack: an artifact's bytes do not hash to the leaf's reference
    ArtifactMismatch,
    /// evidence pack: the manifest disagrees with the pack's files
    ManifestMismatch,
    /// a warning: the payload breaks payload rule 2 (I-JSON) or rule 1, as
    /// an entry written before rule 2 may (FORMAT.md §3.4)
    PayloadNotIjson,
}

impl FindingKind {
    /// The snake_case name used in JSON and text.
    pub fn name(self) -> String {
        serde_json::to_value(self).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
    }

    /// Whether findings of this kind are warnings: reported apart, and
    /// verification still succeeds (FORMAT.md §11).
    pub fn is_warning(self) -> bool {
        matches!(self, Self::PayloadNotIjson)
    }
}

/// One finding (or warning).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// what
    pub kind: FindingKind,
    /// which entry (or tree size for checkpoint findings), when known
    pub seq: Option<u64>,
    /// human detail
    pub detail: String,
}

/// A redacted entry (not a finding).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Redacted {
    /// the redacted entry
    pub seq: u64,
    /// the redaction entry
    pub redaction_seq: u64,
}

/// The verification report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// true when there is no finding (warnings do not count)
    pub ok: bool,
    /// seq of the first entry (0 unless a partial export)
    pub first_seq: u64,
    /// entries read
    pub entries: u64,
    /// checkpoint frames checked
    pub checkpoints: u64,
    /// HMAC tags checked
    pub hmac_checked: u64,
    /// replayed tree size
    pub tree_size: u64,
    /// replayed root (hex)
    pub root: String,
    /// redacted entries
    pub redacted: Vec<Redacted>,
    /// all findings counted by kind
    pub finding_counts: BTreeMap<FindingKind, u64>,
    /// total findings
    pub finding_count: u64,
    /// the findings (the first 10,000)
    pub findings: Vec<Finding>,
    /// all warnings counted by kind
    pub warning_counts: BTreeMap<FindingKind, u64>,
    /// total warnings
    pub warning_count: u64,
    /// the warnings (the first 10,000)
    pub warnings: Vec<Finding>,
}

impl Report {
    /// Counts and keeps `f` with the findings, or with the warnings when
    /// its kind is a warning.
    pub(crate) fn add(&mut self, f: Finding) {
        let (counts, count, kept) = if f.kind.is_warning() {
            (&mut self.warning_counts, &mut self.warning_count, &mut self.warnings)
        } else {
            (&mut self.finding_counts, &mut self.finding_count, &mut self.findings)
        };
        *counts.entry(f.kind).or_default() += 1;
        *count += 1;
        if kept.len() < MAX_FINDINGS {
            kept.push(f);
        }
    }

    /// The findings, or the warnings, of one kind.
    pub fn of_kind(&self, kind: FindingKind) -> Vec<&Finding> {
        let kept = if kind.is_warning() { &self.warnings } else { &self.findings };
        kept.iter().filter(|f| f.kind == kind).collect()
    }

    /// A human rendering: the summary line, the findings, the warnings.
    pub fn to_text(&self) -> String {
        let from = if self.first_seq > 0 { format!(" (from seq {})", self.first_seq) } else { String::new() };
        let mut s = format!(
            "{}: {} entries{from}, {} checkpoints, {} HMAC tags checked, {} redacted, {} warnings; tree size {} root {}\n",
            if self.ok { "VALID" } else { "INVALID" },
            self.entries,
            self.checkpoints,
            self.hmac_checked,
            self.redacted.len(),
            self.warning_count,
            self.tree_size,
            self.root
        );
        list(&mut s, "", &self.findings, self.finding_count, "findings");
        list(&mut s, "warning ", &self.warnings, self.warning_count, "warnings");
        s
    }
}

/// One line per kept finding (`  [warning ]kind seq N: detail`), and how
/// many more were counted.
fn list(s: &mut String, prefix: &str, kept: &[Finding], count: u64, what: &str) {
    for f in kept {
        let seq = f.seq.map_or_else(|| "-".to_owned(), |s| s.to_string());
        s.push_str(&format!("  {prefix}{} seq {seq}: {}\n", f.kind.name(), f.detail));
    }
    if count > kept.len() as u64 {
        s.push_str(&format!("  … and {} more {what}\n", count - kept.len() as u64));
    }
}
