//! The details of the records written for every statement, serialised
//! straight from borrowed fields (see [`crate::audit::Event::detail_of`]).
//! Members are declared in name order, the order records built field by
//! field have them.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::recording::entry::SqlError;

/// The detail of a `statement.allowed` record.
#[derive(Serialize)]
pub(super) struct Allowed<'a> {
    pub(super) phase: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) statement_name: Option<&'a str>,
    pub(super) statements: &'a [Summary<'a>],
    pub(super) text: TextField<'a>,
    pub(super) verdict: &'a str,
}

#[derive(Serialize)]
pub(super) struct Summary<'a> {
    pub(super) command: &'a str,
    pub(super) node: &'a str,
}

/// The detail of a `statement.executed` record.
#[derive(Serialize)]
pub(super) struct Executed<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) note: Option<&'static str>,
    /// `Some(None)`: the Parse that prepared it went unrecorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) parsed_record: Option<Option<u64>>,
    pub(super) portal: &'a str,
    pub(super) statement_name: &'a str,
    /// `None`: unknown to the gateway (recorded as `null`).
    pub(super) text: Option<TextField<'a>>,
}

/// The detail of a `statement.completed` record.
#[derive(Serialize)]
pub(super) struct Completed<'a> {
    pub(super) commands: &'a [String],
    pub(super) duration_ms: f64,
    pub(super) error: Option<&'a SqlError>,
    pub(super) masked: &'a BTreeMap<String, u64>,
    pub(super) records: &'a [u64],
    pub(super) rows: u64,
}

/// Statement text as records hold it: whole, or cut with its length and
/// digest ([`crate::audit::bounded_text`]).
#[derive(Serialize)]
#[serde(untagged)]
pub(super) enum TextField<'a> {
    Whole(&'a str),
    Cut(Value),
}
