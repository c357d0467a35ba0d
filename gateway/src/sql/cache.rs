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
}

struct Inner {
    map: LruCache<Box<str>, (Arc<[SqlStatement]>, usize)>,
    bytes: usize,
}

impl Cache {
    /// `entries == 0` disables caching.
    pub(crate) fn new(entries: usize) -> Self {
        Cache {
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
        while inner.bytes > MAX_CACHED_BYTES {
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
