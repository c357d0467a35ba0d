//! `pii-mask`: a masker that finds personal data and secrets in result rows
//! and HTTP bodies and redacts, partially shows, pseudonymises or nulls
//! them, by column rules and by content.
//!
//! Rows: a cell of a column that a column rule names is masked whole; any
//! other cell of a text-like column is scanned (json/jsonb cells string by
//! string); cells of other types are left alone. Bodies: see [`body`].
//! Every masked value is counted per entity in the answer's `detections`.
//!
//! The configuration reference is in the repository README (section
//! "pii-mask"); `examples/pii-mask.toml` is a working example.

pub mod body;
pub mod config;
pub mod detect;
pub mod entity;
pub mod json;
pub mod mask;

use sluice_plugin_sdk::types::{
    CellEdit, Column, Detection, HttpBody, MaskedBody, MaskedRows, Row, Session,
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
    Rule {
        label: usize,
        strategy: Strategy,
        value: ValueKind,
    },
}

/// How a replacement fits the column's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ValueKind {
    Text,
    Json,
    /// Numbers, dates, … and binary cells of non-text types: a replacement
    /// string would not parse as the type, so every strategy writes NULL.
    Other,
}

fn is_json(column: &Column) -> bool {
    let by_name = column.type_name.as_deref().is_some_and(|t| {
        let bare = t.rsplit('.').next().unwrap_or(t);
        bare.eq_ignore_ascii_case("json") || bare.eq_ignore_ascii_case("jsonb")
    });
    by_name || matches!(column.type_oid, 114 | 3802)
}

impl PiiMask {
    fn plan(&self, column: &Column, exempt: u64, entities: u64) -> Plan {
        let value = if is_json(column) {
            ValueKind::Json
        } else if column.is_text_like() {
            ValueKind::Text
        } else {
            ValueKind::Other
        };
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
                ValueKind::Other => Plan::Skip,
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
                    Plan::Rule {
                        label,
                        strategy,
                        value: kind,
                    } => match kind {
                        ValueKind::Other => {
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

fn index(i: usize) -> Result<u32, MaskError> {
    u32::try_from(i).map_err(|_| MaskError::Index(i))
}

impl Masker for PiiMask {
    type Config = Config;

    fn new(config: Config) -> Result<Self, String> {
        let settings = Settings::new(config).map_err(|e| format!("pii-mask: {e}"))?;
        Ok(PiiMask { settings })
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
        let entities = self.settings.detect & !self.settings.exempt_labels(session);
        if entities == 0 {
            return Ok(MaskedBody::unchanged());
        }
        let mut engine = Engine::new(&self.settings.masking, entities);
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
