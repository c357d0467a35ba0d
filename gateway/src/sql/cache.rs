//! A bounded map from statement text to its analysis.
//!
//! Clients repeat the same texts (prepared statements, pgbench, ORMs), so a hit
//! skips the parser entirely. The `lru` crate gives O(1) get/put with recency
//! order; a hand-rolled map+generation would need an eviction scan. Both the
//! number of entries and their total size are bounded, and long texts are not
//! cached at all: they are rare and would crowd out everything else.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use lru::LruCache;

use crate::plugins::bindings::types::SqlStatement;

/// Texts longer than this are analysed every time.
pub(crate) const MAX_CACHED_TEXT: usize = 64 * 1024;
/// Total weight of the cache (texts plus summaries, roughly).
const MAX_CACHED_BYTES: usize = 32 * 1024 * 1024;

pub(crate) struct Cache {
    inner: Option<Mutex<Inner>>,
    max_bytes: usize,
}

struct Inner {
    map: LruCache<Box<str>, (Arc<[SqlStatement]>, usize)>,
    bytes: usize,
}

impl Cache {
    /// `entries == 0` disables caching.
    pub(crate) fn new(entries: usize) -> Self {
        Self::with_budget(entries, MAX_CACHED_BYTES)
    }

    fn with_budget(entries: usize, max_bytes: usize) -> Self {
        Cache {
            max_bytes,
            inner: NonZeroUsize::new(entries).map(|n| {
                Mutex::new(Inner {
                    map: LruCache::new(n),
                    bytes: 0,
                })
            }),
        }
    }

    pub(crate) fn get(&self, text: &str) -> Option<Arc<[SqlStatement]>> {
        let mut inner = lock(self.inner.as_ref()?);
        inner.map.get(text).map(|(v, _)| Arc::clone(v))
    }

    pub(crate) fn put(&self, text: &str, value: &Arc<[SqlStatement]>) {
        let Some(inner) = self.inner.as_ref() else {
            return;
        };
        if text.len() > MAX_CACHED_TEXT {
            return;
        }
        let weight = weight(text, value);
        let mut inner = lock(inner);
        if let Some((_, (_, old))) = inner.map.push(text.into(), (Arc::clone(value), weight)) {
            inner.bytes -= old;
        }
        inner.bytes += weight;
        while inner.bytes > self.max_bytes {
            match inner.map.pop_lru() {
                Some((_, (_, w))) => inner.bytes -= w,
                None => break,
            }
        }
    }
}

/// The cache holds no invariant a panicking holder could break halfway.
fn lock(m: &Mutex<Inner>) -> std::sync::MutexGuard<'_, Inner> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn weight(text: &str, value: &[SqlStatement]) -> usize {
    let per_statement: usize = value
        .iter()
        .map(|s| {
            s.text.len()
                + 64 * (s.tables_read.len() + s.tables_written.len() + s.functions.len())
                + 256
        })
        .sum();
    text.len() + per_statement
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::bindings::types::{StatementFlags, StatementKind};

    fn analysis(text: &str) -> Arc<[SqlStatement]> {
        Arc::from(vec![SqlStatement {
            text: text.to_owned(),
            node: "SelectStmt".into(),
            kind: StatementKind::Query,
            command_tag: "SELECT".into(),
            tables_read: Vec::new(),
            tables_written: Vec::new(),
            functions: Vec::new(),
            has_where: false,
            flags: StatementFlags::empty(),
            setting: None,
            prepared_name: None,
        }])
    }

    #[test]
    fn the_byte_budget_evicts_least_recently_used() {
        let text = |i: usize| format!("SELECT {i} /* {} */", "x".repeat(1000));
        let one = weight(&text(0), &analysis(&text(0)));
        let cache = Cache::with_budget(100, one * 3);
        for i in 0..3 {
            cache.put(&text(i), &analysis(&text(i)));
        }
        assert!(cache.get(&text(0)).is_some(), "0 is now the most recent");
        cache.put(&text(3), &analysis(&text(3)));
        assert!(cache.get(&text(1)).is_none(), "1 was the least recent");
        for i in [0, 2, 3] {
            assert!(cache.get(&text(i)).is_some(), "{i}");
        }
    }

    #[test]
    fn replacing_an_entry_keeps_the_accounting_right() {
        let cache = Cache::with_budget(2, usize::MAX);
        let a = analysis("SELECT 1");
        cache.put("SELECT 1", &a);
        cache.put("SELECT 1", &a);
        let bytes = cache.inner.as_ref().map(|m| lock(m).bytes);
        assert_eq!(bytes, Some(weight("SELECT 1", &a)));
    }
}
