use super::completion::tag_rows;
use super::*;
use crate::plugins::bindings::types::{Identity, Protocol};
use crate::postgres::frame;

fn session() -> Session {
    Session {
        id: "s1".into(),
        connection: "appdb".into(),
        protocol: Protocol::Postgres,
        identity: Identity {
            subject: "agent-1".into(),
            issuer: "https://issuer.test".into(),
            groups: vec!["agents".into()],
            claims_json: "{}".into(),
        },
        client_addr: "127.0.0.1:5000".into(),
    }
}

/// A statement that cannot be recorded is refused, never forwarded.
#[tokio::test]
async fn an_unrecordable_statement_is_refused() {
    let state = tempfile::tempdir().unwrap();
    let audit = Audit::open(state.path(), &crate::audit::AuditConfig::default()).unwrap();
    audit.shutdown().await;
    let trail = Trail::new(audit, session(), None);
    let refusal = trail
        .allowed("insert into t values (1)", SqlPhase::SimpleQuery, None, &[])
        .await
        .expect_err("refused");
    let fields = frame::error_fields(&refusal.body);
    assert!(
        fields.contains(&(b'C', AUDIT_UNAVAILABLE.to_string())),
        "{fields:?}"
    );
    assert!(
        fields
            .iter()
            .any(|(c, m)| *c == b'M' && m.contains("could not record")),
        "{fields:?}"
    );
}

#[test]
fn rows_from_command_tags() {
    assert_eq!(tag_rows("SELECT 3"), Some(3));
    assert_eq!(tag_rows("INSERT 0 12"), Some(12));
    assert_eq!(tag_rows("FETCH 0"), Some(0));
    for uncounted in ["CREATE TABLE", "BEGIN", "EXPLAIN", "SHOW", "CALL"] {
        assert_eq!(tag_rows(uncounted), None, "{uncounted}");
    }
}

/// A command whose tag carries no count (`EXPLAIN`, `SHOW`) is counted by
/// the rows relayed for it, also across several calls.
#[tokio::test]
async fn rows_of_an_uncounted_command_are_those_relayed() {
    let state = tempfile::tempdir().unwrap();
    let audit = Audit::open(state.path(), &crate::audit::AuditConfig::default()).unwrap();
    let trail = Trail::new(audit.clone(), session(), None);
    let row = || Frame::new(b'D', &b"\0\x01\0\0\0\x01x"[..]);
    let complete = |tag: &str| Frame::new(b'C', format!("{tag}\0").into_bytes());
    trail.observe(&[row(), row()]);
    trail.observe(&[row(), complete("EXPLAIN")]);
    assert_eq!(trail.lock().done.rows, 3);
    trail.observe(&[row(), row(), complete("SELECT 2"), complete("SHOW")]);
    assert_eq!(trail.lock().done.rows, 5);
    trail.observe(&[row(), complete("SHOW")]);
    assert_eq!(trail.lock().done.rows, 6);
    audit.shutdown().await;
}
