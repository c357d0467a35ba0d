use super::{JWT, assert_clean, assert_finds, found};
use crate::entity::Entity::{self, *};

#[test]
fn emails_inside_longer_text() {
    for (text, email) in [
        (
            "contact jane.doe+tag@example.co.uk today",
            "jane.doe+tag@example.co.uk",
        ),
        ("mail bob@example.com.", "bob@example.com"),
        ("<a.b@sub.example.io>", "a.b@sub.example.io"),
        ("reply-to:\"x_y%z@ex-ample.org\"", "x_y%z@ex-ample.org"),
        ("..lead@example.com", "lead@example.com"),
        // Internationalised domains.
        ("ada@exämple.com", "ada@exämple.com"),
        ("почта ivan@пример.рф сегодня", "ivan@пример.рф"),
        // An `@` that stayed encoded: URLs and form values, HTML.
        (
            "/users?email=victim.person%40example.com&page=2",
            "victim.person%40example.com",
        ),
        ("mailto:ada%40example.com", "ada%40example.com"),
        (
            "<p>victim.person&#64;example.com</p>",
            "victim.person&#64;example.com",
        ),
        ("x&#X40;example.org", "x&#X40;example.org"),
        ("ann&commat;example.com.", "ann&commat;example.com"),
    ] {
        assert_finds(Email, text, email);
    }
    assert_eq!(
        found("a@example.com, b@example.net"),
        vec![(Email, "a@example.com"), (Email, "b@example.net")]
    );
}

#[test]
fn punycode_domains_are_email_domains() {
    for (text, email) in [
        ("ann@example.xn--p1ai", "ann@example.xn--p1ai"),
        (
            "mail ann@xn--e1afmkfd.xn--p1ai.",
            "ann@xn--e1afmkfd.xn--p1ai",
        ),
        ("ann@XN--E1AFMKFD.XN--P1AI", "ann@XN--E1AFMKFD.XN--P1AI"),
        ("ann@xn--bcher-kva.example", "ann@xn--bcher-kva.example"),
        (
            "<ann@mail.xn--80ak6aa92e.com>",
            "ann@mail.xn--80ak6aa92e.com",
        ),
        (
            "ann@example.xn--vermgensberater-ctb",
            "ann@example.xn--vermgensberater-ctb",
        ),
    ] {
        assert_finds(Email, text, email);
    }
    for text in ["ann@xn--p1ai", "ann@example.xn--", "ann@xn--.com"] {
        assert!(
            !found(text).iter().any(|(_, v)| v.contains("xn--")),
            "{text}: {:?}",
            found(text)
        );
    }
}

/// RFC 5322 lets a local part hold apostrophes and be a quoted string; a
/// quote that delimits a string around an address is not part of it.
#[test]
fn apostrophes_and_quoted_local_parts() {
    for (text, email) in [
        ("o'neil@example.com", "o'neil@example.com"),
        (
            "mail d'artagnan.o'neil@example.com now",
            "d'artagnan.o'neil@example.com",
        ),
        ("don't@example.com", "don't@example.com"),
        ("x'1y@example.com", "1y@example.com"),
        // Quotes around a string, in SQL and elsewhere.
        ("'ann@example.com'", "ann@example.com"),
        ("where email='ann@example.com'", "ann@example.com"),
        ("values ('ann@example.com', 'x')", "ann@example.com"),
        ("it's 'ann@example.com'", "ann@example.com"),
        ("`ann@example.com`", "ann@example.com"),
        // An apostrophe escaped the SQL way.
        ("'o''neil@example.com'", "o''neil@example.com"),
        ("O'Neil@example.com", "O'Neil@example.com"),
        // An apostrophe ending the local part, after a letter or digit.
        ("ann'@example.com", "ann'@example.com"),
        ("mail ann'@example.com.", "ann'@example.com"),
        ("'ann'@example.com", "ann'@example.com"),
        ("'ann''@example.com'", "ann''@example.com"),
        ("ann7'%40example.com", "ann7'%40example.com"),
        ("ann'&#64;example.com", "ann'&#64;example.com"),
        ("o'neil'@example.com", "o'neil'@example.com"),
        // Quoted local parts.
        ("\"ann smith\"@example.com", "\"ann smith\"@example.com"),
        (
            "to: \"ann smith\"@example.com.",
            "\"ann smith\"@example.com",
        ),
        (
            r#"to "x" and "ann \"the\" smith"@example.com"#,
            r#""ann \"the\" smith"@example.com"#,
        ),
        ("\"a@b\"@example.com", "\"a@b\"@example.com"),
        ("\"ann@example.com\"", "ann@example.com"),
    ] {
        assert_finds(Email, text, email);
    }
    for text in [
        "\"\"@example.com",
        "\"ann smith\" @example.com",
        r#"ann\"@example.com"#,
        "\"ann\nsmith\"@example.com",
        "'@example.com",
        "x '@example.com",
        "-'@example.com",
        "ann'''@example.com",
    ] {
        assert_clean(text);
    }
}

/// Soft hyphens and zero-width characters show nothing, so they hide
/// nothing: the whole span, with them, is the match.
#[test]
fn invisible_characters_do_not_split_values() {
    for (text, email) in [
        ("mail ann\u{ad}@example.com now", "ann\u{ad}@example.com"),
        (
            "a\u{200b}nn@exam\u{200c}ple.com",
            "a\u{200b}nn@exam\u{200c}ple.com",
        ),
        ("ann@example\u{200d}.com", "ann@example\u{200d}.com"),
        ("ann\u{2060}@example.com", "ann\u{2060}@example.com"),
        ("\u{feff}ann@exa\u{feff}mple.com", "ann@exa\u{feff}mple.com"),
        ("<b>ann&shy;@example.com</b>", "ann&shy;@example.com"),
        (
            "ann&#173;@example&#x200b;.com",
            "ann&#173;@example&#x200b;.com",
        ),
        (
            "ann&zwj;&zwnj;@example&NoBreak;.com",
            "ann&zwj;&zwnj;@example&NoBreak;.com",
        ),
    ] {
        assert_finds(Email, text, email);
    }
    assert_finds(
        Card,
        "4242 42\u{ad}42 4242 4242",
        "4242 42\u{ad}42 4242 4242",
    );
    assert_finds(Phone, "+1 415\u{200b} 555 2671", "+1 415\u{200b} 555 2671");
    // A space, even one that does not break, is still a space: it
    // separates groups as one does (and is not dropped: nine digits
    // without separators are no SSN).
    assert_finds(Card, "4242 4242\u{a0}4242 4242", "4242 4242\u{a0}4242 4242");
    assert_finds(Card, "4242 4242&nbsp;4242 4242", "4242 4242&nbsp;4242 4242");
    assert_finds(Ssn, "536\u{a0}90\u{a0}4399", "536\u{a0}90\u{a0}4399");
}

#[test]
fn not_emails() {
    for text in [
        "@example.com only",
        "user@ nothing",
        "user@localhost",
        "a@b.c",
        "x@-y.com",
        "me@example.c0m",
        "twitter @handle",
        "100%40 percent",
        "Tom &amp; Jerry@home",
    ] {
        assert_clean(text);
    }
}

#[test]
fn phones_in_international_and_national_formats() {
    for (text, phone) in [
        ("call +1 415 555 2671 now", "+1 415 555 2671"),
        ("+44 20 7946 0958", "+44 20 7946 0958"),
        ("tel +44 (0)20 7946 0958.", "+44 (0)20 7946 0958"),
        ("+31612345678", "+31612345678"),
        ("+49-30-1234567", "+49-30-1234567"),
        ("(415) 555-2671", "(415) 555-2671"),
        ("415-555-2671", "415-555-2671"),
        ("1-415-555-2671", "1-415-555-2671"),
        ("1 (415) 555-2671", "1 (415) 555-2671"),
        ("415.555.2671", "415.555.2671"),
        ("ring 020 7946 0958 after 5", "020 7946 0958"),
        ("07700 900123", "07700 900123"),
        ("mobile: 06-12345678", "06-12345678"),
        ("0612345678", "0612345678"),
        ("030/1234567", "030/1234567"),
        ("(020) 7946 0958", "(020) 7946 0958"),
        ("01 23 45 67 89", "01 23 45 67 89"),
    ] {
        assert_finds(Phone, text, phone);
    }
}

/// Digit runs that are dates, times, amounts, ids and versions: nothing of
/// them may be masked as a phone (or as anything else).
#[test]
fn dates_numbers_and_ids_are_not_phones() {
    for text in [
        "2024-01-15",
        "on 15.01.2024 at 10:30",
        "01/02/2024",
        "05-06-2024",
        "10:30:00",
        "2024-01-15T10:30:00Z",
        "2024-01-15T10:30:00+01:00",
        "total 1,234,567.89 EUR",
        "EUR 1.234.567,89",
        "order 1234567890 shipped",
        "ORD-0612345678",
        "ts 1700000000",
        "ts_ms 1700000000123",
        "invoice INV-20240115-0001",
        "id 0012345678",
        "ISBN 0-306-40615-2",
        "$0612345678",
        "+12 points",
        "12.5% of 0.99",
        "123-4567",
        "v2.10.4",
        "uuid 123e4567-e89b-12d3-a456-426614174000",
        "sha1 da39a3ee5e6b4b0d3255bfef95601890afd80709",
        "52.3676, 4.9041",
        "tracking 1Z999AA10123456784",
        "Customer Number 48213, order #9931 shipped; tracking ZX00381447",
    ] {
        assert_clean(text);
    }
}

#[test]
fn card_numbers_are_luhn_checked_with_known_issuers() {
    for (text, card) in [
        ("4242 4242 4242 4242", "4242 4242 4242 4242"),
        ("card: 4242-4242-4242-4242.", "4242-4242-4242-4242"),
        ("4111111111111111", "4111111111111111"),
        ("amex 378282246310005", "378282246310005"),
        ("5555 5555 5555 4444", "5555 5555 5555 4444"),
        ("2223003122003222", "2223003122003222"),
        ("6011111111111117", "6011111111111117"),
        ("3530111333300000", "3530111333300000"),
        ("6200000000000005", "6200000000000005"),
        ("diners 36227206271667", "36227206271667"),
        ("4242 4242 4242 4242 12 28", "4242 4242 4242 4242"),
    ] {
        assert_finds(Card, text, card);
    }
    assert_eq!(
        found("card 4242 4242 4242 4242 exp 12/28"),
        vec![(Card, "4242 4242 4242 4242")]
    );
}

#[test]
fn invalid_card_numbers_are_not_cards() {
    for text in [
        // Luhn check fails.
        "4242 4242 4242 4241",
        "4242424242424241",
        // Luhn-valid, but no issuer uses the prefix (or the length).
        "1234567812345670",
        "9999999999999995",
        "0000 0000 0000 0000",
        "424242424242424", // Visa has no 15-digit numbers
        // Too long, glued to a digit, or odd grouping (letters glued on
        // do not hide a card: see `boundaries`).
        "42424242424242424242",
        "14242424242424242",
        "424 2424 2424 2424 2",
    ] {
        assert!(
            !found(text).iter().any(|(e, _)| *e == Card),
            "{text}: {:?}",
            found(text)
        );
    }
}

#[test]
fn social_security_numbers() {
    assert_finds(Ssn, "SSN 536-90-4399", "536-90-4399");
    assert_finds(Ssn, "536 90 4399", "536 90 4399");
    assert_finds(Ssn, "(123-45-6789)", "123-45-6789");
    for text in [
        "000-12-3456",
        "666-12-3456",
        "900-12-3456",
        "999-12-3456",
        "123-00-4567",
        "123-45-0000",
        "078-05-1120",
        "219-09-9999",
        "536-90-43991",
        "536-90-4399-1",
        "1536-90-4399",
    ] {
        assert!(
            !found(text).iter().any(|(e, _)| *e == Ssn),
            "{text}: {:?}",
            found(text)
        );
    }
    // Bare nine digits are not an SSN (too many ids look the same).
    assert_clean("536904399");
}

/// A name joined to a number by a hyphen (`x-ssn-536-90-4399`, an HTTP
/// header written out) does not hide it; a digit and a hyphen before it
/// make it part of a longer number, a hyphen alone a minus sign.
#[test]
fn numbers_after_a_hyphenated_name() {
    for (entity, text, value) in [
        (Ssn, "x-ssn-536-90-4399", "536-90-4399"),
        (Ssn, "X-SSN-536 90 4399;", "536 90 4399"),
        (
            Ssn,
            "ssn-536\u{2011}90\u{2011}4399",
            "536\u{2011}90\u{2011}4399",
        ),
        (Card, "x-card-4242-4242-4242-4242", "4242-4242-4242-4242"),
        (Card, "x-card-4242424242424242", "4242424242424242"),
        (Phone, "x-phone-415-555-2671", "415-555-2671"),
        (Phone, "x-phone-+1 415 555 2671", "+1 415 555 2671"),
        (Phone, "tel-+31612345678", "+31612345678"),
        (Phone, "x-phone-(415) 555-2671", "(415) 555-2671"),
        (Phone, "x-phone-020 7946 0958", "020 7946 0958"),
        (Phone, "mobile-06-12345678", "06-12345678"),
    ] {
        assert_finds(entity, text, value);
    }
    for text in [
        "1-536-90-4399",
        "12-536-90-4399",
        "a1-536-90-4399",
        "-536-90-4399",
        "x--536-90-4399",
        "x-ssn-536-90-4399-1",
        "x-ssn-536-90-43991",
        "5-4242-4242-4242-4242",
        "-4242424242424242",
        "1-415-555-2671-0",
        // An id with a letter prefix, not a phone.
        "ORD-0612345678",
        "ORD-0033612345678",
        "INV-20240115-0001",
    ] {
        assert_clean(text);
    }
}

#[test]
fn ibans_are_mod97_checked() {
    for (text, iban) in [
        (
            "IBAN DE89 3704 0044 0532 0130 00, thanks",
            "DE89 3704 0044 0532 0130 00",
        ),
        ("DE89370400440532013000", "DE89370400440532013000"),
        ("GB29NWBK60161331926819", "GB29NWBK60161331926819"),
        ("gb29 nwbk 6016 1331 9268 19", "gb29 nwbk 6016 1331 9268 19"),
        ("FR1420041010050500013M02606", "FR1420041010050500013M02606"),
        ("NL91ABNA0417164300", "NL91ABNA0417164300"),
        ("CH9300762011623852957", "CH9300762011623852957"),
    ] {
        assert_finds(Iban, text, iban);
    }
    for text in [
        "DE89 3704 0044 0532 0130 01", // check digits fail
        "DE89370400440532013001",
        "DE8937040044053201300",       // one short for Germany
        "DE893704004405320130000",     // one long
        "XX89370400440532013000",      // no such country
        "GB29NWBK60161331926819X",     // glued to more text
        "DE89 370 40044 0532 0130 00", // spaces only between groups of four
    ] {
        assert!(
            !found(text).iter().any(|(e, _)| *e == Iban),
            "{text}: {:?}",
            found(text)
        );
    }
}

#[test]
fn ip_addresses() {
    for (text, ip) in [
        ("from 10.0.0.1", "10.0.0.1"),
        ("host 192.168.1.20:5432", "192.168.1.20"),
        ("net 8.8.8.0/24", "8.8.8.0"),
        ("https://203.0.113.7/path", "203.0.113.7"),
        ("2001:db8::1", "2001:db8::1"),
        ("fe80::1%eth0", "fe80::1"),
        (
            "2001:0db8:85a3:0000:0000:8a2e:0370:7334",
            "2001:0db8:85a3:0000:0000:8a2e:0370:7334",
        ),
        ("::ffff:192.0.2.1", "::ffff:192.0.2.1"),
        ("[2001:db8::1]:443", "2001:db8::1"),
    ] {
        assert_finds(Ip, text, ip);
    }
    for text in [
        "1.2.3.4.5",
        "256.1.1.1",
        "01.02.03.04",
        "10:30:00",
        "dead::beef",
        "std::io::Result",
        "00:1a:2b:3c:4d:5e",
        "1.2.3",
    ] {
        assert_clean(text);
    }
}

#[test]
fn jwts_need_a_header_with_alg() {
    assert_finds(Jwt, &format!("token={JWT};"), JWT);
    let unsecured = "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.";
    assert_finds(Jwt, &format!("{unsecured} "), unsecured);
    for text in [
        // Header without `alg`.
        "eyJub3QiOiJhIGp3dCJ9.eyJzdWIiOiIxIn0.c2ln",
        // Two segments.
        "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0",
        // Not base64 JSON at all.
        "eyJzzzz.yyyy.zzzz",
    ] {
        assert_clean(text);
    }
}

#[test]
fn secrets() {
    for (text, secret) in [
        ("AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"),
        (
            "aws_access_key_id=ASIAY34FZKBOKMUTVV7A",
            "ASIAY34FZKBOKMUTVV7A",
        ),
        (
            "Authorization: Bearer abc123def456ghi789",
            "abc123def456ghi789",
        ),
        (
            "authorization: bearer abcdefghijklmnopqrstuvwx",
            "abcdefghijklmnopqrstuvwx",
        ),
        ("Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA=="),
        (
            "token ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789 end",
            "ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789",
        ),
        ("xoxb-1234567890-abcdefghij", "xoxb-1234567890-abcdefghij"),
        (
            "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
            "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
        ),
        (
            "AIzaSyA1234567890abcdefghijklmnopqrstuv",
            "AIzaSyA1234567890abcdefghijklmnopqrstuv",
        ),
    ] {
        assert_finds(Entity::Secret, text, secret);
    }
    let pem =
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7\nabc=\n-----END RSA PRIVATE KEY-----";
    assert_finds(Entity::Secret, &format!("key:\n{pem}\nrest"), pem);
    // No END line: everything after BEGIN is key material.
    let cut = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC";
    assert_finds(Entity::Secret, &format!("x {cut}"), cut);
    for text in [
        "AKIA1234",
        "AKIAIOSFODNN7EXAMPLEXY",
        "the bearer of this letter",
        "Bearer authentication is used",
        "Basic training",
        "Basic abcdefgh",
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
        "ghp_short",
    ] {
        assert_clean(text);
    }
}

#[test]
fn every_entity_in_one_value() {
    let text = format!(
        "ann@example.com +1 415 555 2671 4242 4242 4242 4242 536-90-4399 \
         DE89370400440532013000 10.1.2.3 {JWT} AKIAIOSFODNN7EXAMPLE"
    );
    let kinds: Vec<Entity> = found(&text).into_iter().map(|(e, _)| e).collect();
    assert_eq!(kinds, vec![Email, Phone, Card, Ssn, Iban, Ip, Jwt, Secret]);
}

#[test]
fn non_ascii_text_is_scanned_byte_safely() {
    assert_finds(
        Email,
        "Grüße an jürgen@example.de — danke",
        "jürgen@example.de",
    );
    assert_clean("日本語のテキスト 東京都");
    assert_finds(Phone, "Телефон: +7 495 123-45-67", "+7 495 123-45-67");
}

#[test]
fn numeric_character_references_follow_html5() {
    use crate::detect::refs::reference;
    for (text, expected) in [
        ("&#64;", Some(('@', 5))),
        ("&#064;", Some(('@', 6))),
        ("&#00000064", Some(('@', 10))),
        ("&#x40;", Some(('@', 6))),
        ("&#X0040", Some(('@', 7))),
        ("&#46.com", Some(('.', 4))),
        ("&#x2e;", Some(('.', 6))),
        ("&#0;", Some(('\u{fffd}', 4))),
        ("&#xD800;", Some(('\u{fffd}', 8))),
        ("&#x110000;", Some(('\u{fffd}', 10))),
        ("&#99999999999999999999;", Some(('\u{fffd}', 23))),
        ("&#128;", Some(('\u{20ac}', 6))),
        ("&#x81;", Some(('\u{81}', 6))),
        ("&commat;", Some(('@', 8))),
        ("&period;", Some(('.', 8))),
        ("&commat", None),
        ("&#;", None),
        ("&#x;", None),
        ("&#xg", None),
        ("& #64;", None),
    ] {
        assert_eq!(reference(text.as_bytes(), 0), expected, "{text}");
    }
    assert_finds(Email, "ann@example&#46;com", "ann@example&#46;com");
    // Matches map back to the bytes they were decoded from.
    assert_finds(Email, "x &#97;nn@example.com y", "&#97;nn@example.com");
    assert_finds(
        Email,
        "<b>ann@<!-- -->example.com</b>",
        "ann@<!-- -->example.com",
    );
    assert_finds(
        Email,
        "[ann@<![CDATA[ex]]>ample.com]",
        "ann@<![CDATA[ex]]>ample.com",
    );
    assert_eq!(
        found("a&#64;example.com &amp; b&#x40;example.org"),
        vec![(Email, "a&#64;example.com"), (Email, "b&#x40;example.org")]
    );
}
