//! RowDescription and DataRow bodies, and the column metadata maskers see.

use bytes::{BufMut, Bytes, BytesMut};

use crate::plugins::bindings::types::{Column, ValueFormat};

use super::binary::{self, Shown};
use super::frame::{BodyReader, FrameError};

/// One cell: `None` is SQL NULL.
pub type Cell = Option<Vec<u8>>;

const JSONB: u32 = 3802;

/// Names of the types maskers most often care about; others stay `None`.
fn type_name(oid: u32) -> Option<&'static str> {
    Some(match oid {
        16 => "bool",
        17 => "bytea",
        19 => "name",
        20 => "int8",
        21 => "int2",
        23 => "int4",
        25 => "text",
        114 => "json",
        142 => "xml",
        700 => "float4",
        701 => "float8",
        869 => "inet",
        1042 => "bpchar",
        1043 => "varchar",
        1082 => "date",
        1114 => "timestamp",
        1184 => "timestamptz",
        1700 => "numeric",
        2950 => "uuid",
        JSONB => "jsonb",
        _ => return None,
    })
}

/// Types whose binary representation is their UTF-8 text (jsonb after its
/// version byte), so a masker's text edits apply to either format.
pub fn text_like(oid: u32) -> bool {
    matches!(oid, 19 | 25 | 114 | 142 | 1042 | 1043 | JSONB)
}

pub fn parse_row_description(body: &[u8]) -> Result<Vec<Column>, FrameError> {
    let mut r = BodyReader::new(body, "RowDescription");
    let n = r.i16()?;
    let mut columns = Vec::with_capacity(n.max(0) as usize);
    for _ in 0..n {
        let name = r.cstr()?.to_string();
        let table_oid = r.i32()? as u32;
        let column_id = r.i16()?;
        let type_oid = r.i32()? as u32;
        let _type_len = r.take(2)?;
        let _type_mod = r.i32()?;
        let format = match r.i16()? {
            0 => ValueFormat::Text,
            _ => ValueFormat::Binary,
        };
        columns.push(Column {
            name,
            table_oid,
            table: None,
            column_id,
            type_oid,
            type_name: type_name(type_oid).map(str::to_string),
            format,
        });
    }
    Ok(columns)
}

pub fn parse_data_row(body: &[u8]) -> Result<Vec<Cell>, FrameError> {
    let mut r = BodyReader::new(body, "DataRow");
    let n = r.i16()?;
    let mut cells = Vec::with_capacity(n.max(0) as usize);
    for _ in 0..n {
        let len = r.i32()?;
        cells.push(if len < 0 {
            None
        } else {
            Some(r.take(len as usize)?.to_vec())
        });
    }
    Ok(cells)
}

pub fn encode_data_row(cells: &[Cell]) -> Bytes {
    let mut out = BytesMut::with_capacity(
        2 + cells
            .iter()
            .map(|c| 4 + c.as_ref().map_or(0, Vec::len))
            .sum::<usize>(),
    );
    out.put_i16(cells.len() as i16);
    for c in cells {
        match c {
            None => out.put_i32(-1),
            Some(v) => {
                out.put_i32(v.len() as i32);
                out.put_slice(v);
            }
        }
    }
    out.freeze()
}

/// What maskers see of a cell: binary jsonb without its version byte.
pub fn to_masker(column: &Column, cell: &mut Cell) {
    if column.format == ValueFormat::Binary
        && column.type_oid == JSONB
        && let Some(v) = cell
        && v.first() == Some(&1)
    {
        v.remove(0);
    }
}

/// Turns a masker's replacement back into the column's wire format
/// (`shown`: how its binary values were shown, see [`super::binary`]). A
/// replacement for a binary value of a type that is not text cannot be
/// re-encoded faithfully, nor one for an address that is not an address:
/// it becomes NULL rather than leaking the original.
pub fn from_masker(column: &Column, shown: Shown, value: Cell) -> Cell {
    match (column.format, value) {
        (_, None) => None,
        (_, Some(v)) if shown.rendered() => match shown {
            Shown::Address(address) => std::str::from_utf8(&v)
                .ok()
                .and_then(|text| binary::address_binary(address, text)),
            _ => None,
        },
        (ValueFormat::Text, Some(v)) => Some(v),
        (ValueFormat::Binary, Some(mut v)) if column.type_oid == JSONB => {
            v.insert(0, 1);
            Some(v)
        }
        (ValueFormat::Binary, Some(v)) if text_like(column.type_oid) => Some(v),
        (ValueFormat::Binary, Some(_)) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_rows_round_trip() {
        let cells = vec![Some(b"a@b.c".to_vec()), None, Some(Vec::new())];
        assert_eq!(parse_data_row(&encode_data_row(&cells)).unwrap(), cells);
        assert!(parse_data_row(&[0, 1, 0, 0, 0, 9, b'x']).is_err());
    }
}
