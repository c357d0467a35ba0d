//! Host-side SQL analysis: the per-statement summaries guardrail plugins decide
//! on (`sluice:plugin/types.sql-statement`).
//!
//! Plugins trust these summaries, so the analysis uses PostgreSQL's own parser
//! (libpg_query) and errs towards "changes state": a statement that does not
//! parse is refused, never forwarded.
//!
//! What it cannot see: SQL inside strings that something executes later or
//! elsewhere — DO bodies, `EXECUTE` of a prepared statement prepared in an
//! earlier message, function and procedure bodies, `query_to_xml('…')`,
//! `dblink_exec('…')`. Those are flagged `dynamic-sql` (and the function is
//! listed), never looked into; so are statements that bind a function into
//! an operator, cast, aggregate, type, … (the function is listed as called).
//! Nor can a parser know what the catalog adds: operators and casts that
//! already call user functions, triggers, rules, defaults and policies
//! already on a table, what a view reads (it is reported as named), whether
//! `t.f` is a column or a call of `f(t)` (`(expr).f` is reported as a
//! possible call of `f`), or which schema an unqualified name resolves to
//! (hence `SET search_path` keeps `modifies-state`).
//!
//! The parse is only faithful while the server reads statement text as this
//! parser does (sync.rs).
//!
//! parse.rs (the parser call) → walk.rs (relations, writes and functions,
//! generically) + classify.rs/tag.rs (what the top-level statement is) →
//! functions.rs (what function names imply) → this file (one summary).

mod cache;
mod classify;
mod functions;
pub use functions::is_pure_builtin;
mod parse;
mod shape;
mod tag;
mod walk;

use std::sync::Arc;

use pg_query::protobuf;

use crate::plugins::bindings::types::{SqlStatement, StatementFlags, StatementKind, TableRef};

/// A query the analysis refuses. At the edge it becomes an ErrorResponse with
/// SQLSTATE 42601 (syntax_error); the statement is not forwarded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct AnalysisError {
    pub message: String,
    /// 1-based character position in the query text, as PostgreSQL reports it.
    pub cursor_position: Option<u32>,
    /// The analysis itself failed (not the statement): SQLSTATE XX000.
    pub internal: bool,
}

/// Longest statement text analysed unless configured otherwise. A parse
/// tree takes far more memory than its text: 256 KiB of `INSERT … VALUES`
/// rows peaks near 200 MB while it is analysed (2 MB: near 2 GB), so one
/// agent's statement must not be allowed to take the gateway's memory.
pub const DEFAULT_MAX_STATEMENT_BYTES: usize = 256 * 1024;

/// Analyses query texts, remembering recent ones.
pub struct Analyzer {
    cache: cache::Cache,
    shapes: shape::ShapeCache,
    max_text_bytes: usize,
    /// Long texts analysed at once (see [`Analyzer::analyze_for_session`]).
    long_slots: Arc<tokio::sync::Semaphore>,
}

impl Analyzer {
    /// `cache_entries` bounds the number of remembered texts (0: no cache).
    pub fn new(cache_entries: usize) -> Self {
        Analyzer {
            cache: cache::Cache::new(cache_entries),
            shapes: shape::ShapeCache::new(cache_entries),
            max_text_bytes: DEFAULT_MAX_STATEMENT_BYTES,
            long_slots: Arc::new(tokio::sync::Semaphore::new(1)),
        }
    }

    /// At most `n` long texts analysed at once: the number of session
    /// workers, which bounds their memory (see [`DEFAULT_MAX_STATEMENT_BYTES`])
    /// as analysing them on the workers did.
    pub fn with_long_analyses(mut self, n: usize) -> Self {
        self.long_slots = Arc::new(tokio::sync::Semaphore::new(n.max(1)));
        self
    }

    /// Texts longer than `bytes` are not analysed (see [`Self::too_long`]).
    pub fn with_max_text_bytes(mut self, bytes: usize) -> Self {
        self.max_text_bytes = bytes;
        self
    }

    /// Whether `text` is over the length this analyzer parses; the caller
    /// refuses it (SQLSTATE 54000) rather than have it forwarded unchecked.
    pub fn too_long(&self, text: &str) -> Option<usize> {
        (text.len() > self.max_text_bytes).then_some(self.max_text_bytes)
    }

    /// Every statement in `text` (a simple-protocol Query may hold several), in
    /// order. An empty, whitespace-only or comment-only text gives `Ok` of an
    /// empty list (PostgreSQL answers EmptyQueryResponse); any other text gives
    /// at least one statement or an error.
    pub fn analyze(&self, text: &str) -> Result<Arc<[SqlStatement]>, AnalysisError> {
        if let Some(hit) = self.cache.get(text) {
            return Ok(hit);
        }
        if let Some(hit) = self.shapes.get(text) {
            return Ok(hit);
        }
        let encoded = parse::parse(text)?;
        // Each level of the encoded tree costs at least two bytes (a field tag
        // and a length), so its depth is at most half its length.
        let max_depth = encoded.len() / 2;
        let needed = max_depth.saturating_mul(STACK_PER_LEVEL) + STACK_SLACK;
        let statements =
            stacker::maybe_grow(needed, ANALYSIS_STACK, || summarize_all(text, &encoded))?;
        self.cache.put(text, &statements);
        self.shapes.put(text, &statements);
        Ok(statements)
    }
}

/// Texts up to this length are analysed on the session's own worker, where
/// a cache miss costs microseconds to a few milliseconds.
const INLINE_ANALYSIS_BYTES: usize = 16 * 1024;

impl Analyzer {
    /// [`Self::analyze`] for a session: a long text that is not cached is
    /// analysed on a blocking thread. Parsing one can take about a second
    /// (256 KiB of `OR` terms), and on the session's worker every other
    /// session there would wait that long.
    pub async fn analyze_for_session(
        self: &Arc<Self>,
        text: &str,
    ) -> Result<Arc<[SqlStatement]>, AnalysisError> {
        if text.len() <= INLINE_ANALYSIS_BYTES {
            return self.analyze(text);
        }
        if let Some(hit) = self.cache.get(text) {
            return Ok(hit);
        }
        let Ok(slot) = self.long_slots.clone().acquire_owned().await else {
            return self.analyze(text);
        };
        let this = self.clone();
        let owned = text.to_owned();
        // The slot goes with the parse: a session ending meanwhile does not
        // free it while the parse still runs.
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            this.analyze(&owned)
        })
        .await
        .unwrap_or_else(|e| {
            Err(AnalysisError {
                message: format!("statement analysis failed: {e}"),
                cursor_position: None,
                internal: true,
            })
        })
    }
}

/// The stack the decode, walk and drop of a deep parse tree run on.
///
/// The parser refuses trees that would take it more than 2 MiB of C stack
/// ("stack depth limit exceeded", or bison's "memory exhausted"); everything
/// after it (prost's decode, serde, the walk, dropping the tree) recurses once
/// per tree level too, with frames up to several times larger in a debug
/// build. A fresh, lazily committed stack of this size holds any tree the
/// parser accepts, whatever stack the caller (a tokio worker: 2 MiB) has left.
/// Growing costs ~12 µs (mmap/munmap), so it happens only when the caller's
/// remaining stack might not be enough for the worst case of this tree.
const ANALYSIS_STACK: usize = 64 * 1024 * 1024;
/// A generous upper bound of the Rust stack one tree level takes in the
/// deepest of those recursions.
const STACK_PER_LEVEL: usize = if cfg!(debug_assertions) {
    8 * 1024
} else {
    2 * 1024
};
const STACK_SLACK: usize = 128 * 1024;

fn summarize_all(text: &str, encoded: &[u8]) -> Result<Arc<[SqlStatement]>, AnalysisError> {
    let tree = parse::decode(encoded)?;
    let statements: Vec<SqlStatement> = tree
        .stmts
        .iter()
        .map(|raw| summarize(text, raw))
        .collect::<Result<_, _>>()?;
    Ok(statements.into())
}

fn summarize(text: &str, raw: &protobuf::RawStmt) -> Result<SqlStatement, AnalysisError> {
    let internal = |what: &str| AnalysisError {
        message: format!("statement analysis failed: {what}"),
        cursor_position: u32::try_from(raw.stmt_location).ok().map(|p| p + 1),
        internal: true,
    };
    let node = raw
        .stmt
        .as_deref()
        .ok_or_else(|| internal("empty statement node"))?;
    let stmt = node
        .node
        .as_ref()
        .ok_or_else(|| internal("empty statement node"))?;
    let value = serde_json::to_value(node).map_err(|e| internal(&e.to_string()))?;
    let name = classify::node_name(&value).ok_or_else(|| internal("untyped statement node"))?;

    let class = classify::classify(stmt, name);
    let facts = walk::collect(&value);

    let mut reads = facts.reads;
    let mut writes = facts.writes;
    writes.extend(class.extra_writes);
    let mut flags = class.flags;
    if class.not_executed {
        // Plain EXPLAIN plans the statement without running it: its targets
        // are named, not written.
        reads.extend(writes.drain(..).map(|w| w.table));
    }
    if !class.not_executed {
        if facts.writable_cte {
            flags |= StatementFlags::WRITABLE_CTE;
        }
        if facts.nested_dynamic {
            flags |= StatementFlags::DYNAMIC_SQL | StatementFlags::MODIFIES_STATE;
        }
        if facts.row_locks {
            flags |= StatementFlags::MODIFIES_STATE;
        }
        if facts.bound_functions {
            // The function runs later, wherever the new object is used.
            flags |= StatementFlags::DYNAMIC_SQL | StatementFlags::MODIFIES_STATE;
        }
    }
    // Even under plain EXPLAIN: the planner folds calls of functions declared
    // immutable, and a user function can lie about that.
    let function_flags = functions::flags(&facts.functions);
    flags |= if class.not_executed {
        function_flags & StatementFlags::MODIFIES_STATE
    } else {
        function_flags
    };
    if !writes.is_empty() || flags.contains(StatementFlags::ROLE_CHANGE) {
        flags |= StatementFlags::MODIFIES_STATE;
    }
    let kind = match class.kind {
        StatementKind::Query if !writes.is_empty() => StatementKind::Dml,
        kind => kind,
    };
    dedup_tables(&mut reads);

    Ok(SqlStatement {
        text: statement_text(text, raw),
        node: class.node,
        kind,
        command_tag: class.command_tag,
        tables_read: reads,
        tables_written: writes,
        functions: facts.functions,
        has_where: class.has_where,
        flags,
        setting: class.setting,
        prepared_name: class.prepared_name,
    })
}

/// The statement's own slice of the query text (byte offsets from the parser;
/// a length of 0 means "to the end").
fn statement_text(text: &str, raw: &protobuf::RawStmt) -> String {
    let start = usize::try_from(raw.stmt_location).unwrap_or(0);
    let end = match usize::try_from(raw.stmt_len) {
        Ok(0) | Err(_) => text.len(),
        Ok(len) => start.saturating_add(len),
    };
    text.get(start..end).unwrap_or(text).trim().to_owned()
}

/// Keeps the first mention of each relation (a hash set: a huge statement may
/// name thousands).
fn dedup_tables(tables: &mut Vec<TableRef>) {
    let mut seen = std::collections::HashSet::with_capacity(tables.len());
    tables.retain(|t| seen.insert((t.schema.clone(), t.name.clone())));
}
