//! The command line (clap derive). One subcommand per module in `cmd/`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// ledger: the audit ledger client and offline verifier.
///
/// Exit codes: 0 success; 1 a negative verdict (verification findings,
/// compliance fail); 2 usage, input or local I/O error; 3 server
/// unreachable; 4 the server refused or failed the request.
#[derive(Parser, Debug)]
#[command(name = "ledger", version, propagate_version = true)]
pub struct Cli {
    /// ledgerd address, or a comma-separated list of the nodes of a replicated ledgerd
    /// (http://a:50051,http://b:50051): commands use the first node that accepts a connection;
    /// append and artifact uploads follow a follower's redirect to the leader
    #[arg(long, global = true, env = "LEDGER_SERVER", default_value = "http://127.0.0.1:50051")]
    pub server: String,
    /// how long writes (append, import, uploads) keep retrying on UNAVAILABLE (a follower, a failover under way),
    /// in seconds; 0: no retry. Cover the lease (storage.lease) so a write outlives a failover
    #[arg(long, global = true, env = "LEDGER_WRITE_RETRY", default_value_t = 15, value_name = "SECONDS")]
    pub write_retry: u64,
    /// the log to use
    #[arg(long, global = true, env = "LEDGER_LOG", default_value = "default")]
    pub log: String,
    /// who you are, recorded as the actor — only by a server without TLS; with mTLS the server records
    /// your certificate's identity instead
    #[arg(long, global = true, env = "LEDGER_ACTOR", default_value = "")]
    pub actor: String,
    /// CA certificate (PEM) that signed ledgerd's certificate; turns on TLS
    #[arg(long, global = true, env = "LEDGER_CA")]
    pub ca: Option<PathBuf>,
    /// your client certificate (PEM), for mutual TLS; needs --key
    #[arg(long, global = true, env = "LEDGER_CERT", requires = "key")]
    pub cert: Option<PathBuf>,
    /// your client private key (PEM), for mutual TLS; needs --cert
    #[arg(long, global = true, env = "LEDGER_KEY", requires = "cert")]
    pub key: Option<PathBuf>,
    /// output format: text for people, json for programs (one object, or one per line for streams)
    #[arg(long, global = true, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// the command
    #[command(subcommand)]
    pub command: Command,
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// human text
    Text,
    /// JSON
    Json,
}

/// The commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Append an entry and print its receipt
    Append(AppendArgs),
    /// Acknowledge an alert (an alert_fired entry from Alertmanager): an alert_ack entry linked to
    /// it by seq and leaf hash, on the alert's subject
    Ack(AckArgs),
    /// Approve (or sign off) an entry: an approval entry naming it, by someone other than its
    /// actor who holds the approver role its category asks for
    Approve(ApproveArgs),
    /// Four-eyes approvals: what still waits
    #[command(subcommand)]
    Approvals(ApprovalsCmd),
    /// Move an existing decision log (JSON Lines) into the ledger: one entry per line, then an
    /// `import` entry with the counts
    Import(ImportArgs),
    /// Show one entry (with --proof, its inclusion proof)
    Get(GetArgs),
    /// Find entries by category, subject, actor, time, payload field
    Query(QueryArgs),
    /// Follow new entries until interrupted
    Tail(TailArgs),
    /// Print the latest signed checkpoint
    Checkpoint,
    /// Each node of --server: its role in the log (leader, follower), size and lag
    Status,
    /// Print an inclusion proof (tlog-proof) or a consistency proof
    Prove(ProveArgs),
    /// Upload, download and check artifacts
    #[command(subcommand)]
    Artifact(ArtifactCmd),
    /// The compliance summary (decision-engine summary included)
    Summary(SummaryArgs),
    /// Write a self-contained bundle (journal, checkpoint, public keys) for offline verification
    Export(ExportArgs),
    /// Verify a journal offline (an export or a stopped server's log directory), or with --tiles a
    /// copy of the log's tiles (a directory or the server's URL)
    Verify(VerifyArgs),
    /// Copy a log's C2SP tiles into DIR, fetching only what is new, verified before the copy's
    /// checkpoint moves
    Mirror(MirrorArgs),
    /// Verify one receipt (.tlog-proof) offline
    VerifyProof(VerifyProofArgs),
    /// An incident's timeline (milestones, clocks, findings) and its evidence pack
    #[command(subcommand)]
    Incident(IncidentCmd),
    /// Verify an evidence pack (`ledger incident pack`) offline, with public keys only
    VerifyPack(VerifyPackArgs),
    /// Key status, rotation, public keys; offline first-time key generation
    #[command(subcommand)]
    Keys(KeysCmd),
    /// Compliance checks of the playbooks (pass / warn / fail)
    #[command(subcommand)]
    Compliance(ComplianceCmd),
    /// Audited admin actions (role admin): redaction, policy reload, reindex; under dual control,
    /// a second admin's approval of a request
    #[command(subcommand)]
    Admin(AdminCmd),
    /// Print shell completions
    Completions {
        /// the shell
        shell: clap_complete::Shell,
    },
}

/// `ledger append`
#[derive(Args, Debug)]
pub struct AppendArgs {
    /// the category, e.g. stage5_incident
    #[arg(long)]
    pub category: String,
    /// incident / ticket / strategy id
    #[arg(long)]
    pub subject: Option<String>,
    /// a payload field k=v (v is JSON when it parses as JSON, else a string); repeatable
    #[arg(long = "field", value_name = "K=V")]
    pub fields: Vec<String>,
    /// the payload: a JSON object in FILE, or - for standard input (fields are merged into it)
    #[arg(long, value_name = "FILE|-")]
    pub json: Option<String>,
    /// upload FILE as an artifact and reference it; repeatable
    #[arg(long = "attach", value_name = "FILE")]
    pub attach: Vec<PathBuf>,
    /// idempotency key: a retry with the same key returns the original receipt (default: a fresh
    /// random one, cli-<32 hex digits>, printed with the receipt)
    #[arg(long)]
    pub request_id: Option<String>,
    /// when it happened (RFC 3339); default: not given
    #[arg(long)]
    pub occurred_at: Option<String>,
    /// write the receipt's .tlog-proof here
    #[arg(long, value_name = "FILE")]
    pub proof_out: Option<PathBuf>,
}

/// `ledger ack`
#[derive(Args, Debug)]
pub struct AckArgs {
    /// the alert: its entry's seq, or Alertmanager's fingerprint (16 hex digits: the newest
    /// alert_fired entry with it)
    #[arg(long, value_name = "FINGERPRINT|SEQ")]
    pub alert: String,
    /// the incident (default: the alert entry's subject)
    #[arg(long)]
    pub subject: Option<String>,
    /// another payload field k=v (v is JSON when it parses as JSON); repeatable
    #[arg(long = "field", value_name = "K=V")]
    pub fields: Vec<String>,
    /// idempotency key (default ack:<alert seq>: acknowledging the same alert again adds nothing)
    #[arg(long)]
    pub request_id: Option<String>,
}

/// `ledger approve`
#[derive(Args, Debug)]
pub struct ApproveArgs {
    /// the entry approved
    pub seq: u64,
    /// why (recorded in the approval)
    #[arg(long)]
    pub reason: String,
    /// the approver role you approve as (default: the one its category's requires_approval names;
    /// needed for a sign-off of an entry whose category asks for none, e.g. incident_manager)
    #[arg(long = "as", value_name = "ROLE")]
    pub role: Option<String>,
}

/// `ledger approvals …`
#[derive(Subcommand, Debug)]
pub enum ApprovalsCmd {
    /// Entries waiting for an approval (their category's requires_approval, not yet approved)
    Pending {
        /// only this category
        #[arg(long)]
        category: Option<String>,
    },
}

/// `ledger import`
#[derive(Args, Debug)]
pub struct ImportArgs {
    /// the decision log: one JSON object per line (e.g. audit/decision_logs/runtime.jsonl)
    pub file: PathBuf,
    /// the top-level field of each line holding the entry's category
    #[arg(long, value_name = "FIELD")]
    pub category_field: String,
    /// the top-level field of each line holding the entry's subject (incident / ticket / strategy id)
    #[arg(long, value_name = "FIELD")]
    pub subject_field: String,
    /// the top-level field of each line holding when it happened: RFC 3339 with Z or an offset, or unix
    /// seconds as a JSON number; it becomes the entry's occurred_at
    #[arg(long, value_name = "FIELD")]
    pub time_field: String,
    /// the old HMAC key of the decision log (the file's bytes, one trailing newline ignored): each line's
    /// own signature is checked with it and the verdict (ok, mismatch, missing) recorded in its entry
    #[arg(long, value_name = "FILE", requires = "hmac_field")]
    pub hmac_key: Option<PathBuf>,
    /// the top-level field of each line holding its HMAC-SHA256 (hex or base64) over the line's other
    /// fields (docs/CLI.md "ledger import")
    #[arg(long, value_name = "FIELD", requires = "hmac_key")]
    pub hmac_field: Option<String>,
    /// import the good lines and list each bad one (line number and reason) in the import entry,
    /// instead of stopping at the first bad line with nothing written
    #[arg(long)]
    pub skip_bad: bool,
    /// do not check categories and their required fields against ledgerd's default policy (for a
    /// ledgerd whose config declares other categories); ledgerd still checks each line, and a line it
    /// refuses stops the import after the lines sent before it were written
    #[arg(long)]
    pub no_policy_check: bool,
}

/// `ledger get`
#[derive(Args, Debug)]
pub struct GetArgs {
    /// the entry's seq
    pub seq: u64,
    /// include an inclusion proof in the latest checkpoint
    #[arg(long)]
    pub proof: bool,
}

/// Filters shared by query and tail.
#[derive(Args, Debug, Clone, Default)]
pub struct Filters {
    /// category equals
    #[arg(long)]
    pub category: Option<String>,
    /// subject equals
    #[arg(long)]
    pub subject: Option<String>,
    /// actor equals
    #[arg(long)]
    pub actor_is: Option<String>,
    /// recorded at or after (RFC 3339, or a duration ago like 24h)
    #[arg(long)]
    pub since: Option<String>,
    /// recorded before (RFC 3339, or a duration ago)
    #[arg(long)]
    pub until: Option<String>,
    /// payload field equals, k=v (v as JSON when it parses, else a string); repeatable
    #[arg(long = "field", value_name = "K=V")]
    pub fields: Vec<String>,
}

/// `ledger query`
#[derive(Args, Debug)]
pub struct QueryArgs {
    /// filters
    #[command(flatten)]
    pub filters: Filters,
    /// most entries to print (all pages are followed up to this)
    #[arg(long, default_value_t = 100)]
    pub limit: u64,
    /// newest first
    #[arg(long)]
    pub desc: bool,
}

/// `ledger tail`
#[derive(Args, Debug)]
pub struct TailArgs {
    /// first seq to show (default: only new entries)
    #[arg(long)]
    pub from: Option<u64>,
    /// filters
    #[command(flatten)]
    pub filters: Filters,
}

/// `ledger prove`
#[derive(Args, Debug)]
pub struct ProveArgs {
    /// the entry (inclusion proof)
    #[arg(required_unless_present = "consistency")]
    pub seq: Option<u64>,
    /// tree size to prove in (default: latest)
    #[arg(long)]
    pub size: Option<u64>,
    /// a consistency proof between two tree sizes OLD NEW
    #[arg(long, num_args = 2, value_names = ["OLD", "NEW"], conflicts_with_all = ["seq", "size"])]
    pub consistency: Option<Vec<u64>>,
}

/// `ledger artifact …`
#[derive(Subcommand, Debug)]
pub enum ArtifactCmd {
    /// Upload a file and register it in the log
    Add {
        /// the file
        file: PathBuf,
        /// the incident / ticket it belongs to
        #[arg(long)]
        subject: Option<String>,
        /// media type (default: guessed from the extension)
        #[arg(long)]
        media_type: Option<String>,
    },
    /// Download an artifact by its BLAKE3 hash (checked on the server and here)
    Get {
        /// BLAKE3 hex
        hash: String,
        /// where to write it
        #[arg(short = 'o', long = "out")]
        out: PathBuf,
    },
    /// Check files or directories against the artifact index: missing, altered, unknown
    Verify {
        /// files or directories
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
}

/// `ledger summary`
#[derive(Args, Debug)]
pub struct SummaryArgs {
    /// only this category
    #[arg(long)]
    pub category: Option<String>,
    /// only this subject
    #[arg(long)]
    pub subject: Option<String>,
    /// recorded at or after (RFC 3339, or a duration ago)
    #[arg(long)]
    pub since: Option<String>,
    /// recorded before
    #[arg(long)]
    pub until: Option<String>,
    /// include the latest N decision evaluations (default 512 when given without N)
    #[arg(long, num_args = 0..=1, default_missing_value = "512", value_name = "N")]
    pub include_history: Option<u32>,
}

/// `ledger export`
#[derive(Args, Debug)]
pub struct ExportArgs {
    /// the directory to create (must not exist or be empty)
    #[arg(long)]
    pub out: PathBuf,
    /// start at the segment holding this seq (the bundle then carries the tree state before it)
    #[arg(long, value_name = "SEQ", default_value_t = 0)]
    pub from: u64,
}

/// `ledger verify`
#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// an export directory or a stopped server's log directory; with --tiles a tiles copy
    /// (`ledger mirror`) or a tiles URL (http://HOST:PORT/tlog/LOG)
    pub path: PathBuf,
    /// PATH is a copy of the log's C2SP tiles or their URL (docs/FORMAT.md §12); needs --vkey
    #[arg(long)]
    pub tiles: bool,
    /// a file of trusted vkeys (one per line); repeatable. Default: the bundle's own `vkeys` (with a warning)
    #[arg(long = "vkey", value_name = "FILE")]
    pub vkeys: Vec<PathBuf>,
    /// the HMAC key file (keyring format) when you hold the shared key
    #[arg(long, value_name = "FILE")]
    pub hmac_key: Option<PathBuf>,
    /// a checkpoint you obtained earlier; the journal must contain it
    #[arg(long, value_name = "FILE")]
    pub trusted_checkpoint: Option<PathBuf>,
    /// a file of witness vkeys, one per line; repeatable: the checkpoint's (the export's, or
    /// --trusted-checkpoint) cosignatures by them are counted
    #[arg(long = "witness-vkey", value_name = "FILE")]
    pub witness_vkeys: Vec<PathBuf>,
    /// cosignatures required from those witnesses (default: the files' `quorum K` line, the log's
    /// witness_quorum; else all of them)
    #[arg(long, value_name = "K")]
    pub witness_quorum: Option<usize>,
}

/// `ledger incident …`
#[derive(Subcommand, Debug)]
pub enum IncidentCmd {
    /// The incident's entries in order, with the playbooks' milestones, clocks and findings
    Show(IncidentShowArgs),
    /// Write an evidence pack: the incident's entries with inclusion proofs in one signed checkpoint,
    /// its artifacts, public keys and reports, for `ledger verify-pack`
    Pack(IncidentPackArgs),
}

/// `ledger incident show`
#[derive(Args, Debug)]
pub struct IncidentShowArgs {
    /// the incident (the entries' subject), e.g. INC-7
    pub subject: String,
    /// read the log as it was at this tree size (a kept history checkpoint; default: the latest)
    #[arg(long, value_name = "SIZE")]
    pub as_of: Option<u64>,
}

/// `ledger incident pack`
#[derive(Args, Debug)]
pub struct IncidentPackArgs {
    /// the incident (the entries' subject), e.g. INC-7
    pub subject: String,
    /// the pack's directory (must not exist or be empty)
    #[arg(long)]
    pub out: PathBuf,
    /// prove the entries in the checkpoint of this tree size (a kept history checkpoint; default: the latest)
    #[arg(long, value_name = "SIZE")]
    pub as_of: Option<u64>,
    /// a checkpoint the auditor already trusts: the pack adds the consistency proof from it
    #[arg(long, value_name = "FILE")]
    pub trusted_checkpoint: Option<PathBuf>,
    /// artifacts larger than this go in the pack by their hashes only
    #[arg(long, value_name = "BYTES", default_value_t = 16 << 20)]
    pub max_artifact_bytes: u64,
}

/// `ledger verify-pack`
#[derive(Args, Debug)]
pub struct VerifyPackArgs {
    /// the pack's directory
    pub dir: PathBuf,
    /// a file of trusted vkeys (one per line); repeatable
    #[arg(long = "vkey", value_name = "FILE", required = true)]
    pub vkeys: Vec<PathBuf>,
    /// a checkpoint you trust, instead of the pack's own trusted-checkpoint: the pack's tree must extend it
    #[arg(long, value_name = "FILE")]
    pub trusted_checkpoint: Option<PathBuf>,
    /// the HMAC key file (keyring format) when you hold the shared key: each entry's tag is checked too
    #[arg(long, value_name = "FILE")]
    pub hmac_key: Option<PathBuf>,
}

/// `ledger mirror`
#[derive(Args, Debug)]
pub struct MirrorArgs {
    /// the tiles' prefix on ledgerd's HTTP listener: http://HOST:PORT/tlog/LOG
    pub url: String,
    /// the copy (created when missing); a second run fetches only what is new
    pub dir: PathBuf,
    /// a file of trusted vkeys (one per line); repeatable
    #[arg(long = "vkey", value_name = "FILE", required = true)]
    pub vkeys: Vec<PathBuf>,
}

/// `ledger verify-proof`
#[derive(Args, Debug)]
pub struct VerifyProofArgs {
    /// the .tlog-proof file
    pub file: PathBuf,
    /// a file of trusted vkeys
    #[arg(long = "vkey", value_name = "FILE", required = true)]
    pub vkeys: Vec<PathBuf>,
    /// the entry's payload (JSON file) to check against the leaf's payload hash
    #[arg(long, value_name = "FILE")]
    pub entry: Option<PathBuf>,
    /// a file of witness vkeys (cosignature/v1, or Ed25519 for a witness that signs plain notes),
    /// one per line; repeatable: the checkpoint's cosignatures by them are counted
    #[arg(long = "witness-vkey", value_name = "FILE")]
    pub witness_vkeys: Vec<PathBuf>,
    /// cosignatures required from those witnesses (default: the files' `quorum K` line, the log's
    /// witness_quorum; else all of them)
    #[arg(long, value_name = "K")]
    pub witness_quorum: Option<usize>,
}

/// `ledger admin …`
#[derive(Subcommand, Debug)]
pub enum AdminCmd {
    /// Remove an entry's payload (its hash and every proof stay); writes a `redaction` entry first
    Redact {
        /// the entry whose payload goes
        seq: u64,
        /// why (e.g. "erasure request PRIV-12")
        #[arg(long)]
        reason: String,
    },
    /// Put the policy of the server's config file in force; writes a `policy_reload` entry first
    ReloadPolicy {
        /// why (e.g. "new category for CHG-31")
        #[arg(long)]
        reason: String,
    },
    /// Rebuild the index from the journal at the server's next start; writes a `reindex` entry now
    Reindex {
        /// why
        #[arg(long)]
        reason: String,
    },
    /// Dual control: approve another admin's request (`admin redact`, `keys rotate`, `admin
    /// reload-policy` on a log with dual_control) and carry it out; writes an `approval` entry, then
    /// the action's entry. Run again after a failure, it completes the action (no second approval)
    Approve {
        /// the `admin_request` entry (`ledger approvals pending --category admin_request`)
        seq: u64,
        /// what you checked (e.g. "erasure ticket PRIV-12 verified")
        #[arg(long)]
        reason: String,
    },
}

/// `ledger keys …`
#[derive(Subcommand, Debug)]
pub enum KeysCmd {
    /// Age, expiry and verdict of every key
    Status,
    /// Retire the active keys and make new ones active: the staged pair when there is one (required
    /// on the PostgreSQL store, see `keys stage`), else newly generated keys (written to the log)
    Rotate {
        /// why (e.g. "30-day rotation")
        #[arg(long)]
        reason: String,
    },
    /// The public keys: vkeys to give auditors
    Public,
    /// The log's witness policy: `quorum K` (its witness_quorum) and its witnesses' vkeys, one per
    /// line: the file `verify --witness-vkey` and `verify-proof --witness-vkey` read
    Witnesses,
    /// Create a log's keys before the first start (offline)
    Generate {
        /// the server's data directory
        #[arg(long)]
        data_dir: PathBuf,
        /// the checkpoint origin prefix
        #[arg(long, default_value = "ledger.local")]
        origin_prefix: String,
    },
    /// Stage the keys of the next rotation in the log's keyring (offline): copy the file to every
    /// node of the log, then run `ledger keys rotate` against the leader
    Stage {
        /// the server's data directory
        #[arg(long)]
        data_dir: PathBuf,
    },
}

/// `ledger compliance …`
#[derive(Subcommand, Debug)]
pub enum ComplianceCmd {
    /// pass / warn / fail with reasons
    Check {
        /// which playbook's rules
        #[arg(long, value_enum, default_value_t = Profile::Stage5)]
        profile: Profile,
        /// the checkpoint freshness check warns (it never fails) when the newest entry the latest
        /// checkpoint covers is older than this (e.g. 24h, 7d)
        #[arg(long, default_value = "24h")]
        max_checkpoint_age: String,
        /// evaluate the acceptance rules of this file (`[[policy.rules]]` tables, e.g.
        /// docs/policy/stage5.toml) instead of those in the server's policy
        #[arg(long, value_name = "FILE")]
        rules: Option<PathBuf>,
        /// the acceptance rules only, over the log's first SIZE entries at the time the last of them
        /// was recorded: the verdict the log had then
        #[arg(long, value_name = "SIZE", value_parser = clap::value_parser!(u64).range(1..))]
        as_of: Option<u64>,
    },
}

/// Playbook profile (docs/ARCHITECTURE.md "Design decisions: The playbooks").
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Profile {
    /// the Stage4 operations playbook
    Stage4,
    /// the Stage5 compliance and cost control playbook
    Stage5,
}

#[cfg(test)]
mod tests {
    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
