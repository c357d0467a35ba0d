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

/// Bounds on what a guardrail's verdict (or a failing plugin's error) puts
/// into the client's error, the audit log, the recording and the gateway's
/// log. A plugin that echoes the request into its reason would otherwise let
/// an agent multiply every write by the size of its statement.
pub(crate) const MAX_REASON_BYTES: usize = 2048;
pub(crate) const MAX_RULE_BYTES: usize = 128;
pub(crate) const MAX_APPROVER_GROUPS: usize = 32;

/// Plugin-supplied text as the gateway passes it on: control characters
/// (line breaks, NUL, escape) written as escapes, so that it cannot forge
/// lines in the text log or a terminal, and cut to `max` bytes with a note.
pub(crate) fn guest_text(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max) + 24);
    for (i, c) in text.char_indices() {
        if out.len() >= max {
            out.push_str(&format!("… (cut at {i} of {} bytes)", text.len()));
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_text_is_escaped_and_bounded() {
        assert_eq!(
            guest_text("no\nforged\r\0line\x1b[31m", 100),
            "no\\nforged\\r\\u{0}line\\u{1b}[31m"
        );
        assert_eq!(guest_text("plain ünïcode", 100), "plain ünïcode");
        let cut = guest_text(&"é".repeat(3000), 2048);
        assert!(cut.starts_with("éé"));
        assert!(cut.ends_with("… (cut at 2048 of 6000 bytes)"), "{cut}");
        assert!(cut.len() < 2100);
    }
}
