//! The wasmtime engine shared by every plugin: component model, pooling
//! allocator, epoch interruption driven by a ticker thread, and the one
//! linker that provides the `host` interface and a deny-by-default WASI.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::config::PluginsConfig;

use super::bindings;
use super::state::HostState;

/// One epoch tick: how often a running guest is checked against its call's
/// deadline, so a call that overruns is stopped at most this much late.
/// Each tick wakes a thread; at 1 ms that thread alone took ~7% of the
/// gateway's CPU under load on two cores.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Limits applied to every instance and call.
#[derive(Debug, Clone)]
pub struct Limits {
    pub call_deadline: Duration,
    /// Audit sinks' `deliver`: off the data path, often doing I/O.
    pub sink_deadline: Duration,
    /// `init` may build tables from its config: it gets a longer budget.
    pub init_deadline: Duration,
    pub memory_bytes: usize,
    pub reuse_instances: bool,
    pub max_idle_instances: usize,
}

impl Limits {
    pub fn from_config(c: &PluginsConfig) -> Self {
        let call_deadline = Duration::from_millis(c.call_deadline_ms);
        Self {
            call_deadline,
            sink_deadline: Duration::from_millis(c.sink_call_deadline_ms),
            init_deadline: (call_deadline * 20).max(Duration::from_secs(1)),
            memory_bytes: (c.memory_limit_mib as usize) << 20,
            reuse_instances: c.reuse_instances,
            max_idle_instances: c.max_idle_instances,
        }
    }
}

pub struct Runtime {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<HostState>,
    pub(crate) limits: Limits,
    _ticker: EpochTicker,
}

impl Runtime {
    pub fn new(c: &PluginsConfig) -> anyhow::Result<Arc<Self>> {
        let limits = Limits::from_config(c);
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);

        // Several core instances, memories and tables per component (a
        // Rust guest has one of each, interpreters have more); the pool sizes
        // bound the whole gateway's live instances.
        let n = c.max_instances;
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(n)
            .total_core_instances(n.saturating_mul(4))
            .total_memories(n.saturating_mul(2))
            .total_tables(n.saturating_mul(2))
            .total_stacks(n)
            .max_memory_size(limits.memory_bytes);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));

        let engine = Engine::new(&config).map_err(|e| anyhow::anyhow!("wasmtime engine: {e}"))?;
        let mut linker = Linker::<HostState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| anyhow::anyhow!("linking WASI: {e}"))?;
        // Linked for every plugin so that a component importing wasi:http
        // loads; each request is refused unless the plugin has a grant.
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
            .map_err(|e| anyhow::anyhow!("linking wasi:http: {e}"))?;
        // The three worlds import the same `host` and `types` interfaces.
        bindings::guardrail::Guardrail::add_to_linker::<HostState, HasSelf<HostState>>(
            &mut linker,
            |s| s,
        )
        .map_err(|e| anyhow::anyhow!("linking sluice:plugin/host: {e}"))?;

        let ticker = EpochTicker::start(engine.clone())
            .map_err(|e| anyhow::anyhow!("cannot start the epoch ticker thread: {e}"))?;
        Ok(Arc::new(Self {
            engine,
            linker,
            limits,
            _ticker: ticker,
        }))
    }
}

/// Advances the engine's epoch every tick until dropped.
struct EpochTicker {
    stop: Arc<AtomicBool>,
}

impl EpochTicker {
    /// Without the ticker no deadline would ever fire, so failing to start
    /// it fails the runtime: plugins never run unbounded.
    fn start(engine: Engine) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        thread::Builder::new()
            .name("sluice-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })?;
        Ok(Self { stop })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
