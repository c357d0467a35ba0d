//! Helpers for maskers: which cells hold text, and building the answer.

use super::{CellEdit, Column, Detection, MaskedBody, MaskedRows, ValueFormat};

/// Type OIDs of PostgreSQL's built-in text-like types: text, varchar, bpchar,
/// name, json, jsonb, xml. (citext is an extension and has no fixed OID.)
const TEXT_LIKE_OIDS: [u32; 7] = [25, 1043, 1042, 19, 114, 3802, 142];

const TEXT_LIKE_NAMES: [&str; 10] = [
    "text",
    "varchar",
    "character varying",
    "bpchar",
    "character",
    "name",
    "json",
    "jsonb",
    "xml",
    "citext",
];

impl ValueFormat {
    pub fn is_text(self) -> bool {
        self == ValueFormat::Text
    }

    pub fn is_binary(self) -> bool {
        self == ValueFormat::Binary
    }
}

impl Column {
    /// The column's type holds free text that may carry personal data, judged
    /// by type name (schema prefix ignored) or, without one, by built-in OID.
    pub fn is_text_like(&self) -> bool {
        if let Some(type_name) = &self.type_name {
            let bare = type_name.rsplit('.').next().unwrap_or(type_name);
            if TEXT_LIKE_NAMES.iter().any(|n| n.eq_ignore_ascii_case(bare)) {
                return true;
            }
        }
        TEXT_LIKE_OIDS.contains(&self.type_oid)
    }

    /// A cell of this column as text: text-format cells of any type and
    /// binary cells of text-like types are UTF-8 (per the contract). `None`
    /// for NULL, for other binary cells and for invalid UTF-8.
    pub fn cell_text<'a>(&self, cell: &'a Option<Vec<u8>>) -> Option<&'a str> {
        let bytes = cell.as_deref()?;
        if self.format.is_text() || self.is_text_like() {
            std::str::from_utf8(bytes).ok()
        } else {
            None
        }
    }
}

impl CellEdit {
    /// Replaces the cell at (`row`, `column`) of the batch with `value`.
    pub fn set(row: u32, column: u32, value: impl Into<Vec<u8>>) -> Self {
        CellEdit {
            row,
            column,
            value: Some(value.into()),
        }
    }

    /// Makes the cell at (`row`, `column`) NULL.
    pub fn null(row: u32, column: u32) -> Self {
        CellEdit {
            row,
            column,
            value: None,
        }
    }
}

impl Detection {
    pub fn new(entity: impl Into<String>, count: u32) -> Self {
        Detection {
            entity: entity.into(),
            count,
        }
    }
}

impl MaskedRows {
    /// Nothing to change in this batch.
    pub fn unchanged() -> Self {
        MaskedRows {
            edits: Vec::new(),
            detections: Vec::new(),
        }
    }
}

impl MaskedBody {
    /// Pass the body on as it is.
    pub fn unchanged() -> Self {
        MaskedBody {
            body: None,
            detections: Vec::new(),
        }
    }

    /// Replace the body.
    pub fn replaced(body: impl Into<Vec<u8>>, detections: Vec<Detection>) -> Self {
        MaskedBody {
            body: Some(body.into()),
            detections,
        }
    }
}

// `testing` is native-only: these tests need the host target.
#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use crate::testing;

    #[test]
    fn text_like_by_name_or_oid() {
        assert!(testing::text_column("c").is_text_like());
        let mut c = testing::column("c", 3802, None);
        assert!(c.is_text_like());
        c.type_oid = 99999;
        c.type_name = Some("public.CITEXT".into());
        assert!(c.is_text_like());
        assert!(!testing::column("n", 23, Some("int4")).is_text_like());
    }

    #[test]
    fn cell_text_respects_format() {
        let mut int = testing::column("n", 23, Some("int4"));
        assert_eq!(int.cell_text(&Some(b"42".to_vec())), Some("42"));
        int.format = ValueFormat::Binary;
        assert_eq!(int.cell_text(&Some(vec![0, 0, 0, 42])), None);
        assert_eq!(testing::text_column("t").cell_text(&None), None);
    }
}
