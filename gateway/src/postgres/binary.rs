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

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

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

/// A binary address value as the server prints it; `None` when it does not
/// parse (the server never sends such a value).
pub fn address_text(address: Address, value: &[u8]) -> Option<String> {
    match address {
        Address::Inet => inet_text(value, false),
        Address::Cidr => inet_text(value, true),
        Address::Macaddr => mac_text(value, 6),
        Address::Macaddr8 => mac_text(value, 8),
    }
}

/// A binary array of addresses as the server prints it (`{10.1.2.3,NULL}`,
/// `[0:1]={…}` for other lower bounds).
pub fn address_array_text(address: Address, value: &[u8]) -> Option<String> {
    let array = parse_array(value)?;
    if array.element != address.oid() {
        return None;
    }
    let mut out = String::new();
    if array.values.is_empty() {
        out.push_str("{}");
        return Some(out);
    }
    if array.dims.iter().any(|&(_, lower)| lower != 1) {
        for &(len, lower) in &array.dims {
            let upper = i64::from(lower) + i64::from(len) - 1;
            let _ = write!(out, "[{lower}:{upper}]");
        }
        out.push('=');
    }
    let mut values = array.values.into_iter();
    nest(&mut out, &array.dims, &mut values, address)?;
    Some(out)
}

fn nest<'a>(
    out: &mut String,
    dims: &[(i32, i32)],
    values: &mut impl Iterator<Item = Option<&'a [u8]>>,
    address: Address,
) -> Option<()> {
    let (&(len, _), inner) = dims.split_first()?;
    out.push('{');
    for i in 0..len {
        if i > 0 {
            out.push(',');
        }
        if inner.is_empty() {
            match values.next()? {
                // Address texts need no quoting: no braces, commas, quotes,
                // backslashes or spaces.
                Some(v) => out.push_str(&address_text(address, v)?),
                None => out.push_str("NULL"),
            }
        } else {
            nest(out, inner, values, address)?;
        }
    }
    out.push('}');
    Some(())
}

const AF_INET: u8 = 2;
const AF_INET6: u8 = 3;

/// inet_send's form: family, bits, is_cidr, address length, address.
fn inet_text(value: &[u8], cidr: bool) -> Option<String> {
    let [family, bits, _is_cidr, len, address @ ..] = value else {
        return None;
    };
    let (family, bits) = (*family, *bits);
    let max = match (family, *len, address.len()) {
        (AF_INET, 4, 4) => 32,
        (AF_INET6, 16, 16) => 128,
        _ => return None,
    };
    if bits > max || (cidr && !host_bits_clear(address, bits)) {
        return None;
    }
    let mut out = String::new();
    if family == AF_INET {
        let _ = write!(
            out,
            "{}.{}.{}.{}",
            address[0], address[1], address[2], address[3]
        );
    } else {
        ipv6_text(&mut out, address);
    }
    // Both print the prefix length unless it is the whole address; cidr
    // always does.
    if bits != max || cidr {
        let _ = write!(out, "/{bits}");
    }
    Some(out)
}

fn host_bits_clear(address: &[u8], bits: u8) -> bool {
    address.iter().enumerate().all(|(i, byte)| {
        let kept = usize::from(bits).saturating_sub(i * 8).min(8);
        let mask = if kept == 0 { 0 } else { 0xffu8 << (8 - kept) };
        byte & !mask == 0
    })
}

/// PostgreSQL's IPv6 text (src/port/inet_net_ntop.c), which differs from
/// Rust's for some embedded IPv4 forms (`::1.2.3.4`).
fn ipv6_text(out: &mut String, address: &[u8]) {
    let words: Vec<u16> = address
        .chunks_exact(2)
        .map(|w| u16::from_be_bytes([w[0], w[1]]))
        .collect();
    // The first longest run of zero words, if two or longer, becomes `::`.
    // Runs as (first word, length).
    let mut best: Option<(usize, usize)> = None;
    let mut cur: Option<(usize, usize)> = None;
    for (i, &w) in words.iter().enumerate() {
        if w == 0 {
            cur = Some(cur.map_or((i, 1), |(base, len)| (base, len + 1)));
        } else if let Some(run) = cur.take()
            && best.is_none_or(|b| run.1 > b.1)
        {
            best = Some(run);
        }
    }
    if let Some(run) = cur
        && best.is_none_or(|b| run.1 > b.1)
    {
        best = Some(run);
    }
    let best = best.filter(|&(_, len)| len >= 2);
    for (i, &w) in words.iter().enumerate() {
        if let Some((base, len)) = best
            && i >= base
            && i < base + len
        {
            if i == base {
                out.push(':');
            }
            continue;
        }
        if i != 0 {
            out.push(':');
        }
        if i == 6
            && let Some((0, len)) = best
            && (len == 6 || (len == 7 && words[7] != 1) || (len == 5 && words[5] == 0xffff))
        {
            let _ = write!(
                out,
                "{}.{}.{}.{}",
                address[12], address[13], address[14], address[15]
            );
            return;
        }
        let _ = write!(out, "{w:x}");
    }
    if let Some((base, len)) = best
        && base + len == words.len()
    {
        out.push(':');
    }
}

fn mac_text(value: &[u8], len: usize) -> Option<String> {
    if value.len() != len {
        return None;
    }
    let mut out = String::with_capacity(len * 3);
    for (i, byte) in value.iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        let _ = write!(out, "{byte:02x}");
    }
    Some(out)
}

/// A masker's replacement for an address in binary form; `None` when it
/// does not parse as the type.
pub fn address_binary(address: Address, text: &str) -> Option<Vec<u8>> {
    match address {
        Address::Inet => inet_binary(text, false),
        Address::Cidr => inet_binary(text, true),
        Address::Macaddr => mac_binary(text, false),
        Address::Macaddr8 => mac_binary(text, true),
    }
}

fn inet_binary(text: &str, cidr: bool) -> Option<Vec<u8>> {
    let (address, bits) = match text.split_once('/') {
        Some((address, bits)) if !bits.is_empty() && bits.bytes().all(|b| b.is_ascii_digit()) => {
            (address, Some(bits.parse::<u8>().ok()?))
        }
        Some(_) => return None,
        None => (text, None),
    };
    let (family, bytes, max): (u8, Vec<u8>, u8) = if address.contains(':') {
        let a: Ipv6Addr = address.parse().ok()?;
        (AF_INET6, a.octets().to_vec(), 128)
    } else {
        let a: Ipv4Addr = address.parse().ok()?;
        (AF_INET, a.octets().to_vec(), 32)
    };
    let bits = bits.unwrap_or(max);
    if bits > max || (cidr && !host_bits_clear(&bytes, bits)) {
        return None;
    }
    let mut out = vec![family, bits, u8::from(cidr), bytes.len() as u8];
    out.extend_from_slice(&bytes);
    Some(out)
}

/// Six (or for macaddr8, eight) bytes in hex, groups separated by `:`, `-`
/// or `.` as the server's input functions accept them; a six-byte address
/// for a macaddr8 becomes its EUI-64 form, as on the server.
fn mac_binary(text: &str, eight: bool) -> Option<Vec<u8>> {
    let digits: Vec<u8> = text
        .bytes()
        .filter(|b| !matches!(b, b':' | b'-' | b'.'))
        .map(|b| (b as char).to_digit(16).map(|d| d as u8))
        .collect::<Option<_>>()?;
    if !matches!((digits.len(), eight), (12, _) | (16, true)) {
        return None;
    }
    let bytes: Vec<u8> = digits.chunks_exact(2).map(|p| p[0] << 4 | p[1]).collect();
    match (bytes.len(), eight) {
        (6, false) | (8, true) => Some(bytes),
        (6, true) => {
            let mut out = bytes[..3].to_vec();
            out.extend_from_slice(&[0xff, 0xfe]);
            out.extend_from_slice(&bytes[3..]);
            Some(out)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inet(family: u8, bits: u8, cidr: bool, address: &[u8]) -> Vec<u8> {
        let mut v = vec![family, bits, u8::from(cidr), address.len() as u8];
        v.extend_from_slice(address);
        v
    }

    fn v6(text: &str) -> [u8; 16] {
        text.parse::<Ipv6Addr>().unwrap().octets()
    }

    #[test]
    fn inet_and_cidr_print_as_the_server_does() {
        let cases: [(Vec<u8>, Address, &str); 14] = [
            (
                inet(2, 32, false, &[10, 1, 2, 3]),
                Address::Inet,
                "10.1.2.3",
            ),
            (
                inet(2, 24, false, &[10, 1, 2, 3]),
                Address::Inet,
                "10.1.2.3/24",
            ),
            (
                inet(2, 24, true, &[10, 1, 2, 0]),
                Address::Cidr,
                "10.1.2.0/24",
            ),
            (
                inet(2, 32, true, &[10, 1, 2, 3]),
                Address::Cidr,
                "10.1.2.3/32",
            ),
            (inet(3, 128, false, &v6("::1")), Address::Inet, "::1"),
            (inet(3, 128, false, &v6("::")), Address::Inet, "::"),
            (
                inet(3, 32, true, &v6("2001:db8::")),
                Address::Cidr,
                "2001:db8::/32",
            ),
            (
                inet(3, 64, false, &v6("fe80::1")),
                Address::Inet,
                "fe80::1/64",
            ),
            (inet(3, 128, true, &v6("::1")), Address::Cidr, "::1/128"),
            // Embedded IPv4 forms, as inet_net_ntop prints them (Rust
            // prints `::102:304` for the first).
            (
                inet(3, 128, false, &v6("::1.2.3.4")),
                Address::Inet,
                "::1.2.3.4",
            ),
            (
                inet(3, 128, false, &v6("::ffff:1.2.3.4")),
                Address::Inet,
                "::ffff:1.2.3.4",
            ),
            (inet(3, 128, false, &v6("::2")), Address::Inet, "::2"),
            // The first longest zero run is the one compressed; a single
            // zero word is not.
            (
                inet(3, 128, false, &v6("1:0:0:1:0:0:0:1")),
                Address::Inet,
                "1:0:0:1::1",
            ),
            (
                inet(3, 128, false, &v6("1:0:2:3:4:5:6:7")),
                Address::Inet,
                "1:0:2:3:4:5:6:7",
            ),
        ];
        for (value, address, text) in cases {
            assert_eq!(address_text(address, &value).as_deref(), Some(text));
            // The text parses back to the same value.
            assert_eq!(address_binary(address, text), Some(value), "{text}");
        }
    }

    #[test]
    fn malformed_addresses_do_not_render() {
        for bad in [
            vec![],
            vec![2, 32, 0, 4, 10, 1, 2],
            vec![2, 33, 0, 4, 10, 1, 2, 3],
            vec![3, 128, 0, 4, 10, 1, 2, 3],
            vec![7, 32, 0, 4, 10, 1, 2, 3],
            vec![2, 32, 0, 4, 10, 1, 2, 3, 4],
        ] {
            assert_eq!(address_text(Address::Inet, &bad), None, "{bad:?}");
        }
        // A cidr with host bits set is not a cidr.
        assert_eq!(
            address_text(Address::Cidr, &inet(2, 24, true, &[10, 1, 2, 3])),
            None
        );
        assert_eq!(address_text(Address::Macaddr, &[1, 2, 3]), None);
    }

    #[test]
    fn replacements_that_are_not_addresses_do_not_encode() {
        for text in [
            "[IP]",
            "",
            "10.1.2",
            "10.1.2.3/",
            "10.1.2.3/33",
            "::1/129",
            "x::1",
        ] {
            assert_eq!(address_binary(Address::Inet, text), None, "{text}");
        }
        assert_eq!(address_binary(Address::Cidr, "10.1.2.3/24"), None);
        assert_eq!(
            address_binary(Address::Cidr, "10.1.2.0/24"),
            Some(inet(2, 24, true, &[10, 1, 2, 0]))
        );
        assert_eq!(address_binary(Address::Macaddr, "[MAC]"), None);
        assert_eq!(address_binary(Address::Macaddr, "08:00:2b:01:02"), None);
    }

    #[test]
    fn mac_addresses_round_trip() {
        let mac = [0x08, 0x00, 0x2b, 0x01, 0x02, 0x03];
        assert_eq!(
            address_text(Address::Macaddr, &mac).as_deref(),
            Some("08:00:2b:01:02:03")
        );
        for text in ["08:00:2b:01:02:03", "08-00-2b-01-02-03", "0800.2b01.0203"] {
            assert_eq!(address_binary(Address::Macaddr, text), Some(mac.to_vec()));
        }
        let mac8 = [0x08, 0x00, 0x2b, 0xff, 0xfe, 0x01, 0x02, 0x03];
        assert_eq!(
            address_text(Address::Macaddr8, &mac8).as_deref(),
            Some("08:00:2b:ff:fe:01:02:03")
        );
        assert_eq!(
            address_binary(Address::Macaddr8, "08:00:2b:01:02:03"),
            Some(mac8.to_vec())
        );
    }

    /// An array in binary form.
    fn array(element: u32, dims: &[(i32, i32)], values: &[Option<&[u8]>]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&(dims.len() as i32).to_be_bytes());
        v.extend_from_slice(&i32::from(values.iter().any(Option::is_none)).to_be_bytes());
        v.extend_from_slice(&element.to_be_bytes());
        for (len, lower) in dims {
            v.extend_from_slice(&len.to_be_bytes());
            v.extend_from_slice(&lower.to_be_bytes());
        }
        for value in values {
            match value {
                None => v.extend_from_slice(&(-1i32).to_be_bytes()),
                Some(x) => {
                    v.extend_from_slice(&(x.len() as i32).to_be_bytes());
                    v.extend_from_slice(x);
                }
            }
        }
        v
    }

    fn record(fields: &[(u32, Option<&[u8]>)]) -> Vec<u8> {
        let mut v = (fields.len() as i32).to_be_bytes().to_vec();
        for (oid, value) in fields {
            v.extend_from_slice(&oid.to_be_bytes());
            match value {
                None => v.extend_from_slice(&(-1i32).to_be_bytes()),
                Some(x) => {
                    v.extend_from_slice(&(x.len() as i32).to_be_bytes());
                    v.extend_from_slice(x);
                }
            }
        }
        v
    }

    #[test]
    fn address_arrays_print_as_the_server_does() {
        let a = inet(2, 32, false, &[10, 1, 2, 3]);
        let b = inet(3, 128, false, &v6("::1"));
        let one = array(869, &[(3, 1)], &[Some(&a), None, Some(&b)]);
        assert_eq!(
            address_array_text(Address::Inet, &one).as_deref(),
            Some("{10.1.2.3,NULL,::1}")
        );
        let two = array(869, &[(2, 1), (1, 1)], &[Some(&a), Some(&b)]);
        assert_eq!(
            address_array_text(Address::Inet, &two).as_deref(),
            Some("{{10.1.2.3},{::1}}")
        );
        let shifted = array(869, &[(2, 0)], &[Some(&a), None]);
        assert_eq!(
            address_array_text(Address::Inet, &shifted).as_deref(),
            Some("[0:1]={10.1.2.3,NULL}")
        );
        assert_eq!(
            address_array_text(Address::Inet, &array(869, &[], &[])).as_deref(),
            Some("{}")
        );
        // Another element type, a short array, a bad element: not rendered.
        assert_eq!(address_array_text(Address::Cidr, &one), None);
        assert_eq!(
            address_array_text(Address::Inet, &one[..one.len() - 1]),
            None
        );
        let bad = array(869, &[(1, 1)], &[Some(b"x")]);
        assert_eq!(address_array_text(Address::Inet, &bad), None);
    }

    fn check_builtin(oid: u32, value: &[u8]) -> (Check, Vec<u32>) {
        let mut missing = Vec::new();
        let found = check(oid, value, &builtin, &mut missing);
        (found, missing)
    }

    #[test]
    fn containers_are_walked_by_the_types_they_name() {
        let ip = inet(2, 32, false, &[10, 1, 2, 3]);
        // text[] in anyarray: clear, without a look at its elements.
        let texts = array(25, &[(1, 1)], &[Some(b"ann@example.com")]);
        assert_eq!(check_builtin(2277, &texts), (Check::Clear, vec![]));
        // inet[] as anyarray, or in a record: hidden.
        let ips = array(869, &[(2, 1)], &[None, Some(&ip)]);
        assert_eq!(check_builtin(2277, &ips).0, Check::Hides);
        let row = record(&[(23, Some(&[0, 0, 0, 1])), (869, Some(&ip))]);
        assert_eq!(check_builtin(2249, &row).0, Check::Hides);
        // The NULLs of a hidden type hide nothing.
        let nulls = array(869, &[(1, 1)], &[None]);
        assert_eq!(check_builtin(2277, &nulls).0, Check::Clear);
        let row = record(&[(23, Some(&[0, 0, 0, 1])), (869, None), (25, Some(b"x"))]);
        assert_eq!(check_builtin(2249, &row).0, Check::Clear);
        // Records in arrays in records.
        let inner = record(&[(869, Some(&ip))]);
        let rows = array(2249, &[(1, 1)], &[Some(&inner)]);
        let outer = record(&[(2287, Some(&rows))]);
        assert_eq!(check_builtin(2249, &outer).0, Check::Hides);
        // A reg* value.
        assert_eq!(check_builtin(4096, &[0, 0, 0, 10]).0, Check::Hides);
        // Types not built in are asked for, all of them at once.
        let row = record(&[(16_390, Some(b"a")), (16_391, Some(b"b"))]);
        assert_eq!(
            check_builtin(2249, &row),
            (Check::Unresolved, vec![16_390, 16_391])
        );
        // … and a hidden value is withheld without waiting for them.
        let row = record(&[(16_390, Some(b"a")), (869, Some(&ip))]);
        assert_eq!(check_builtin(2249, &row).0, Check::Hides);
        // Malformed values are withheld.
        assert_eq!(check_builtin(2249, &[0, 0, 0, 9]).0, Check::Hides);
        let bad = array(869, &[(1, 1)], &[Some(&ip)]);
        assert_eq!(check_builtin(2277, &bad[..bad.len() - 1]).0, Check::Hides);
    }

    #[test]
    fn catalog_types_resolve_through_domains_and_ranges() {
        let ip = inet(2, 32, false, &[10, 1, 2, 3]);
        let resolve = |oid: u32| {
            builtin(oid).or(match oid {
                // A domain over inet, a range of inet, an enum.
                16_001 => Some(Kind::Domain(869)),
                16_002 => Some(Kind::Range(869)),
                16_003 => Some(Kind::Clear),
                16_004 => Some(Kind::Range(23)),
                16_005 => Some(Kind::Domain(16_003)),
                _ => None,
            })
        };
        let run = |oid: u32, value: &[u8]| check(oid, value, &resolve, &mut Vec::new());
        assert_eq!(run(16_001, &ip), Check::Hides);
        assert_eq!(run(16_002, b"range"), Check::Hides);
        assert_eq!(run(16_003, b"happy"), Check::Clear);
        assert_eq!(run(16_004, b"range"), Check::Clear);
        let row = record(&[(16_005, Some(b"sad")), (16_001, None)]);
        assert_eq!(run(2249, &row), Check::Clear);
        let row = record(&[(16_001, Some(&ip))]);
        assert_eq!(run(2249, &row), Check::Hides);
    }

    #[test]
    fn catalog_rows_classify() {
        assert_eq!(
            classify("b", 0, Some("internal"), Some("textsend"), None, None),
            Kind::Clear
        );
        assert_eq!(
            classify("e", 0, Some("internal"), Some("enum_send"), None, None),
            Kind::Clear
        );
        assert_eq!(classify("c", 0, None, None, None, None), Kind::Record);
        assert_eq!(
            classify("d", 869, None, None, None, None),
            Kind::Domain(869)
        );
        assert_eq!(
            classify("r", 0, None, None, None, Some(869)),
            Kind::Range(869)
        );
        assert_eq!(
            classify(
                "b",
                0,
                Some("c"),
                Some("hstore_send"),
                Some("$libdir/hstore"),
                None
            ),
            Kind::Clear
        );
        // The same name from another library, an unknown function, no
        // send function: opaque.
        assert_eq!(
            classify(
                "b",
                0,
                Some("c"),
                Some("hstore_send"),
                Some("$libdir/other"),
                None
            ),
            Kind::Opaque
        );
        assert_eq!(
            classify(
                "b",
                0,
                Some("c"),
                Some("geometry_send"),
                Some("$libdir/x"),
                None
            ),
            Kind::Opaque
        );
        assert_eq!(classify("b", 0, None, None, None, None), Kind::Opaque);
        assert_eq!(
            classify("b", 0, Some("internal"), Some("inet_send"), None, None),
            Kind::Address(Address::Inet)
        );
    }

    #[test]
    fn columns_are_shown_by_type() {
        assert_eq!(Shown::for_type(25), Shown::AsSent);
        assert_eq!(Shown::for_type(23), Shown::AsSent);
        assert_eq!(Shown::for_type(869), Shown::Address(Address::Inet));
        assert_eq!(Shown::for_type(650), Shown::Address(Address::Cidr));
        assert_eq!(Shown::for_type(1041), Shown::Addresses(Address::Inet));
        assert_eq!(Shown::for_type(775), Shown::Addresses(Address::Macaddr8));
        assert_eq!(Shown::for_type(1009), Shown::Checked);
        assert_eq!(Shown::for_type(2277), Shown::Checked);
        assert_eq!(Shown::for_type(16_384), Shown::Checked);
        assert_eq!(Shown::for_type(2205), Shown::Checked);
    }
}
