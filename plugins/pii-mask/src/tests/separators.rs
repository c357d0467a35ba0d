//! Numbers written with other separators than ASCII spaces and dashes:
//! dots and underscores, Unicode spaces and dashes, and the `00` that
//! dials abroad in place of `+`.

use serde_json::json;

use super::{assert_clean, assert_finds, assert_no, body, mask_text, masker, redact};
use crate::entity::Entity::*;

const SPACES: [char; 5] = ['\u{a0}', '\u{2007}', '\u{202f}', '\u{2009}', '\u{3000}'];
const DASHES: [char; 6] = [
    '\u{2010}', '\u{2011}', '\u{2012}', '\u{2013}', '\u{2212}', '\u{ff0d}',
];

#[test]
fn cards_with_dots_underscores_and_unicode_spaces() {
    for text in ["4242.4242.4242.4242", "4242_4242_4242_4242"] {
        assert_finds(Card, &format!("card {text}."), text);
    }
    for sep in SPACES.iter().chain(&DASHES) {
        let card = ["4242"; 4].join(&sep.to_string());
        assert_finds(Card, &format!("card: {card} exp"), &card);
    }
    assert_finds(
        Card,
        "4242&#8239;4242&#x202F;4242&nbsp;4242",
        "4242&#8239;4242&#x202F;4242&nbsp;4242",
    );
    for text in [
        "4242.4242.4242.4241",   // Luhn
        "4242.4242.4242.4242.5", // continued
        "4242 4242.4242-4242",   // one kind of separator
        "x_4242_4242_4242_4242", // inside a word
        "v4242.4242.4242.4242",
        "424.2424.2424.2424.2",
        "4242..4242.4242.4242",
    ] {
        assert_no(Card, text);
    }
}

#[test]
fn ssns_with_dots_and_unicode_dashes() {
    assert_finds(Ssn, "SSN 536.90.4399.", "536.90.4399");
    for sep in DASHES.iter().chain(&SPACES) {
        let ssn = format!("536{sep}90{sep}4399");
        assert_finds(Ssn, &format!("ssn: {ssn}"), &ssn);
    }
    assert_finds(Ssn, "536&#8209;90&#8209;4399", "536&#8209;90&#8209;4399");
    for text in [
        "2024.01.1234",
        "000.12.3456",
        "666.12.3456",
        "900.12.3456",
        "123.00.4567",
        "123.45.0000",
        "078.05.1120",
        "536.90.4399.1",
        "1.536.90.4399",
        "536.90-4399",
        "536.904.399",
        "v536.90.4399",
        "666\u{2011}12\u{2011}3456",
        "536\u{2011}90\u{2011}43991",
    ] {
        assert_no(Ssn, text);
    }
    // Nothing else takes the dotted form instead.
    for text in ["2024.01.1234", "1.2.3", "v1.22.3333", "10.01.2024"] {
        assert_clean(text);
    }
}

#[test]
fn phones_dialled_with_00() {
    for (text, phone) in [
        ("call 0033612345678 now", "0033612345678"),
        ("0044 20 7946 0958", "0044 20 7946 0958"),
        ("0044 (0)20 7946 0958", "0044 (0)20 7946 0958"),
        ("0049-30-1234567", "0049-30-1234567"),
        ("001 415 555 2671", "001 415 555 2671"),
        ("0031 6 12345678", "0031 6 12345678"),
    ] {
        assert_finds(Phone, text, phone);
    }
    for text in [
        // Ids padded with zeros: eight digits or fewer after the `00`.
        "id 0012345678",
        "id 001234567",
        "000612345678",
        "00:30:00",
        "0000000000000",
        "00.12.2024",
        "0.0012345678901",
        "x0033612345678",
    ] {
        assert_clean(text);
    }
}

/// The module's rule: a run of digits that starts with neither `+` nor
/// `0` is no phone (order numbers, timestamps, ids look the same).
#[test]
fn bare_ten_digits_stay_unmatched() {
    assert_clean("4155552671");
    assert_clean("call 4155552671");
}

#[test]
fn phones_and_ibans_with_unicode_separators() {
    for sep in SPACES {
        for phone in [
            format!("+44{sep}20{sep}7946{sep}0958"),
            format!("020{sep}7946{sep}0958"),
            format!("(415){sep}555-2671"),
            format!("0033{sep}6{sep}12{sep}34{sep}56{sep}78"),
        ] {
            assert_finds(Phone, &format!("tel {phone}."), &phone);
        }
        let iban = ["DE89", "3704", "0044", "0532", "0130", "00"].join(&sep.to_string());
        assert_finds(Iban, &format!("IBAN {iban}, thanks"), &iban);
    }
    for sep in DASHES {
        for phone in [
            format!("415{sep}555{sep}2671"),
            format!("06{sep}12345678"),
            format!("+49{sep}30{sep}1234567"),
        ] {
            assert_finds(Phone, &format!("tel {phone}."), &phone);
        }
    }
    // Dates and ranges read as they do with ASCII dashes.
    for text in ["2024\u{2013}01\u{2013}15", "pages 1234\u{2013}5678"] {
        assert_clean(text);
    }
    assert_no(Iban, "DE89 370\u{a0}40044 0532 0130 00");
}

/// A no-break space ends an address as a space does: the word after it
/// is not part of the domain.
#[test]
fn unicode_spaces_end_addresses() {
    assert_finds(Email, "ann@example.com\u{a0}today", "ann@example.com");
    assert_eq!(
        mask_text(redact(), "mail ann@example.com\u{202f}now"),
        "mail [EMAIL]\u{202f}now"
    );
}

#[test]
fn masked_forms_of_numbers_with_other_separators() {
    let partial = json!({ "strategy": "partial" });
    for (text, masked) in [
        ("4242.4242.4242.4242", "****.****.****.4242"),
        ("4242_4242_4242_4242", "****_****_****_4242"),
        ("4242\u{a0}4242\u{a0}4242\u{a0}4242", "**** **** **** 4242"),
        ("536.90.4399", "***.**.4399"),
        ("536\u{2011}90\u{2011}4399", "***-**-4399"),
        ("0033612345678", "*********5678"),
    ] {
        assert_eq!(mask_text(partial.clone(), text), masked, "{text}");
    }
    let m = masker(redact());
    let (out, _) = body(
        &m,
        "text/plain",
        "card 4242\u{a0}4242\u{a0}4242\u{a0}4242, ssn 536\u{2011}90\u{2011}4399, \
         tel 0033612345678",
    );
    assert_eq!(out, "card [CARD], ssn [SSN], tel [PHONE]");
    let (out, _) = body(
        &m,
        "application/json",
        r#"{"c":"4242\u00a04242\u00a04242\u00a04242","s":"536.90.4399"}"#,
    );
    assert_eq!(out, r#"{"c":"[CARD]","s":"[SSN]"}"#);
}
