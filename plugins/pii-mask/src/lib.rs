//! `pii-mask`: a masker that finds personal data and secrets in result rows
//! and HTTP bodies and redacts, partially shows, pseudonymises or nulls
//! them, by column rules and by content.
//!
//! Rows: a cell of a column that a column rule names is masked whole; any
//! other cell of a text-like column is scanned (json/jsonb cells string by
//! string) and edited in place; a cell of another type that could hold
//! text (an array, a composite row, `inet`, an extension type) is scanned
//! and becomes NULL if it holds anything; so does a bytea cell, scanned as
//! the bytes it holds (`email::bytea` is the address in hex); numbers,
//! dates, times, booleans and uuids are not scanned. Bodies: see [`body`];
//! server messages reach the plugin as bodies, where column rules mask the
//! values they name (see [`messages`]). Wherever text is scanned, bytea
//! hex runs in it (`{"\\x6164…"}`) are decoded and scanned too (see
//! [`bytea`]). Every masked value is counted per entity in the answer's
//! `detections`.
//!
//! The configuration reference is in the repository README (section
//! "pii-mask"); `examples/pii-mask.toml` is a working example.

pub mod body;
pub mod bytea;
pub mod config;
pub mod detect;
pub mod entity;
pub mod json;
pub mod mask;
pub mod messages;

use sluice_plugin_sdk::types::{
    CellEdit, Column, Detection, HttpBody, MaskedBody, MaskedRows, Row, Session, ValueFormat,
};
use sluice_plugin_sdk::{Masker, export_masker};

use config::{Config, RuleAction, Settings};
use entity::Counts;
use mask::{Engine, Outcome, Strategy};

pub struct PiiMask {
    settings: Settings,
}

/// Why a batch could not be masked (the gateway then withholds it).
#[derive(Debug, thiserror::Error)]
pub enum MaskError {
    #[error("row {row} has {cells} cells but the result has {columns} columns")]
    RowWidth {
        row: usize,
        cells: usize,
        columns: usize,
    },
    #[error("batch too large: index {0} does not fit in 32 bits")]
    Index(usize),
}

/// What to do with the cells of one column, decided once per batch.
#[derive(Debug, Clone, Copy)]
enum Plan {
    Skip,
    Text,
    Json,
    /// Scanned; a value with anything in it becomes NULL.
    Opaque,
    /// Scanned as the bytes the value holds (the text format's hex
    /// decoded); a value with anything in it becomes NULL.
    Bytes {
        hex_text: bool,
    },
    Rule {
        label: usize,
        strategy: Strategy,
        value: ValueKind,
    },
}

/// What a column's values are, as far as masking goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ValueKind {
    /// Text: edited in place.
    Text,
    /// JSON: edited string by string.
    Json,
    /// Arrays, composite rows, `inet`, extension types, unknown types: they
    /// may hold text, but a replacement string would not parse as the type
    /// (and binary cells cannot be edited), so a value with something in it
    /// becomes NULL.
    Opaque,
    /// bytea: binary data, which may well be text (a cast to bytea turns
    /// any column into one); opaque, once decoded.
    Bytes,
    /// Numbers, dates, times, booleans, uuids: no personal text to find; a
    /// column rule makes them NULL.
    Scalar,
}

/// Built-in types whose values cannot spell personal data in text: bool,
/// "char", int8, int2, int4, oid, xid, float4, float8, money, date, time,
/// timestamp, timestamptz, interval, timetz, bit, varbit, numeric, uuid,
/// pg_lsn, xid8.
const SCALAR_OIDS: [u32; 22] = [
    16, 18, 20, 21, 23, 26, 28, 700, 701, 790, 1082, 1083, 1114, 1184, 1186, 1266, 1560, 1562,
    1700, 2950, 3220, 5069,
];

const BYTEA: u32 = 17;

fn kind(column: &Column) -> ValueKind {
    let bare = column
        .type_name
        .as_deref()
        .map(|t| t.rsplit('.').next().unwrap_or(t));
    let name_is = |n: &str| bare.is_some_and(|t| t.eq_ignore_ascii_case(n));
    if name_is("json") || name_is("jsonb") || matches!(column.type_oid, 114 | 3802) {
        ValueKind::Json
    } else if column.is_text_like() {
        ValueKind::Text
    } else if column.type_oid == BYTEA || name_is("bytea") {
        ValueKind::Bytes
    } else if SCALAR_OIDS.contains(&column.type_oid) {
        ValueKind::Scalar
    } else {
        ValueKind::Opaque
    }
}

impl PiiMask {
    fn plan(&self, column: &Column, exempt: u64, entities: u64) -> Plan {
        let value = kind(column);
        match self.settings.rule_for(column, exempt) {
            Some(rule) => match rule.action {
                RuleAction::Keep => Plan::Skip,
                RuleAction::Mask(strategy) => Plan::Rule {
                    label: rule.label,
                    strategy,
                    value,
                },
            },
            None if entities == 0 => Plan::Skip,
            None => match value {
                ValueKind::Json => Plan::Json,
                ValueKind::Text => Plan::Text,
                ValueKind::Opaque => Plan::Opaque,
                ValueKind::Bytes => Plan::Bytes {
                    hex_text: column.format == ValueFormat::Text,
                },
                ValueKind::Scalar => Plan::Skip,
            },
        }
    }

    fn detections(&self, counts: &Counts) -> Vec<Detection> {
        let labels = &self.settings.masking.labels;
        counts
            .nonzero()
            .map(|(id, n)| Detection::new(labels.name(id), n))
            .collect()
    }

    fn mask_batch(
        &self,
        session: &Session,
        columns: &[Column],
        rows: &[Row],
    ) -> Result<MaskedRows, MaskError> {
        let exempt = self.settings.exempt_labels(session);
        let entities = self.settings.detect & !exempt;
        let plans: Vec<Plan> = columns
            .iter()
            .map(|c| self.plan(c, exempt, entities))
            .collect();
        if plans.iter().all(|p| matches!(p, Plan::Skip)) {
            return Ok(MaskedRows::unchanged());
        }
        let mut engine = Engine::new(&self.settings.masking, entities);
        let mut edits = Vec::new();
        let mut out = Vec::new();
        // A text-format bytea's bytes, decoded here cell after cell.
        let mut decoded = Vec::new();
        for (r, row) in rows.iter().enumerate() {
            if row.len() != columns.len() {
                return Err(MaskError::RowWidth {
                    row: r,
                    cells: row.len(),
                    columns: columns.len(),
                });
            }
            for (c, (cell, plan)) in row.iter().zip(&plans).enumerate() {
                let Some(value) = cell.as_deref() else {
                    continue;
                };
                let outcome = match *plan {
                    Plan::Skip => continue,
                    Plan::Text => engine.text(value, true, &mut out),
                    Plan::Json => json::mask(&mut engine, value, &mut out),
                    Plan::Opaque => found_is_null(engine.text(value, true, &mut out), &mut out),
                    Plan::Bytes { hex_text } => {
                        let bytes = if hex_text && bytea::whole(value, &mut decoded) {
                            &decoded[..]
                        } else {
                            value
                        };
                        found_is_null(engine.text(bytes, true, &mut out), &mut out)
                    }
                    Plan::Rule {
                        label,
                        strategy,
                        value: kind,
                    } => match kind {
                        ValueKind::Opaque | ValueKind::Bytes | ValueKind::Scalar => {
                            engine.whole(label, Strategy::Null, value, true, &mut out)
                        }
                        ValueKind::Json => {
                            json::whole(&mut engine, label, strategy, value, &mut out)
                        }
                        ValueKind::Text => engine.whole(label, strategy, value, true, &mut out),
                    },
                };
                let (row, column) = (index(r)?, index(c)?);
                match outcome {
                    Outcome::Unchanged => {}
                    Outcome::Null => edits.push(CellEdit::null(row, column)),
                    Outcome::Replaced => {
                        edits.push(CellEdit::set(row, column, std::mem::take(&mut out)));
                    }
                }
            }
        }
        Ok(MaskedRows {
            edits,
            detections: self.detections(&engine.counts),
        })
    }
}

/// A value that cannot take a replacement: NULL when anything was found.
fn found_is_null(outcome: Outcome, out: &mut Vec<u8>) -> Outcome {
    match outcome {
        Outcome::Unchanged => Outcome::Unchanged,
        Outcome::Replaced | Outcome::Null => {
            out.clear();
            Outcome::Null
        }
    }
}

/// The value of one hexadecimal digit.
pub(crate) fn hex_digit(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

fn index(i: usize) -> Result<u32, MaskError> {
    u32::try_from(i).map_err(|_| MaskError::Index(i))
}

impl Masker for PiiMask {
    type Config = Config;

    fn new(config: Config) -> Result<Self, String> {
        let settings = Settings::new(config).map_err(|e| format!("pii-mask: {e}"))?;
        Ok(PiiMask { settings })
    }

    fn masks_column(&self, session: &Session, column: &Column) -> bool {
        let exempt = self.settings.exempt_labels(session);
        let entities = self.settings.detect & !exempt;
        !matches!(self.plan(column, exempt, entities), Plan::Skip)
    }

    fn mask_rows(
        &self,
        session: &Session,
        columns: &[Column],
        rows: &[Row],
    ) -> Result<MaskedRows, String> {
        self.mask_batch(session, columns, rows)
            .map_err(|e| format!("pii-mask: {e}"))
    }

    fn mask_body(&self, session: &Session, body: &HttpBody) -> Result<MaskedBody, String> {
        let exempt = self.settings.exempt_labels(session);
        let entities = self.settings.detect & !exempt;
        let rules = messages::Rules::new(&self.settings.rules, exempt);
        if entities == 0 && rules.is_none() {
            return Ok(MaskedBody::unchanged());
        }
        let mut engine = Engine::new(&self.settings.masking, entities);
        // Server messages name column values (`Key (ssn)=(…)`) that column
        // rules mask; a body can be one.
        engine.messages = rules;
        Ok(
            match body::mask(&mut engine, &body.content_type, &body.body) {
                Some(masked) => MaskedBody::replaced(masked, self.detections(&engine.counts)),
                None => MaskedBody::unchanged(),
            },
        )
    }
}

export_masker!(PiiMask);

// `testing` is native-only: these tests need the host target.
#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests;
