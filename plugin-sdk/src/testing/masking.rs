//! Result columns, rows and bodies for masker tests.

use crate::types::{Column, HttpBody, MaskedRows, Row, ValueFormat};

/// A text-format `text` column (OID 25) not tied to a table.
pub fn text_column(name: &str) -> Column {
    column(name, 25, Some("text"))
}

/// A text-format column of type `type_oid` (and `type_name` when the gateway
/// would know it).
pub fn column(name: &str, type_oid: u32, type_name: Option<&str>) -> Column {
    Column {
        name: name.into(),
        table_oid: 0,
        table: None,
        column_id: 0,
        type_oid,
        type_name: type_name.map(str::to_string),
        format: ValueFormat::Text,
    }
}

/// Rows of text cells, `None` for NULL: `rows(&[&[Some("a"), None]])`.
pub fn rows(cells: &[&[Option<&str>]]) -> Vec<Row> {
    cells
        .iter()
        .map(|row| {
            row.iter()
                .map(|cell| cell.map(|c| c.as_bytes().to_vec()))
                .collect()
        })
        .collect()
}

/// An HTTP response body with its Content-Type.
pub fn http_body(content_type: &str, body: impl Into<Vec<u8>>) -> HttpBody {
    HttpBody {
        content_type: content_type.into(),
        body: body.into(),
    }
}

/// `rows` after the masker's edits, as the agent would see them. Panics on an
/// edit outside the batch, which is a bug in the masker.
pub fn apply_edits(rows: &[Row], masked: &MaskedRows) -> Vec<Row> {
    let mut rows = rows.to_vec();
    for edit in &masked.edits {
        let cell = rows
            .get_mut(edit.row as usize)
            .and_then(|row| row.get_mut(edit.column as usize))
            .unwrap_or_else(|| {
                panic!(
                    "edit outside the batch: row {}, column {}",
                    edit.row, edit.column
                )
            });
        cell.clone_from(&edit.value);
    }
    rows
}
