//! The sql-guardrail plugin end to end: the `sluice` binary with the policy
//! of examples/sql-guardrail.toml in front of a real PostgreSQL, and the
//! evasion corpus (sql_guardrail_cases) sent by tokio-postgres through both
//! the simple and the extended protocol.
//!
//! The upstream role is a superuser, so anything the gateway forwarded would
//! really run: a refused case must leave the database (tables, rows,
//! sequences, roles, settings, functions, operators, files the server could
//! write) and the session (role, search path, string and encoding settings)
//! exactly as they were.

mod common;
mod sql_guardrail_cases;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::component;
use common::gateway::Gateway;
use common::postgres::TestPostgres;
use common::raw::RawSession;
use sql_guardrail_cases::{Case, Expect, Protocols, cases};
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls};

const GROUPS: &[&str] = &["readers", "agents", "analysts", "dba"];

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/sql-guardrail.toml")
}

/// The gateway with the example's `[plugins.config.sql-guardrail]` and
/// connection, on free ports, in front of `pg`.
fn start(pg: &TestPostgres) -> Gateway {
    let example: toml::Table =
        toml::from_str(&std::fs::read_to_string(example()).unwrap()).unwrap();
    let mut config: toml::Table = toml::from_str("[plugins.config]").unwrap();
    config["plugins"]["config"].as_table_mut().unwrap().insert(
        "sql-guardrail".into(),
        example["plugins"]["config"]["sql-guardrail"].clone(),
    );
    let mut connection = example["connections"][0].as_table().unwrap().clone();
    connection.insert("upstream".into(), pg.addr().into());
    config.insert(
        "connections".into(),
        vec![toml::Value::Table(connection)].into(),
    );
    Gateway::from_toml(config, &["sql-guardrail"], &[("APPDB_PASSWORD", "app-pw")])
}

/// A tokio-postgres client through the gateway, as `agent-1` in `group`.
async fn client(gw: &Gateway, group: &str) -> Client {
    let conninfo = format!(
        "host=127.0.0.1 port={} dbname=appdb user=agent-1 password={}",
        gw.pg_port,
        gw.token_for("agent-1", &[group])
    );
    let (client, connection) = tokio_postgres::connect(&conninfo, NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}

fn seed(pg: &TestPostgres) {
    pg.psql(
        "postgres",
        "create role app login superuser password 'app-pw'",
    )
    .unwrap();
    pg.psql("postgres", "create database app owner app")
        .unwrap();
    pg.psql(
        "app",
        "create schema billing; create schema reporting;
         create table customers(id int primary key, name text, email text);
         insert into customers values (1, 'Ada', 'ada@example.com'), (2, 'Bob', null), (3, 'Cy', 'cy@example.org');
         create table scratch(id int, note text);
         insert into scratch values (0, 'seed');
         create table billing.invoices(id int primary key, customer int, amount numeric);
         insert into billing.invoices values (1, 1, 10), (2, 2, 20), (3, 3, 30);
         create table billing.card_tokens(id int, token text);
         insert into billing.card_tokens values (1, 'tok_secret');
         create table reporting.daily(day date, total numeric);
         insert into reporting.daily values ('2026-01-01', 60);
         create sequence seq;
         create procedure purge_scratch() language sql as $$ delete from scratch $$;
         select lo_create(1);",
    )
    .unwrap();
}

/// Everything a forwarded statement of the corpus could have changed.
const SNAPSHOT: &str = "select concat_ws(' | ',
    (select string_agg(n.nspname || '.' || c.relname || ':' || c.relkind::text, ',' order by 1)
       from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname not in ('pg_catalog', 'information_schema', 'pg_toast')),
    (select string_agg(nspname, ',' order by nspname) from pg_namespace),
    (select md5(string_agg(t::text, ',' order by id)) from customers t),
    (select md5(string_agg(t::text, ',' order by id, note)) from scratch t),
    (select md5(string_agg(t::text, ',' order by id)) from billing.invoices t),
    (select md5(string_agg(t::text, ',' order by id)) from billing.card_tokens t),
    (select last_value || ':' || is_called from seq),
    (select string_agg(rolname || rolsuper::text, ',' order by rolname) from pg_roles),
    (select count(*) from pg_largeobject_metadata),
    (select string_agg(setconfig::text, ',') from pg_db_role_setting),
    (select count(*) from pg_proc where pronamespace = 'public'::regnamespace),
    (select count(*) from pg_operator where oprnamespace = 'public'::regnamespace),
    (select count(*) from pg_trigger where not tgisinternal),
    (select count(*) from pg_rewrite r join pg_class c on c.oid = r.ev_class
      where c.relnamespace = 'public'::regnamespace),
    (select string_agg(extname, ',') from pg_extension),
    (select count(*) from pg_prepared_xacts))";

/// What a forwarded statement could have changed in the agent's own session.
const PROBE: &str = "SELECT current_user, session_user, current_setting('search_path'), \
    current_setting('standard_conforming_strings'), current_setting('client_encoding'), \
    current_setting('session_replication_role')";

async fn snapshot(admin: &Client, marker: &Path) -> String {
    let db = match admin.query_one(SNAPSHOT, &[]).await {
        Ok(row) => row.get::<_, String>(0),
        Err(e) => format!("snapshot failed: {e}"),
    };
    format!("{db} | marker file: {}", marker.exists())
}

async fn probe(client: &Client) -> String {
    match client.simple_query(PROBE).await {
        Ok(messages) => format!("{messages:?}"),
        Err(e) => format!("probe failed: {e}"),
    }
}

#[derive(Clone, Copy, Debug)]
enum Protocol {
    Simple,
    Extended,
}

async fn send(client: &Client, protocol: Protocol, sql: &str) -> Result<(), tokio_postgres::Error> {
    match protocol {
        Protocol::Simple => client.simple_query(sql).await.map(drop),
        Protocol::Extended => {
            let statement = client.prepare(sql).await?;
            client.query(&statement, &[]).await.map(drop)
        }
    }
}

/// The case's outcome, or why it is wrong.
async fn run(
    client: &Client,
    admin: &Client,
    marker: &Path,
    case: &Case,
    protocol: Protocol,
) -> Result<(), String> {
    let sql = case.sql.replace("{marker}", &marker.display().to_string());
    let before = (snapshot(admin, marker).await, probe(client).await);
    let result = send(client, protocol, &sql).await;
    let after = (snapshot(admin, marker).await, probe(client).await);
    let (code, message) = match &result {
        Ok(()) => (None, String::new()),
        Err(e) => match e.as_db_error() {
            // A statement the gateway could not analyse gets the parser's
            // message, with the refusal in the detail.
            Some(db) => (
                Some(db.code().clone()),
                format!("{} {}", db.message(), db.detail().unwrap_or("")),
            ),
            None => return Err(format!("not a database error: {e:?}")),
        },
    };
    let (want_code, want_text) = match case.expect {
        Expect::Allow | Expect::AllowInert => {
            if let Err(e) = result {
                return Err(format!("refused: {e}"));
            }
            if case.expect == Expect::Allow {
                return Ok(());
            }
            (None, String::new())
        }
        Expect::Deny(rule) => (
            Some(SqlState::INSUFFICIENT_PRIVILEGE),
            format!("denied by plugin `sql-guardrail` (rule {rule}): "),
        ),
        Expect::Approval(rule) => (
            Some(SqlState::INSUFFICIENT_PRIVILEGE),
            format!("requires approval (plugin `sql-guardrail`, rule {rule}): "),
        ),
        Expect::Refused(text) => (Some(SqlState::INSUFFICIENT_PRIVILEGE), text.to_string()),
        Expect::Unparsed => (
            Some(SqlState::SYNTAX_ERROR),
            "could not be analysed".to_string(),
        ),
    };
    if code != want_code || !message.contains(&want_text) {
        return Err(format!(
            "got {:?} {message:?}, expected {:?} with {want_text:?}",
            code.map(|c| c.code().to_string()),
            want_code.map(|c| c.code().to_string())
        ));
    }
    if before != after {
        return Err(format!(
            "it had an effect:\n      before {before:?}\n      after  {after:?}"
        ));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_evasion_corpus_is_refused_through_both_protocols() {
    let pg = TestPostgres::start();
    seed(&pg);
    let marker = pg.data_dir().with_file_name("copied-by-the-server");
    let gw = start(&pg);
    let (admin, connection) = tokio_postgres::connect(
        &format!(
            "host=127.0.0.1 port={} dbname=app user={} password={}",
            pg.port, pg.user, pg.password
        ),
        NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    let mut clients = Vec::new();
    for group in GROUPS {
        let client = client(&gw, group).await;
        let session = probe(&client).await;
        assert!(!session.contains("probe failed"), "{group}: {session}");
        clients.push((*group, client));
    }

    let baseline = snapshot(&admin, &marker).await;
    assert!(!baseline.contains("snapshot failed"), "{baseline}");

    let all = cases();
    assert!(all.len() >= 40, "the corpus shrank to {}", all.len());
    let mut failures = Vec::new();
    let mut runs = 0;
    for case in &all {
        let (_, client) = clients
            .iter()
            .find(|(g, _)| *g == case.group)
            .unwrap_or_else(|| panic!("no client for group {}", case.group));
        let protocols: &[Protocol] = match case.protocols {
            Protocols::Both => &[Protocol::Simple, Protocol::Extended],
            Protocols::SimpleOnly => &[Protocol::Simple],
        };
        for protocol in protocols {
            runs += 1;
            if let Err(why) = run(client, &admin, &marker, case, *protocol).await {
                failures.push(format!(
                    "[{} {protocol:?}] {:?}\n    {why}",
                    case.group, case.sql
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {runs} runs ({} cases) failed:\n{}",
        failures.len(),
        all.len(),
        failures.join("\n")
    );
}

#[test]
fn the_example_config_is_valid_for_the_gateway_and_the_plugin() {
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .arg("--config")
            .arg(example())
            .args(args)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{args:?}: {text}");
        text
    };
    run(&["config", "check"]);
    // The README shows this policy: it must be the one tested here.
    let example = std::fs::read_to_string(example()).unwrap();
    let start = example.find("[plugins.config.sql-guardrail]").unwrap();
    let end = example.find("[[connections]]").unwrap();
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .unwrap();
    assert!(
        readme.contains(&format!("```toml\n{}\n```", example[start..end].trim_end())),
        "README's sql-guardrail example differs from examples/sql-guardrail.toml"
    );
    let checked = run(&[
        "plugin",
        "check",
        component("sql-guardrail").to_str().unwrap(),
    ]);
    assert!(
        checked.contains("world:   selective-guardrail"),
        "{checked}"
    );
    assert!(
        checked.contains("billing-delete"),
        "the example's config reached the plugin: {checked}"
    );
}

/// The gateway's own guard (not the plugin's): a session whose server stops
/// reading statements the way the gateway's parser does is ended, however
/// the setting changed, and a database default cannot start it that way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_the_parser_would_misread_are_ended() {
    let pg = TestPostgres::start();
    seed(&pg);
    let gw = start(&pg);

    // Through code the statement summaries cannot see into (dba may run DO).
    let dba = client(&gw, "dba").await;
    let changed = dba
        .simple_query(
            "DO $$ BEGIN PERFORM set_config('standard_conforming_strings', 'off', false); END $$",
        )
        .await;
    let next = dba
        .simple_query("SELECT 'a\\''; DELETE FROM customers; --'")
        .await;
    let err = next.expect_err("the session goes on after the parser fell out of sync");
    let reported = format!("{changed:?} {err:?}");
    assert!(
        reported.contains("standard_conforming_strings"),
        "{reported}"
    );
    assert_eq!(
        pg.psql("app", "select count(*) from customers")
            .unwrap()
            .trim(),
        "3"
    );

    // A database default does not apply: the gateway starts every upstream
    // session with standard_conforming_strings pinned on.
    pg.psql(
        "app",
        "alter database app set standard_conforming_strings = off",
    )
    .unwrap();
    let agent = client(&gw, "agents").await;
    let rows = agent
        .simple_query("SHOW standard_conforming_strings")
        .await
        .unwrap();
    let shown = rows.iter().find_map(|m| match m {
        tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
        _ => None,
    });
    assert_eq!(shown.as_deref(), Some("on"));
}

/// The `statement.executed` records of statement `name`, once there are
/// `n` of them or five seconds have passed (executions are recorded before
/// they run, but the test reads the log from another process).
fn executed_records(gw: &Gateway, name: &str, n: usize) -> Vec<sluice::audit::Record> {
    let executed = || {
        common::process::read_log(&gw.state_dir())
            .into_iter()
            .filter(|r| r.kind == "statement.executed" && r.detail["statement_name"] == name)
            .collect::<Vec<_>>()
    };
    common::process::wait_until(std::time::Duration::from_secs(5), || executed().len() >= n);
    executed()
}

/// A statement prepared with SQL `PREPARE` can be bound by name through the
/// protocol. Its Binds reach the guardrail with the prepared text and its
/// analysis (sql-guardrail refuses a request without statement summaries),
/// and each execution is a write-ahead record naming that text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bind_to_a_sql_prepared_statement_is_checked_with_its_text() {
    let pg = TestPostgres::start();
    seed(&pg);
    let gw = start(&pg);
    let mut agent = RawSession::connect(&gw, "agents").await;
    let prepared = agent
        .query("PREPARE by_id(int) AS SELECT name FROM customers WHERE id = $1")
        .await;
    assert!(prepared.error.is_none(), "{prepared:?}\n{}", gw.log());
    let ran = agent.run_prepared("by_id", &["1"]).await;
    assert!(ran.error.is_none(), "{ran:?}\n{}", gw.log());
    assert_eq!(ran.rows, vec![vec![Some("Ada".to_string())]]);
    // The session goes on, and the executions are on record with the text.
    let again = agent.run_prepared("by_id", &["2"]).await;
    assert_eq!(again.rows, vec![vec![Some("Bob".to_string())]]);
    let records = executed_records(&gw, "by_id", 2);
    assert_eq!(records.len(), 2, "{records:?}");
    for r in &records {
        assert_eq!(r.detail["statement_name"], "by_id");
        assert!(
            r.detail["text"]
                .as_str()
                .is_some_and(|t| t.starts_with("PREPARE by_id")),
            "{r:?}"
        );
    }

    // A PREPARE of a name in use fails at the server and changes nothing;
    // after DEALLOCATE the name is free for a new text.
    let taken = agent
        .query("PREPARE by_id(int) AS SELECT email FROM customers WHERE id = $1")
        .await;
    assert_eq!(taken.error.map(|e| e.0).as_deref(), Some("42P05"));
    let ran = agent.run_prepared("by_id", &["1"]).await;
    assert_eq!(ran.rows, vec![vec![Some("Ada".to_string())]]);
    let deallocated = agent
        .query("DEALLOCATE by_id; PREPARE by_id(int) AS SELECT id FROM customers WHERE id = $1")
        .await;
    assert!(deallocated.error.is_none(), "{deallocated:?}");
    let ran = agent.run_prepared("by_id", &["3"]).await;
    assert_eq!(ran.rows, vec![vec![Some("3".to_string())]]);
    let records = executed_records(&gw, "by_id", 4);
    assert_eq!(records.len(), 4, "{records:?}");
    let text = |i: usize| records[i].detail["text"].as_str().unwrap_or_default();
    assert!(text(2).contains("SELECT name FROM"), "{:?}", records[2]);
    assert!(text(3).contains("SELECT id FROM"), "{:?}", records[3]);
}

/// A Parse of a name in use fails at the server and must not change what
/// the gateway believes the name runs: its Binds go to the guardrails, and
/// its executions to the audit log, with the text the server really runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_keeps_its_text_until_it_is_closed() {
    let pg = TestPostgres::start();
    seed(&pg);
    let gw = start(&pg);
    let mut agent = RawSession::connect(&gw, "agents").await;
    let by_name = "SELECT name FROM customers WHERE id = $1";
    assert!(agent.parse("p1", by_name).await.error.is_none());
    let taken = agent
        .parse("p1", "SELECT email FROM customers WHERE id = $1")
        .await;
    assert_eq!(taken.error.map(|e| e.0).as_deref(), Some("42P05"));
    // The first execution is covered by the Parse record; the second gets
    // a record of its own, naming the text the server ran.
    for _ in 0..2 {
        let ran = agent.run_prepared("p1", &["1"]).await;
        assert_eq!(ran.rows, vec![vec![Some("Ada".to_string())]], "{ran:?}");
    }
    assert!(agent.close("p1").await.error.is_none());
    let by_id = "SELECT id FROM customers WHERE id = $1";
    assert!(agent.parse("p1", by_id).await.error.is_none());
    for _ in 0..2 {
        let ran = agent.run_prepared("p1", &["3"]).await;
        assert_eq!(ran.rows, vec![vec![Some("3".to_string())]], "{ran:?}");
    }
    let records = executed_records(&gw, "p1", 2);
    let texts: Vec<&str> = records
        .iter()
        .map(|r| r.detail["text"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(texts, vec![by_name, by_id]);
}

/// A client as `agent-1` in `agents` with `options` in its startup message.
async fn connect_with_options(
    gw: &Gateway,
    options: &str,
) -> Result<Client, tokio_postgres::Error> {
    let mut config = tokio_postgres::Config::new();
    config
        .host("127.0.0.1")
        .port(gw.pg_port)
        .dbname("appdb")
        .user("agent-1")
        .password(gw.token_for("agent-1", &["agents"]))
        .options(options);
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_asked_for_at_startup_are_checked_like_set() {
    let pg = TestPostgres::start();
    seed(&pg);
    let gw = start(&pg);

    // Allowed as SETs, so applied, not dropped: the timeout holds.
    let client = connect_with_options(&gw, "-c statement_timeout=300 --lock-timeout=2s")
        .await
        .unwrap();
    let shown = probe_settings(&client, "statement_timeout, lock_timeout").await;
    assert_eq!(shown, ["300ms", "2s"]);
    let err = client.simple_query("SELECT pg_sleep(2)").await.unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::QUERY_CANCELED), "{err:?}");

    // Refused as a SET would be (protected-setting), before the upstream is
    // reached: the session is refused and says why.
    let refusal = async |options: &str| {
        let e = connect_with_options(&gw, options).await.err().unwrap();
        let db = e.as_db_error().cloned().expect("a database error");
        (db.code().code().to_string(), db.message().to_string())
    };
    let (code, message) = refusal("-c search_path=evil,public").await;
    assert_eq!(code, "42501", "{message}");
    assert!(
        message.contains("search_path") && message.contains("protected-setting"),
        "{message}"
    );
    let (code, message) = refusal("-c role=postgres").await;
    assert_eq!(code, "42501", "{message}");
    // Options the server reads as something other than settings, settings
    // that would carry others past the checks, and settings that act only
    // as a backend starts.
    for other in [
        "-B 100",
        "-c options=-c\\ role=postgres",
        "-c replication=database",
        "-c post_auth_delay=60000",
    ] {
        let (code, message) = refusal(other).await;
        assert_eq!(code, "0A000", "{other}: {message}");
    }
    // Allowed by the checks, refused by the server: the client is told
    // what the server said about its setting.
    let (code, message) = refusal("-c no_such_setting=1").await;
    assert_eq!(code, "42704", "{message}");
    assert!(message.contains("no_such_setting"), "{message}");
    // The refusals left the gateway serving.
    let shown = probe_settings(&client, "statement_timeout").await;
    assert_eq!(shown, ["300ms"]);
}

async fn probe_settings(client: &Client, names: &str) -> Vec<String> {
    let sql = names
        .split(", ")
        .map(|n| format!("current_setting('{n}')"))
        .collect::<Vec<_>>()
        .join(", ");
    let rows = client.query(&format!("SELECT {sql}"), &[]).await.unwrap();
    (0..rows[0].len()).map(|i| rows[0].get(i)).collect()
}
