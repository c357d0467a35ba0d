//! Address types between their binary form and the text the server
//! prints for them.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::{Address, parse_array};

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
