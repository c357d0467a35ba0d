//! Guardrails that say which SQL phases they judge (`selective-guardrail`),
//! through the `sluice` binary in front of a real PostgreSQL: sql-guardrail
//! judges a prepared statement once, not on every execution, while
//! deny-word, which reads bound values, is asked on every Bind; and a
//! reloaded guardrail judges statements prepared before it.

mod common;

use std::time::{Duration, Instant};

use common::component;
use common::gateway::{Gateway, Spec, seed_app};
use common::postgres::TestPostgres;

const SPEC: Spec<'static> = Spec {
    plugins: &["sql-guardrail", "deny-word"],
    toml: "[plugins.config.deny-word]\nwords = [\"drop\"]\n\
           [plugins.config.sql-guardrail.default]\ndeny_commands = [\"DROP\"]\n",
};

#[tokio::test]
async fn a_statement_guardrail_judges_a_prepared_statement_once() {
    let pg = TestPostgres::start();
    seed_app(&pg);
    let gw = Gateway::start(&pg, &SPEC);
    let client = gw.plaintext_client().await;

    let statement = client.prepare("select $1::text || 'x'").await.unwrap();
    let no_values = client.prepare("select 42").await.unwrap();
    let (sql0, word0) = (
        gw.plugin_calls("sql-guardrail"),
        gw.plugin_calls("deny-word"),
    );
    for i in 0..20 {
        let row = client
            .query_one(&statement, &[&format!("v{i}")])
            .await
            .unwrap();
        assert_eq!(row.get::<_, String>(0), format!("v{i}x"));
    }
    assert_eq!(
        gw.plugin_calls("sql-guardrail") - sql0,
        0,
        "sql-guardrail judged the statement when it was prepared"
    );
    assert_eq!(
        gw.plugin_calls("deny-word") - word0,
        20,
        "deny-word judges every execution's values"
    );

    // deny-word still sees the values, and the session goes on.
    let err = client.query_one(&statement, &[&"drop"]).await.unwrap_err();
    assert_eq!(
        err.code(),
        Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE)
    );
    let row = client.query_one(&statement, &[&"ok"]).await.unwrap();
    assert_eq!(row.get::<_, String>(0), "okx");

    // sql-guardrail replaced by a guardrail that denies everything: the
    // statement prepared under the old one is judged again at its next
    // execution, and refused.
    let before = gw.plugin_generation("sql-guardrail");
    assert!(before.is_some());
    let plugin = gw.plugin_dir().join("sql-guardrail.wasm");
    let staged = gw.plugin_dir().join(".sql-guardrail.wasm.tmp");
    std::fs::copy(component("deny-all"), &staged).unwrap();
    std::fs::rename(&staged, &plugin).unwrap();
    let start = Instant::now();
    while gw.plugin_generation("sql-guardrail") == before {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "sql-guardrail reloaded"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // With values or without, a statement prepared before is judged again.
    for err in [
        client.query_one(&statement, &[&"ok"]).await.unwrap_err(),
        client.query_one(&no_values, &[]).await.unwrap_err(),
    ] {
        assert_eq!(
            err.code(),
            Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE),
            "{err:?}"
        );
        assert!(
            err.as_db_error()
                .is_some_and(|e| e.message().contains("sql-guardrail")),
            "{err:?}"
        );
    }
}
