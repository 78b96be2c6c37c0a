//! Entry validation: the newtypes every submitted field passes through
//! once (FORMAT.md §3 ranges; docs/ARCHITECTURE.md "Design decisions: Limits and errors"). Constructors fail closed with
//! a [`ValidationError`] that names the field and the reason.
//!
//! Owns: input limits and checks. Must not: assign seq, time or hashes.

mod payload_json;

use serde::{Deserialize, Serialize};

/// A field that failed validation, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field}: {reason}")]
pub struct ValidationError {
    /// the field, e.g. `category` or `artifacts[2].sha256`
    pub field: String,
    /// what is wrong with it
    pub reason: String,
}

impl ValidationError {
    /// A new error for `field`.
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self { field: field.into(), reason: reason.into() }
    }
}

/// Configurable input limits (defaults: docs/ARCHITECTURE.md "Design decisions: Limits and errors").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// largest payload in bytes
    pub max_payload_bytes: usize,
    /// deepest JSON nesting
    pub max_payload_depth: usize,
    /// longest subject or actor in bytes
    pub max_subject_bytes: usize,
    /// longest request id in bytes
    pub max_request_id_bytes: usize,
    /// most artifacts per entry
    pub max_artifacts: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_payload_bytes: 64 * 1024,
            max_payload_depth: 32,
            max_subject_bytes: 256,
            max_request_id_bytes: 128,
            max_artifacts: 32,
        }
    }
}

fn check_text(field: &str, s: &str, max: usize) -> Result<(), ValidationError> {
    if s.len() > max {
        return Err(ValidationError::new(field, format!("{} bytes, at most {max} allowed", s.len())));
    }
    if let Some(c) = s.chars().find(|c| c.is_control()) {
        return Err(ValidationError::new(field, format!("contains control character U+{:04X}", c as u32)));
    }
    Ok(())
}

macro_rules! string_newtype {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);
        impl $name {
            /// The validated text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_newtype!(
    /// A category: `[a-z0-9_.-]{1,64}`.
    Category
);
string_newtype!(
    /// An incident / ticket / strategy id: 1–256 bytes, no control characters.
    Subject
);
string_newtype!(
    /// The authenticated submitter: 1–256 bytes, no control characters.
    Actor
);
string_newtype!(
    /// An idempotency key: 1–128 bytes of printable ASCII.
    RequestId
);

impl Category {
    /// Validates a category.
    pub fn new(s: &str) -> Result<Self, ValidationError> {
        if s.is_empty() || s.len() > 64 {
            return Err(ValidationError::new("category", format!("must be 1 to 64 characters, got {}", s.len())));
        }
        if let Some(c) = s.chars().find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '_' | '.' | '-')) {
            return Err(ValidationError::new("category", format!("character {c:?} not allowed; use [a-z0-9_.-]")));
        }
        Ok(Self(s.to_owned()))
    }
}

impl Subject {
    /// Validates a subject against `limits`.
    pub fn new(s: &str, limits: &Limits) -> Result<Self, ValidationError> {
        if s.is_empty() {
            return Err(ValidationError::new("subject", "is empty; omit it instead"));
        }
        check_text("subject", s, limits.max_subject_bytes)?;
        Ok(Self(s.to_owned()))
    }
}

impl Actor {
    /// Validates an actor (an identity the transport authenticated).
    pub fn new(s: &str, limits: &Limits) -> Result<Self, ValidationError> {
        if s.is_empty() {
            return Err(ValidationError::new("actor", "is empty"));
        }
        check_text("actor", s, limits.max_subject_bytes)?;
        Ok(Self(s.to_owned()))
    }
}

impl RequestId {
    /// Validates a request id against `limits`.
    pub fn new(s: &str, limits: &Limits) -> Result<Self, ValidationError> {
        if s.is_empty() || s.len() > limits.max_request_id_bytes {
            let max = limits.max_request_id_bytes;
            return Err(ValidationError::new("request_id", format!("must be 1 to {max} bytes, got {}", s.len())));
        }
        if !s.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
            return Err(ValidationError::new("request_id", "only printable ASCII without spaces is allowed"));
        }
        Ok(Self(s.to_owned()))
    }
}

/// A payload: the text of one I-JSON object (FORMAT.md §3.4) within the
/// size and depth limits. The bytes are kept exactly as given (they are
/// what is hashed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    bytes: Vec<u8>,
    fields: payload_json::Fields,
}

impl Payload {
    /// Validates JSON text against `limits`.
    pub fn new(bytes: Vec<u8>, limits: &Limits) -> Result<Self, ValidationError> {
        if bytes.len() > limits.max_payload_bytes {
            let max = limits.max_payload_bytes;
            return Err(ValidationError::new("payload", format!("{} bytes, at most {max} allowed", bytes.len())));
        }
        let text = std::str::from_utf8(&bytes).map_err(not_utf8)?;
        let too_deep = |depth: usize| {
            let max = limits.max_payload_depth;
            ValidationError::new("payload", format!("nesting depth {depth} exceeds {max}"))
        };
        match payload_json::shape(text) {
            Ok((_, depth)) if depth > limits.max_payload_depth => Err(too_deep(depth)),
            Ok((payload_json::Shape::Object(fields), _)) => Ok(Self { bytes, fields }),
            Ok((payload_json::Shape::Other(kind), _)) => Err(not_an_object(kind)),
            // Too deep for the parser, or invalid: a depth over the limit is named first.
            Err(_) if json_depth(&bytes) > limits.max_payload_depth => Err(too_deep(json_depth(&bytes))),
            Err(r) => Err(refused(r)),
        }
    }

    /// The payload bytes as given.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Moves the bytes out (the writer, once the leaf commits to them),
    /// leaving the top-level fields.
    pub(crate) fn take_bytes(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.bytes)
    }

    /// Whether the top-level field `name` is present and not null (names
    /// are unique: FORMAT.md §3.4, rule 2).
    pub fn has_field(&self, name: &str) -> bool {
        self.fields.iter().find(|(n, _)| n == name).is_some_and(|f| f.1)
    }
}

/// What the writer would refuse in stored payload bytes now, named as it
/// names it (`payload.accepted: duplicate member name`); `None` when it
/// would accept them. The verifier's check of entries written before payload
/// rule 2 (FORMAT.md §3.4, §11): the same walk as [`Payload::new`], for rule
/// 1 (UTF-8, JSON, an object) and rule 2, less the size and depth limits,
/// which are each writer's configuration ([`Limits`]).
pub(crate) fn stored_payload_error(bytes: &[u8]) -> Option<ValidationError> {
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => return Some(not_utf8(e)),
    };
    match payload_json::kind(text) {
        Ok(("an object", _)) => None,
        Ok((kind, _)) => Some(not_an_object(kind)),
        Err(r) => Some(refused(r)),
    }
}

fn not_utf8(e: std::str::Utf8Error) -> ValidationError {
    ValidationError::new("payload", format!("not UTF-8: {e}"))
}

fn not_an_object(kind: &str) -> ValidationError {
    ValidationError::new("payload", format!("must be a JSON object, got {kind}"))
}

fn refused(r: payload_json::Refused) -> ValidationError {
    match r {
        payload_json::Refused::Rule2(v) => ValidationError::new(v.field(), v.reason),
        payload_json::Refused::Json(e) => ValidationError::new("payload", format!("not valid JSON: {e}")),
    }
}

/// Maximum nesting of `[`/`{` outside strings: the depth named when a text
/// the walk refused is too deep (serde_json stops at 128 levels).
fn json_depth(bytes: &[u8]) -> usize {
    let (mut depth, mut max, mut in_str, mut esc) = (0usize, 0usize, false, false);
    for &b in bytes {
        if in_str {
            match (esc, b) {
                (true, _) => esc = false,
                (false, b'\\') => esc = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// A validated artifact reference (FORMAT.md §3.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactRef {
    /// BLAKE3-256 of the content
    #[serde(with = "hex_array")]
    pub blake3: [u8; 32],
    /// SHA-256 of the content
    #[serde(with = "hex_array")]
    pub sha256: [u8; 32],
    /// content length
    pub size: u64,
    /// file name
    pub name: String,
    /// media type
    pub media_type: String,
}

impl ArtifactRef {
    /// Validates raw artifact fields; `i` is the position, for error names.
    pub fn new(
        i: usize,
        blake3: &[u8],
        sha256: &[u8],
        size: u64,
        name: &str,
        media_type: &str,
    ) -> Result<Self, ValidationError> {
        let f = |n: &str| format!("artifacts[{i}].{n}");
        let blake3 = blake3
            .try_into()
            .map_err(|_| ValidationError::new(f("blake3"), format!("must be 32 bytes, got {}", blake3.len())))?;
        let sha256 = sha256
            .try_into()
            .map_err(|_| ValidationError::new(f("sha256"), format!("must be 32 bytes, got {}", sha256.len())))?;
        if name.is_empty() || name.contains('/') {
            return Err(ValidationError::new(f("name"), "must be a non-empty file name without '/'"));
        }
        check_text(&f("name"), name, 256)?;
        check_text(&f("media_type"), media_type, 128)?;
        Ok(Self { blake3, sha256, size, name: name.to_owned(), media_type: media_type.to_owned() })
    }
}

/// A fully validated entry, ready to be sequenced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEntry {
    /// category
    pub category: Category,
    /// subject, if any
    pub subject: Option<Subject>,
    /// who submitted it
    pub actor: Actor,
    /// idempotency key, if any
    pub request_id: Option<RequestId>,
    /// client time, unix ns
    pub occurred_at: Option<i64>,
    /// the JSON object
    pub payload: Payload,
    /// artifact references
    pub artifacts: Vec<ArtifactRef>,
}

/// An entry as a client sends it, before validation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EntryInput {
    /// category
    pub category: String,
    /// subject ("" = none)
    pub subject: String,
    /// JSON object text
    pub payload: Vec<u8>,
    /// client time, unix ns (0 = none)
    pub occurred_at: i64,
    /// idempotency key ("" = none)
    pub request_id: String,
    /// artifact references
    pub artifacts: Vec<ArtifactRef>,
}

impl EntryInput {
    /// Validates every field; `actor` comes from the transport, not the client.
    pub fn validate(self, actor: &str, limits: &Limits) -> Result<NewEntry, ValidationError> {
        let category = Category::new(&self.category)?;
        let subject = (!self.subject.is_empty()).then(|| Subject::new(&self.subject, limits)).transpose()?;
        let actor = Actor::new(actor, limits)?;
        let request_id = (!self.request_id.is_empty()).then(|| RequestId::new(&self.request_id, limits)).transpose()?;
        if self.occurred_at < 0 {
            return Err(ValidationError::new("occurred_at", "must not be before 1970-01-01"));
        }
        if self.artifacts.len() > limits.max_artifacts {
            let max = limits.max_artifacts;
            return Err(ValidationError::new(
                "artifacts",
                format!("{} given, at most {max} allowed", self.artifacts.len()),
            ));
        }
        let payload = Payload::new(self.payload, limits)?;
        let occurred_at = (self.occurred_at != 0).then_some(self.occurred_at);
        Ok(NewEntry { category, subject, actor, request_id, occurred_at, payload, artifacts: self.artifacts })
    }
}

/// Serde helper: 32-byte arrays as hex strings.
pub(crate) mod hex_array {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let s = String::deserialize(d)?;
        let v = hex::decode(&s).map_err(serde::de::Error::custom)?;
        v.try_into().map_err(|_| serde::de::Error::custom("expected 32 bytes of hex"))
    }
}
