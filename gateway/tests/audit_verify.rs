//! `sluice audit verify` against tampered logs: every kind of edit is found
//! and the first broken record named; an untouched log verifies.

mod common;

use std::path::{Path, PathBuf};

use common::process::verify;
use sluice::audit::{Audit, AuditConfig, Event, Layout};

/// A finished log of `events` events (plus checkpoints) in `dir/state`,
/// with a `sluice.toml` pointing at it.
fn make_log(dir: &Path, events: u64) {
    std::fs::write(
        dir.join("sluice.toml"),
        "[gateway]\nstate_dir = \"state\"\n",
    )
    .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let config = AuditConfig {
            checkpoint_records: 8,
            ..AuditConfig::default()
        };
        let audit = Audit::open(&dir.join("state"), &config).unwrap();
        for i in 0..events {
            audit.emit(
                Event::new("statement.allowed")
                    .with("text", format!("insert into t values ({i})"))
                    .with("verdict", "allow"),
            );
        }
        audit.shutdown().await;
    });
}

fn segment(dir: &Path) -> PathBuf {
    let segments = Layout::new(&dir.join("state")).segments().unwrap();
    assert_eq!(segments.len(), 1);
    segments[0].path.clone()
}

fn lines(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(segment(dir))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn write_lines(dir: &Path, lines: &[String]) {
    std::fs::write(segment(dir), lines.join("\n") + "\n").unwrap();
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A fresh copy of the pristine log to tamper with.
fn copy_of(pristine: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(pristine, dir.path());
    dir
}

fn assert_broken_at(dir: &Path, seq: u64, why: &str) {
    let (ok, out, err) = verify(dir);
    assert!(!ok, "a tampered log verified: {out}");
    assert!(
        err.contains(&format!("BROKEN at record {seq} ")),
        "expected record {seq} to be named: {err}"
    );
    assert!(err.contains(why), "expected {why:?}: {err}");
}

#[test]
fn tampering_is_detected_and_the_record_named() {
    let pristine = tempfile::tempdir().unwrap();
    make_log(pristine.path(), 40);

    // Untouched: verifies, and says how much is signed.
    let (ok, out, err) = verify(pristine.path());
    assert!(ok, "{out}{err}");
    assert!(out.contains("audit log ok"), "{out}");
    assert!(out.contains("0 record(s) after it"), "{out}");
    let original = lines(pristine.path());
    let middle = 20;
    assert!(original.len() > 40);
    assert!(original[middle - 1].contains(&format!("\"seq\":{middle},")));

    // One byte of a middle record.
    let dir = copy_of(pristine.path());
    let mut edited = original.clone();
    edited[middle - 1] = edited[middle - 1].replacen("insert into", "insert inta", 1);
    assert_ne!(edited, original, "the record holds statement text");
    write_lines(dir.path(), &edited);
    assert_broken_at(dir.path(), middle as u64, "contents were changed");

    // A record deleted.
    let dir = copy_of(pristine.path());
    let mut deleted = original.clone();
    deleted.remove(middle - 1);
    write_lines(dir.path(), &deleted);
    assert_broken_at(
        dir.path(),
        middle as u64,
        "a record is missing or out of order",
    );

    // Two records swapped.
    let dir = copy_of(pristine.path());
    let mut swapped = original.clone();
    swapped.swap(middle - 1, middle);
    write_lines(dir.path(), &swapped);
    assert_broken_at(dir.path(), middle as u64, "out of order");

    // The tail cut at a record boundary: the signed head names a record
    // the log no longer has.
    let dir = copy_of(pristine.path());
    let keep = original.len() - 3;
    write_lines(dir.path(), &original[..keep]);
    assert_broken_at(dir.path(), keep as u64 + 1, "records were cut from the end");
    // Named where it belongs: the line after the last one left.
    let (_, _, err) = verify(dir.path());
    assert!(err.contains(&format!("line {})", keep + 1)), "{err}");

    // The tail cut in the middle of a record.
    let dir = copy_of(pristine.path());
    let path = segment(dir.path());
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 30]).unwrap();
    assert_broken_at(dir.path(), original.len() as u64, "incomplete");

    // The whole log (segments and signed head) replaced by one that another
    // key signed, consistent in itself.
    let forged = tempfile::tempdir().unwrap();
    make_log(forged.path(), 40);
    let dir = copy_of(pristine.path());
    let audit = dir.path().join("state/audit");
    std::fs::remove_dir_all(audit.join("log")).unwrap();
    copy_dir(&forged.path().join("state/audit/log"), &audit.join("log"));
    std::fs::copy(
        forged.path().join("state/audit/head.json"),
        audit.join("head.json"),
    )
    .unwrap();
    assert_broken_at(dir.path(), 1, "signed by another key");

    // A pinned public key: verifying a state directory whose key was
    // replaced along with its log.
    let dir = copy_of(forged.path());
    let pinned = pristine.path().join("state/audit/signing.pub");
    let out = common::process::sluice()
        .args(["--config", "sluice.toml", "audit", "verify", "--public-key"])
        .arg(&pinned)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("BROKEN at record 1 "), "{err}");
}

#[test]
fn verify_without_a_log_fails() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("sluice.toml"),
        "[gateway]\nstate_dir = \"state\"\n",
    )
    .unwrap();
    let (ok, _, err) = verify(dir.path());
    assert!(!ok);
    assert!(err.contains("audit"), "{err}");
}
