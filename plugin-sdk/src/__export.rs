//! Glue between wit-bindgen's generated `Guest` traits and the SDK traits.
//! Not public API: only the export macros below use it.
//!
//! The plugin instance lives in a `static OnceLock` that the macro declares
//! in the plugin's crate; these functions do the work so that the macros stay
//! small.

use std::sync::OnceLock;

use serde::de::DeserializeOwned;

use crate::types::{
    AuditEvent, Column, HttpBody, MaskedBody, MaskedRows, Request, Row, Session, SqlPhase, Verdict,
};
use crate::{AuditSink, Guardrail, Masker};

const NOT_INITIALISED: &str = "plugin used before `init` succeeded";

/// Parses the config and builds the plugin, at most once per instance.
pub fn init<T, C>(
    slot: &OnceLock<T>,
    config_json: &str,
    new: fn(C) -> Result<T, String>,
) -> Result<(), String>
where
    C: DeserializeOwned,
{
    // Checked first so that a repeated init neither builds a second plugin
    // nor runs its constructor's side effects.
    if slot.get().is_some() {
        return Err("init called twice: the plugin is already initialised".to_string());
    }
    let plugin = new(crate::config::parse(config_json)?)?;
    slot.set(plugin)
        .map_err(|_| "init called twice: the plugin is already initialised".to_string())
}

fn get<T>(slot: &OnceLock<T>) -> Result<&T, String> {
    slot.get().ok_or_else(|| NOT_INITIALISED.to_string())
}

pub fn check<T: Guardrail>(
    slot: &OnceLock<T>,
    session: &Session,
    request: &Request,
) -> Result<Verdict, String> {
    get(slot)?.check(session, request)
}

/// Every SQL phase, in the contract's order.
const PHASES: [SqlPhase; 4] = [
    SqlPhase::SimpleQuery,
    SqlPhase::Parse,
    SqlPhase::Bind,
    SqlPhase::FunctionCall,
];

pub fn select_phases<T: Guardrail>(
    slot: &OnceLock<T>,
    session: &Session,
) -> Result<Vec<SqlPhase>, String> {
    let plugin = get(slot)?;
    Ok(PHASES
        .into_iter()
        .filter(|&p| plugin.judges_phase(session, p))
        .collect())
}

pub fn mask_rows<T: Masker>(
    slot: &OnceLock<T>,
    session: &Session,
    columns: &[Column],
    rows: &[Row],
) -> Result<MaskedRows, String> {
    get(slot)?.mask_rows(session, columns, rows)
}

pub fn select_columns<T: Masker>(
    slot: &OnceLock<T>,
    session: &Session,
    columns: &[Column],
) -> Result<Vec<u32>, String> {
    let plugin = get(slot)?;
    let mut selected = Vec::new();
    for (i, column) in columns.iter().enumerate() {
        if plugin.masks_column(session, column) {
            selected.push(u32::try_from(i).map_err(|_| "too many columns".to_string())?);
        }
    }
    Ok(selected)
}

pub fn mask_body<T: Masker>(
    slot: &OnceLock<T>,
    session: &Session,
    body: &HttpBody,
) -> Result<MaskedBody, String> {
    get(slot)?.mask_body(session, body)
}

pub fn deliver<T: AuditSink>(slot: &OnceLock<T>, events: &[AuditEvent]) -> Result<(), String> {
    get(slot)?.deliver(events)
}

// The export macros. Each implements the world's generated `Guest` trait on a
// hidden unit struct and hands it to wit-bindgen's `export!`.
//
// wit-bindgen 0.61 emits the exports as unconditional `#[export_name = "init"]`
// (`"check"`, `"deliver"`, …) C symbols on every target. Natively that puts
// global symbols with generic names into a plugin's test binary and `cdylib`,
// and two plugins linked into one native binary fail with duplicate symbols;
// the exports only mean something in a component, so they are emitted on
// wasm32 only. The `Guest` impl is still compiled everywhere so that
// type errors show up in `cargo test` too.

/// Exports a [`Guardrail`](crate::Guardrail) implementation as the
/// component's `selective-guardrail` world. Use once per crate: `export_guardrail!(MyType);`
#[macro_export]
macro_rules! export_guardrail {
    ($plugin:ty) => {
        const _: () = {
            static PLUGIN: ::std::sync::OnceLock<$plugin> = ::std::sync::OnceLock::new();

            #[allow(dead_code)]
            struct SluiceGuardrail;

            impl $crate::guardrail_world::Guest for SluiceGuardrail {
                fn init(
                    config_json: ::std::string::String,
                ) -> ::std::result::Result<(), ::std::string::String> {
                    $crate::__export::init(
                        &PLUGIN,
                        &config_json,
                        <$plugin as $crate::Guardrail>::new,
                    )
                }

                fn select_phases(
                    session: $crate::types::Session,
                ) -> ::std::result::Result<
                    ::std::vec::Vec<$crate::types::SqlPhase>,
                    ::std::string::String,
                > {
                    $crate::__export::select_phases(&PLUGIN, &session)
                }

                fn check(
                    session: $crate::types::Session,
                    request: $crate::types::Request,
                ) -> ::std::result::Result<$crate::types::Verdict, ::std::string::String> {
                    $crate::__export::check(&PLUGIN, &session, &request)
                }
            }

            #[cfg(target_arch = "wasm32")]
            $crate::guardrail_world::export!(
                SluiceGuardrail with_types_in $crate::guardrail_world
            );
        };
    };
}

/// Exports a [`Masker`](crate::Masker) implementation as the component's
/// `column-masker` world. Use once per crate: `export_masker!(MyType);`
#[macro_export]
macro_rules! export_masker {
    ($plugin:ty) => {
        const _: () = {
            static PLUGIN: ::std::sync::OnceLock<$plugin> = ::std::sync::OnceLock::new();

            #[allow(dead_code)]
            struct SluiceMasker;

            impl $crate::masker_world::Guest for SluiceMasker {
                fn init(
                    config_json: ::std::string::String,
                ) -> ::std::result::Result<(), ::std::string::String> {
                    $crate::__export::init(&PLUGIN, &config_json, <$plugin as $crate::Masker>::new)
                }

                fn select_columns(
                    session: $crate::types::Session,
                    columns: ::std::vec::Vec<$crate::types::Column>,
                ) -> ::std::result::Result<::std::vec::Vec<u32>, ::std::string::String> {
                    $crate::__export::select_columns(&PLUGIN, &session, &columns)
                }

                fn mask_rows(
                    session: $crate::types::Session,
                    columns: ::std::vec::Vec<$crate::types::Column>,
                    rows: ::std::vec::Vec<$crate::types::Row>,
                ) -> ::std::result::Result<$crate::types::MaskedRows, ::std::string::String>
                {
                    $crate::__export::mask_rows(&PLUGIN, &session, &columns, &rows)
                }

                fn mask_body(
                    session: $crate::types::Session,
                    body: $crate::types::HttpBody,
                ) -> ::std::result::Result<$crate::types::MaskedBody, ::std::string::String>
                {
                    $crate::__export::mask_body(&PLUGIN, &session, &body)
                }
            }

            #[cfg(target_arch = "wasm32")]
            $crate::masker_world::export!(
                SluiceMasker with_types_in $crate::masker_world
            );
        };
    };
}

/// Exports an [`AuditSink`](crate::AuditSink) implementation as the
/// component's `audit-sink` world. Use once per crate: `export_audit_sink!(MyType);`
#[macro_export]
macro_rules! export_audit_sink {
    ($plugin:ty) => {
        const _: () = {
            static PLUGIN: ::std::sync::OnceLock<$plugin> = ::std::sync::OnceLock::new();

            #[allow(dead_code)]
            struct SluiceAuditSink;

            impl $crate::audit_sink_world::Guest for SluiceAuditSink {
                fn init(
                    config_json: ::std::string::String,
                ) -> ::std::result::Result<(), ::std::string::String> {
                    $crate::__export::init(
                        &PLUGIN,
                        &config_json,
                        <$plugin as $crate::AuditSink>::new,
                    )
                }

                fn deliver(
                    events: ::std::vec::Vec<$crate::types::AuditEvent>,
                ) -> ::std::result::Result<(), ::std::string::String> {
                    $crate::__export::deliver(&PLUGIN, &events)
                }
            }

            #[cfg(target_arch = "wasm32")]
            $crate::audit_sink_world::export!(
                SluiceAuditSink with_types_in $crate::audit_sink_world
            );
        };
    };
}
