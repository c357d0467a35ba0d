//! The plugin runtime: sandboxed WASI components that decide on requests
//! (guardrails), transform results (maskers) and receive audit events
//! (audit sinks), hot-reloaded from the plugin directory.

pub mod bindings;
mod chain;
mod error;
mod outbound;
mod phases;
mod plugin;
mod registry;
mod reload;
mod runtime;
mod sandbox;
mod state;

pub(crate) use chain::MAX_ENTITY_LABELS;
pub use chain::{
    ApprovalNeeded, Chain, Decision, MaskReport, Refusal, RefusalCause, Selection, TextsError,
};
pub use error::{CallFailure, PluginError};
pub use outbound::{BadDestination, GRANTS_ENV, HttpDestination, HttpRequestDenied};
pub use phases::PhaseSelections;
pub use plugin::{Inspection, Plugin, PluginKind, PluginSpec, compile};
pub use registry::{MAX_COMPONENT_BYTES, PluginHost, PluginStatus, plugin_name};
pub use reload::watch;
pub use runtime::{Limits, Runtime};
