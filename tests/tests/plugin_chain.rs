//! The chain runner and plugin configuration: verdict combination, masking,
//! audit delivery through a granted directory, and `init` receiving config.

use sluice::plugins::bindings::types::{AuditEvent, Column, Request, SqlPhase, StatementKind};
use sluice::plugins::{Decision, PhaseSelections, PluginError, RefusalCause};
use sluice_tests::{PluginDir, session, sql, text_column};

const DENY_WORD: &str = "[plugins.config.deny-word]\nwords = [\"secret\", \"drop\"]\n";

#[tokio::test]
async fn init_receives_the_plugin_config_table() {
    let dir = PluginDir::new();
    dir.install("deny-word", "deny-word");
    let host = dir.host(DENY_WORD).await;
    let chain = host.chain(&["deny-word".into()]).unwrap();
    let who = session("agent-1", &[]);
    let Decision::Deny(r) = chain.check(&who, &sql("SELECT * FROM secret_table")).await else {
        panic!("configured word not denied");
    };
    assert_eq!(r.cause, RefusalCause::Policy);
    assert_eq!(r.rule, "deny-word");
    assert!(r.reason.contains("secret"), "{}", r.reason);
    assert!(matches!(
        chain.check(&who, &sql("select 1")).await,
        Decision::Allow
    ));
}

#[tokio::test]
async fn a_plugin_that_rejects_its_config_is_not_activated() {
    let dir = PluginDir::new();
    dir.install("deny-word", "deny-word");
    let host = dir.host("[plugins.config.deny-word]\nwords = []\n").await;
    assert!(host.get("deny-word").is_none());
    let why = host.why_missing("deny-word");
    assert!(why.contains("init rejected its configuration"), "{why}");
    assert!(why.contains("words"), "{why}");

    // The same reason from the `plugin check` path.
    let err = host
        .load_file("deny-word", &dir.path().join("deny-word.wasm"))
        .await
        .err()
        .unwrap();
    assert!(matches!(err, PluginError::ConfigRejected(_)), "{err}");
}

#[tokio::test]
async fn a_config_rejection_on_reload_keeps_the_previous_generation() {
    let dir = PluginDir::new();
    dir.install("gate", "allow-all");
    let host = dir.host("[plugins.config.gate]\nwords = []\n").await;
    assert!(host.get("gate").is_some());
    // deny-word rejects `words = []`: allow-all keeps serving as `gate`.
    dir.install("gate", "deny-word");
    host.rescan().await;
    let status = host
        .statuses()
        .into_iter()
        .find(|s| s.name == "gate")
        .unwrap();
    assert_eq!(status.state, "active");
    assert!(status.last_error.unwrap().contains("init rejected"));
    let chain = host.chain(&["gate".into()]).unwrap();
    assert!(matches!(
        chain.check(&session("a", &[]), &sql("drop table t")).await,
        Decision::Allow
    ));
}

#[tokio::test]
async fn first_deny_wins_and_approval_yields_to_deny() {
    let dir = PluginDir::new();
    dir.install("allow-all", "allow-all");
    dir.install("deny-all", "deny-all");
    dir.install("deny-word", "deny-word");
    dir.install("approve", "hostile");
    let host = dir
        .host(&format!(
            "{DENY_WORD}[plugins.config.approve]\nmode = \"approve\"\n"
        ))
        .await;
    let who = session("agent-1", &[]);
    let run = async |names: &[&str], text: &str| {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        host.chain(&names).unwrap().check(&who, &sql(text)).await
    };

    let Decision::Deny(r) = run(&["allow-all", "deny-word", "deny-all"], "drop table t").await
    else {
        panic!()
    };
    assert_eq!(r.plugin, "deny-word", "the first deny wins");

    assert!(matches!(
        run(&["allow-all", "approve"], "select 1").await,
        Decision::RequireApproval(_)
    ));
    let Decision::Deny(r) = run(&["approve", "deny-all"], "select 1").await else {
        panic!("a deny after a require-approval must win")
    };
    assert_eq!(r.plugin, "deny-all");
    assert!(matches!(
        run(&["allow-all"], "select 1").await,
        Decision::Allow
    ));
}

#[tokio::test]
async fn maskers_edit_rows_in_place() {
    let dir = PluginDir::new();
    dir.install("mask-email", "mask-email");
    let host = dir.host("").await;
    let chain = host.chain(&["mask-email".into()]).unwrap();
    let columns = vec![text_column("name"), text_column("email")];
    let cell = |s: &str| Some(s.as_bytes().to_vec());
    let mut rows = vec![
        vec![cell("Ada"), cell("ada@example.com")],
        vec![cell("Bob"), None],
        vec![cell("mail carol@example.org now"), cell("none")],
    ];
    let selection = chain
        .select_columns(&session("a", &[]), &columns)
        .await
        .unwrap();
    let report = chain
        .mask_rows(&session("a", &[]), &columns, &selection, &mut rows)
        .await
        .unwrap();
    assert_eq!(rows[0], vec![cell("Ada"), cell("[EMAIL]")]);
    assert_eq!(rows[1], vec![cell("Bob"), None]);
    assert_eq!(rows[2], vec![cell("mail [EMAIL] now"), cell("none")]);
    assert_eq!(report.cells_changed, 2);
    assert_eq!(report.detections[0].entity, "email");
    assert_eq!(report.detections[0].count, 2);

    let (body, _) = chain
        .mask_body(
            &session("a", &[]),
            "application/json",
            br#"{"to":"dan@example.net"}"#.to_vec(),
        )
        .await
        .unwrap();
    assert_eq!(body, br#"{"to":"[EMAIL]"}"#);
}

fn int_column(name: &str) -> Column {
    Column {
        type_oid: 23,
        type_name: Some("int4".into()),
        ..text_column(name)
    }
}

/// A column masker is asked which columns it may change, is skipped for a
/// result with none of them, and fails if it edits another; a plain masker
/// (built against 0.1.0, before `column-masker`) is asked nothing and sees
/// every result.
#[tokio::test]
async fn column_maskers_see_only_results_with_their_columns() {
    let dir = PluginDir::new();
    dir.install("mask-email", "mask-email");
    dir.install("wrong-column", "wrong-column");
    dir.install_bytes(
        "old-mask-email",
        include_bytes!("../fixtures/mask-email-0.1.0.wasm"),
    );
    let host = dir.host("").await;
    let who = session("a", &[]);
    let cell = |s: &str| Some(s.as_bytes().to_vec());

    let chain = host.chain(&["mask-email".into()]).unwrap();
    assert!(chain.has_column_maskers());
    let ids = vec![int_column("id")];
    assert!(chain.select_columns(&who, &ids).await.unwrap().is_empty());
    let mixed = vec![int_column("id"), text_column("email")];
    let selection = chain.select_columns(&who, &mixed).await.unwrap();
    assert!(!selection.is_empty());
    let mut rows = vec![vec![cell("1"), cell("ann@example.com")]];
    chain
        .mask_rows(&who, &mixed, &selection, &mut rows)
        .await
        .unwrap();
    assert_eq!(rows[0], vec![cell("1"), cell("[EMAIL]")]);

    let old = host.chain(&["old-mask-email".into()]).unwrap();
    assert!(!old.has_column_maskers());
    let selection = old.select_columns(&who, &ids).await.unwrap();
    assert!(!selection.is_empty(), "a plain masker sees every result");
    let mut rows = vec![vec![cell("1"), cell("ann@example.com")]];
    let mixed_selection = old.select_columns(&who, &mixed).await.unwrap();
    old.mask_rows(&who, &mixed, &mixed_selection, &mut rows)
        .await
        .unwrap();
    assert_eq!(rows[0], vec![cell("1"), cell("[EMAIL]")]);

    let wrong = host.chain(&["wrong-column".into()]).unwrap();
    let columns = vec![text_column("selected"), text_column("other")];
    let selection = wrong.select_columns(&who, &columns).await.unwrap();
    let mut rows = vec![vec![cell("a"), cell("b")]];
    let refusal = wrong
        .mask_rows(&who, &columns, &selection, &mut rows)
        .await
        .unwrap_err();
    assert_eq!(refusal.cause, RefusalCause::PluginFailure);
    assert!(
        refusal
            .reason
            .contains("edited column 1, which it did not select"),
        "{refusal}"
    );
    // Nothing of the refused batch is handed back as masked.
    assert_eq!(rows[0], vec![cell("a"), cell("b")]);
}

/// A selective guardrail is asked once per session and generation which
/// SQL phases it judges and is not called for the others; a plain
/// guardrail (built against 0.1.1, before `selective-guardrail`) judges
/// every phase, and so do SDK guardrails that do not narrow it.
#[tokio::test]
async fn selective_guardrails_skip_the_phases_they_do_not_judge() {
    let dir = PluginDir::new();
    dir.install("sql-guardrail", "sql-guardrail");
    dir.install("deny-word", "deny-word");
    dir.install_bytes(
        "old-deny-word",
        include_bytes!("../fixtures/deny-word-0.1.1.wasm"),
    );
    let host = dir
        .host(&format!(
            "{DENY_WORD}[plugins.config.old-deny-word]\nwords = [\"drop\"]\n\
             [plugins.config.sql-guardrail.default]\ndeny_commands = [\"DROP\"]\n"
        ))
        .await;
    let who = session("agent-1", &[]);
    let selections = PhaseSelections::default();
    let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let drop_at = |phase| {
        let mut request = sql_drop();
        if let Request::Sql(s) = &mut request {
            s.phase = phase;
        }
        request
    };

    let statements = host.chain(&names(&["sql-guardrail"])).unwrap();
    assert!(
        statements
            .judges_phase(&who, SqlPhase::Parse, &selections)
            .await
    );
    assert!(
        !statements
            .judges_phase(&who, SqlPhase::Bind, &selections)
            .await
    );
    let parse = statements
        .check_sql(
            &who,
            &drop_at(SqlPhase::Parse),
            SqlPhase::Parse,
            &selections,
        )
        .await;
    assert!(matches!(parse, Decision::Deny(_)), "{parse:?}");
    // Not asked about a bind: the statement was judged when it was prepared.
    let bind = statements
        .check_sql(&who, &drop_at(SqlPhase::Bind), SqlPhase::Bind, &selections)
        .await;
    assert!(matches!(bind, Decision::Allow), "{bind:?}");
    // Asked anyway, it judges a bind as it judged the parse.
    let asked = statements.check(&who, &drop_at(SqlPhase::Bind)).await;
    assert!(matches!(asked, Decision::Deny(_)), "{asked:?}");

    for plugin in ["deny-word", "old-deny-word"] {
        let chain = host.chain(&names(&[plugin])).unwrap();
        assert!(
            chain.judges_phase(&who, SqlPhase::Bind, &selections).await,
            "{plugin}"
        );
        let bind = chain
            .check_sql(&who, &drop_at(SqlPhase::Bind), SqlPhase::Bind, &selections)
            .await;
        assert!(matches!(bind, Decision::Deny(_)), "{plugin}: {bind:?}");
    }
    let both = host.chain(&names(&["sql-guardrail", "deny-word"])).unwrap();
    assert!(both.judges_phase(&who, SqlPhase::Bind, &selections).await);

    // Judged again after a reload, a guardrail that does not judge binds
    // gets the statement as its Parse showed it, never a bind.
    let mut harmless = sql("select 1");
    if let Request::Sql(s) = &mut harmless {
        s.phase = SqlPhase::Bind;
    }
    let again = statements
        .recheck_bind(&who, &harmless, &drop_at(SqlPhase::Parse), &selections)
        .await;
    assert!(matches!(again, Decision::Deny(_)), "{again:?}");
    let again = statements
        .recheck_bind(
            &who,
            &drop_at(SqlPhase::Bind),
            &sql("select 1"),
            &selections,
        )
        .await;
    assert!(matches!(again, Decision::Allow), "{again:?}");
}

fn sql_drop() -> Request {
    let mut request = sql("drop table customers");
    if let Request::Sql(s) = &mut request {
        let st = &mut s.statements[0];
        st.node = "DropStmt".into();
        st.kind = StatementKind::Ddl;
        st.command_tag = "DROP TABLE".into();
    }
    request
}

fn event(n: u64) -> AuditEvent {
    AuditEvent {
        id: format!("evt-{n}"),
        sequence: n,
        time_unix_ms: 1_700_000_000_000 + n,
        kind: "statement.allowed".into(),
        session_id: Some("s-1".into()),
        connection: Some("appdb".into()),
        identity: None,
        detail_json: "{}".into(),
    }
}

#[tokio::test]
async fn audit_sinks_see_only_the_directory_granted_to_them() {
    let dir = PluginDir::new();
    dir.install("audit-file", "audit-file");
    dir.install("audit-ungranted", "audit-file");
    let audit = tempfile::tempdir().unwrap();
    let host = dir
        .host(&format!(
            "[plugins.grants.audit-file]\ndirs = [{{ host = {:?}, guest = \"/audit\", writable = true }}]\n",
            audit.path().display().to_string()
        ))
        .await;

    let granted = host.get("audit-file").unwrap();
    granted.deliver(&[event(1), event(2)]).await.unwrap();
    let written = std::fs::read_to_string(audit.path().join("events.jsonl")).unwrap();
    assert_eq!(written.lines().count(), 2, "{written}");
    assert!(written.contains("evt-2"));

    // The same component without a grant has no file system at all.
    let ungranted = host.get("audit-ungranted").unwrap();
    let err = ungranted.deliver(&[event(3)]).await.err().unwrap();
    assert_eq!(err.label(), "error", "{err}");
    // A failed delivery leaves the instance usable for the retry.
    granted.deliver(&[event(4)]).await.unwrap();
}
