//! Characters that read as `@` or as the `.` of a domain without being
//! them: `ann＠example.com` is an address to anyone who reads it.

use serde_json::json;

use super::rows::{col, run};
use super::{KEY, assert_clean, assert_finds, found, mask_text, masker, redact};
use crate::entity::Entity::*;

#[test]
fn fullwidth_and_small_ats_are_ats() {
    for text in [
        "ann＠example.com",
        "ann﹫example.com",
        "ann&#xFF20;example.com",
        "ann\\uFF20example.com",
        "Ann.Lee＠mail.example.co.uk",
    ] {
        assert_finds(Email, &format!("mail {text}, please"), text);
    }
}

#[test]
fn ideographic_and_fullwidth_full_stops_separate_labels() {
    for text in [
        "ann@example。com",
        "ann@example．com",
        "ann@example｡com",
        "ann＠example．com",
        "ann@mail。example。co。uk",
        "ann@example&#12290;com",
        "ann@例子。中国",
    ] {
        assert_finds(Email, &format!("mail {text} please"), text);
    }
    // A sentence that ends right after the address keeps its full stop.
    assert_finds(Email, "連絡先は ann@example.com。", "ann@example.com");
    assert_finds(Email, "連絡先は ann＠example．com．", "ann＠example．com");
    assert_finds(Email, "連絡先は ann@example.com。次に", "ann@example.com");
    assert_finds(Email, "ann@例子。中国。", "ann@例子。中国");
    assert_eq!(
        found("ann@example.com。4242 4242 4242 4242"),
        vec![(Email, "ann@example.com"), (Card, "4242 4242 4242 4242")]
    );
}

#[test]
fn look_alikes_alone_are_not_addresses() {
    for text in [
        "＠100円",
        "ann＠example",
        "ann＠。com",
        "ann@example。",
        "@example。com",
        "ann＠example。c",
        "見積もり。ありがとう",
    ] {
        assert_clean(text);
    }
    // Full stops end sentences before numbers: they are not decimal points.
    assert_eq!(
        found("カード番号。4242 4242 4242 4242"),
        vec![(Card, "4242 4242 4242 4242")]
    );
    assert_eq!(found("電話。020 7946 0958"), vec![(Phone, "020 7946 0958")]);
}

#[test]
fn look_alikes_are_masked_whole() {
    assert_eq!(
        mask_text(redact(), "to ann＠example．com。次"),
        "to [EMAIL]。次"
    );
    assert_eq!(
        mask_text(json!({ "strategy": "partial" }), "to ann﹫example.com."),
        "to a***@example.com."
    );
}

/// One address, one pseudonym, however its `@` and dots are written, found
/// in text or masked whole by a column rule.
#[test]
fn look_alikes_hash_as_the_ascii_address() {
    let hashed = json!({ "hash_key": KEY, "strategy": "hash" });
    let plain = mask_text(hashed.clone(), "ann@example.com");
    assert!(plain.starts_with("email_"), "{plain}");
    for text in [
        "ann＠example．com",
        "ann﹫example。com",
        "ann@example&#xFF0E;com",
    ] {
        assert_eq!(mask_text(hashed.clone(), text), plain, "{text}");
    }
    let m = masker(json!({
        "hash_key": KEY,
        "columns": [{ "match": "email", "strategy": "hash", "entity": "email" }],
    }));
    let column = [col("email", Some("public.customers"), 25, "text")];
    let (rows, _) = run(
        &m,
        &[],
        &column,
        &[
            &[Some("ann@example.com")],
            &[Some("ann＠example．com")],
            &[Some("Ann﹫Example｡com")],
            &[Some("ann&#xFF20;example&#12290;com")],
        ],
    );
    assert_eq!(rows[0][0].as_deref(), Some(plain.as_str()));
    for row in &rows[1..] {
        assert_eq!(row, &rows[0]);
    }
}

/// Giving up on a long run of labels is linear, not quadratic.
#[test]
fn long_runs_of_full_stops_are_cheap() {
    let text = format!("ann@{}4", "a。".repeat(200_000));
    let started = std::time::Instant::now();
    assert_clean(&text);
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
}
