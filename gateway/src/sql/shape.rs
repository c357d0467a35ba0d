//! A second cache level for texts that differ only in literal values.
//!
//! Simple-protocol clients inline their values (`… WHERE aid = 48213`), so
//! the exact-text cache rarely hits for them. A text's *shape* is the text
//! with the digits of its numeric literals and the contents of its plain
//! string literals blanked; everything else (keywords, identifiers, quoted
//! identifiers, parameters, comments, dollar-quoted and prefixed strings)
//! stays verbatim. Two texts of one shape lex to the same tokens except for
//! literal values, so their parse trees have the same structure.
//!
//! A summary can still depend on a literal's value: function arguments
//! (`set_config('role', …)`), setting values. Only single statements whose
//! summary carries neither (no setting, no function call with a literal
//! argument), of the plain DML and query statement types, are remembered by shape, and a hit takes the statement's own
//! text from the new query. The lexing assumes standard_conforming_strings
//! on, which the PostgreSQL relay keeps pinned for the whole session.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use lru::LruCache;

use crate::plugins::bindings::types::SqlStatement;

/// Texts longer than this are not shaped (nor cached by shape).
const MAX_SHAPED_TEXT: usize = 8 * 1024;

/// Statement types remembered by shape: their summaries depend on literals
/// only through function arguments.
const SHAPED_NODES: &[&str] = &["SelectStmt", "InsertStmt", "UpdateStmt", "DeleteStmt"];

pub(crate) struct ShapeCache {
    inner: Option<Mutex<LruCache<Box<str>, Template>>>,
}

#[derive(Clone)]
struct Template {
    statement: SqlStatement,
    /// Bytes before and after the statement's own text in the query.
    lead: usize,
    tail: usize,
}

impl ShapeCache {
    pub(crate) fn new(entries: usize) -> Self {
        ShapeCache {
            inner: NonZeroUsize::new(entries).map(|n| Mutex::new(LruCache::new(n))),
        }
    }

    /// The analysis of `text` from an earlier text of the same shape.
    pub(crate) fn get(&self, text: &str) -> Option<Arc<[SqlStatement]>> {
        let inner = self.inner.as_ref()?;
        let key = shape(text)?;
        let template = lock(inner).get(key.as_str())?.clone();
        let own = text.get(template.lead..text.len().checked_sub(template.tail)?)?;
        let mut statement = template.statement;
        statement.text = own.to_owned();
        Some(Arc::from([statement]))
    }

    /// Remembers the analysis of `text` by shape, when it does not depend on
    /// literal values.
    pub(crate) fn put(&self, text: &str, analysis: &[SqlStatement]) {
        let Some(inner) = self.inner.as_ref() else {
            return;
        };
        let [statement] = analysis else {
            return;
        };
        // Statements whose options are literals (`EXPLAIN (ANALYZE 0)`,
        // COPY's options) are left out by node type.
        let literal_free = SHAPED_NODES.contains(&statement.node.as_str())
            && statement.setting.is_none()
            && statement
                .functions
                .iter()
                .all(|f| f.literal_args.iter().all(Option::is_none));
        if !literal_free {
            return;
        }
        // The statement's text is a trimmed slice of the query.
        let Some(lead) = find_slice(text, &statement.text) else {
            return;
        };
        let tail = text.len() - lead - statement.text.len();
        let Some(key) = shape(text) else {
            return;
        };
        let template = Template {
            statement: statement.clone(),
            lead,
            tail,
        };
        lock(inner).put(key.into_boxed_str(), template);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Where `part` occurs in `text`, if exactly once.
fn find_slice(text: &str, part: &str) -> Option<usize> {
    let first = text.find(part)?;
    match text[first + 1..].find(part) {
        Some(_) if !part.is_empty() => None,
        _ => Some(first),
    }
}

fn ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

/// The shape of `text`, or `None` when it is too long or has a construct
/// this lexer does not follow to its end (an unterminated quote or comment).
pub(crate) fn shape(text: &str) -> Option<String> {
    if text.len() > MAX_SHAPED_TEXT {
        return None;
    }
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    // Start of the verbatim run not yet copied.
    let mut copied = 0;
    let prev_ident = |i: usize| i > 0 && ident_byte(b[i - 1]);
    while i < b.len() {
        match b[i] {
            b'-' if b.get(i + 1) == Some(&b'-') => {
                i = b[i..]
                    .iter()
                    .position(|&c| c == b'\n')
                    .map_or(b.len(), |p| i + p + 1);
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                // Block comments nest.
                let mut depth = 0usize;
                loop {
                    match (b.get(i), b.get(i + 1)) {
                        (Some(b'/'), Some(b'*')) => {
                            depth += 1;
                            i += 2;
                        }
                        (Some(b'*'), Some(b'/')) => {
                            depth -= 1;
                            i += 2;
                            if depth == 0 {
                                break;
                            }
                        }
                        (Some(_), _) => i += 1,
                        (None, _) => return None,
                    }
                }
            }
            b'"' => i = quoted_end(b, i, b'"', false)?,
            b'\'' => {
                // E'…' (backslash escapes), U&'…', B'…', X'…', N'…': kept
                // verbatim. A plain literal's contents are blanked.
                let escapes =
                    i > 0 && matches!(b[i - 1], b'e' | b'E') && !(i > 1 && ident_byte(b[i - 2]));
                let end = quoted_end(b, i, b'\'', escapes)?;
                let prefixed = prev_ident(i) || (i > 0 && b[i - 1] == b'&');
                if !prefixed {
                    out.push_str(&text[copied..i]);
                    out.push_str("''");
                    copied = end;
                }
                i = end;
            }
            b'$' if !prev_ident(i) => {
                // `$1` is a parameter; `$tag$` opens a dollar-quoted string.
                let tag_len = b[i + 1..]
                    .iter()
                    .position(|&c| !(c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80))
                    .unwrap_or(b.len() - i - 1);
                let first = b.get(i + 1).copied();
                if first.is_some_and(|c| c.is_ascii_digit()) {
                    i += 1 + tag_len;
                } else if b.get(i + 1 + tag_len) == Some(&b'$') {
                    let tag = &text[i..i + tag_len + 2];
                    let body = i + tag.len();
                    let close = text[body..].find(tag)?;
                    i = body + close + tag.len();
                } else {
                    i += 1;
                }
            }
            c if c.is_ascii_digit() && !prev_ident(i) && !(i > 0 && b[i - 1] == b'.') => {
                let end = b[i..]
                    .iter()
                    .position(|c| !c.is_ascii_digit())
                    .map_or(b.len(), |p| i + p);
                // Digits run into letters (`1e5`, `0x1F`, `1_000`, trailing
                // junk the parser refuses) stay verbatim.
                if !b.get(end).is_some_and(|&c| ident_byte(c)) {
                    out.push_str(&text[copied..i]);
                    out.push('0');
                    copied = end;
                }
                i = end;
            }
            _ => i += 1,
        }
    }
    out.push_str(&text[copied..]);
    Some(out)
}

/// The index after the closing quote of the quoted run starting at `start`.
fn quoted_end(b: &[u8], start: usize, quote: u8, backslash_escapes: bool) -> Option<usize> {
    let mut i = start + 1;
    loop {
        match b.get(i) {
            None => return None,
            Some(b'\\') if backslash_escapes => i += 2,
            Some(&c) if c == quote => {
                if b.get(i + 1) == Some(&quote) {
                    i += 2;
                } else {
                    return Some(i + 1);
                }
            }
            Some(_) => i += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::shape;

    #[test]
    fn literals_are_blanked_and_nothing_else() {
        let s = |t| shape(t).unwrap();
        assert_eq!(
            s("select * from t where id = 42"),
            "select * from t where id = 0"
        );
        assert_eq!(
            s("select * from t where id = 42"),
            s("select * from t where id = 7")
        );
        assert_eq!(s("select 'it''s', 'x'"), "select '', ''");
        assert_eq!(s("select t1.a2 from t1"), "select t1.a2 from t1");
        assert_eq!(s("select $1, $2"), "select $1, $2");
        assert_eq!(s("select 1.5"), "select 0.5");
        assert_eq!(s("select 0x1, 1x1, 1e5"), "select 0x1, 1x1, 1e5");
        assert_ne!(s("select 1.5"), s("select 1.6"));
        assert_eq!(
            s("select E'a\\'b', U&'d\\0061', B'01'"),
            "select E'a\\'b', U&'d\\0061', B'01'"
        );
        assert_eq!(
            s("select $q$ 1 'x' $q$ -- 5\n, 6"),
            "select $q$ 1 'x' $q$ -- 5\n, 0"
        );
        assert_eq!(
            s("select /* 1 /* 2 */ 3 */ 4"),
            "select /* 1 /* 2 */ 3 */ 0"
        );
        assert_eq!(s("select \"a 1\" from x"), "select \"a 1\" from x");
        assert!(shape("select 'open").is_none());
        assert!(shape("select /* open").is_none());
    }
}
