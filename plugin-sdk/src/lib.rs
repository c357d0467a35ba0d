//! Write Sluice gateway plugins in Rust.
//!
//! A plugin is a WebAssembly component for one of the worlds of the
//! `sluice:plugin@0.1.2` contract (`wit/plugin.wit`): a **guardrail** decides
//! whether a request may proceed, a **masker** rewrites results before the
//! agent sees them, an **audit sink** receives audit events. Implement the
//! matching trait ([`Guardrail`], [`Masker`], [`AuditSink`]) on your type,
//! call the matching export macro once, and build with
//! `cargo build --release --target wasm32-wasip2`. The crate needs
//! `crate-type = ["cdylib"]` (add `"rlib"` for integration tests) and
//! depends on this crate and on `serde` (with `derive`) for its config.
//!
//! ```
//! use serde::Deserialize;
//! use sluice_plugin_sdk::types::{Request, Session, Verdict};
//! use sluice_plugin_sdk::{Guardrail, export_guardrail, log};
//!
//! #[derive(Deserialize, Default)]
//! #[serde(default)]
//! struct Config { writer_group: Option<String> }
//!
//! /// Lets only `writer_group` members run statements that are not read-only.
//! struct ReadOnly { config: Config }
//!
//! impl Guardrail for ReadOnly {
//!     type Config = Config;
//!     fn new(config: Config) -> Result<Self, String> { Ok(ReadOnly { config }) }
//!
//!     fn check(&self, session: &Session, request: &Request) -> Result<Verdict, String> {
//!         let Some(sql) = request.sql() else { return Ok(Verdict::allow()) };
//!         if self.config.writer_group.as_deref().is_some_and(|g| session.in_group(g)) {
//!             return Ok(Verdict::allow());
//!         }
//!         match sql.statements.iter().find(|s| !s.is_read_only()) {
//!             Some(s) => {
//!                 log::info(&format!("refusing {}", s.command_tag));
//!                 Ok(Verdict::deny("read-only", format!("{} is not read-only", s.command_tag)))
//!             }
//!             None => Ok(Verdict::allow()),
//!         }
//!     }
//! }
//!
//! export_guardrail!(ReadOnly);
//! # fn main() {
//! #     use sluice_plugin_sdk::{testing, types::StatementKind};
//! #     let plugin = testing::guardrail::<ReadOnly>(serde_json::json!({})).unwrap();
//! #     let drop = testing::sql("DROP TABLE t").statement(|s| s.kind(StatementKind::Ddl).tag("DROP TABLE"));
//! #     let verdict = plugin.check(&testing::session("a", &[]), &drop.build()).unwrap();
//! #     assert_eq!(verdict, Verdict::deny("read-only", "DROP TABLE is not read-only"));
//! # }
//! ```
//!
//! The export macro only emits the component's exports when compiling for
//! wasm32, so the same code also builds natively and the plugin's logic is
//! testable with `cargo test`: [`testing`] builds sessions, requests and rows
//! and instantiates a plugin through the same config path the component uses.
//!
//! The host gives a plugin logging ([`log`]), metrics ([`metrics`]) and a
//! clock ([`clock`]); files, network and environment are denied unless the
//! gateway configuration grants them.

// The generated bindings, one module per world. Only the first generates the
// `types` and `host` interfaces; the others reuse them through `with:` so a
// `Session` is the same Rust type whichever world a plugin targets. They are
// public because the export macros expand in the plugin's crate.
//
// `additional_derives` lets plugin tests compare verdicts and edits.
// `disable_custom_section_link_helpers`: with `pub_export_macro`, each world
// also embeds an imports-only component-type section here, and the helpers
// would force all three into every plugin. The section the export macro
// emits in the plugin already holds its world's imports, so nothing is lost.
// (LTO builds keep the sections anyway; the cost is a few unused type imports
// such as `column` in a guardrail, which hosts ignore.)
#[doc(hidden)]
pub mod guardrail_world {
    // The generated export glue of `select-phases` takes the lowered
    // session record as flat arguments.
    #![allow(clippy::too_many_arguments)]
    wit_bindgen::generate!({
        path: "wit",
        world: "selective-guardrail",
        additional_derives: [PartialEq, Eq],
        pub_export_macro: true,
        disable_custom_section_link_helpers: true,
        default_bindings_module: "sluice_plugin_sdk::guardrail_world",
    });
}

#[doc(hidden)]
pub mod masker_world {
    wit_bindgen::generate!({
        path: "wit",
        world: "column-masker",
        with: {
            "sluice:plugin/types@0.1.2": crate::guardrail_world::sluice::plugin::types,
            "sluice:plugin/host@0.1.2": crate::guardrail_world::sluice::plugin::host,
        },
        pub_export_macro: true,
        disable_custom_section_link_helpers: true,
        default_bindings_module: "sluice_plugin_sdk::masker_world",
    });
}

#[doc(hidden)]
pub mod audit_sink_world {
    wit_bindgen::generate!({
        path: "wit",
        world: "audit-sink",
        with: {
            "sluice:plugin/types@0.1.2": crate::guardrail_world::sluice::plugin::types,
            "sluice:plugin/host@0.1.2": crate::guardrail_world::sluice::plugin::host,
        },
        pub_export_macro: true,
        disable_custom_section_link_helpers: true,
        default_bindings_module: "sluice_plugin_sdk::audit_sink_world",
    });
}

mod config;
mod host;
mod plugin;
pub mod types;

#[doc(hidden)]
pub mod __export;

#[cfg(not(target_arch = "wasm32"))]
pub mod testing;

pub use config::NoConfig;
pub use host::{clock, log, metrics};
pub use plugin::{AuditSink, Guardrail, Masker};
