//! Binary-format result values as maskers see them.
//!
//! Maskers find personal data in text (`10.1.2.3`, `ann@example.com`), and
//! must find it whichever format the client asked for. Most binary forms
//! show maskers what the text form would: text-like types are their text;
//! arrays, composite rows, `hstore` or `tsvector` carry their strings among
//! binary framing; numbers, times, booleans and uuids hold no text a masker
//! looks for. Some do not: an `inet` is a few bytes of address, a `macaddr`
//! six bytes, a `regrole` an OID. Shown those bytes, a masker finds nothing
//! where the text format would have shown it an address, and the value
//! would leave unmasked only because the client asked for binary. So, for
//! binary-format columns:
//!
//! - `inet`, `cidr`, `macaddr`, `macaddr8` and arrays of them are rendered
//!   to the text the server prints, and maskers are told the column is in
//!   text format. A replacement is encoded back to the binary form when it
//!   parses as the type (an address); otherwise, and for any replacement of
//!   an array, the value becomes NULL.
//! - Other arrays (`anyarray` too), composite rows, `record`, ranges and
//!   domains are walked by the types their binary form (or the type) names.
//!   A value holding an address, a `reg*` value (an OID whose text is a
//!   name) or a value of a type the gateway cannot classify is *withheld*:
//!   the maskers see NULL, and so does the client. So is such a value at the
//!   top level.
//! - Types that are not built in (enums, composites, domains, extension
//!   types such as `citext` or `hstore`) are classified from the catalog
//!   (`pg_type`: kind, send function, base type, range subtype; see
//!   [`super::catalog::Catalog::types`]). A type it cannot classify or look
//!   up is withheld.
//!
//! Only values of columns a masker selected are withheld: the others reach
//! the client as the server sent them, since no masker may change them.

/// The types whose binary form hides the text maskers look for, and which
/// the gateway renders.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Address {
    Inet,
    Cidr,
    Macaddr,
    Macaddr8,
}

impl Address {
    fn oid(self) -> u32 {
        match self {
            Address::Inet => 869,
            Address::Cidr => 650,
            Address::Macaddr => 829,
            Address::Macaddr8 => 774,
        }
    }
}

/// What a type's binary form shows a masker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// What its text form would, as far as maskers go: its text, its
    /// strings among framing, or no text at all (numbers, times, …).
    Clear,
    /// An address, rendered for the maskers where the type is static.
    Address(Address),
    /// Nothing of its text form, and the gateway cannot render it.
    Opaque,
    /// An array; the element type is in each value.
    Array,
    /// A composite row; each field's type is in the value.
    Record,
    /// A range or multirange of this subtype.
    Range(u32),
    /// A domain over this base type.
    Domain(u32),
}

/// How the maskers are shown one binary-format column's values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shown {
    /// As the server sent them (jsonb without its version byte).
    AsSent,
    /// Rendered to text.
    Address(Address),
    /// An array of addresses, rendered to text.
    Addresses(Address),
    /// Walked value by value; withheld when they hide something.
    Checked,
}

impl Shown {
    pub fn for_type(oid: u32) -> Shown {
        match builtin(oid) {
            Some(Kind::Clear) => Shown::AsSent,
            Some(Kind::Address(a)) => Shown::Address(a),
            _ => match address_array(oid) {
                Some(a) => Shown::Addresses(a),
                None => Shown::Checked,
            },
        }
    }

    /// Whether maskers get the values as text.
    pub fn rendered(self) -> bool {
        matches!(self, Shown::Address(_) | Shown::Addresses(_))
    }
}

fn address_array(oid: u32) -> Option<Address> {
    Some(match oid {
        1041 => Address::Inet,
        651 => Address::Cidr,
        1040 => Address::Macaddr,
        775 => Address::Macaddr8,
        _ => return None,
    })
}

/// Built-in types (those whose OIDs are fixed across servers), by what
/// their send function writes; `None` for the others, which the catalog
/// classifies.
pub fn builtin(oid: u32) -> Option<Kind> {
    Some(match oid {
        // Text: "char", name, text, json, xml, pg_node_tree, unknown,
        // bpchar, varchar, refcursor, cstring; jsonb and jsonpath after a
        // version byte.
        18 | 19 | 25 | 114 | 142 | 194 | 705 | 1042 | 1043 | 1790 | 2275 | 3802 | 4072 => {
            Kind::Clear
        }
        // Strings among framing: bytea, tsvector, tsquery, and the bytea-like
        // statistics and BRIN summaries.
        17 | 3614 | 3615 | 3361 | 3402 | 5017 | 4600 | 4601 => Kind::Clear,
        // No text: bool, int8, int2, int4, oid, tid, xid, cid, xid8,
        // pg_ddl_command, void, geometric types, floats, money, dates and
        // times, bit strings, numeric, uuid, snapshots, pg_lsn, and the
        // built-in ranges and multiranges (all of such subtypes).
        16 | 20 | 21 | 23 | 26 | 27 | 28 | 29 | 5069 | 32 | 2278 | 600 | 601 | 602 | 603 | 604
        | 628 | 718 | 700 | 701 | 790 | 1082 | 1083 | 1114 | 1184 | 1186 | 1266 | 1560 | 1562
        | 1700 | 2950 | 2970 | 5038 | 3220 | 3904 | 3906 | 3908 | 3910 | 3912 | 3926 | 4451
        | 4532 | 4533 | 4534 | 4535 | 4536 => Kind::Clear,
        869 => Kind::Address(Address::Inet),
        650 => Kind::Address(Address::Cidr),
        829 => Kind::Address(Address::Macaddr),
        774 => Kind::Address(Address::Macaddr8),
        // reg* types: an OID whose text is an object's (or a role's) name.
        24 | 2202 | 2203 | 2204 | 2205 | 2206 | 3734 | 3769 | 4089 | 4096 | 4191 => Kind::Opaque,
        // int2vector, oidvector, anyarray, anycompatiblearray and the
        // arrays of built-in types.
        22
        | 30
        | 2277
        | 5078
        | 143
        | 199
        | 210
        | 270
        | 271
        | 272
        | 273
        | 629
        | 651
        | 719
        | 775
        | 791
        | 1000..=1028
        | 1034
        | 1040
        | 1041
        | 1115
        | 1182
        | 1183
        | 1185
        | 1187
        | 1231
        | 1263
        | 1270
        | 1561
        | 1563
        | 2201
        | 2207..=2211
        | 2287
        | 2949
        | 2951
        | 3221
        | 3643
        | 3644
        | 3645
        | 3735
        | 3770
        | 3807
        | 3905
        | 3907
        | 3909
        | 3911
        | 3913
        | 3927
        | 4073
        | 4090
        | 4097
        | 4192
        | 5039
        | 6150..=6157 => Kind::Array,
        // record and the row types of the bootstrap catalogs.
        2249 | 71 | 75 | 81 | 83 | 1248 | 2842 | 2843 | 4066 | 6101 => Kind::Record,
        _ => return None,
    })
}

/// A type as the catalog describes it: `typtype`, `typbasetype`, the
/// language, source name and library of its send function, and the range
/// subtype of a range or multirange.
pub fn classify(
    typtype: &str,
    base: u32,
    language: Option<&str>,
    send: Option<&str>,
    library: Option<&str>,
    subtype: Option<u32>,
) -> Kind {
    match typtype {
        "d" => return Kind::Domain(base),
        // An enum sends its label.
        "e" => return Kind::Clear,
        "c" => return Kind::Record,
        "r" | "m" => return subtype.map_or(Kind::Opaque, Kind::Range),
        _ => {}
    }
    let Some(send) = send else {
        return Kind::Opaque;
    };
    match language {
        Some("internal") => match send {
            "textsend"
            | "varcharsend"
            | "bpcharsend"
            | "namesend"
            | "xml_send"
            | "json_send"
            | "unknownsend"
            | "cstring_send"
            | "charsend"
            | "pg_node_tree_send"
            | "jsonb_send"
            | "jsonpath_send"
            | "enum_send"
            | "byteasend"
            | "tsvectorsend"
            | "tsquerysend"
            | "pg_ndistinct_send"
            | "pg_dependencies_send"
            | "pg_mcv_list_send"
            | "brin_bloom_summary_send"
            | "brin_minmax_multi_summary_send" => Kind::Clear,
            "boolsend"
            | "int2send"
            | "int4send"
            | "int8send"
            | "oidsend"
            | "tidsend"
            | "xidsend"
            | "cidsend"
            | "xid8send"
            | "pg_ddl_command_send"
            | "void_send"
            | "point_send"
            | "lseg_send"
            | "path_send"
            | "box_send"
            | "poly_send"
            | "line_send"
            | "circle_send"
            | "float4send"
            | "float8send"
            | "cash_send"
            | "date_send"
            | "time_send"
            | "timestamp_send"
            | "timestamptz_send"
            | "interval_send"
            | "timetz_send"
            | "bit_send"
            | "varbit_send"
            | "numeric_send"
            | "uuid_send"
            | "pg_snapshot_send"
            | "pg_lsn_send" => Kind::Clear,
            "inet_send" => Kind::Address(Address::Inet),
            "cidr_send" => Kind::Address(Address::Cidr),
            "macaddr_send" => Kind::Address(Address::Macaddr),
            "macaddr8_send" => Kind::Address(Address::Macaddr8),
            "array_send"
            | "int2vectorsend"
            | "oidvectorsend"
            | "anyarray_send"
            | "anycompatiblearray_send" => Kind::Array,
            "record_send" => Kind::Record,
            _ => Kind::Opaque,
        },
        // Contrib types whose binary form carries their text: hstore's keys
        // and values, ltree's labels after a version byte.
        Some("c") => match (library, send) {
            (Some("$libdir/hstore"), "hstore_send")
            | (Some("$libdir/ltree"), "ltree_send" | "lquery_send" | "ltxtq_send") => Kind::Clear,
            _ => Kind::Opaque,
        },
        _ => Kind::Opaque,
    }
}

/// What walking a value found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// Nothing the binary form hides.
    Clear,
    /// Something it hides, or a value that does not parse: withheld.
    Hides,
    /// Types it holds are not known yet (pushed to `missing`).
    Unresolved,
}

/// Nesting beyond this is withheld rather than walked.
const MAX_DEPTH: usize = 32;

/// Walks a binary value of type `oid` by `resolve` (`None`: not known yet).
pub fn check(
    oid: u32,
    value: &[u8],
    resolve: &impl Fn(u32) -> Option<Kind>,
    missing: &mut Vec<u32>,
) -> Check {
    check_at(oid, value, resolve, missing, 0)
}

fn check_at(
    oid: u32,
    value: &[u8],
    resolve: &impl Fn(u32) -> Option<Kind>,
    missing: &mut Vec<u32>,
    depth: usize,
) -> Check {
    if depth > MAX_DEPTH {
        return Check::Hides;
    }
    let Some(kind) = resolve(oid) else {
        missing.push(oid);
        return Check::Unresolved;
    };
    match kind {
        Kind::Clear => Check::Clear,
        Kind::Address(_) | Kind::Opaque => Check::Hides,
        Kind::Domain(base) => check_at(base, value, resolve, missing, depth + 1),
        Kind::Range(subtype) => check_type(subtype, resolve, missing, depth + 1),
        Kind::Array => {
            // Elements of a clear type need no walk (nor their array a parse:
            // its bytes reach the maskers as they are either way).
            let element = value.get(8..12).and_then(|b| <[u8; 4]>::try_from(b).ok());
            if element.is_some_and(|e| resolve(u32::from_be_bytes(e)) == Some(Kind::Clear)) {
                return Check::Clear;
            }
            let Some(array) = parse_array(value) else {
                return Check::Hides;
            };
            all(
                array
                    .values
                    .into_iter()
                    .flatten()
                    .map(|v| (array.element, v)),
                resolve,
                missing,
                depth,
            )
        }
        Kind::Record => match parse_record(value) {
            Some(fields) => all(
                fields
                    .into_iter()
                    .filter_map(|(oid, v)| v.map(|v| (oid, v))),
                resolve,
                missing,
                depth,
            ),
            None => Check::Hides,
        },
    }
}

/// A type whose values are not walked (a range's bounds): clear only if
/// every value of it is.
fn check_type(
    oid: u32,
    resolve: &impl Fn(u32) -> Option<Kind>,
    missing: &mut Vec<u32>,
    depth: usize,
) -> Check {
    if depth > MAX_DEPTH {
        return Check::Hides;
    }
    match resolve(oid) {
        None => {
            missing.push(oid);
            Check::Unresolved
        }
        Some(Kind::Clear) => Check::Clear,
        Some(Kind::Domain(base)) => check_type(base, resolve, missing, depth + 1),
        Some(_) => Check::Hides,
    }
}

fn all<'a>(
    values: impl Iterator<Item = (u32, &'a [u8])>,
    resolve: &impl Fn(u32) -> Option<Kind>,
    missing: &mut Vec<u32>,
    depth: usize,
) -> Check {
    let mut found = Check::Clear;
    for (oid, value) in values {
        match check_at(oid, value, resolve, missing, depth + 1) {
            Check::Hides => return Check::Hides,
            Check::Unresolved => found = Check::Unresolved,
            Check::Clear => {}
        }
    }
    found
}

/// Big-endian reads off the front of a value.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.0.len() {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn i32(&mut self) -> Option<i32> {
        let (head, rest) = self.0.split_first_chunk::<4>()?;
        self.0 = rest;
        Some(i32::from_be_bytes(*head))
    }

    /// A length-prefixed value; `Some(None)` for NULL.
    fn value(&mut self) -> Option<Option<&'a [u8]>> {
        match self.i32()? {
            -1 => Some(None),
            n => Some(Some(self.take(usize::try_from(n).ok()?)?)),
        }
    }
}

/// An array in PostgreSQL's binary format.
struct Array<'a> {
    element: u32,
    /// Per dimension: length and lower bound.
    dims: Vec<(i32, i32)>,
    values: Vec<Option<&'a [u8]>>,
}

/// The server's limit (MAXDIM).
const MAX_DIMS: i32 = 6;

fn parse_array(value: &[u8]) -> Option<Array<'_>> {
    let mut r = Reader(value);
    let ndim = r.i32()?;
    if !(0..=MAX_DIMS).contains(&ndim) {
        return None;
    }
    let _has_nulls = r.i32()?;
    let element = r.i32()? as u32;
    let mut dims = Vec::new();
    let mut count: usize = if ndim == 0 { 0 } else { 1 };
    for _ in 0..ndim {
        let len = r.i32()?;
        let lower = r.i32()?;
        count = count.checked_mul(usize::try_from(len).ok()?)?;
        dims.push((len, lower));
    }
    // Each element takes at least its 4-byte length.
    if count > r.0.len() / 4 {
        return None;
    }
    let values = (0..count).map(|_| r.value()).collect::<Option<Vec<_>>>()?;
    r.0.is_empty().then_some(Array {
        element,
        dims,
        values,
    })
}

/// One field of a composite row: its type and value (`None`: NULL).
type Field<'a> = (u32, Option<&'a [u8]>);

/// A composite row in PostgreSQL's binary format.
fn parse_record(value: &[u8]) -> Option<Vec<Field<'_>>> {
    let mut r = Reader(value);
    let n = usize::try_from(r.i32()?).ok()?;
    // Each field takes at least its type and length.
    if n > r.0.len() / 8 {
        return None;
    }
    let fields = (0..n)
        .map(|_| Some((r.i32()? as u32, r.value()?)))
        .collect::<Option<Vec<_>>>()?;
    r.0.is_empty().then_some(fields)
}

mod address;
#[cfg(test)]
mod tests;

pub use address::{address_array_text, address_binary, address_text};
