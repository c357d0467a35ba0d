//! One loaded plugin generation: its compiled component, the `InstancePre`
//! of the world it targets, and a pool of warm, initialised instances.
//!
//! Every call takes an instance (warm, or instantiated on the spot from the
//! `InstancePre` and `init`-ed), arms the epoch deadline, calls, and returns
//! the instance to the pool only if the guest returned normally.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use metrics::{Counter, Histogram};
use wasmtime::component::Component;
use wasmtime::{Store, StoreLimitsBuilder, UpdateDeadline};

use crate::config::PluginGrants;

use super::bindings::audit_sink::{AuditSink, AuditSinkPre};
use super::bindings::column_masker::{ColumnMasker, ColumnMaskerPre};
use super::bindings::guardrail::{Guardrail, GuardrailPre};
use super::bindings::masker::{Masker, MaskerPre};
use super::bindings::selective_guardrail::{SelectiveGuardrail, SelectiveGuardrailPre};
use super::bindings::types::{
    AuditEvent, Column, HttpBody, MaskedBody, MaskedRows, Request, Session, SqlPhase, Verdict,
};
use super::error::{CallFailure, MAX_REASON_BYTES, PluginError, guest_text};
use super::outbound::{HttpDestination, OutboundHttp};
use super::runtime::{Limits, Runtime};
use super::sandbox::{self, StderrTail};
use super::state::HostState;

/// Which world a component targets, detected from its exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PluginKind {
    Guardrail,
    Masker,
    AuditSink,
}

impl PluginKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PluginKind::Guardrail => "guardrail",
            PluginKind::Masker => "masker",
            PluginKind::AuditSink => "audit-sink",
        }
    }
}

impl std::fmt::Display for PluginKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

enum Pre {
    Guardrail(GuardrailPre<HostState>),
    SelectiveGuardrail(SelectiveGuardrailPre<HostState>),
    Masker(MaskerPre<HostState>),
    ColumnMasker(ColumnMaskerPre<HostState>),
    AuditSink(AuditSinkPre<HostState>),
}

enum Bound {
    Guardrail(Guardrail),
    SelectiveGuardrail(SelectiveGuardrail),
    Masker(Masker),
    ColumnMasker(ColumnMasker),
    AuditSink(AuditSink),
}

struct Instance {
    store: Store<HostState>,
    bound: Bound,
    stderr: StderrTail,
}

struct CallMetrics {
    ok: Counter,
    failed: Counter,
    instantiations: Counter,
    duration: Histogram,
}

impl CallMetrics {
    fn new(name: &str, kind: PluginKind) -> Self {
        let labels = |outcome: &'static str| {
            [
                ("plugin", name.to_string()),
                ("kind", kind.as_str().to_string()),
                ("outcome", outcome.to_string()),
            ]
        };
        Self {
            ok: metrics::counter!("sluice_plugin_calls_total", &labels("ok")),
            failed: metrics::counter!("sluice_plugin_calls_total", &labels("failed")),
            instantiations: metrics::counter!(
                "sluice_plugin_instantiations_total",
                "plugin" => name.to_string()
            ),
            duration: metrics::histogram!(
                "sluice_plugin_call_duration_seconds",
                "plugin" => name.to_string()
            ),
        }
    }
}

/// A plugin generation ready to serve calls. Cheap to share: in-flight calls
/// hold an `Arc` and finish on the generation they started with.
pub struct Plugin {
    name: Arc<str>,
    kind: PluginKind,
    generation: u64,
    digest: String,
    loaded_at: SystemTime,
    pre: Pre,
    config_json: String,
    grants: PluginGrants,
    http_grants: Arc<[HttpDestination]>,
    limits: Limits,
    engine: wasmtime::Engine,
    idle: Mutex<Vec<Instance>>,
    metrics: CallMetrics,
}

/// What a plugin file is, before anything is instantiated.
pub struct Inspection {
    pub kind: PluginKind,
    /// A masker of the `column-masker` world.
    pub selects_columns: bool,
    /// A guardrail of the `selective-guardrail` world.
    pub selects_phases: bool,
    pub exports: Vec<String>,
    pub imports: Vec<String>,
}

/// Compiles a component and finds its world. CPU-heavy: run it off the
/// request path.
pub fn compile(rt: &Runtime, bytes: &[u8]) -> Result<(Component, Inspection), PluginError> {
    match bytes.get(..8) {
        Some([0, b'a', b's', b'm', 1, 0, 0, 0]) => return Err(PluginError::CoreModule),
        Some([0, b'a', b's', b'm', ..]) => {}
        _ => {
            return Err(PluginError::NotWasm(
                "the file does not start with the WebAssembly magic bytes".into(),
            ));
        }
    }
    let component =
        Component::new(&rt.engine, bytes).map_err(|e| PluginError::Compile(format!("{e:#}")))?;
    let ty = component.component_type();
    let exports: Vec<String> = ty.exports(&rt.engine).map(|(n, _)| n.to_string()).collect();
    let imports: Vec<String> = ty.imports(&rt.engine).map(|(n, _)| n.to_string()).collect();
    let has = |n: &str| exports.iter().any(|e| e == n);
    let kind = if has("check") {
        PluginKind::Guardrail
    } else if has("mask-rows") || has("mask-body") {
        PluginKind::Masker
    } else if has("deliver") {
        PluginKind::AuditSink
    } else {
        return Err(PluginError::NoWorld(format!(
            "it exports [{}]; a guardrail exports init and check (and select-phases for a \
             selective guardrail), a masker init, mask-rows and mask-body (and select-columns \
             for a column masker), an audit sink init and deliver",
            exports.join(", ")
        )));
    };
    Ok((
        component,
        Inspection {
            kind,
            selects_columns: kind == PluginKind::Masker && has("select-columns"),
            selects_phases: kind == PluginKind::Guardrail && has("select-phases"),
            exports,
            imports,
        },
    ))
}

/// What the gateway knows about a plugin besides its component.
pub struct PluginSpec {
    pub name: String,
    /// The `[plugins.config.NAME]` table as JSON, handed to `init`.
    pub config_json: String,
    pub grants: PluginGrants,
    pub generation: u64,
    /// SHA-256 of the component file, hex.
    pub digest: String,
}

impl Plugin {
    /// Links a compiled component against its world and proves it works:
    /// one instance is created and `init`-ed with the spec's config, then
    /// kept warm.
    pub async fn activate(
        rt: &Runtime,
        spec: PluginSpec,
        component: &Component,
        inspection: &Inspection,
    ) -> Result<Arc<Plugin>, PluginError> {
        let PluginSpec {
            name,
            config_json,
            grants,
            generation,
            digest,
        } = spec;
        let instance_pre = rt
            .linker
            .instantiate_pre(component)
            .map_err(|e| PluginError::UnsatisfiedImport(format!("{e:#}")))?;
        let no_world = |e: wasmtime::Error| {
            PluginError::NoWorld(format!(
                "its exports do not have the {} world's types: {e:#}",
                inspection.kind
            ))
        };
        let pre = match inspection.kind {
            PluginKind::Guardrail if inspection.selects_phases => {
                Pre::SelectiveGuardrail(SelectiveGuardrailPre::new(instance_pre).map_err(no_world)?)
            }
            PluginKind::Guardrail => {
                Pre::Guardrail(GuardrailPre::new(instance_pre).map_err(no_world)?)
            }
            PluginKind::Masker if inspection.selects_columns => {
                Pre::ColumnMasker(ColumnMaskerPre::new(instance_pre).map_err(no_world)?)
            }
            PluginKind::Masker => Pre::Masker(MaskerPre::new(instance_pre).map_err(no_world)?),
            PluginKind::AuditSink => {
                Pre::AuditSink(AuditSinkPre::new(instance_pre).map_err(no_world)?)
            }
        };
        let plugin = Arc::new(Plugin {
            name: Arc::from(name.as_str()),
            kind: inspection.kind,
            generation,
            digest,
            loaded_at: SystemTime::now(),
            pre,
            config_json,
            http_grants: grants.http.clone().into(),
            grants,
            limits: rt.limits.clone(),
            engine: rt.engine.clone(),
            idle: Mutex::new(Vec::new()),
            metrics: CallMetrics::new(&name, inspection.kind),
        });
        let first = plugin.instantiate().await?;
        plugin.release(first);
        Ok(plugin)
    }

    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn name_arc(&self) -> Arc<str> {
        self.name.clone()
    }
    pub fn kind(&self) -> PluginKind {
        self.kind
    }
    /// A masker that says which columns it may change (`select-columns`).
    pub fn selects_columns(&self) -> bool {
        matches!(self.pre, Pre::ColumnMasker(_))
    }
    /// A guardrail that says which SQL phases it judges (`select-phases`).
    pub fn selects_phases(&self) -> bool {
        matches!(self.pre, Pre::SelectiveGuardrail(_))
    }
    /// The WIT world the component targets.
    pub fn world(&self) -> &'static str {
        match self.pre {
            Pre::ColumnMasker(_) => "column-masker",
            Pre::SelectiveGuardrail(_) => "selective-guardrail",
            _ => self.kind.as_str(),
        }
    }
    pub fn generation(&self) -> u64 {
        self.generation
    }
    pub fn digest(&self) -> &str {
        &self.digest
    }
    pub fn loaded_at(&self) -> SystemTime {
        self.loaded_at
    }
    pub fn config_json(&self) -> &str {
        &self.config_json
    }

    /// A fresh instance with `init` already run.
    async fn instantiate(&self) -> Result<Instance, PluginError> {
        self.metrics.instantiations.increment(1);
        let stderr = StderrTail::default();
        let wasi = sandbox::wasi_ctx(&self.grants, stderr.clone())?;
        let limits = StoreLimitsBuilder::new()
            .memory_size(self.limits.memory_bytes)
            // A failed grow traps at once with a clear cause instead of
            // letting the guest's allocator abort somewhere later.
            .trap_on_grow_failure(true)
            .build();
        let outbound = OutboundHttp::new(self.name.clone(), self.http_grants.clone());
        let mut store = Store::new(
            &self.engine,
            HostState::new(self.name.clone(), wasi, outbound, limits, stderr.clone()),
        );
        store.limiter(|s| &mut s.limits);
        // Every tick lands here while guest code runs: stop the call only
        // once its own deadline has passed, and until then hand the session
        // worker back between ticks. Guest code runs on the worker's thread,
        // so a slow plugin on one connection would otherwise hold every
        // other session on that worker (plugin-less ones too) for its whole
        // call.
        store.epoch_deadline_callback(|store| {
            let state = store.data();
            if Instant::now() >= state.deadline + paused_for(&state.paused) {
                return Ok(UpdateDeadline::Interrupt);
            }
            // The time until the worker resumes the call is other
            // sessions' time, not the call's: on a busy host a fast call
            // that happened to meet a tick would otherwise run out.
            let paused = state.paused.clone();
            Ok(UpdateDeadline::YieldCustom(
                1,
                Box::pin(async move {
                    let since = Instant::now();
                    tokio::task::yield_now().await;
                    let ns = u64::try_from(since.elapsed().as_nanos()).unwrap_or(u64::MAX);
                    paused.fetch_add(ns, Ordering::Relaxed);
                }),
            ))
        });
        arm_deadline(&mut store, self.limits.init_deadline);

        let init_failed = |store: &Store<HostState>, e: wasmtime::Error| {
            PluginError::InitFailed(self.classify(store, e, self.limits.init_deadline))
        };
        let bound = match &self.pre {
            Pre::Guardrail(p) => p.instantiate_async(&mut store).await.map(Bound::Guardrail),
            Pre::SelectiveGuardrail(p) => p
                .instantiate_async(&mut store)
                .await
                .map(Bound::SelectiveGuardrail),
            Pre::Masker(p) => p.instantiate_async(&mut store).await.map(Bound::Masker),
            Pre::ColumnMasker(p) => p
                .instantiate_async(&mut store)
                .await
                .map(Bound::ColumnMasker),
            Pre::AuditSink(p) => p.instantiate_async(&mut store).await.map(Bound::AuditSink),
        }
        .map_err(
            |e| match self.classify(&store, e, self.limits.init_deadline) {
                CallFailure::Trap(msg) => PluginError::Instantiate(msg),
                other => PluginError::InitFailed(other),
            },
        )?;

        let config = self.config_json.as_str();
        let paused = store.data().paused.clone();
        let result = within(self.limits.init_deadline, &paused, async {
            match &bound {
                Bound::Guardrail(b) => b.call_init(&mut store, config).await,
                Bound::SelectiveGuardrail(b) => b.call_init(&mut store, config).await,
                Bound::Masker(b) => b.call_init(&mut store, config).await,
                Bound::ColumnMasker(b) => b.call_init(&mut store, config).await,
                Bound::AuditSink(b) => b.call_init(&mut store, config).await,
            }
        })
        .await;
        match result {
            Ok(Ok(())) => Ok(Instance {
                store,
                bound,
                stderr,
            }),
            Ok(Err(message)) => Err(PluginError::ConfigRejected(guest_text(
                &message,
                MAX_REASON_BYTES,
            ))),
            Err(e) => Err(init_failed(&store, e)),
        }
    }

    async fn acquire(&self) -> Result<Instance, CallFailure> {
        if self.limits.reuse_instances {
            let warm = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
            if let Some(instance) = warm {
                return Ok(instance);
            }
        }
        self.instantiate()
            .await
            .map_err(|e| CallFailure::Unavailable(e.to_string()))
    }

    fn release(&self, instance: Instance) {
        if !self.limits.reuse_instances {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < self.limits.max_idle_instances {
            instance.stderr.clear();
            idle.push(instance);
        }
    }

    /// Turns a wasmtime error from a call into the reason shown to operators.
    fn classify(
        &self,
        store: &Store<HostState>,
        e: wasmtime::Error,
        deadline: Duration,
    ) -> CallFailure {
        let trap = e
            .chain()
            .find_map(|cause| cause.downcast_ref::<wasmtime::Trap>())
            .copied();
        match trap {
            Some(wasmtime::Trap::Interrupt) => {
                return CallFailure::Deadline(deadline.as_millis() as u64);
            }
            Some(wasmtime::Trap::StackOverflow) => return CallFailure::StackOverflow,
            _ => {}
        }
        let cause = e.root_cause().to_string();
        if cause.contains("forcing trap when growing memory") {
            return CallFailure::OutOfMemory((self.limits.memory_bytes >> 20) as u64);
        }
        // A Rust guest keeps large locals on a shadow stack in linear memory;
        // overflowing it faults below address 0 rather than hitting the
        // engine's stack guard.
        let cause = cause.lines().next().unwrap_or("unknown trap").to_string();
        match store.data().stderr_tail() {
            Some(tail) => {
                CallFailure::Trap(guest_text(&format!("{cause} ({tail})"), MAX_REASON_BYTES))
            }
            None => CallFailure::Trap(guest_text(&cause, MAX_REASON_BYTES)),
        }
    }

    /// Runs one call on an instance with the call deadline armed. The
    /// instance goes back to the pool only after a normal return.
    async fn run<R>(
        &self,
        call: impl AsyncFnOnce(&Bound, &mut Store<HostState>) -> wasmtime::Result<Result<R, String>>,
    ) -> Result<R, CallFailure> {
        // A guest call completes without ever returning Pending; a task that
        // only calls plugins would otherwise hold its worker thread forever.
        tokio::task::consume_budget().await;
        let started = Instant::now();
        let mut instance = self.acquire().await?;
        let deadline = match self.kind {
            PluginKind::AuditSink => self.limits.sink_deadline,
            _ => self.limits.call_deadline,
        };
        arm_deadline(&mut instance.store, deadline);
        let paused = instance.store.data().paused.clone();
        let Instance { store, bound, .. } = &mut instance;
        let outcome = match within(deadline, &paused, call(bound, store)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(message)) => Err(CallFailure::Returned(guest_text(
                &message,
                MAX_REASON_BYTES,
            ))),
            Err(e) => Err(self.classify(store, e, deadline)),
        };
        self.metrics
            .duration
            .record(started.elapsed().as_secs_f64());
        match &outcome {
            Ok(_) => {
                self.metrics.ok.increment(1);
                self.release(instance);
            }
            Err(failure) => {
                self.metrics.failed.increment(1);
                tracing::warn!(plugin = %self.name, generation = self.generation, "plugin call failed: {failure}");
                if failure.instance_reusable() {
                    self.release(instance);
                }
            }
        }
        outcome
    }

    fn wrong_kind(&self, wanted: PluginKind) -> CallFailure {
        CallFailure::Unavailable(format!("is a {}, not a {wanted}", self.kind))
    }

    pub async fn check(
        &self,
        session: &Session,
        request: &Request,
    ) -> Result<Verdict, CallFailure> {
        if self.kind != PluginKind::Guardrail {
            return Err(self.wrong_kind(PluginKind::Guardrail));
        }
        self.run(async |bound, store| match bound {
            Bound::Guardrail(g) => g.call_check(store, session, request).await,
            Bound::SelectiveGuardrail(g) => g.call_check(store, session, request).await,
            _ => Ok(Err("instance of the wrong world".into())),
        })
        .await
    }

    /// The SQL phases a selective guardrail judges in `session`; `None`
    /// (every phase) for a guardrail of the plain `guardrail` world, which
    /// is not called for it.
    pub async fn select_phases(
        &self,
        session: &Session,
    ) -> Result<Option<Vec<SqlPhase>>, CallFailure> {
        if self.kind != PluginKind::Guardrail {
            return Err(self.wrong_kind(PluginKind::Guardrail));
        }
        if !self.selects_phases() {
            return Ok(None);
        }
        self.run(async |bound, store| match bound {
            Bound::SelectiveGuardrail(g) => g
                .call_select_phases(store, session)
                .await
                .map(|r| r.map(Some)),
            _ => Ok(Err("instance of the wrong world".into())),
        })
        .await
    }

    pub async fn mask_rows(
        &self,
        session: &Session,
        columns: &[Column],
        rows: &[Vec<Option<Vec<u8>>>],
    ) -> Result<MaskedRows, CallFailure> {
        if self.kind != PluginKind::Masker {
            return Err(self.wrong_kind(PluginKind::Masker));
        }
        self.run(async |bound, store| match bound {
            Bound::Masker(m) => m.call_mask_rows(store, session, columns, rows).await,
            Bound::ColumnMasker(m) => m.call_mask_rows(store, session, columns, rows).await,
            _ => Ok(Err("instance of the wrong world".into())),
        })
        .await
    }

    /// The columns a column masker may change; `None` (every column) for a
    /// masker of the plain `masker` world, which is not called for it.
    pub async fn select_columns(
        &self,
        session: &Session,
        columns: &[Column],
    ) -> Result<Option<Vec<u32>>, CallFailure> {
        if self.kind != PluginKind::Masker {
            return Err(self.wrong_kind(PluginKind::Masker));
        }
        if !self.selects_columns() {
            return Ok(None);
        }
        self.run(async |bound, store| match bound {
            Bound::ColumnMasker(m) => m
                .call_select_columns(store, session, columns)
                .await
                .map(|r| r.map(Some)),
            _ => Ok(Err("instance of the wrong world".into())),
        })
        .await
    }

    pub async fn mask_body(
        &self,
        session: &Session,
        body: &HttpBody,
    ) -> Result<MaskedBody, CallFailure> {
        if self.kind != PluginKind::Masker {
            return Err(self.wrong_kind(PluginKind::Masker));
        }
        self.run(async |bound, store| match bound {
            Bound::Masker(m) => m.call_mask_body(store, session, body).await,
            Bound::ColumnMasker(m) => m.call_mask_body(store, session, body).await,
            _ => Ok(Err("instance of the wrong world".into())),
        })
        .await
    }

    pub async fn deliver(&self, events: &[AuditEvent]) -> Result<(), CallFailure> {
        if self.kind != PluginKind::AuditSink {
            return Err(self.wrong_kind(PluginKind::AuditSink));
        }
        self.run(async |bound, store| match bound {
            Bound::AuditSink(a) => a.call_deliver(store, events).await,
            _ => Ok(Err("instance of the wrong world".into())),
        })
        .await
    }
}

/// Arms both clocks of a call: the epoch deadline stops guest code, the
/// outbound deadline cuts the call's HTTP requests short.
fn arm_deadline(store: &mut Store<HostState>, deadline: Duration) {
    let at = Instant::now() + deadline;
    store.set_epoch_deadline(1);
    let state = store.data_mut();
    state.deadline = at;
    state.paused.store(0, Ordering::Relaxed);
    state.outbound.set_deadline(at);
}

fn paused_for(paused: &AtomicU64) -> Duration {
    Duration::from_nanos(paused.load(Ordering::Relaxed))
}

/// Bounds a call in wall-clock time too, less the time it spent handed back
/// to other sessions (`paused`). Epochs only interrupt guest code: a guest
/// waiting in the host (an HTTP response, a timer) would otherwise hold its
/// caller past the deadline. A call cut off here is reported like an epoch
/// interrupt, and its instance (dropped mid-call) is not reused.
async fn within<R>(
    deadline: Duration,
    paused: &AtomicU64,
    call: impl Future<Output = wasmtime::Result<R>>,
) -> wasmtime::Result<R> {
    let start = tokio::time::Instant::now();
    let mut call = std::pin::pin!(call);
    loop {
        let until = start + deadline + paused_for(paused);
        match tokio::time::timeout_at(until, call.as_mut()).await {
            Ok(result) => return result,
            // Paused meanwhile: the deadline moved.
            Err(_) if start + deadline + paused_for(paused) > tokio::time::Instant::now() => {}
            Err(_) => return Err(wasmtime::Error::new(wasmtime::Trap::Interrupt)),
        }
    }
}
