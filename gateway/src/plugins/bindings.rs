//! Host-side bindings of the `sluice:plugin` WIT package, one module per world.
//!
//! The three worlds share the `types` and `host` interfaces; the masker and
//! audit-sink bindings reuse the guardrail bindings' modules for them so that a
//! `Session` built once can be handed to every kind of plugin.

pub mod guardrail {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "guardrail",
        exports: { default: async },
    });
}

pub mod masker {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "masker",
        exports: { default: async },
        with: {
            "sluice:plugin/types": super::guardrail::sluice::plugin::types,
            "sluice:plugin/host": super::guardrail::sluice::plugin::host,
        },
    });
}

pub mod audit_sink {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "audit-sink",
        exports: { default: async },
        with: {
            "sluice:plugin/types": super::guardrail::sluice::plugin::types,
            "sluice:plugin/host": super::guardrail::sluice::plugin::host,
        },
    });
}

pub use guardrail::sluice::plugin::host;
pub use guardrail::sluice::plugin::types;
