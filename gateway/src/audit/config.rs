//! `[audit]`: the audit log's durability, checkpoints and sinks.

use serde::Deserialize;

/// When appended records are forced to stable storage (`fdatasync`).
///
/// Every policy hands each group commit to the operating system with
/// `write(2)` before anyone is told the record is in the log, so a crash of
/// the gateway process (including `kill -9`) never loses an acknowledged
/// record. The policies differ on a power loss or kernel crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FsyncPolicy {
    /// Every group commit is synced before its records are acknowledged: a
    /// power loss loses nothing that was acknowledged (as far as the disk
    /// honours cache flushes). Costs one `fdatasync` per group commit.
    Always,
    /// Synced at most `fsync_interval_ms` after being written: a power loss
    /// can lose the records of that window.
    #[default]
    Interval,
    /// Never synced explicitly (checkpoints still are): the kernel writes
    /// back when it likes, typically within 30 s.
    Never,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// Default `interval`. Restart to change.
    #[serde(default)]
    pub fsync: FsyncPolicy,
    /// Default 1000.
    #[serde(default = "d_fsync_interval_ms")]
    pub fsync_interval_ms: u64,
    /// Record statements before forwarding them, and refuse them when that
    /// fails (default true). With false, statement records are queued like
    /// every other event and never delay or refuse a statement.
    #[serde(default = "d_true")]
    pub write_ahead: bool,
    /// How long a write-ahead record may take before the statement is
    /// refused. Default 5000.
    #[serde(default = "d_write_timeout_ms")]
    pub write_timeout_ms: u64,
    /// A signed checkpoint after this many records (default 1000) …
    #[serde(default = "d_checkpoint_records")]
    pub checkpoint_records: u64,
    /// … or this long after the first record not yet checkpointed
    /// (default 10), and at every clean shutdown.
    #[serde(default = "d_checkpoint_interval_secs")]
    pub checkpoint_interval_secs: u64,
    /// A new segment file is started when the current one reaches this
    /// size. Default 32.
    #[serde(default = "d_segment_mib")]
    pub segment_mib: u64,
    /// Statement text kept in a record; longer text is cut and its SHA-256
    /// recorded. Default 65536.
    #[serde(default = "d_max_text_bytes")]
    pub max_text_bytes: usize,
    /// Events waiting for the writer. Beyond it, events that nobody waits
    /// for are dropped (and counted) and write-ahead records fail, so that
    /// statements are refused rather than sent unrecorded. Default 100000.
    #[serde(default = "d_queue_limit")]
    pub queue_limit: usize,
    /// Audit-sink plugins that receive every event. A sink listed only in
    /// a connection's `plugins` receives that connection's events.
    #[serde(default)]
    pub sinks: Vec<String>,
    /// Events per `deliver` call. Default 256.
    #[serde(default = "d_batch_size")]
    pub batch_size: usize,
    /// Delay before retrying a failed delivery, doubled per failure up to
    /// `retry_max_ms`. Defaults 250 and 30000.
    #[serde(default = "d_retry_initial_ms")]
    pub retry_initial_ms: u64,
    #[serde(default = "d_retry_max_ms")]
    pub retry_max_ms: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            fsync: FsyncPolicy::default(),
            fsync_interval_ms: d_fsync_interval_ms(),
            write_ahead: true,
            write_timeout_ms: d_write_timeout_ms(),
            checkpoint_records: d_checkpoint_records(),
            checkpoint_interval_secs: d_checkpoint_interval_secs(),
            segment_mib: d_segment_mib(),
            max_text_bytes: d_max_text_bytes(),
            queue_limit: d_queue_limit(),
            sinks: Vec::new(),
            batch_size: d_batch_size(),
            retry_initial_ms: d_retry_initial_ms(),
            retry_max_ms: d_retry_max_ms(),
        }
    }
}

impl AuditConfig {
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("fsync_interval_ms", self.fsync_interval_ms),
            ("write_timeout_ms", self.write_timeout_ms),
            ("checkpoint_records", self.checkpoint_records),
            ("checkpoint_interval_secs", self.checkpoint_interval_secs),
            ("segment_mib", self.segment_mib),
            ("max_text_bytes", self.max_text_bytes as u64),
            ("queue_limit", self.queue_limit as u64),
            ("batch_size", self.batch_size as u64),
            ("retry_initial_ms", self.retry_initial_ms),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(format!("{name} must be at least 1"));
        }
        if self.retry_max_ms < self.retry_initial_ms {
            return Err("retry_max_ms must not be below retry_initial_ms".into());
        }
        if self.segment_mib > 4096 {
            return Err("segment_mib must be at most 4096".into());
        }
        Ok(())
    }

    pub fn segment_bytes(&self) -> u64 {
        self.segment_mib << 20
    }
}

fn d_true() -> bool {
    true
}
fn d_fsync_interval_ms() -> u64 {
    1000
}
fn d_write_timeout_ms() -> u64 {
    5000
}
fn d_checkpoint_records() -> u64 {
    1000
}
fn d_checkpoint_interval_secs() -> u64 {
    10
}
fn d_segment_mib() -> u64 {
    32
}
fn d_max_text_bytes() -> usize {
    65536
}
fn d_queue_limit() -> usize {
    100_000
}
fn d_batch_size() -> usize {
    256
}
fn d_retry_initial_ms() -> u64 {
    250
}
fn d_retry_max_ms() -> u64 {
    30_000
}
