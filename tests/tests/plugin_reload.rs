//! Hot reload under load: replacing, breaking and removing plugin files while
//! calls run concurrently.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sluice::plugins::{Decision, PluginHost, RefusalCause};
use sluice_tests::{PluginDir, eventually, session, sql};

/// How long a test waits for a reload to show. The latency itself is
/// printed, not asserted: on a loaded machine it measures the machine.
const RELOAD_WAIT: Duration = Duration::from_secs(30);

struct Load {
    stop: Arc<AtomicBool>,
    calls: Arc<AtomicU64>,
    failures: Arc<AtomicU64>,
    denies: Arc<AtomicU64>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Calls the chain `[flip]` from several tasks until stopped. A call fails if
/// it is refused for any reason other than the policy of a loaded plugin.
fn start_load(host: &Arc<PluginHost>, tasks: usize) -> Load {
    let stop = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    let denies = Arc::new(AtomicU64::new(0));
    let handles = (0..tasks)
        .map(|_| {
            let (host, stop, calls, failures, denies) = (
                host.clone(),
                stop.clone(),
                calls.clone(),
                failures.clone(),
                denies.clone(),
            );
            tokio::spawn(async move {
                let who = session("agent-1", &["agents"]);
                let request = sql("select * from customers");
                while !stop.load(Ordering::Relaxed) {
                    let decision = match host.chain(&["flip".into()]) {
                        Ok(chain) => chain.check(&who, &request).await,
                        Err(refusal) => Decision::Deny(refusal),
                    };
                    calls.fetch_add(1, Ordering::Relaxed);
                    match decision {
                        Decision::Allow => {}
                        Decision::Deny(r) if r.cause == RefusalCause::Policy => {
                            denies.fetch_add(1, Ordering::Relaxed);
                        }
                        other => {
                            eprintln!("failed call: {other:?}");
                            failures.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
        })
        .collect();
    Load {
        stop,
        calls,
        failures,
        denies,
        tasks: handles,
    }
}

impl Load {
    async fn finish(self) -> (u64, u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            t.await.unwrap();
        }
        (
            self.calls.load(Ordering::Relaxed),
            self.failures.load(Ordering::Relaxed),
            self.denies.load(Ordering::Relaxed),
        )
    }
}

async fn wait_for_calls(load: &Load, at_least: u64) {
    let ok = eventually(Duration::from_secs(60), async || {
        load.calls.load(Ordering::Relaxed) >= at_least
    })
    .await;
    assert!(ok.is_some(), "load did not reach {at_least} calls");
}

/// A watched plugin directory holding `flip.wasm` = allow-all, loaded.
async fn watched_flip() -> (PluginDir, Arc<PluginHost>, tokio::task::JoinHandle<()>) {
    let dir = PluginDir::new();
    dir.install("flip", "allow-all");
    let host = PluginHost::new(dir.config("")).unwrap();
    let watcher = sluice::plugins::watch(host.clone());
    assert!(
        eventually(RELOAD_WAIT, async || host.get("flip").is_some())
            .await
            .is_some()
    );
    (dir, host, watcher)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replacing_a_plugin_under_load_loses_no_call() {
    let (dir, host, watcher) = watched_flip().await;

    let load = start_load(&host, 8);
    wait_for_calls(&load, 1000).await;
    let before = host.get("flip").unwrap().generation();

    // Replace allow-all by deny-all: the new behaviour shows within the bound.
    let swapped_at = Instant::now();
    dir.install("flip", "deny-all");
    let took = eventually(RELOAD_WAIT, async || {
        load.denies.load(Ordering::Relaxed) > 0
    })
    .await
    .expect("new generation never observed");
    let swap_latency = swapped_at.elapsed();
    eprintln!("new behaviour observed after {took:?} ({swap_latency:?} after the rename)");
    assert!(host.get("flip").unwrap().generation() > before);

    // A broken replacement keeps the deny-all generation and surfaces the error.
    let calls_before_break = load.calls.load(Ordering::Relaxed);
    dir.install_bytes("flip", b"\0asm\x0d\0\x01\0garbage");
    let reported = eventually(RELOAD_WAIT, async || {
        host.statuses()
            .iter()
            .any(|s| s.name == "flip" && s.last_error.is_some())
    })
    .await;
    assert!(reported.is_some(), "broken replacement was not reported");
    let status = host
        .statuses()
        .into_iter()
        .find(|s| s.name == "flip")
        .unwrap();
    assert_eq!(
        status.state, "active",
        "previous generation must keep serving"
    );
    assert!(status.last_error.unwrap().contains("invalid component"));
    wait_for_calls(&load, calls_before_break + 1000).await;

    let (calls, failures, denies) = load.finish().await;
    eprintln!("{calls} calls, {denies} denied by the new generation, {failures} failed");
    assert!(calls >= 2000, "only {calls} calls");
    assert_eq!(failures, 0, "calls failed during reload");
    assert!(matches!(
        host.chain(&["flip".into()])
            .unwrap()
            .check(&session("a", &[]), &sql("select 1"))
            .await,
        Decision::Deny(_)
    ));
    watcher.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_place_rewrites_are_picked_up_too() {
    // `cp new.wasm plugins/flip.wasm` truncates and writes the file in place;
    // a scan may see it half-written, which must never break serving.
    let (dir, host, watcher) = watched_flip().await;
    let load = start_load(&host, 4);
    wait_for_calls(&load, 500).await;
    let bytes = std::fs::read(sluice_tests::built("deny-all")).unwrap();
    std::fs::write(dir.path().join("flip.wasm"), &bytes).unwrap();
    assert!(
        eventually(RELOAD_WAIT, async || load.denies.load(Ordering::Relaxed)
            > 0)
        .await
        .is_some()
    );
    let (_, failures, _) = load.finish().await;
    assert_eq!(failures, 0);
    watcher.abort();
}

#[tokio::test]
async fn in_flight_chains_finish_on_their_generation() {
    let dir = PluginDir::new();
    dir.install("flip", "allow-all");
    let host = dir.host("").await;
    let old_chain = host.chain(&["flip".into()]).unwrap();

    dir.install("flip", "deny-all");
    host.rescan().await;
    let new_chain = host.chain(&["flip".into()]).unwrap();

    let who = session("agent-1", &[]);
    let request = sql("select 1");
    assert!(matches!(
        old_chain.check(&who, &request).await,
        Decision::Allow
    ));
    assert!(matches!(
        new_chain.check(&who, &request).await,
        Decision::Deny(_)
    ));
}

#[tokio::test]
async fn a_removed_plugin_refuses_requests_naming_it() {
    let dir = PluginDir::new();
    dir.install("flip", "allow-all");
    dir.install("other", "allow-all");
    let host = dir.host("").await;
    let names = vec!["other".to_string(), "flip".to_string()];
    assert!(host.chain(&names).is_ok());

    dir.remove("flip");
    host.rescan().await;
    let refusal = host
        .chain(&names)
        .err()
        .expect("chain with a removed plugin");
    assert_eq!(refusal.cause, RefusalCause::MissingPlugin);
    assert_eq!(refusal.plugin, "flip");
    assert!(
        refusal.to_string().contains("flip.wasm was removed"),
        "{refusal}"
    );

    // Never loaded at all.
    let refusal = host.chain(&["ghost".into()]).err().unwrap();
    assert!(
        refusal.to_string().contains("there is no ghost.wasm"),
        "{refusal}"
    );

    // Back again.
    dir.install("flip", "allow-all");
    host.rescan().await;
    assert!(host.chain(&names).is_ok());
}

/// A file of another kind under a loaded plugin's name is refused, so a
/// connection never loses its guardrail (or masker) to a swap: the previous
/// generation keeps serving, and it still does after the file is removed
/// and the other kind comes back.
#[tokio::test]
async fn a_plugin_cannot_change_kind_under_its_name() {
    let dir = PluginDir::new();
    dir.install("gate", "deny-all");
    let host = dir.host("").await;
    let names = vec!["gate".to_string()];
    let who = session("agent-1", &["agents"]);
    let request = sql("select 1");
    let chain = host.chain(&names).unwrap();
    assert!(matches!(
        chain.check(&who, &request).await,
        Decision::Deny(_)
    ));

    dir.install("gate", "mask-email");
    host.rescan().await;
    let status = host
        .statuses()
        .into_iter()
        .find(|s| s.name == "gate")
        .unwrap();
    assert_eq!(status.state, "active", "{status:?}");
    let error = status.last_error.unwrap_or_default();
    assert!(error.contains("loaded as a guardrail"), "{error}");
    let chain = host.chain(&names).unwrap();
    assert!(chain.has_guardrails());
    assert!(matches!(
        chain.check(&who, &request).await,
        Decision::Deny(_)
    ));

    // Removed, then back as a masker: still refused, the chain fails closed.
    dir.remove("gate");
    host.rescan().await;
    dir.install("gate", "mask-email");
    host.rescan().await;
    assert!(host.chain(&names).is_err());
    // However often it goes and comes back.
    for _ in 0..2 {
        dir.remove("gate");
        host.rescan().await;
        dir.install("gate", "mask-email");
        host.rescan().await;
        assert!(host.chain(&names).is_err());
    }
    // The guardrail again: accepted.
    dir.install("gate", "deny-all");
    host.rescan().await;
    let chain = host.chain(&names).unwrap();
    assert!(matches!(
        chain.check(&who, &request).await,
        Decision::Deny(_)
    ));
}
