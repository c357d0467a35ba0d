//! Hot reload: file-system events on the plugin directory trigger a rescan
//! after a short quiet period; a periodic rescan covers file systems whose
//! events are unreliable (network mounts, some container overlays).

use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::registry::PluginHost;

/// Quiet time after the last event before scanning, so that a file being
/// copied in is read once it is complete.
const DEBOUNCE: Duration = Duration::from_millis(150);
/// Rescan period when events work, and when they do not.
const SAFETY_SCAN: Duration = Duration::from_secs(5);
const POLL_SCAN: Duration = Duration::from_millis(750);

/// Scans the directory once, then keeps the active set in line with it until
/// the returned task is aborted.
pub fn watch(host: Arc<PluginHost>) -> JoinHandle<()> {
    tokio::spawn(async move {
        host.rescan().await;
        let (tx, mut rx) = mpsc::channel::<()>(1);
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            if event.is_ok() {
                // A full channel already means "rescan pending".
                let _ = tx.try_send(());
            }
        })
        .and_then(|mut w| w.watch(host.dir(), RecursiveMode::NonRecursive).map(|_| w));
        let period = match &watcher {
            Ok(_) => SAFETY_SCAN,
            Err(e) => {
                tracing::warn!(dir = %host.dir().display(), "file events unavailable ({e}); polling the plugin directory");
                POLL_SCAN
            }
        };
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                Some(()) = rx.recv() => {
                    while let Ok(Some(())) = tokio::time::timeout(DEBOUNCE, rx.recv()).await {}
                }
                _ = tick.tick() => {}
            }
            host.rescan().await;
        }
    })
}
