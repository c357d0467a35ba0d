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
    assert_eq!(tag_rows("SELECT 3"), 3);
    assert_eq!(tag_rows("INSERT 0 12"), 12);
    assert_eq!(tag_rows("CREATE TABLE"), 0);
    assert_eq!(tag_rows("BEGIN"), 0);
}
