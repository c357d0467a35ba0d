//! Values with a character glued on (`ssn || 'x'`, `'x' || ssn`,
//! `email || '0'`): letters and `_` do not hide a value whose shape is its
//! own; a digit makes another, longer number; digests stay noise. And
//! addresses cut at their first dot in a quoted identifier.

use serde_json::json;

use super::{assert_clean, assert_finds, assert_no, body, masker, redact};
use crate::entity::Entity::*;

#[test]
fn dashed_ssns_with_letters_or_underscores_glued_on() {
    for text in [
        "536-22-1847x",
        "x536-22-1847",
        "536-22-1847_",
        "_536-22-1847",
        "ssn536-22-1847abc",
        "id_536-22-1847_old",
    ] {
        assert_finds(Ssn, text, "536-22-1847");
    }
    let nb = "536\u{2011}22\u{2011}1847";
    assert_finds(Ssn, &format!("x{nb}y"), nb);
    // A digit makes another number; spaced and dotted forms glued to
    // letters read as versions and codes.
    for text in [
        "536-22-18470",
        "1536-22-1847",
        "x536 22 1847",
        "v536.22.1847",
        "536.22.1847x",
    ] {
        assert_no(Ssn, text);
    }
}

#[test]
fn emails_with_characters_glued_to_the_domain() {
    assert_finds(Email, "ada@example.com0", "ada@example.com0");
    assert_finds(Email, "ada@example.com42x", "ada@example.com42x");
    assert_finds(Email, "ada@example.com_", "ada@example.com");
    assert_finds(Email, "0ada@example.com", "0ada@example.com");
    // What follows a stop and is no top-level label of its own leaves the
    // address before it (`email || '.x'`).
    for tail in [".x", ".1", ".x1", ".c0m", ".x.y", ".-"] {
        assert_finds(Email, &format!("ada@example.com{tail}"), "ada@example.com");
    }
    // Still no address: a one-letter top-level label, digits first.
    for text in ["me@example.c0m", "a@b.c1", "v@1.2.3"] {
        assert_clean(text);
    }
}

#[test]
fn cards_phones_ibans_and_tokens_with_letters_glued_on() {
    for text in [
        "4242424242424242x",
        "x4242424242424242",
        "card_4242424242424242",
        "4242-4242-4242-4242x",
        "x4242 4242 4242 4242",
    ] {
        let card = text.trim_start_matches(|c: char| !c.is_ascii_digit());
        let card = card.trim_end_matches(|c: char| !c.is_ascii_digit());
        assert_finds(Card, text, card);
    }
    for (text, phone) in [
        ("+1 415 555 2671x", "+1 415 555 2671"),
        ("tel+14155552671", "+14155552671"),
        ("x415-555-2671", "415-555-2671"),
        ("(415) 555-2671x", "(415) 555-2671"),
        ("06-12345678x", "06-12345678"),
        ("+31612345678_", "+31612345678"),
    ] {
        assert_finds(Phone, text, phone);
    }
    assert_finds(Iban, "DE89370400440532013000_", "DE89370400440532013000");
    assert_finds(
        Iban,
        "iban_DE89370400440532013000",
        "DE89370400440532013000",
    );
    for text in [
        "AKIAIOSFODNN7EXAMPLEx",
        "AKIAIOSFODNN7EXAMPLE_",
        "key_AKIAIOSFODNN7EXAMPLE",
    ] {
        assert_finds(Secret, text, "AKIAIOSFODNN7EXAMPLE");
    }
    let ghp = "ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789";
    assert_finds(Secret, &format!("{ghp}_x"), ghp);
}

/// Letters do not lengthen a number, but they do make ids, codes and
/// digests, where digit runs are noise.
#[test]
fn ids_and_digests_stay_clean() {
    for text in [
        // Bare runs of digits glued to letters are ids, not phones.
        "ORD0612345678",
        "id_0033612345678",
        "order0612345678x",
        // Dots and underscores glued to letters: versions and names.
        "v4242.4242.4242.4242",
        "x_4242_4242_4242_4242",
        "v10.0.0.1",
        // A digit glued on: a longer number.
        "14242424242424242",
        // Hexadecimal digests and ids.
        "4242424242424242abcdef0123456789abcdef01",
        "a4242424242424242bcdef01",
        // More letters and digits make a longer code.
        "GB29NWBK60161331926819X",
        "AKIAIOSFODNN7EXAMPLEXY",
    ] {
        assert_clean(text);
    }
}

/// The tester's queries: values glued to a character, in cells and in
/// the fields of a server message.
#[test]
fn glued_values_in_cells_and_server_messages() {
    let m = masker(json!({"entities": {"card": "partial"}}));
    let (masked, _) = body(
        &m,
        "application/json",
        r#"["invalid input syntax for type integer: \"536-22-1847x\"","x536-22-1847","ada@example.com0 4242424242424242x"]"#,
    );
    assert_eq!(
        masked,
        r#"["invalid input syntax for type integer: \"[SSN]x\"","x[SSN]","[EMAIL] ************4242x"]"#
    );
}

/// `'ann@example.com'::regclass` fails on schema `ann@example`: a quoted
/// dotless address is one; unquoted it is not.
#[test]
fn quoted_addresses_cut_at_their_first_dot() {
    assert_finds(
        Email,
        r#"schema "ada@example" does not exist"#,
        "ada@example",
    );
    assert_finds(Email, r#"relation "ada@mail-1" x"#, "ada@mail-1");
    for text in [
        "user@localhost",
        "ada@example does not exist",
        r#""@example""#,
        r#""ada@1""#,
        r#""ada@x""#,
    ] {
        assert_clean(text);
    }
    let (masked, _) = body(
        &masker(redact()),
        "application/json",
        r#"["schema \"ada@example\" does not exist"]"#,
    );
    assert_eq!(masked, r#"["schema \"[EMAIL]\" does not exist"]"#);
}
