use std::io::Write;

use super::entry::{Entry, Header, Statement};
use super::read::{self, Filter};
use super::*;

fn header(id: &str) -> Header {
    Header {
        version: entry::FORMAT_VERSION,
        id: id.into(),
        protocol: "postgres".into(),
        connection: "appdb".into(),
        subject: "agent-1".into(),
        issuer: "https://issuer.test".into(),
        groups: vec!["agents".into()],
        client_addr: "127.0.0.1:5000".into(),
        started_ms: now_ms(),
        detail: Default::default(),
    }
}

fn statement(n: u64, verdict: &str) -> Entry {
    Entry::Statement(Statement {
        n,
        time_ms: now_ms(),
        verdict: verdict.into(),
        ..Statement::default()
    })
}

fn recorder(dir: &Path, config: RecordingConfig) -> Recorder {
    Recorder::open(dir, &config, Audit::discard()).unwrap()
}

#[test]
fn a_recording_reads_back_with_its_counts() {
    let state = tempfile::tempdir().unwrap();
    let r = recorder(state.path(), RecordingConfig::default());
    let rec = r.begin(header("abc1")).unwrap().unwrap();
    rec.write(&statement(1, "allow"));
    rec.write(&statement(2, "deny"));
    rec.end(End {
        ending: "terminated".into(),
        ..End::default()
    });
    let path = read::resolve(&sessions_dir(state.path()), "abc").unwrap();
    let read = read::entries(&path).unwrap();
    assert!(!read.torn);
    assert_eq!(read.entries.len(), 4);
    let Entry::End(end) = &read.entries[3] else {
        panic!("{:?}", read.entries[3]);
    };
    assert_eq!((end.statements_allowed, end.statements_refused), (1, 1));
    assert_eq!(end.entries, 3);
    let listed = read::list(&sessions_dir(state.path()), &Filter::default()).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].ending.as_deref(), Some("terminated"));
    // A second session's id sharing the prefix makes it ambiguous.
    r.begin(header("abc2"))
        .unwrap()
        .unwrap()
        .end(End::default());
    assert!(matches!(
        read::resolve(&sessions_dir(state.path()), "abc"),
        Err(RecordingError::Ambiguous(_))
    ));
    assert!(matches!(
        read::resolve(&sessions_dir(state.path()), "../etc"),
        Err(RecordingError::BadId(_))
    ));
}

#[test]
fn past_the_size_limit_entries_are_counted_not_written() {
    let state = tempfile::tempdir().unwrap();
    let config = RecordingConfig {
        max_session_bytes: 4096,
        ..RecordingConfig::default()
    };
    let r = recorder(state.path(), config);
    let rec = r.begin(header("51ee")).unwrap().unwrap();
    for n in 0..200 {
        rec.write(&statement(n, "allow"));
    }
    rec.end(End::default());
    let path = sessions_dir(state.path()).join("51ee.jsonl");
    let read = read::entries(&path).unwrap();
    assert!(
        read.entries
            .iter()
            .any(|e| matches!(e, Entry::Truncated(_)))
    );
    let Some(Entry::End(end)) = read.entries.last() else {
        panic!("no end line");
    };
    assert_eq!(end.statements_allowed, 200);
    assert!(end.dropped > 100, "{}", end.dropped);
    // The end line goes past the limit; everything else stays under it.
    assert!(std::fs::metadata(&path).unwrap().len() < 4096 + 1024);
}

#[test]
fn a_recording_cut_by_a_crash_is_closed_at_the_next_start() {
    let state = tempfile::tempdir().unwrap();
    let dir = sessions_dir(state.path());
    std::fs::create_dir_all(&dir).unwrap();
    let mut file = std::fs::File::create(dir.join("dead.jsonl")).unwrap();
    for e in [
        Entry::Session(header("dead")),
        statement(1, "allow"),
        statement(2, "deny"),
        statement(3, "allow"),
    ] {
        let mut line = serde_json::to_vec(&e).unwrap();
        line.push(b'\n');
        file.write_all(&line).unwrap();
    }
    file.write_all(br#"{"type":"statement","n":4,"ti"#).unwrap();
    drop(file);

    let _r = recorder(state.path(), RecordingConfig::default());
    let text = std::fs::read_to_string(dir.join("dead.jsonl")).unwrap();
    assert!(!text.contains(r#""n":4"#), "the torn line is cut: {text}");
    let read = read::entries(&dir.join("dead.jsonl")).unwrap();
    assert!(!read.torn);
    let Some(Entry::End(end)) = read.entries.last() else {
        panic!("{text}");
    };
    assert_eq!(end.ending, "interrupted");
    assert_eq!(end.entries, 4);
    // The counts are rebuilt from the file.
    assert_eq!((end.statements_allowed, end.statements_refused), (2, 1));
}

#[test]
fn the_tail_is_found_past_a_long_entry() {
    let state = tempfile::tempdir().unwrap();
    let r = recorder(state.path(), RecordingConfig::default());
    let rec = r.begin(header("10ff")).unwrap().unwrap();
    let long = "x".repeat(20_000);
    rec.write(&Entry::Statement(Statement {
        reason: Some(long),
        ..Statement::default()
    }));
    rec.end(End {
        ending: "terminated".into(),
        ..End::default()
    });
    let path = sessions_dir(state.path()).join("10ff.jsonl");
    let summary = read::summary(&path).unwrap().unwrap();
    assert_eq!(summary.ending.as_deref(), Some("terminated"));
}

#[test]
fn since_takes_times_and_ages() {
    assert_eq!(read::parse_since("1970-01-01T00:00:01Z"), Ok(1000));
    let an_hour_ago = read::parse_since("1h").unwrap();
    assert!(now_ms() - an_hour_ago >= 3_600_000);
    assert!(read::parse_since("yesterday-ish").is_err());
}
