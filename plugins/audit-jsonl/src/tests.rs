use serde_json::{Value, json};
use sluice_plugin_sdk::types::AuditEvent;
use sluice_plugin_sdk::{AuditSink, testing};

use super::AuditJsonl;

fn event(log: &str, sequence: u64) -> AuditEvent {
    let mut e = testing::audit_event("statement.allowed", sequence, json!({"text": "select 1"}));
    e.id = format!("{log}-{sequence}");
    e
}

fn sink(dir: &std::path::Path, extra: Value) -> AuditJsonl {
    let mut config = json!({ "file": dir.join("events.jsonl") });
    if let (Some(c), Some(extra)) = (config.as_object_mut(), extra.as_object()) {
        c.extend(extra.clone());
    }
    testing::audit_sink::<AuditJsonl>(config).expect("valid config")
}

fn sequences(path: &std::path::Path) -> Vec<u64> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["sequence"]
                .as_u64()
                .unwrap()
        })
        .collect()
}

#[test]
fn writes_one_line_per_event_and_drops_repeats() {
    let dir = tempfile::tempdir().unwrap();
    let s = sink(dir.path(), json!({}));
    s.deliver(&[event("a", 1), event("a", 2)]).unwrap();
    // A redelivered batch overlapping what was written.
    s.deliver(&[event("a", 2), event("a", 3)]).unwrap();
    let path = dir.path().join("events.jsonl");
    assert_eq!(sequences(&path), vec![1, 2, 3]);
    let first: Value = serde_json::from_str(
        std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(first["id"], "a-1");
    assert_eq!(first["detail"]["text"], "select 1");
    assert_eq!(first["identity"]["subject"], "agent");
}

#[test]
fn a_new_instance_reads_where_the_file_ends() {
    let dir = tempfile::tempdir().unwrap();
    sink(dir.path(), json!({}))
        .deliver(&[event("a", 1), event("a", 2)])
        .unwrap();
    let again = sink(dir.path(), json!({}));
    again
        .deliver(&[event("a", 1), event("a", 2), event("a", 3)])
        .unwrap();
    assert_eq!(sequences(&dir.path().join("events.jsonl")), vec![1, 2, 3]);
    // Another gateway log starts its sequences again: not a repeat.
    again.deliver(&[event("b", 1)]).unwrap();
    assert_eq!(
        sequences(&dir.path().join("events.jsonl")),
        vec![1, 2, 3, 1]
    );
}

#[test]
fn a_torn_last_line_is_cut_and_its_events_written_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    sink(dir.path(), json!({}))
        .deliver(&[event("a", 1)])
        .unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(br#"{"id":"a-2","seq"#);
    std::fs::write(&path, bytes).unwrap();
    sink(dir.path(), json!({}))
        .deliver(&[event("a", 2)])
        .unwrap();
    assert_eq!(sequences(&path), vec![1, 2]);
}

#[test]
fn rotation_keeps_the_old_file_and_still_drops_repeats() {
    let dir = tempfile::tempdir().unwrap();
    let s = sink(dir.path(), json!({ "rotate_bytes": 600 }));
    for n in 1..=6 {
        s.deliver(&[event("a", n)]).unwrap();
    }
    let rotated: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name() != "events.jsonl")
        .collect();
    assert!(!rotated.is_empty(), "no file was rotated");
    let mut all: Vec<u64> = rotated.iter().flat_map(|e| sequences(&e.path())).collect();
    all.extend(sequences(&dir.path().join("events.jsonl")));
    all.sort();
    assert_eq!(all, vec![1, 2, 3, 4, 5, 6]);
    // A new instance right after a rotation finds the last event in the
    // rotated file.
    std::fs::remove_file(dir.path().join("events.jsonl")).ok();
    let again = sink(dir.path(), json!({ "rotate_bytes": 600 }));
    let newest = rotated
        .iter()
        .map(|e| sequences(&e.path()).into_iter().max().unwrap_or(0))
        .max()
        .unwrap();
    again.deliver(&[event("a", newest)]).unwrap();
    assert!(sequences(&dir.path().join("events.jsonl")).is_empty());
}

#[test]
fn an_ungranted_directory_is_refused_at_init() {
    let err = testing::audit_sink::<AuditJsonl>(json!({ "file": "/nonexistent-dir/events.jsonl" }))
        .err()
        .unwrap();
    assert!(err.contains("grant"), "{err}");
    let err = testing::audit_sink::<AuditJsonl>(json!({ "file": "events.jsonl" }))
        .err()
        .unwrap();
    assert!(err.contains("absolute"), "{err}");
}
