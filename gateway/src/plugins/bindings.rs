//! Host-side bindings of the `sluice:plugin` WIT package, one module per world.
//!
//! The worlds share the `types` and `host` interfaces; the other
//! worlds' bindings reuse the guardrail bindings' modules for them so that a
//! `Session` built once can be handed to every kind of plugin.

pub mod guardrail {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "guardrail",
        exports: { default: async },
        // Result columns are keys of the relay's per-session cache.
        additional_derives: [PartialEq, Eq],
    });
}

pub mod selective_guardrail {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "selective-guardrail",
        exports: { default: async },
        with: {
            "sluice:plugin/types": super::guardrail::sluice::plugin::types,
            "sluice:plugin/host": super::guardrail::sluice::plugin::host,
        },
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

pub mod column_masker {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "column-masker",
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
