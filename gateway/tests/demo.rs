//! The README quick start's demo (`scripts/dev.sh demo`), run as CI runs
//! it: a throwaway PostgreSQL, the gateway with the first-party plugins, the
//! scripted agent session and the audit trail it leaves.

use std::process::Command;

#[test]
fn the_quick_start_demo_runs() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let state = tempfile::tempdir().unwrap();
    let out = Command::new("bash")
        .arg(format!("{root}/scripts/demo.sh"))
        .arg("--no-wait")
        .env("SLUICE_BIN", env!("CARGO_BIN_EXE_sluice"))
        .env("DEMO_DIR", state.path().join("demo"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let all = format!("{stdout}\n{stderr}");
    assert!(out.status.success(), "{all}");
    for expected in [
        // The allowed query.
        "Ada Lovelace | pro",
        // The refused DROP and DELETE, naming their rules.
        "denied by plugin `sql-guardrail` (rule deny-commands)",
        "(rule write-without-where)",
        // Masked values, and no clear ones.
        "a***@example.com",
        "**** **** **** 1111",
        // The recorded session, and a verified log.
        "statement.denied",
        "\"rule\": \"deny-commands\"",
        "audit log ok",
        // The session recordings, replayed.
        "postgres connection \"appdb\" · subject agent-1",
        "refused by sql-guardrail/deny-commands",
        "masked card=3 email=3",
        // The command to try it by hand.
        "psql \"host=127.0.0.1",
    ] {
        assert!(all.contains(expected), "missing {expected:?}:\n{all}");
    }
    for leaked in ["ada@example.com", "4111 1111 1111 1111", "536-22-1847"] {
        assert!(!stdout.contains(leaked), "unmasked {leaked:?}:\n{stdout}");
    }
}
