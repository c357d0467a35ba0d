//! Names of the tables result columns come from, and of the columns
//! themselves, so that maskers can apply rules written for
//! `schema.table.column` whatever the query calls the column.
//!
//! A RowDescription names a column's table only by OID and its attribute
//! number, and gives the column the name the query chose: `SELECT salary AS
//! pay` would slip past a rule for `salary`. Where the relation is known,
//! a column with an attribute number gets the relation's own name for it. The names are looked
//! up on a connection of the gateway's own, one per configured connection,
//! opened when first needed with the same credentials and TLS settings as
//! the agents' sessions: never on an agent's session, whose protocol and
//! transaction state belong to the agent. Names are cached per configured
//! connection, so a result set costs a lookup only when it brings a table
//! not seen (or not re-checked) for [`CACHE_TTL`].
//!
//! Every way this can go wrong leaves a column with `table: none`, for which
//! maskers apply table-qualified masking rules by column name and no `keep`
//! rule: a name the gateway is not sure of must never weaken masking.
//! - The lookup fails or exceeds [`LOOKUP_TIMEOUT`]: none; no further lookup
//!   is tried for [`RETRY_AFTER`], so a dead or stalled catalog connection
//!   holds a result set back by at most one timeout per window.
//! - Views and materialized views: PostgreSQL reports the view as the table
//!   of each of its columns (computed ones too), not the table the data
//!   comes from. Naming the view would let a rule written for the table stop
//!   applying when the same data is read through a view: none. Partitions
//!   read directly: none, for the same reason (their parent is named).
//! - A schema or table name containing `.` cannot be told apart in
//!   `schema.table`: none.
//! - Column names are those of the relation the RowDescription names (a
//!   view's own column names for a view's columns); they are looked up even
//!   where the table gets no name. A column whose name cannot be looked up
//!   keeps the name the result gave it.
//! - A rename keeps the OID. A cached name is used for [`CACHE_TTL`] at
//!   most, and every name is dropped when a transaction that changed the
//!   schema through the gateway ends; renames made elsewhere are seen within
//!   the TTL. A dropped and recreated table has a new OID: a cache miss.
//!
//! The same connection classifies the types that are not built in (enums,
//! composites, domains, extension types) for [`super::binary`], which must
//! know what a binary value's form hides before maskers see it. A type it
//! cannot look up is not classified, and its values are withheld.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{BufMut, BytesMut};

use crate::plugins::bindings::types::Column;

use super::binary::{self, Kind};
use super::frame::{self, BodyReader, Frame, FrameError};
use super::rows;
use super::upstream::{Upstream, UpstreamConfig, UpstreamError};

/// Longest a result set waits for its tables' names, connecting included.
pub const LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);
/// After a failed lookup, how long result sets go without names rather than
/// each waiting for a lookup that is likely to fail too.
pub const RETRY_AFTER: Duration = Duration::from_secs(3);
/// How long a name is used before it is looked up again.
pub const CACHE_TTL: Duration = Duration::from_secs(60);
/// Names kept per configured connection.
const MAX_CACHED: usize = 4096;

/// Parameters only: OIDs travel as an `oid[]` value, never in the text.
/// The last two columns list the relation's attribute numbers and names
/// (binary `int2[]` and `text[]`).
const LOOKUP_SQL: &str = "SELECT c.oid, n.nspname, c.relname, c.relkind, c.relispartition, \
     ARRAY(SELECT a.attnum FROM pg_catalog.pg_attribute a \
           WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum), \
     ARRAY(SELECT a.attname::text FROM pg_catalog.pg_attribute a \
           WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum) \
     FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
     WHERE c.oid = ANY($1)";
/// Result formats of [`LOOKUP_SQL`]: text, the two arrays binary.
const RESULT_FORMATS: [i16; 7] = [0, 0, 0, 0, 0, 1, 1];
/// What [`binary::classify`] needs of a type. A multirange's subtype is
/// that of its range; `rngmultitypid` is read through `to_jsonb` since
/// servers before 14 do not have the column.
const TYPES_SQL: &str = "SELECT t.oid, t.typtype, t.typbasetype, l.lanname, p.prosrc, p.probin, \
     (SELECT r.rngsubtype FROM pg_catalog.pg_range r \
      WHERE r.rngtypid = t.oid \
         OR (pg_catalog.to_jsonb(r) ->> 'rngmultitypid')::pg_catalog.oid = t.oid LIMIT 1) \
     FROM pg_catalog.pg_type t \
     LEFT JOIN pg_catalog.pg_proc p ON p.oid = t.typsend \
     LEFT JOIN pg_catalog.pg_language l ON l.oid = p.prolang \
     WHERE t.oid = ANY($1)";
const TYPES_FORMATS: [i16; 7] = [0; 7];
const OID_ARRAY: i32 = 1028;
const STARTUP: [(&str, &str); 2] = [
    ("application_name", "sluice-catalog"),
    ("client_encoding", "UTF8"),
];

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("{0}")]
    Connect(#[from] UpstreamError),
    #[error("protocol: {0}")]
    Frame(#[from] FrameError),
    #[error("the server refused the lookup: {0}")]
    Server(String),
    #[error("unexpected message {0:?} from the server")]
    Unexpected(char),
    #[error("malformed answer: {0}")]
    Malformed(&'static str),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

/// Reads one DataRow of a lookup: the OID it is for and what it says.
type RowReader<T> = fn(&[u8]) -> Result<(u32, T), CatalogError>;

/// One kind of lookup: by OIDs, one row per OID found.
struct Lookup<T> {
    sql: &'static str,
    formats: &'static [i16],
    row: RowReader<T>,
    /// Names of its counter (by outcome) and its timing histogram.
    counter: &'static str,
    histogram: &'static str,
    /// What goes without when it fails.
    without: &'static str,
}

const RELATIONS: Lookup<Arc<Relation>> = Lookup {
    sql: LOOKUP_SQL,
    formats: &RESULT_FORMATS,
    row: relation,
    counter: "sluice_pg_table_lookups_total",
    histogram: "sluice_pg_table_lookup_seconds",
    without: "table names unavailable, masking rules apply by column name",
};

const TYPES: Lookup<Kind> = Lookup {
    sql: TYPES_SQL,
    formats: &TYPES_FORMATS,
    row: type_row,
    counter: "sluice_pg_type_lookups_total",
    histogram: "sluice_pg_type_lookup_seconds",
    without: "types unavailable, masked binary values of types not built in are withheld",
};

/// The table names of one configured connection.
pub struct Catalog {
    connection: String,
    upstream: UpstreamConfig,
    /// The lookup connection; taken out while in use, so a lookup abandoned
    /// half-way (timeout) never leaves a connection in an unknown state.
    conn: tokio::sync::Mutex<Option<Upstream>>,
    cache: Mutex<Cache>,
    timeout: Duration,
    retry_after: Duration,
    ttl: Duration,
}

#[derive(Default)]
struct Cache {
    names: HashMap<u32, Cached>,
    types: HashMap<u32, (Kind, Instant)>,
    /// Bumped by every invalidation: a lookup that started before one does
    /// not fill the cache with what it read.
    generation: u64,
    /// Lookups are not tried before this instant (after a failure).
    quiet_until: Option<Instant>,
}

struct Cached {
    relation: Arc<Relation>,
    at: Instant,
}

/// What a relation's columns are named after.
#[derive(Debug, Default, PartialEq)]
pub struct Relation {
    /// `None`: the relation exists but its columns get no table name.
    pub table: Option<Arc<str>>,
    /// Attribute number → the column's name, sorted by number.
    pub columns: Vec<(i16, Box<str>)>,
}

impl Relation {
    fn column(&self, attnum: i16) -> Option<&str> {
        self.columns
            .binary_search_by_key(&attnum, |(n, _)| *n)
            .ok()
            .map(|i| &*self.columns[i].1)
    }
}

impl Catalog {
    pub fn new(connection: String, upstream: UpstreamConfig) -> Self {
        Self::with_limits(connection, upstream, LOOKUP_TIMEOUT, RETRY_AFTER, CACHE_TTL)
    }

    pub fn with_limits(
        connection: String,
        upstream: UpstreamConfig,
        timeout: Duration,
        retry_after: Duration,
        ttl: Duration,
    ) -> Self {
        Self {
            connection,
            upstream,
            conn: tokio::sync::Mutex::new(None),
            cache: Mutex::new(Cache::default()),
            timeout,
            retry_after,
            ttl,
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        // The cache holds no invariant a panicking holder could break.
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Forgets every name and type (the schema may have changed).
    pub fn invalidate(&self) {
        let mut cache = self.cache();
        cache.names.clear();
        cache.types.clear();
        cache.generation += 1;
    }

    /// Sets `table` on the columns of a table whose name it knows or can
    /// look up in time (`None` on every other column), and gives each column
    /// of a relation it knows the relation's name for that column.
    pub async fn name_tables(&self, columns: &mut [Column]) {
        let mut wanted: Vec<u32> = columns
            .iter()
            .filter(|c| c.table_oid != 0 && c.table.is_none())
            .map(|c| c.table_oid)
            .collect();
        if wanted.is_empty() {
            return;
        }
        wanted.sort_unstable();
        wanted.dedup();
        let now = Instant::now();
        let mut known: HashMap<u32, Arc<Relation>> = HashMap::new();
        let (missing, generation, quiet) = {
            let cache = self.cache();
            let mut missing = Vec::new();
            for oid in wanted {
                match cache.names.get(&oid) {
                    Some(c) if now.duration_since(c.at) < self.ttl => {
                        known.insert(oid, c.relation.clone());
                    }
                    _ => missing.push(oid),
                }
            }
            let quiet = cache.quiet_until.is_some_and(|t| now < t);
            (missing, cache.generation, quiet)
        };
        if let Some(found) = self.fetch(&RELATIONS, &missing, quiet).await {
            self.remember(&found, generation);
            known.extend(found);
        }
        for c in columns.iter_mut().filter(|c| c.table.is_none()) {
            let Some(relation) = known.get(&c.table_oid) else {
                continue;
            };
            if let Some(table) = &relation.table {
                c.table = Some(table.to_string());
            }
            if let Some(name) = relation.column(c.column_id)
                && name != c.name
            {
                c.name = name.to_string();
            }
        }
    }

    /// How the types among `oids` that are not built in are sent (see
    /// [`super::binary`]); one the gateway could not look up in time (or
    /// that does not exist for its connection yet) is missing.
    pub async fn types(&self, oids: &[u32]) -> HashMap<u32, Kind> {
        let now = Instant::now();
        let mut known = HashMap::new();
        let (missing, generation, quiet) = {
            let cache = self.cache();
            let mut missing = Vec::new();
            for &oid in oids {
                match cache.types.get(&oid) {
                    Some(&(kind, at)) if now.duration_since(at) < self.ttl => {
                        known.insert(oid, kind);
                    }
                    _ => missing.push(oid),
                }
            }
            let quiet = cache.quiet_until.is_some_and(|t| now < t);
            (missing, cache.generation, quiet)
        };
        if let Some(found) = self.fetch(&TYPES, &missing, quiet).await {
            let mut cache = self.cache();
            if cache.generation == generation {
                cache.quiet_until = None;
                if cache.types.len() + found.len() > MAX_CACHED {
                    cache.types.clear();
                }
                let at = Instant::now();
                cache
                    .types
                    .extend(found.iter().map(|(&oid, &kind)| (oid, (kind, at))));
            }
            drop(cache);
            known.extend(found);
        }
        known
    }

    /// Runs a lookup for `missing`, within the timeout; `None` when there is
    /// nothing to look up, or it is not tried (`quiet`) or fails.
    async fn fetch<T>(
        &self,
        which: &Lookup<T>,
        missing: &[u32],
        quiet: bool,
    ) -> Option<HashMap<u32, T>> {
        if missing.is_empty() {
            return None;
        }
        let count = |outcome: &'static str| {
            metrics::counter!(
                which.counter,
                "connection" => self.connection.clone(),
                "outcome" => outcome
            )
            .increment(1);
        };
        if quiet {
            count("skipped");
            return None;
        }
        let started = Instant::now();
        let found = match tokio::time::timeout(self.timeout, self.lookup(which, missing)).await {
            Ok(r) => r,
            Err(_) => Err(CatalogError::Timeout(self.timeout)),
        };
        metrics::histogram!(which.histogram, "connection" => self.connection.clone())
            .record(started.elapsed().as_secs_f64());
        match found {
            Ok(found) => {
                count("ok");
                Some(found)
            }
            Err(e) => {
                count("failed");
                tracing::warn!(connection = %self.connection, "{}: {e}", which.without);
                self.cache().quiet_until = Some(Instant::now() + self.retry_after);
                None
            }
        }
    }

    fn remember(&self, found: &HashMap<u32, Arc<Relation>>, generation: u64) {
        let mut cache = self.cache();
        if cache.generation != generation {
            return;
        }
        cache.quiet_until = None;
        if cache.names.len() + found.len() > MAX_CACHED {
            let ttl = self.ttl;
            cache.names.retain(|_, c| c.at.elapsed() < ttl);
            if cache.names.len() + found.len() > MAX_CACHED {
                cache.names.clear();
            }
        }
        let at = Instant::now();
        for (oid, relation) in found {
            let relation = relation.clone();
            cache.names.insert(*oid, Cached { relation, at });
        }
    }

    /// The rows of `which` for the `oids` that exist. On the kept
    /// connection first; if that fails (the server may have closed it since),
    /// once more on a new one.
    async fn lookup<T>(
        &self,
        which: &Lookup<T>,
        oids: &[u32],
    ) -> Result<HashMap<u32, T>, CatalogError> {
        let mut slot = self.conn.lock().await;
        if let Some(mut conn) = slot.take() {
            match query(&mut conn, which, oids).await {
                Ok(found) => {
                    *slot = Some(conn);
                    return Ok(found);
                }
                Err(e) => {
                    tracing::debug!(connection = %self.connection, "catalog connection dropped: {e}")
                }
            }
        }
        let mut conn = Upstream::connect(&self.upstream, &owned(&STARTUP)).await?;
        let found = query(&mut conn, which, oids).await?;
        *slot = Some(conn);
        Ok(found)
    }
}

fn owned(params: &[(&str, &str)]) -> Vec<(String, String)> {
    params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Runs a lookup's query with the extended protocol.
async fn query<T>(
    conn: &mut Upstream,
    which: &Lookup<T>,
    oids: &[u32],
) -> Result<HashMap<u32, T>, CatalogError> {
    let array = format!(
        "{{{}}}",
        oids.iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",")
    );
    let mut parse = BytesMut::new();
    parse.put_u8(0);
    parse.put_slice(which.sql.as_bytes());
    parse.put_u8(0);
    parse.put_i16(1);
    parse.put_i32(OID_ARRAY);
    let mut bind = BytesMut::new();
    bind.put_slice(b"\0\0");
    bind.put_i16(1);
    bind.put_i16(0);
    bind.put_i16(1);
    bind.put_i32(array.len() as i32);
    bind.put_slice(array.as_bytes());
    bind.put_i16(which.formats.len() as i16);
    for &format in which.formats {
        bind.put_i16(format);
    }
    let frames = [
        Frame::new(b'P', parse.freeze()),
        Frame::new(b'B', bind.freeze()),
        Frame::new(b'E', &b"\0\0\0\0\0"[..]),
        Frame::new(b'S', &b""[..]),
    ];
    frame::write_frames(&mut conn.io, &frames)
        .await
        .map_err(FrameError::Io)?;
    let mut found = HashMap::new();
    let mut refused = None;
    loop {
        let f = frame::read_frame(&mut conn.io, 1 << 20)
            .await?
            .ok_or(FrameError::Closed)?;
        match f.tag {
            b'D' => {
                let (oid, row) = (which.row)(&f.body)?;
                found.insert(oid, row);
            }
            b'E' => {
                let message = frame::error_field(&f.body, b'M');
                refused = Some(message);
            }
            b'Z' => {
                return match refused {
                    Some(message) => Err(CatalogError::Server(message)),
                    None => Ok(found),
                };
            }
            b'1' | b'2' | b'C' | b'N' | b'S' | b'A' => {}
            other => return Err(CatalogError::Unexpected(other as char)),
        }
    }
}

/// One row of [`LOOKUP_SQL`]: the OID, the name its columns get and their
/// own names.
fn relation(body: &[u8]) -> Result<(u32, Arc<Relation>), CatalogError> {
    let cells = rows::parse_data_row(body)?;
    let cell = |i: usize| -> Result<&[u8], CatalogError> {
        cells
            .get(i)
            .and_then(Option::as_deref)
            .ok_or(CatalogError::Malformed("missing column"))
    };
    let text = |i: usize| -> Result<&str, CatalogError> {
        std::str::from_utf8(cell(i)?).map_err(|_| CatalogError::Malformed("name is not UTF-8"))
    };
    let oid = text(0)?
        .parse()
        .map_err(|_| CatalogError::Malformed("oid"))?;
    let numbers = binary_array(cell(5)?)?;
    let names = binary_array(cell(6)?)?;
    if numbers.len() != names.len() {
        return Err(CatalogError::Malformed("attribute arrays differ in length"));
    }
    let mut columns = Vec::with_capacity(names.len());
    for (number, name) in numbers.into_iter().zip(names) {
        let number = number
            .and_then(|n| <[u8; 2]>::try_from(n).ok())
            .map(i16::from_be_bytes)
            .ok_or(CatalogError::Malformed("attribute number"))?;
        let name = name
            .and_then(|n| std::str::from_utf8(n).ok())
            .ok_or(CatalogError::Malformed("attribute name"))?;
        columns.push((number, name.into()));
    }
    columns.sort_by_key(|(n, _)| *n);
    Ok((
        oid,
        Arc::new(Relation {
            table: table_name(text(1)?, text(2)?, text(3)?, text(4)? == "t"),
            columns,
        }),
    ))
}

/// One row of [`TYPES_SQL`], classified.
fn type_row(body: &[u8]) -> Result<(u32, Kind), CatalogError> {
    let cells = rows::parse_data_row(body)?;
    if cells.len() != TYPES_FORMATS.len() {
        return Err(CatalogError::Malformed("type row width"));
    }
    let text = |i: usize| -> Result<Option<&str>, CatalogError> {
        cells[i]
            .as_deref()
            .map(std::str::from_utf8)
            .transpose()
            .map_err(|_| CatalogError::Malformed("type row is not UTF-8"))
    };
    let oid = |i: usize| -> Result<Option<u32>, CatalogError> {
        text(i)?
            .map(str::parse)
            .transpose()
            .map_err(|_| CatalogError::Malformed("oid"))
    };
    let (Some(type_oid), Some(typtype)) = (oid(0)?, text(1)?) else {
        return Err(CatalogError::Malformed("missing column"));
    };
    let kind = binary::classify(
        typtype,
        oid(2)?.unwrap_or(0),
        text(3)?,
        text(4)?,
        text(5)?,
        oid(6)?,
    );
    Ok((type_oid, kind))
}

/// The elements of a one-dimensional array in PostgreSQL's binary format
/// (`None` for NULL).
fn binary_array(mut b: &[u8]) -> Result<Vec<Option<&[u8]>>, CatalogError> {
    let int = |b: &mut &[u8]| -> Result<i32, CatalogError> {
        let (head, rest) = b
            .split_first_chunk::<4>()
            .ok_or(CatalogError::Malformed("short array"))?;
        *b = rest;
        Ok(i32::from_be_bytes(*head))
    };
    let dimensions = int(&mut b)?;
    let _has_nulls = int(&mut b)?;
    let _element_type = int(&mut b)?;
    match dimensions {
        0 => return Ok(Vec::new()),
        1 => {}
        _ => return Err(CatalogError::Malformed("array dimensions")),
    }
    let count = usize::try_from(int(&mut b)?).map_err(|_| CatalogError::Malformed("array size"))?;
    let _lower_bound = int(&mut b)?;
    // Each element takes at least its 4-byte length.
    if count > b.len() / 4 {
        return Err(CatalogError::Malformed("array size"));
    }
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let len = int(&mut b)?;
        if len < 0 {
            out.push(None);
            continue;
        }
        let len = len as usize;
        if len > b.len() {
            return Err(CatalogError::Malformed("short array"));
        }
        let (value, rest) = b.split_at(len);
        out.push(Some(value));
        b = rest;
    }
    Ok(out)
}

/// The `schema.table` a relation's columns are reported under, if any.
fn table_name(schema: &str, relation: &str, kind: &str, partition: bool) -> Option<Arc<str>> {
    let derived = matches!(kind, "v" | "m") || partition;
    let ambiguous = schema.contains('.') || relation.contains('.');
    (!derived && !ambiguous).then(|| format!("{schema}.{relation}").into())
}

/// Watches one session's server messages for schema changes made through
/// the gateway, and drops the cached names once their transaction is over
/// (before that, the catalog connection cannot see them).
#[derive(Default)]
pub struct SchemaWatch {
    changed: bool,
}

impl SchemaWatch {
    pub fn observe(&mut self, catalog: &Catalog, f: &Frame) {
        match f.tag {
            b'C' => {
                let tag = BodyReader::new(&f.body, "CommandComplete")
                    .cstr()
                    .unwrap_or_default();
                if ["ALTER ", "CREATE ", "DROP "]
                    .iter()
                    .any(|p| tag.starts_with(p))
                {
                    self.changed = true;
                }
            }
            b'Z' if self.changed && f.body.first() == Some(&b'I') => {
                self.changed = false;
                catalog.invalidate();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::bindings::types::ValueFormat;
    use crate::postgres::UpstreamTls;

    fn column(table_oid: u32) -> Column {
        Column {
            name: "email".into(),
            table_oid,
            table: None,
            column_id: 1,
            type_oid: 25,
            type_name: Some("text".into()),
            format: ValueFormat::Text,
        }
    }

    fn upstream(addr: String) -> UpstreamConfig {
        UpstreamConfig {
            addr,
            database: "app".into(),
            user: "app".into(),
            password: Some("pw".into()),
            tls: UpstreamTls::Disable,
            connect_timeout: Duration::from_secs(10),
        }
    }

    fn named(table: &str) -> Arc<Relation> {
        Arc::new(Relation {
            table: Some(table.into()),
            columns: Vec::new(),
        })
    }

    fn array(elements: &[Option<&[u8]>]) -> Vec<u8> {
        let mut b = Vec::new();
        for n in [1, 0, 25, elements.len() as i32, 1] {
            b.extend_from_slice(&i32::to_be_bytes(n));
        }
        for e in elements {
            match e {
                Some(v) => {
                    b.extend_from_slice(&(v.len() as i32).to_be_bytes());
                    b.extend_from_slice(v);
                }
                None => b.extend_from_slice(&(-1i32).to_be_bytes()),
            }
        }
        b
    }

    #[test]
    fn binary_arrays_parse_and_lies_are_refused() {
        let good = array(&[Some(b"id"), None, Some(b"e\"mail")]);
        assert_eq!(
            binary_array(&good).unwrap(),
            [Some(&b"id"[..]), None, Some(&b"e\"mail"[..])]
        );
        let empty = [0u8; 12];
        assert!(binary_array(&empty).unwrap().is_empty());
        // A count larger than the bytes could hold, a length past the end,
        // a truncated header, two dimensions.
        let mut huge = array(&[]);
        huge[12..16].copy_from_slice(&i32::MAX.to_be_bytes());
        assert!(binary_array(&huge).is_err());
        let mut long = array(&[Some(b"id")]);
        long[20..24].copy_from_slice(&100i32.to_be_bytes());
        assert!(binary_array(&long).is_err());
        assert!(binary_array(&good[..10]).is_err());
        let mut two = good.clone();
        two[0..4].copy_from_slice(&2i32.to_be_bytes());
        assert!(binary_array(&two).is_err());
    }

    #[test]
    fn derived_and_ambiguous_relations_get_no_name() {
        let name = |s, r, k, p| table_name(s, r, k, p).map(|n| n.to_string());
        assert_eq!(
            name("public", "customers", "r", false).as_deref(),
            Some("public.customers")
        );
        assert_eq!(name("hr", "parts", "p", false).as_deref(), Some("hr.parts"));
        assert_eq!(
            name("public", "ext", "f", false).as_deref(),
            Some("public.ext")
        );
        assert_eq!(name("public", "customer_view", "v", false), None);
        assert_eq!(name("public", "mv", "m", false), None);
        assert_eq!(name("public", "parts_1", "r", true), None);
        assert_eq!(name("public", "a.customers", "r", false), None);
        assert_eq!(name("x.public", "customers", "r", false), None);
    }

    /// A server that accepts and never answers holds a result set back for
    /// the timeout once; until the retry window ends, no lookup is tried.
    #[tokio::test]
    async fn a_stalled_server_costs_one_timeout_per_window() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let held = tokio::spawn(async move {
            let mut sockets = Vec::new();
            while let Ok((s, _)) = listener.accept().await {
                sockets.push(s);
            }
        });
        let catalog = Catalog::with_limits(
            "appdb".into(),
            upstream(addr),
            Duration::from_millis(200),
            Duration::from_secs(30),
            CACHE_TTL,
        );
        let mut columns = [column(16384), column(0)];
        let started = Instant::now();
        catalog.name_tables(&mut columns).await;
        let first = started.elapsed();
        assert!(
            first >= Duration::from_millis(200) && first < Duration::from_secs(2),
            "{first:?}"
        );
        assert!(columns.iter().all(|c| c.table.is_none()));
        let started = Instant::now();
        catalog.name_tables(&mut columns).await;
        assert!(started.elapsed() < Duration::from_millis(100));
        assert!(columns[0].table.is_none());
        held.abort();
    }

    #[test]
    fn names_are_dropped_when_a_schema_change_commits() {
        let catalog = Catalog::new("appdb".into(), upstream("127.0.0.1:1".into()));
        let fill = || {
            let generation = catalog.cache().generation;
            catalog.remember(&HashMap::from([(7, named("public.t"))]), generation);
        };
        let cached = || catalog.cache().names.len();
        let mut watch = SchemaWatch::default();
        fill();
        let ready = |status: u8| Frame::new(b'Z', vec![status]);
        watch.observe(&catalog, &Frame::new(b'C', &b"SELECT 1\0"[..]));
        watch.observe(&catalog, &ready(b'I'));
        assert_eq!(cached(), 1);
        watch.observe(&catalog, &Frame::new(b'C', &b"ALTER TABLE\0"[..]));
        watch.observe(&catalog, &ready(b'T'));
        assert_eq!(cached(), 1, "not before the transaction ends");
        watch.observe(&catalog, &ready(b'I'));
        assert_eq!(cached(), 0);
        // A lookup that began before the invalidation does not refill it.
        let stale = catalog.cache().generation - 1;
        catalog.remember(&HashMap::from([(7, named("public.t"))]), stale);
        assert_eq!(cached(), 0);
    }
}
