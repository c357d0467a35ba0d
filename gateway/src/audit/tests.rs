//! The log through its public API: chaining across restarts and segments,
//! torn tails, verification, readers, and failing closed.

use std::path::Path;

use serde_json::json;

use super::keys::PublicKey;
use super::verify::{VerifyError, verify};
use super::*;

fn config() -> AuditConfig {
    AuditConfig {
        checkpoint_records: 10,
        ..AuditConfig::default()
    }
}

fn key(state: &Path) -> PublicKey {
    PublicKey::of_state(&Layout::new(state).dir).unwrap()
}

fn records(state: &Path) -> Vec<Record> {
    let mut reader = LogReader::new(Layout::new(state), 1);
    std::iter::from_fn(|| reader.next(u64::MAX).unwrap()).collect()
}

async fn write(state: &Path, config: &AuditConfig, n: u64) -> Audit {
    let audit = Audit::open(state, config).unwrap();
    for i in 0..n {
        let event = Event::new("test.event").with("i", i);
        if i % 2 == 0 {
            audit.emit(event);
        } else {
            audit.append(event).await.unwrap();
        }
    }
    audit
}

#[tokio::test]
async fn the_chain_continues_across_restarts_and_verifies() {
    let state = tempfile::tempdir().unwrap();
    write(state.path(), &config(), 25).await.shutdown().await;
    let second = write(state.path(), &config(), 5).await;
    assert_eq!(second.opened().unwrap().previous_shutdown_clean, Some(true));
    second.shutdown().await;

    let report = verify(&Layout::new(state.path()), &key(state.path())).unwrap();
    let all = records(state.path());
    assert_eq!(report.records, all.len() as u64);
    assert_eq!(report.unsigned_tail, 0, "a clean shutdown signs the end");
    let events: Vec<_> = all.iter().filter(|r| r.kind == "test.event").collect();
    assert_eq!(events.len(), 30);
    // Every id is unique and names its log and position.
    for r in &all {
        assert_eq!(r.id, format!("{}-{}", report.log_id, r.seq));
    }
    assert!(report.checkpoints >= 5, "{report:?}");
}

#[tokio::test]
async fn append_returns_once_the_record_is_readable() {
    let state = tempfile::tempdir().unwrap();
    let audit = Audit::open(state.path(), &config()).unwrap();
    let seq = audit
        .append(Event::new("statement.allowed").with("text", "select 1"))
        .await
        .unwrap();
    let mut reader = LogReader::new(Layout::new(state.path()), seq);
    let record = reader.next(seq).unwrap().unwrap();
    assert_eq!(record.detail["text"], "select 1");
    assert_eq!(*audit.committed().unwrap().borrow(), seq);
    audit.shutdown().await;
}

#[tokio::test]
async fn a_torn_tail_is_set_aside_and_recorded() {
    let state = tempfile::tempdir().unwrap();
    write(state.path(), &config(), 3).await.shutdown().await;
    let layout = Layout::new(state.path());
    let segment = layout.segments().unwrap().pop().unwrap();
    let mut bytes = std::fs::read(&segment.path).unwrap();
    bytes.extend_from_slice(br#"{"seq":99,"id":"x"#);
    std::fs::write(&segment.path, &bytes).unwrap();
    match verify(&layout, &key(state.path())) {
        Err(VerifyError::Broken { reason, .. }) => {
            assert!(reason.contains("incomplete"), "{reason}")
        }
        other => panic!("a torn tail must not verify: {other:?}"),
    }

    let audit = Audit::open(state.path(), &config()).unwrap();
    let opened = audit.opened().unwrap().clone();
    let torn = opened.torn.expect("the tear is reported");
    assert_eq!(
        std::fs::read(&torn.saved_to).unwrap(),
        br#"{"seq":99,"id":"x"#
    );
    audit.shutdown().await;
    verify(&layout, &key(state.path())).unwrap();
    assert!(
        records(state.path())
            .iter()
            .any(|r| r.kind == kinds::RECOVERED && r.detail["bytes"] == json!(17))
    );
}

#[tokio::test]
async fn segments_roll_and_readers_cross_them() {
    let state = tempfile::tempdir().unwrap();
    let config = AuditConfig {
        segment_mib: 1,
        checkpoint_records: 500,
        ..AuditConfig::default()
    };
    let audit = Audit::open(state.path(), &config).unwrap();
    let filler = "x".repeat(1000);
    for i in 0..3000u64 {
        let event = Event::new("test.event")
            .with("i", i)
            .with("pad", filler.clone());
        // Segments roll between groups: keep the groups small.
        if i % 100 == 0 {
            audit.append(event).await.unwrap();
        } else {
            audit.emit(event);
        }
    }
    audit.append(Event::new("test.last")).await.unwrap();
    audit.shutdown().await;
    let layout = Layout::new(state.path());
    assert!(layout.segments().unwrap().len() >= 3);
    let report = verify(&layout, &key(state.path())).unwrap();
    let all = records(state.path());
    assert_eq!(all.len() as u64, report.records);
    assert!(all.windows(2).all(|w| w[1].seq == w[0].seq + 1));
    // A reader placed in the middle starts exactly there.
    let mut reader = LogReader::new(layout, 2500);
    assert_eq!(reader.next(u64::MAX).unwrap().unwrap().seq, 2500);
}

#[tokio::test]
async fn a_closed_log_refuses_write_ahead_records() {
    let state = tempfile::tempdir().unwrap();
    let audit = Audit::open(state.path(), &config()).unwrap();
    audit.shutdown().await;
    assert!(matches!(
        audit.append(Event::new("statement.allowed")).await,
        Err(AuditError::Closed)
    ));
    assert!(audit.record(Event::new("statement.allowed")).await.is_err());
}

#[tokio::test]
async fn a_second_writer_is_refused() {
    let state = tempfile::tempdir().unwrap();
    let audit = Audit::open(state.path(), &config()).unwrap();
    assert!(matches!(
        Audit::open(state.path(), &config()),
        Err(AuditError::Locked(_))
    ));
    audit.shutdown().await;
}

#[tokio::test]
async fn a_log_cut_before_its_signed_head_does_not_start() {
    let state = tempfile::tempdir().unwrap();
    write(state.path(), &config(), 5).await.shutdown().await;
    let layout = Layout::new(state.path());
    let segment = layout.segments().unwrap().pop().unwrap();
    let bytes = std::fs::read(&segment.path).unwrap();
    let text = String::from_utf8(bytes).unwrap();
    let kept: Vec<&str> = text.lines().collect();
    let cut = kept[..kept.len() - 1].join("\n") + "\n";
    std::fs::write(&segment.path, cut).unwrap();
    let err = Audit::open(state.path(), &config()).err().unwrap();
    assert!(err.to_string().contains("records were removed"), "{err}");
}

/// Checkpoints are synced and their heads signed by the sync thread while
/// appends go on: the head follows the log, always names a checkpoint the
/// log holds (the log verifies at any moment), and never moves back.
#[tokio::test]
async fn the_signed_head_follows_the_log_while_it_runs() {
    let state = tempfile::tempdir().unwrap();
    let audit = Audit::open(state.path(), &config()).unwrap();
    let layout = Layout::new(state.path());
    let mut last_head = 0;
    for round in 0..20u64 {
        for i in 0..25u64 {
            audit
                .append(Event::new("test.event").with("i", round * 25 + i))
                .await
                .unwrap();
        }
        let report = verify(&layout, &key(state.path())).unwrap();
        let head = keys::Head::read(&layout.head()).unwrap().unwrap();
        assert!(head.seq >= last_head, "the head moved back");
        assert!(head.seq <= report.records);
        last_head = head.seq;
    }
    // With appends stopped, the head catches up with the last checkpoint.
    let committed = *audit.committed().unwrap().borrow();
    let mut caught_up = false;
    for _ in 0..100 {
        let head = keys::Head::read(&layout.head()).unwrap().unwrap();
        if head.seq + config().checkpoint_records >= committed {
            caught_up = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(caught_up, "the head stays behind the log");
    audit.shutdown().await;
    let report = verify(&layout, &key(state.path())).unwrap();
    assert_eq!(report.unsigned_tail, 0);
}

/// Write-ahead records are committed by the appending session itself
/// (`interval`, `never`) or by the writer thread (`always`, a busy lock):
/// either way every session's records keep their order, queued events
/// included, and the chain verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_keep_their_order_whoever_commits() {
    for fsync in [FsyncPolicy::Interval, FsyncPolicy::Always] {
        let state = tempfile::tempdir().unwrap();
        let config = AuditConfig {
            fsync,
            checkpoint_records: 37,
            ..AuditConfig::default()
        };
        let audit = Audit::open(state.path(), &config).unwrap();
        let sessions: Vec<_> = (0..8u64)
            .map(|session| {
                let audit = audit.clone();
                tokio::spawn(async move {
                    for i in 0..60u64 {
                        let event = |step: &str| {
                            Event::new("test.step")
                                .session_id(session.to_string())
                                .with("i", i)
                                .with("step", step)
                        };
                        audit.append(event("write-ahead")).await.unwrap();
                        audit.emit(event("completed"));
                    }
                })
            })
            .collect();
        for s in sessions {
            s.await.unwrap();
        }
        audit.shutdown().await;
        verify(&Layout::new(state.path()), &key(state.path())).unwrap();
        let all = records(state.path());
        for session in 0..8u64 {
            let steps: Vec<(u64, String)> = all
                .iter()
                .filter(|r| r.session.as_deref() == Some(&session.to_string()))
                .map(|r| {
                    (
                        r.detail["i"].as_u64().unwrap(),
                        r.detail["step"].as_str().unwrap().to_string(),
                    )
                })
                .collect();
            let expected: Vec<(u64, String)> = (0..60)
                .flat_map(|i| [(i, "write-ahead".into()), (i, "completed".into())])
                .collect();
            assert_eq!(steps, expected, "{fsync:?}, session {session}");
        }
    }
}

/// Records built from a typed detail and a shared encoded identity are the
/// records field-by-field events make: same members, same order, same
/// bytes apart from sequence, time and chain.
#[tokio::test]
async fn encoded_details_and_identities_record_as_fields_do() {
    #[derive(serde::Serialize)]
    struct Detail<'a> {
        commands: &'a [&'a str],
        duration_ms: f64,
        error: Option<&'a str>,
        rows: u64,
    }
    let identity = EventIdentity {
        subject: "agent-1".into(),
        issuer: "https://issuer.test".into(),
        groups: vec!["agents".into(), "ops".into()],
        claims: json!({"tenant": "t1", "quote": "a\"b"})
            .as_object()
            .cloned()
            .unwrap(),
    };
    let state = tempfile::tempdir().unwrap();
    let audit = Audit::open(state.path(), &config()).unwrap();
    let fields = Event::new("test.event")
        .session_id("s1")
        .identity(identity.clone())
        .with("rows", 2)
        .with("error", serde_json::Value::Null)
        .with("duration_ms", 1.25)
        .with("commands", json!(["SELECT 2"]));
    let encoded = Event::new("test.event")
        .session_id("s1")
        .encoded_identity(EncodedIdentity::new(&identity))
        .detail_of(&Detail {
            commands: &["SELECT 2"],
            duration_ms: 1.25,
            error: None,
            rows: 2,
        });
    // Fields added after a typed detail join it.
    let extended = encoded.clone().with("extra", true);
    audit.append(fields).await.unwrap();
    audit.append(encoded).await.unwrap();
    audit.append(extended).await.unwrap();
    audit.shutdown().await;

    let segment = std::fs::read_dir(Layout::new(state.path()).segments_dir())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let text = std::fs::read_to_string(segment).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| l.contains("test.event")).collect();
    assert_eq!(lines.len(), 3);
    let member = |line: &str, from: &str, to: &str| {
        let start = line.find(from).unwrap();
        line[start..start + line[start..].find(to).unwrap()].to_string()
    };
    assert_eq!(
        member(lines[0], r#""session""#, r#","prev""#),
        member(lines[1], r#""session""#, r#","prev""#)
    );
    let all = records(state.path());
    let events: Vec<_> = all.iter().filter(|r| r.kind == "test.event").collect();
    assert_eq!(events[1].identity.as_ref(), Some(&identity));
    assert_eq!(events[2].detail["extra"], json!(true));
    assert_eq!(events[2].detail["rows"], json!(2));
    verify(&Layout::new(state.path()), &key(state.path())).unwrap();
}
