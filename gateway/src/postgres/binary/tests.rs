use std::net::Ipv6Addr;

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
