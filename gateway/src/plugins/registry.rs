//! The set of active plugin generations, and how it changes: a scan of the
//! plugin directory compiles new or changed `NAME.wasm` files off the request
//! path, activates them, and swaps the set atomically. A file that fails
//! leaves the previous generation serving and is reported.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::audit::{Audit, Event, kinds};
use crate::config::PluginsConfig;

use super::error::PluginError;
use super::plugin::{self, Plugin, PluginKind, PluginSpec};
use super::runtime::Runtime;

type Active = HashMap<String, Arc<Plugin>>;

/// Largest component file read; interpreter-based plugins (Python, JS) are
/// tens of MiB, anything far beyond is a mistake or an attack on memory.
pub const MAX_COMPONENT_BYTES: u64 = 256 << 20;

/// What operators see for one plugin name (admin API, `sluice plugin list`).
#[derive(Debug, Clone, Serialize)]
pub struct PluginStatus {
    pub name: String,
    /// `active`, `failed` (never loaded), or `removed`.
    pub state: &'static str,
    pub kind: Option<PluginKind>,
    pub generation: Option<u64>,
    pub sha256: Option<String>,
    pub loaded_at_unix_ms: Option<u64>,
    /// The last load failure; with `state = active` the previous generation
    /// is still serving.
    pub last_error: Option<String>,
    pub last_error_at_unix_ms: Option<u64>,
}

/// Identity of a file version without reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
}

#[derive(Default)]
struct ScanState {
    stamps: HashMap<String, Stamp>,
    /// Digest of the last version that failed, so it is reported once.
    failed: HashMap<String, String>,
}

pub struct PluginHost {
    runtime: Arc<Runtime>,
    config: PluginsConfig,
    active: ArcSwap<Active>,
    status: std::sync::Mutex<BTreeMap<String, PluginStatus>>,
    scan: tokio::sync::Mutex<ScanState>,
    generation: AtomicU64,
    scanned_once: AtomicBool,
    /// Where plugin lifecycle events are recorded, once the gateway set it.
    audit: std::sync::OnceLock<Audit>,
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// `NAME.wasm` with NAME of `[a-z0-9][a-z0-9_-]*`; anything else in the
/// directory (editor backups, `.tmp` files of an atomic copy) is ignored.
pub fn plugin_name(path: &Path) -> Option<String> {
    if path.extension()? != "wasm" {
        return None;
    }
    let stem = path.file_stem()?.to_str()?;
    let mut bytes = stem.bytes();
    let first = bytes.next()?;
    let ok = (first.is_ascii_lowercase() || first.is_ascii_digit())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    (ok && stem.len() <= 64).then(|| stem.to_string())
}

impl PluginHost {
    pub fn new(config: PluginsConfig) -> anyhow::Result<Arc<Self>> {
        let runtime = Runtime::new(&config)?;
        Ok(Arc::new(Self {
            runtime,
            config,
            active: ArcSwap::from_pointee(HashMap::new()),
            status: std::sync::Mutex::new(BTreeMap::new()),
            scan: tokio::sync::Mutex::new(ScanState::default()),
            generation: AtomicU64::new(0),
            scanned_once: AtomicBool::new(false),
            audit: std::sync::OnceLock::new(),
        }))
    }

    /// Records plugin loads, refusals, reloads and removals from now on.
    pub fn set_audit(&self, audit: Audit) {
        let _ = self.audit.set(audit);
    }

    fn record(&self, event: Event) {
        if let Some(audit) = self.audit.get() {
            audit.emit(event);
        }
    }

    pub fn dir(&self) -> &Path {
        &self.config.dir
    }

    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    /// The active generation of a plugin, if any.
    pub fn get(&self, name: &str) -> Option<Arc<Plugin>> {
        self.active.load().get(name).cloned()
    }

    /// Why `name` is not active, for error messages.
    pub fn why_missing(&self, name: &str) -> String {
        let status = self.status.lock().unwrap_or_else(|e| e.into_inner());
        match status.get(name) {
            Some(s) if s.state == "removed" => format!("its file {name}.wasm was removed"),
            Some(PluginStatus {
                last_error: Some(e),
                ..
            }) => format!("it failed to load: {e}"),
            _ if !self.ready() => "the gateway is still loading its plugins".to_string(),
            _ => format!("there is no {name}.wasm in {}", self.config.dir.display()),
        }
    }

    pub fn statuses(&self) -> Vec<PluginStatus> {
        let status = self.status.lock().unwrap_or_else(|e| e.into_inner());
        status.values().cloned().collect()
    }

    /// True once the first scan of the directory has finished.
    pub fn ready(&self) -> bool {
        self.scanned_once.load(Ordering::Acquire)
    }

    /// Compiles and activates one file under `name`, without touching the
    /// active set: the shared path of directory scans and `sluice plugin check`.
    pub async fn load_file(&self, name: &str, path: &Path) -> Result<Arc<Plugin>, PluginError> {
        let bytes = read_component(path).await?;
        self.load_bytes(name, bytes).await
    }

    pub async fn load_bytes(&self, name: &str, bytes: Vec<u8>) -> Result<Arc<Plugin>, PluginError> {
        let digest = hex(&Sha256::digest(&bytes));
        let runtime = self.runtime.clone();
        // Compilation takes milliseconds to seconds of CPU: never on a
        // request-serving task.
        let (component, inspection) =
            tokio::task::spawn_blocking(move || plugin::compile(&runtime, &bytes))
                .await
                .map_err(|e| PluginError::Compile(format!("compiler task failed: {e}")))??;
        let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        let spec = PluginSpec {
            name: name.to_string(),
            config_json: self.config.plugin_config_json(name),
            grants: self.config.grants.get(name).cloned().unwrap_or_default(),
            generation,
            digest,
        };
        Plugin::activate(&self.runtime, spec, &component, &inspection).await
    }

    /// Brings the active set in line with the directory. Scans never overlap.
    pub async fn rescan(&self) {
        let mut scan = self.scan.lock().await;
        let found = match list_dir(&self.config.dir) {
            Ok(found) => found,
            Err(e) => {
                tracing::error!(dir = %self.config.dir.display(), "cannot read the plugin directory: {e}");
                metrics::counter!("sluice_plugin_dir_errors_total").increment(1);
                return;
            }
        };

        for (name, (path, stamp)) in &found {
            if scan.stamps.get(name) == Some(stamp) {
                continue;
            }
            let bytes = match read_component(path).await {
                Ok(b) => b,
                Err(e @ PluginError::Read { .. }) if path.exists() => {
                    scan.stamps.insert(name.clone(), stamp.clone());
                    self.report_failure(name, &e, self.get(name).is_some());
                    continue;
                }
                Err(e) => {
                    // Raced with a delete or rename; the next scan sees the outcome.
                    tracing::debug!(plugin = %name, "{e}");
                    continue;
                }
            };
            scan.stamps.insert(name.clone(), stamp.clone());
            let digest = hex(&Sha256::digest(&bytes));
            let current = self.get(name);
            if current.as_ref().is_some_and(|p| p.digest() == digest) {
                // The active generation's file is back (after a refused
                // replacement): the refusal no longer describes the file.
                if scan.failed.remove(name).is_some() {
                    self.clear_error(name);
                }
                continue;
            }
            if scan.failed.get(name) == Some(&digest) {
                continue;
            }
            let loaded =
                self.load_bytes(name, bytes)
                    .await
                    .and_then(|plugin| match self.known_kind(name) {
                        Some(was) if was != plugin.kind() => Err(PluginError::KindChanged {
                            was,
                            now: plugin.kind(),
                        }),
                        _ => Ok(plugin),
                    });
            match loaded {
                Ok(plugin) => {
                    scan.failed.remove(name);
                    self.install(plugin, current.is_some());
                }
                Err(e) => {
                    scan.failed.insert(name.clone(), digest);
                    self.report_failure(name, &e, current.is_some());
                }
            }
        }

        // Active plugins whose file went, and failed ones whose file went; a
        // `removed` status stays until the file comes back.
        let gone: std::collections::BTreeSet<String> = {
            let active = self.active.load();
            let status = self.status.lock().unwrap_or_else(|e| e.into_inner());
            let failed = status
                .values()
                .filter(|s| s.state != "removed")
                .map(|s| &s.name);
            active
                .keys()
                .chain(failed)
                .filter(|n| !found.contains_key(*n))
                .cloned()
                .collect()
        };
        for name in gone {
            scan.stamps.remove(&name);
            scan.failed.remove(&name);
            self.remove(&name);
        }
        self.scanned_once.store(true, Ordering::Release);
    }

    /// The kind `name` was last active as, removed since or not.
    fn known_kind(&self, name: &str) -> Option<PluginKind> {
        let status = self.status.lock().unwrap_or_else(|e| e.into_inner());
        status.get(name).and_then(|s| s.kind)
    }

    fn install(&self, plugin: Arc<Plugin>, replaced: bool) {
        let name = plugin.name().to_string();
        tracing::info!(
            plugin = %name,
            kind = %plugin.kind(),
            generation = plugin.generation(),
            sha256 = %plugin.digest(),
            "plugin {}",
            if replaced { "reloaded" } else { "loaded" }
        );
        metrics::counter!("sluice_plugin_loads_total", "plugin" => name.clone(), "outcome" => "ok")
            .increment(1);
        self.record(
            Event::new(if replaced {
                kinds::PLUGIN_RELOADED
            } else {
                kinds::PLUGIN_LOADED
            })
            .with("plugin", name.clone())
            .with("plugin_kind", plugin.kind().as_str())
            .with("generation", plugin.generation())
            .with("sha256", plugin.digest()),
        );
        {
            let mut status = self.status.lock().unwrap_or_else(|e| e.into_inner());
            status.insert(
                name.clone(),
                PluginStatus {
                    name: name.clone(),
                    state: "active",
                    kind: Some(plugin.kind()),
                    generation: Some(plugin.generation()),
                    sha256: Some(plugin.digest().to_string()),
                    loaded_at_unix_ms: Some(unix_ms(plugin.loaded_at())),
                    last_error: None,
                    last_error_at_unix_ms: None,
                },
            );
        }
        self.active.rcu(|active| {
            let mut next = Active::clone(active);
            next.insert(name.clone(), plugin.clone());
            next
        });
    }

    fn clear_error(&self, name: &str) {
        let mut status = self.status.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = status.get_mut(name) {
            entry.last_error = None;
            entry.last_error_at_unix_ms = None;
        }
    }

    fn report_failure(&self, name: &str, error: &PluginError, previous_serving: bool) {
        if previous_serving {
            tracing::error!(plugin = %name, reason = error.label(), "plugin file refused, previous generation keeps serving: {error}");
        } else {
            tracing::error!(plugin = %name, reason = error.label(), "plugin file refused: {error}");
        }
        metrics::counter!(
            "sluice_plugin_loads_total",
            "plugin" => name.to_string(),
            "outcome" => "failed",
            "reason" => error.label()
        )
        .increment(1);
        self.record(
            Event::new(kinds::PLUGIN_REFUSED)
                .with("plugin", name)
                .with("reason", error.label())
                .with("error", error.to_string())
                .with("previous_generation_serving", previous_serving),
        );
        let mut status = self.status.lock().unwrap_or_else(|e| e.into_inner());
        let entry = status
            .entry(name.to_string())
            .or_insert_with(|| PluginStatus {
                name: name.to_string(),
                state: "failed",
                kind: None,
                generation: None,
                sha256: None,
                loaded_at_unix_ms: None,
                last_error: None,
                last_error_at_unix_ms: None,
            });
        if !previous_serving {
            entry.state = "failed";
        }
        entry.last_error = Some(error.to_string());
        entry.last_error_at_unix_ms = Some(unix_ms(SystemTime::now()));
    }

    fn remove(&self, name: &str) {
        let was_active = self.get(name).is_some();
        self.active.rcu(|active| {
            let mut next = Active::clone(active);
            next.remove(name);
            next
        });
        let mut status = self.status.lock().unwrap_or_else(|e| e.into_inner());
        if was_active {
            tracing::warn!(plugin = %name, "plugin file removed; connections that use it refuse requests");
            metrics::counter!("sluice_plugin_removals_total", "plugin" => name.to_string())
                .increment(1);
            self.record(Event::new(kinds::PLUGIN_REMOVED).with("plugin", name));
            if let Some(s) = status.get_mut(name) {
                s.state = "removed";
                s.generation = None;
            }
        } else if status.get(name).is_some_and(|s| s.kind.is_some()) {
            // A refused file of another kind went: the name keeps the kind
            // it was active as, or the next file of that other kind would
            // be taken (see `known_kind`).
            if let Some(s) = status.get_mut(name) {
                s.state = "removed";
            }
        } else {
            status.remove(name);
        }
    }
}

async fn read_component(path: &Path) -> Result<Vec<u8>, PluginError> {
    let read_error = |message: String| PluginError::Read {
        path: path.display().to_string(),
        message,
    };
    let len = tokio::fs::metadata(path)
        .await
        .map_err(|e| read_error(e.to_string()))?
        .len();
    if len > MAX_COMPONENT_BYTES {
        return Err(read_error(format!(
            "{len} bytes is larger than the {} MiB limit for a component",
            MAX_COMPONENT_BYTES >> 20
        )));
    }
    tokio::fs::read(path)
        .await
        .map_err(|e| read_error(e.to_string()))
}

fn list_dir(dir: &Path) -> std::io::Result<BTreeMap<String, (PathBuf, Stamp)>> {
    let mut found = BTreeMap::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let Some(name) = plugin_name(&path) else {
            continue;
        };
        // Follows symlinks: a plugin may be a link into a shared store.
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if !meta.is_file() {
            continue;
        }
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(&meta);
        #[cfg(not(unix))]
        let inode = 0;
        let stamp = Stamp {
            len: meta.len(),
            modified: meta.modified().ok(),
            inode,
        };
        found.insert(name, (path, stamp));
    }
    Ok(found)
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_names() {
        assert_eq!(
            plugin_name(Path::new("/p/deny-word.wasm")).as_deref(),
            Some("deny-word")
        );
        assert_eq!(
            plugin_name(Path::new("/p/a_1.wasm")).as_deref(),
            Some("a_1")
        );
        assert_eq!(plugin_name(Path::new("/p/.deny.wasm")), None);
        assert_eq!(plugin_name(Path::new("/p/Deny.wasm")), None);
        assert_eq!(plugin_name(Path::new("/p/deny.wasm.tmp")), None);
        assert_eq!(plugin_name(Path::new("/p/deny")), None);
    }
}
