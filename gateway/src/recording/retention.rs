//! Retention: recordings of finished sessions older than `max_age`, then
//! the oldest beyond `max_total_bytes`, are deleted. The audit log is not
//! touched; each pass that deletes something appends a `recording.pruned`
//! record naming every deleted recording with its size and SHA-256, so the
//! chain still accounts for what existed.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;
use sha2::{Digest, Sha256};

use super::read::{self, Filter};
use super::{Recorder, now_ms};
use crate::audit::{Event, kinds};

/// One deleted recording.
#[derive(Debug, Clone)]
pub struct Pruned {
    pub id: String,
    pub bytes: u64,
    pub sha256: String,
    pub started_ms: u64,
    pub ended_ms: u64,
    pub reason: &'static str,
}

/// One retention pass; returns what it deleted.
pub fn prune(recorder: &Recorder) -> Vec<Pruned> {
    let Some(shared) = recorder.shared() else {
        return Vec::new();
    };
    let Ok(max_age) = shared.config.max_age_duration() else {
        return Vec::new();
    };
    let all = match read::list(&shared.dir, &Filter::default()) {
        Ok(all) => all,
        Err(e) => {
            tracing::warn!("retention: {e}");
            return Vec::new();
        }
    };
    let now = now_ms();
    let cutoff = now.saturating_sub(u64::try_from(max_age.as_millis()).unwrap_or(u64::MAX));
    let mut total: u64 = all.iter().map(|s| s.bytes).sum();
    // Oldest finished first; live sessions are never candidates.
    let mut finished: Vec<_> = all
        .into_iter()
        .filter(|s| !s.live() && !shared.live.contains(&s.id))
        .collect();
    finished.sort_by_key(|s| s.ended_ms.unwrap_or(0));
    let mut pruned = Vec::new();
    for s in finished {
        let ended = s.ended_ms.unwrap_or(0);
        let reason = if ended < cutoff {
            "max_age"
        } else if total > shared.config.max_total_bytes {
            "max_total_bytes"
        } else {
            continue;
        };
        let path: PathBuf = shared.dir.join(format!("{}.jsonl", s.id));
        let digest = match std::fs::read(&path) {
            Ok(bytes) => hex_digest(&bytes),
            Err(e) => {
                tracing::warn!("retention: {}: {e}", path.display());
                continue;
            }
        };
        if let Err(e) = std::fs::remove_file(&path) {
            tracing::warn!("retention: cannot delete {}: {e}", path.display());
            continue;
        }
        total = total.saturating_sub(s.bytes);
        pruned.push(Pruned {
            id: s.id,
            bytes: s.bytes,
            sha256: digest,
            started_ms: s.started_ms,
            ended_ms: ended,
            reason,
        });
    }
    if !pruned.is_empty() {
        metrics::counter!("sluice_recordings_pruned_total").increment(pruned.len() as u64);
        let list: Vec<_> = pruned
            .iter()
            .map(|p| {
                json!({
                    "session_id": p.id,
                    "bytes": p.bytes,
                    "sha256": p.sha256,
                    "started_ms": p.started_ms,
                    "ended_ms": p.ended_ms,
                    "reason": p.reason,
                })
            })
            .collect();
        tracing::info!(recordings = pruned.len(), "retention deleted recordings");
        shared.audit.emit(
            Event::new(kinds::RECORDING_PRUNED)
                .with("recordings", list)
                .with("max_age", shared.config.max_age.clone())
                .with("max_total_bytes", shared.config.max_total_bytes),
        );
    }
    pruned
}

fn hex_digest(bytes: &[u8]) -> String {
    crate::audit::event::hex(&Sha256::digest(bytes))
}

/// Runs retention at start and every `prune_interval_secs` until dropped.
pub fn spawn(recorder: Recorder) -> Option<tokio::task::JoinHandle<()>> {
    let interval = Duration::from_secs(recorder.config()?.prune_interval_secs);
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        loop {
            tick.tick().await;
            let r = recorder.clone();
            let _ = tokio::task::spawn_blocking(move || prune(&r)).await;
        }
    }))
}
