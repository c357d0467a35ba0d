//! Unit tests: every detector with positive and negative examples, every
//! strategy, exemptions, column rules, rows and bodies.

mod bodies;
mod boundaries;
mod bytea;
mod confusables;
mod detectors;
mod escapes;
mod keep;
mod messages;
mod rows;
mod separators;
mod strategies;

use serde_json::json;
use sluice_plugin_sdk::types::{Detection, HttpBody};
use sluice_plugin_sdk::{Masker, testing};

use crate::PiiMask;
use crate::detect::refs::Decoded;
use crate::detect::{Found, scan};
use crate::entity::Entity;

/// Every entity's bit.
const ALL: u64 = (1 << Entity::ALL.len()) - 1;

/// What the scanner finds in `text` (its character references decoded, as
/// the engine scans it), as `(entity, matched text)`.
fn found(text: &str) -> Vec<(Entity, &str)> {
    let mut out: Vec<Found> = Vec::new();
    let mut refs = Decoded::default();
    if refs.decode(text.as_bytes()) {
        scan(&refs.text, ALL, &mut out);
        return out
            .iter()
            .map(|f| {
                let (start, end) = refs.span(f.start, f.end);
                (f.entity, &text[start..end])
            })
            .collect();
    }
    scan(text.as_bytes(), ALL, &mut out);
    out.iter()
        .map(|f| (f.entity, &text[f.start..f.end]))
        .collect()
}

/// `text` holds exactly `value`, found as `entity`.
#[track_caller]
fn assert_finds(entity: Entity, text: &str, value: &str) {
    assert_eq!(found(text), vec![(entity, value)], "in {text:?}");
}

/// `text` holds no value of `entity` (it may hold others).
#[track_caller]
fn assert_no(entity: Entity, text: &str) {
    assert!(
        !found(text).iter().any(|(e, _)| *e == entity),
        "{text}: {:?}",
        found(text)
    );
}

/// Nothing at all is found in `text`.
#[track_caller]
fn assert_clean(text: &str) {
    assert_eq!(found(text), vec![], "in {text:?}");
}

fn masker(config: serde_json::Value) -> PiiMask {
    match testing::masker::<PiiMask>(config) {
        Ok(m) => m,
        Err(e) => panic!("config refused: {e}"),
    }
}

fn config_error(config: serde_json::Value) -> String {
    match testing::masker::<PiiMask>(config) {
        Ok(_) => panic!("config accepted"),
        Err(e) => e,
    }
}

/// `text` masked as a text/plain body by a plugin with `config`.
fn mask_text(config: serde_json::Value, text: &str) -> String {
    body(&masker(config), "text/plain", text).0
}

/// A body masked for an agent in no group: (body, detections).
fn body(m: &PiiMask, content_type: &str, text: &str) -> (String, Vec<Detection>) {
    let session = testing::session("agent", &["agents"]);
    let masked = m
        .mask_body(
            &session,
            &HttpBody {
                content_type: content_type.into(),
                body: text.as_bytes().to_vec(),
            },
        )
        .unwrap();
    match masked.body {
        Some(b) => (String::from_utf8(b).unwrap(), masked.detections),
        None => (text.to_string(), masked.detections),
    }
}

fn redact() -> serde_json::Value {
    json!({})
}

const KEY: &str = "0123456789abcdef-test-key";
const JWT: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
