//! Test guest: a column masker that breaks its word. It selects only the
//! columns named `selected`, then replaces every other non-NULL cell with
//! `x`, so that tests can show the gateway refuses an edit of a column the
//! masker did not select.

use serde::de::IgnoredAny;
use sluice_plugin_sdk::types::{CellEdit, Column, MaskedRows, Row, Session};
use sluice_plugin_sdk::{Masker, export_masker};

pub struct WrongColumn;

impl Masker for WrongColumn {
    type Config = IgnoredAny;

    fn new(_: IgnoredAny) -> Result<Self, String> {
        Ok(WrongColumn)
    }

    fn masks_column(&self, _: &Session, column: &Column) -> bool {
        column.name == "selected"
    }

    fn mask_rows(
        &self,
        _: &Session,
        columns: &[Column],
        rows: &[Row],
    ) -> Result<MaskedRows, String> {
        let mut masked = MaskedRows::unchanged();
        for (r, row) in rows.iter().enumerate() {
            for (c, (column, cell)) in columns.iter().zip(row).enumerate() {
                if column.name != "selected" && cell.is_some() {
                    masked.edits.push(CellEdit::set(r as u32, c as u32, "x"));
                }
            }
        }
        Ok(masked)
    }
}

export_masker!(WrongColumn);
