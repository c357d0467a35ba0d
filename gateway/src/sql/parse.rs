//! The one call into libpg_query, the PostgreSQL parser compiled into the
//! `pg_query` crate.
//!
//! `pg_query::parse` drops the parser's cursor position, and the edge needs it
//! for the ErrorResponse (`P` field) that clients and agents use to point at the
//! mistake. So this module calls the same C entry point itself, with the struct
//! layouts of `libpg_query/pg_query.h` (pg_query 18.1), and decodes the
//! protobuf with the crate's own generated types.

use std::ffi::{CStr, CString, c_char, c_int};

use pg_query::protobuf;
use prost::Message;

use super::AnalysisError;

#[repr(C)]
struct PgQueryError {
    message: *mut c_char,
    funcname: *mut c_char,
    filename: *mut c_char,
    lineno: c_int,
    cursorpos: c_int,
    context: *mut c_char,
}

#[repr(C)]
struct PgQueryProtobuf {
    len: usize,
    data: *mut c_char,
}

#[repr(C)]
struct PgQueryProtobufParseResult {
    parse_tree: PgQueryProtobuf,
    stderr_buffer: *mut c_char,
    error: *mut PgQueryError,
}

// Linked from the static library that the `pg_query` crate builds.
unsafe extern "C" {
    fn pg_query_parse_protobuf_opts(
        input: *const c_char,
        parser_options: c_int,
    ) -> PgQueryProtobufParseResult;
    fn pg_query_free_protobuf_parse_result(result: PgQueryProtobufParseResult);
}

/// Parses `text` with the default (top-level SQL) grammar, returning the
/// encoded tree (see [`decode`]).
///
/// Call this on the caller's own stack: the parser sizes its stack-depth
/// check from the thread's real stack bounds, and on a foreign stack (such as
/// one `stacker` grew) it would fall back to a 100 kB budget.
pub(crate) fn parse(text: &str) -> Result<Vec<u8>, AnalysisError> {
    // PostgreSQL itself refuses a NUL in a Query message; a C string would
    // silently cut the text there and hide everything after it.
    let input = CString::new(text).map_err(|e| AnalysisError {
        message: "the query text contains a NUL byte".into(),
        // PostgreSQL counts positions in characters, from 1.
        cursor_position: text
            .get(..e.nul_position())
            .and_then(|before| u32::try_from(before.chars().count() + 1).ok()),
        internal: false,
    })?;
    // SAFETY: `input` is a valid NUL-terminated string that outlives the call;
    // the result is read only while it is alive and freed exactly once below.
    let result = unsafe { pg_query_parse_protobuf_opts(input.as_ptr(), 0) };
    let outcome = unsafe { read_result(&result) };
    unsafe { pg_query_free_protobuf_parse_result(result) };
    outcome
}

/// # Safety
/// `result` must come from `pg_query_parse_protobuf_opts` and not be freed yet.
unsafe fn read_result(result: &PgQueryProtobufParseResult) -> Result<Vec<u8>, AnalysisError> {
    if !result.error.is_null() {
        // SAFETY: a non-null error points to a PgQueryError whose message is a
        // NUL-terminated string (or null, guarded below).
        let error = unsafe { &*result.error };
        let message = if error.message.is_null() {
            "syntax error".to_owned()
        } else {
            unsafe { CStr::from_ptr(error.message) }
                .to_string_lossy()
                .into_owned()
        };
        return Err(AnalysisError {
            message,
            cursor_position: u32::try_from(error.cursorpos).ok().filter(|p| *p > 0),
            internal: false,
        });
    }
    let data = result.parse_tree.data;
    if data.is_null() || result.parse_tree.len == 0 {
        return Ok(Vec::new());
    }
    // SAFETY: the parser hands back `len` bytes at `data`, valid until freed.
    Ok(unsafe { std::slice::from_raw_parts(data.cast::<u8>(), result.parse_tree.len) }.to_vec())
}

/// Decodes the parser's tree. The depth of what is decoded here is bounded by
/// the parser's own stack check (see `ANALYSIS_STACK` in mod.rs).
pub(crate) fn decode(bytes: &[u8]) -> Result<protobuf::ParseResult, AnalysisError> {
    protobuf::ParseResult::decode(bytes).map_err(|e| AnalysisError {
        message: format!("parse tree not decodable: {e}"),
        cursor_position: None,
        internal: true,
    })
}
