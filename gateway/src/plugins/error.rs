//! Plugin-layer errors. Two families, kept apart on purpose: a plugin that
//! could not be *loaded* (the previous generation keeps serving) and a call
//! that did not produce an answer (the kind's failure policy applies). A deny
//! verdict is neither: it is the plugin working as intended.

/// Why a plugin file was not activated.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PluginError {
    #[error("cannot read {path}: {message}")]
    Read { path: String, message: String },
    #[error("not WebAssembly: {0}")]
    NotWasm(String),
    #[error(
        "a core WebAssembly module, not a component: build for wasm32-wasip2 or wrap it with `wasm-tools component new`"
    )]
    CoreModule,
    #[error("invalid component: {0}")]
    Compile(String),
    #[error("matches no sluice:plugin@0.1 world: {0}")]
    NoWorld(String),
    #[error("imports something the gateway does not provide: {0}")]
    UnsatisfiedImport(String),
    #[error("cannot grant its capabilities: {0}")]
    Grant(String),
    #[error("failed to instantiate: {0}")]
    Instantiate(String),
    #[error("init rejected its configuration: {0}")]
    ConfigRejected(String),
    #[error("init failed: {0}")]
    InitFailed(CallFailure),
    /// Connections list a plugin for its role: a file of another kind under
    /// the same name would silently take a guardrail or masker out of their
    /// chains.
    #[error(
        "it is a {now} plugin, but this name was loaded as a {was}, the role connections list it in; \
         give a plugin of another kind a name of its own"
    )]
    KindChanged {
        was: super::PluginKind,
        now: super::PluginKind,
    },
}

/// Why one call produced no usable answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallFailure {
    #[error("exceeded its {0} ms deadline")]
    Deadline(u64),
    #[error("exceeded its {0} MiB memory limit")]
    OutOfMemory(u64),
    #[error("overflowed its stack")]
    StackOverflow,
    #[error("trapped: {0}")]
    Trap(String),
    #[error("returned an error: {0}")]
    Returned(String),
    #[error("could not be instantiated: {0}")]
    Unavailable(String),
}

impl CallFailure {
    /// A short, stable label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            CallFailure::Deadline(_) => "deadline",
            CallFailure::OutOfMemory(_) => "out_of_memory",
            CallFailure::StackOverflow => "stack_overflow",
            CallFailure::Trap(_) => "trap",
            CallFailure::Returned(_) => "error",
            CallFailure::Unavailable(_) => "unavailable",
        }
    }

    /// Whether the instance that failed may be reused: only when the guest
    /// returned normally. After a trap its memory may be in any state.
    pub(crate) fn instance_reusable(&self) -> bool {
        matches!(self, CallFailure::Returned(_))
    }
}

impl PluginError {
    pub fn label(&self) -> &'static str {
        match self {
            PluginError::Read { .. } => "read",
            PluginError::NotWasm(_) => "not_wasm",
            PluginError::CoreModule => "core_module",
            PluginError::Compile(_) => "compile",
            PluginError::NoWorld(_) => "no_world",
            PluginError::UnsatisfiedImport(_) => "unsatisfied_import",
            PluginError::Grant(_) => "grant",
            PluginError::Instantiate(_) => "instantiate",
            PluginError::ConfigRejected(_) => "config_rejected",
            PluginError::InitFailed(_) => "init_failed",
            PluginError::KindChanged { .. } => "kind_changed",
        }
    }
}
