//! Session recordings of PostgreSQL sessions, read back the ways a reviewer
//! would: `sluice sessions list|replay|export` and the admin API. The
//! gateway runs a guardrail denying "drop" and a masker replacing emails,
//! in front of a real PostgreSQL.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::gateway::{Gateway, Spec, as_app, seed_app};
use common::postgres::TestPostgres;
use serde_json::Value;

const RAW_EMAILS: [&str; 2] = ["ann.lee@example.com", "cy@example.net"];

fn seed(pg: &TestPostgres) {
    seed_app(pg);
    as_app(
        pg,
        "create table customers(id int primary key, email text);
         insert into customers values (1, 'ann.lee@example.com'), (2, 'cy@example.net');",
    );
}

fn start(pg: &TestPostgres, recording: &str) -> Gateway {
    let toml = format!("{}\n[recording]\n{recording}\n", Spec::STANDARD.toml);
    Gateway::start(
        pg,
        &Spec {
            plugins: Spec::STANDARD.plugins,
            toml: &toml,
        },
    )
}

fn sluice(gw: &Gateway, args: &[&str]) -> String {
    common::process::sluice_ok(gw.dir.path(), args)
}

/// Waits until the session of `subject` has its end line.
fn ended_session(gw: &Gateway, subject: &str) -> Value {
    let start = Instant::now();
    loop {
        let listed = sluice(gw, &["sessions", "list", "--json", "--subject", subject]);
        let sessions: Vec<Value> = listed
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        if let [one] = sessions.as_slice()
            && !one["ended_ms"].is_null()
        {
            return one.clone();
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no ended session for {subject}: {listed}\n{}",
            gw.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The statement entries of a session's recording, as `sessions export`
/// gives them.
fn statements_of(gw: &Gateway, session: &Value) -> Vec<Value> {
    let id = session["id"].as_str().unwrap();
    sluice(gw, &["sessions", "export", id])
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["type"] == "statement")
        .collect()
}

#[test]
fn a_psql_session_replays_in_order_with_verdicts_and_counts() {
    let pg = TestPostgres::start();
    seed(&pg);
    let gw = start(&pg, "rows_per_statement = 10");
    let token = gw.token_for("replay-agent", &["agents"]);
    let (out, err) = gw.psql(
        &token,
        "select 1 as one;\n\
         drop table customers;\n\
         select id, email from customers order by id;\n\
         select count(*) from customers;\n",
    );
    assert!(err.contains("denied word"), "{err}");
    let seen: Vec<&str> = out.lines().collect();
    assert_eq!(seen, ["1", "1|[EMAIL]", "2|[EMAIL]", "2"], "{out}");

    let session = ended_session(&gw, "replay-agent");
    assert_eq!(session["protocol"], "postgres");
    assert_eq!(session["connection"], "appdb");
    assert_eq!(session["statements_allowed"], 3);
    assert_eq!(session["statements_refused"], 1);
    assert_eq!(session["ending"], "terminated");
    let id = session["id"].as_str().unwrap();

    // The transcript: in order, with verdicts, who refused, rows and masks.
    let transcript = sluice(&gw, &["sessions", "replay", &id[..12]]);
    let at = |needle: &str| {
        transcript
            .find(needle)
            .unwrap_or_else(|| panic!("{needle:?} not in\n{transcript}"))
    };
    assert!(at("select 1 as one") < at("drop table customers"));
    assert!(at("drop table customers") < at("select id, email"));
    assert!(at("select id, email") < at("select count(*)"));
    assert!(transcript.contains("subject replay-agent"), "{transcript}");
    assert!(transcript.contains("DENIED"), "{transcript}");
    assert!(
        transcript.contains("refused by deny-word/deny-word"),
        "{transcript}"
    );
    assert!(
        transcript.contains("SELECT 2; 2 row(s); masked email=2"),
        "{transcript}"
    );
    assert!(
        transcript.contains("session ended (terminated)"),
        "{transcript}"
    );

    // The JSON lines export: the same facts, machine-readable.
    let exported = sluice(&gw, &["sessions", "export", id, "--format", "jsonl"]);
    let entries: Vec<Value> = exported
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let statements: Vec<&Value> = entries
        .iter()
        .filter(|e| e["type"] == "statement")
        .collect();
    let verdicts: Vec<(&str, &str)> = statements
        .iter()
        .map(|s| {
            (
                s["sql"][0]["text"].as_str().unwrap().trim(),
                s["verdict"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        verdicts,
        [
            ("select 1 as one;", "allow"),
            ("drop table customers;", "deny"),
            ("select id, email from customers order by id;", "allow"),
            ("select count(*) from customers;", "allow"),
        ]
    );
    let masked = statements[2];
    assert_eq!(masked["rows"], 2);
    assert_eq!(masked["masked"]["email"], 2);
    assert_eq!(masked["commands"][0], "SELECT 2");
    assert_eq!(
        masked["result"]["columns"],
        serde_json::json!(["id", "email"])
    );
    assert_eq!(
        masked["result"]["rows"],
        serde_json::json!([["1", "[EMAIL]"], ["2", "[EMAIL]"]])
    );
    assert_eq!(statements[1]["plugin"], "deny-word");
    assert!(
        statements[0]["audit_records"]
            .as_array()
            .is_some_and(|r| !r.is_empty()),
        "{}",
        statements[0]
    );

    // Nothing in the recording that the client did not see.
    let file =
        std::fs::read_to_string(gw.state_dir().join(format!("sessions/{id}.jsonl"))).unwrap();
    for raw in RAW_EMAILS {
        assert!(!file.contains(raw), "{raw} is in the recording");
    }
    assert!(
        !file.contains(&token),
        "the agent's token is in the recording"
    );

    // The admin API serves the same.
    let listed: Value = serde_json::from_str(
        &gw.admin_get("/api/v1/sessions?subject=replay-agent&since=1h")
            .expect("GET /api/v1/sessions"),
    )
    .unwrap();
    assert_eq!(listed["sessions"][0]["id"], id);
    let events: Value = serde_json::from_str(
        &gw.admin_get(&format!("/api/v1/sessions/{id}/events"))
            .expect("GET /api/v1/sessions/ID/events"),
    )
    .unwrap();
    let kinds: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "session",
            "statement",
            "statement",
            "statement",
            "statement",
            "end"
        ]
    );
    assert!(gw.admin_get("/api/v1/sessions/nothex/events").is_none());
    assert!(gw.admin_get("/api/v1/sessions?bogus=1").is_none());
}

/// Extended protocol: parameters recorded, a prepared statement executed
/// twice appears twice, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_statements_are_recorded_with_their_parameters() {
    let pg = TestPostgres::start();
    seed(&pg);
    let gw = start(&pg, "");
    let token = gw.token_for("prepared-agent", &["agents"]);
    let conninfo = format!(
        "host=127.0.0.1 port={} dbname=appdb user=prepared-agent password={token}",
        gw.pg_port
    );
    let (client, connection) = tokio_postgres::connect(&conninfo, tokio_postgres::NoTls)
        .await
        .unwrap();
    let conn = tokio::spawn(connection);
    let stmt = client
        .prepare("select id from customers where id = $1 and email like $2")
        .await
        .unwrap();
    for id in [1i32, 2] {
        let rows = client.query(&stmt, &[&id, &"%"]).await.unwrap();
        assert_eq!(rows.len(), 1);
    }
    assert!(
        client
            .query("select 'drop' || $1::text", &[&"x"])
            .await
            .is_err()
    );
    drop(client);
    conn.await.unwrap().unwrap();

    let session = ended_session(&gw, "prepared-agent");
    let statements = statements_of(&gw, &session);
    let summary: Vec<(String, &str, Value)> = statements
        .iter()
        .map(|s| {
            let sql = &s["sql"][s["sql"].as_array().unwrap().len() - 1];
            (
                sql["phase"].as_str().unwrap().to_string(),
                s["verdict"].as_str().unwrap(),
                sql["parameters"].clone(),
            )
        })
        .collect();
    // Prepare (Parse only), two executions with binary int4 and text
    // parameters, then the refused Parse.
    assert_eq!(summary.len(), 4, "{statements:#?}");
    assert_eq!(summary[0].0, "parse");
    assert_eq!(summary[1].0, "execute");
    assert_eq!(
        summary[1].2,
        serde_json::json!(["\\x00000001", "\\x25"]),
        "{statements:#?}"
    );
    assert_eq!(summary[2].2, serde_json::json!(["\\x00000002", "\\x25"]));
    assert_eq!(summary[3].1, "deny");
    assert!(
        statements[1]["sql"][0]["text"]
            .as_str()
            .unwrap()
            .starts_with("select id from customers where id = $1"),
        "{statements:#?}"
    );
    assert_eq!(statements[1]["commands"][0], "SELECT 1");
}

/// Entries are numbered one after another in the order the agent sent
/// them, one number per entry: an extended-protocol round (Parse, Bind,
/// Execute) is one entry, and a statement that follows a refusal in the
/// same batch, which the server skips, is an entry of its own, `skip`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_with_a_refusal_is_numbered_in_order() {
    use bytes::BytesMut;
    use postgres_protocol::message::frontend;
    let pg = TestPostgres::start();
    seed(&pg);
    let gw = start(&pg, "");
    let mut s = common::raw::RawSession::connect(&gw, "agents").await;
    let mut out = BytesMut::new();
    for sql in ["select $1::int", "select 'drop'", "select 'skipped'"] {
        frontend::parse("", sql, [], &mut out).unwrap();
        let params: &[&[u8]] = if sql.contains("$1") { &[b"1"] } else { &[] };
        common::raw::bind(&mut out, "", 0, params.iter().copied());
        frontend::execute("", 0, &mut out).unwrap();
    }
    frontend::sync(&mut out);
    s.send(&out).await;
    let r = s.until_ready().await;
    assert_eq!(r.code(), Some("42501"), "{r:?}");
    assert_eq!(r.rows, vec![vec![Some("1".to_string())]]);
    s.query("select 3").await;
    s.parse("", "select 4").await;
    s.run_prepared("", &[]).await;
    s.terminate().await;

    let session = ended_session(&gw, "agent-1");
    let id = session["id"].as_str().unwrap();
    let mut statements = statements_of(&gw, &session);
    statements.sort_by_key(|e| e["n"].as_u64());
    let seen: Vec<(u64, String, String)> = statements
        .iter()
        .map(|e| {
            let texts: Vec<&str> = e["sql"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["text"].as_str().unwrap_or(""))
                .collect();
            (
                e["n"].as_u64().unwrap(),
                e["verdict"].as_str().unwrap().to_string(),
                texts.join(" | "),
            )
        })
        .collect();
    let first = seen[0].0;
    let expected: Vec<(u64, String, String)> = [
        ("allow", "select $1::int"),
        ("deny", "select 'drop'"),
        ("skip", "select 'skipped'"),
        ("allow", "select 3"),
        // Prepared in one round, executed in the next.
        ("allow", "select 4"),
        ("allow", "select 4"),
    ]
    .iter()
    .enumerate()
    .map(|(i, (v, t))| (first + i as u64, v.to_string(), t.to_string()))
    .collect();
    assert_eq!(seen, expected, "{statements:#?}");
    // The session's counts leave the skipped one out; the replay says why
    // it did not run; the audit log has it.
    assert_eq!(session["statements_allowed"], 4, "{session}");
    assert_eq!(session["statements_refused"], 1, "{session}");
    let replay = sluice(&gw, &["sessions", "replay", id]);
    assert!(
        replay.contains("SKIPPED\n    parse: select 'skipped'\n    not run: an earlier message"),
        "{replay}"
    );
    let skipped: Vec<_> = common::process::read_log(&gw.state_dir())
        .into_iter()
        .filter(|r| r.kind == "statement.skipped")
        .collect();
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0].detail["text"], "select 'skipped'");
}

/// asyncpg's way on a masked connection: Parse, Describe of the statement,
/// Bind, Execute with a row limit, one Sync. The entry counts the rows a
/// suspended portal sent and keeps them (the gateway's own Describe of the
/// portal names the same rows as the statement's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_portal_is_recorded_with_its_rows() {
    use bytes::BytesMut;
    use postgres_protocol::message::frontend;
    let pg = TestPostgres::start();
    seed(&pg);
    let gw = start(&pg, "rows_per_statement = 5");
    let mut s = common::raw::RawSession::connect(&gw, "agents").await;
    let mut out = BytesMut::new();
    frontend::parse(
        "s1",
        "select id, email from customers order by id",
        [],
        &mut out,
    )
    .unwrap();
    frontend::describe(b'S', "s1", &mut out).unwrap();
    common::raw::bind(&mut out, "s1", 0, std::iter::empty());
    frontend::execute("", 1, &mut out).unwrap();
    frontend::sync(&mut out);
    s.send(&out).await;
    let r = s.until_ready().await;
    assert_eq!(r.rows.len(), 1, "{r:?}");
    s.terminate().await;

    let session = ended_session(&gw, "agent-1");
    let entry = &statements_of(&gw, &session)[0];
    assert_eq!(entry["rows"], 1, "{entry:#}");
    assert_eq!(entry["commands"], serde_json::json!(["(portal suspended)"]));
    assert_eq!(
        entry["result"]["rows"],
        serde_json::json!([["1", "[EMAIL]"]]),
        "{entry:#}"
    );
}

/// Rows of a command whose tag has no count (`EXPLAIN`, `SHOW`) are the
/// rows relayed for it, and the values masked in an error are counted as
/// those in rows are: in the recording, the replay and the audit log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_and_masked_errors_are_counted_when_no_tag_says() {
    let pg = TestPostgres::start();
    seed(&pg);
    let gw = start(&pg, "");
    let mut s = common::raw::RawSession::connect(&gw, "agents").await;
    let explain = s
        .query("explain select * from customers order by email")
        .await;
    assert!(explain.rows.len() > 1, "{explain:?}");
    assert_eq!(s.query("show timezone").await.rows.len(), 1);
    let cast = s
        .query("select email::int from customers where id = 1")
        .await;
    assert_eq!(cast.code(), Some("22P02"), "{cast:?}");
    assert!(cast.error.unwrap().1.contains("[EMAIL]"));
    s.terminate().await;

    let session = ended_session(&gw, "agent-1");
    let counts: Vec<(Value, Value)> = statements_of(&gw, &session)
        .iter()
        .map(|e| (e["rows"].clone(), e["masked"].clone()))
        .collect();
    let none = serde_json::json!({});
    let expected = [
        (explain.rows.len().into(), none.clone()),
        (1.into(), none),
        (0.into(), serde_json::json!({"email": 1})),
    ];
    assert_eq!(counts, expected);
    let replay = sluice(
        &gw,
        &["sessions", "replay", session["id"].as_str().unwrap()],
    );
    assert!(
        replay.contains(&format!("EXPLAIN; {} row(s)", explain.rows.len())),
        "{replay}"
    );
    assert!(replay.contains("SHOW; 1 row(s)"), "{replay}");
    assert!(replay.contains("masked email=1"), "{replay}");
    let audited: Vec<(Value, Value)> = common::process::read_log(&gw.state_dir())
        .into_iter()
        .filter(|r| r.kind == "statement.completed")
        .map(|r| (r.detail["rows"].clone(), r.detail["masked"].clone()))
        .collect();
    assert_eq!(audited, expected);
}

/// Retention deletes finished recordings past `max_age` and puts what it
/// deleted (size and SHA-256) in the audit log, which still verifies.
#[test]
fn retention_prunes_recordings_and_the_audit_log_says_what_it_pruned() {
    let pg = TestPostgres::start();
    seed(&pg);
    let gw = start(&pg, "max_age = \"2s\"\nprune_interval_secs = 1");
    let token = gw.token_for("short-lived", &["agents"]);
    let (out, err) = gw.psql(&token, "select 42;");
    assert_eq!(out.trim(), "42", "{err}");
    let session = ended_session(&gw, "short-lived");
    let id = session["id"].as_str().unwrap().to_string();
    let path = gw.state_dir().join(format!("sessions/{id}.jsonl"));
    let digest = {
        use sha2::Digest;
        let bytes = std::fs::read(&path).unwrap();
        common::http::hex(&sha2::Sha256::digest(&bytes))
    };
    let start = Instant::now();
    while path.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the recording was not pruned:\n{}",
            gw.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        sluice(&gw, &["sessions", "list", "--json"])
            .trim()
            .is_empty()
    );

    // The pruning is on record, naming the recording and its digest.
    let start = Instant::now();
    let pruned = loop {
        let found = common::process::read_log(&gw.state_dir())
            .into_iter()
            .find(|r| r.kind == "recording.pruned");
        if let Some(r) = found {
            break r;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no recording.pruned record"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let list = pruned.detail["recordings"].as_array().unwrap();
    let entry = list
        .iter()
        .find(|r| r["session_id"] == id.as_str())
        .unwrap();
    assert_eq!(entry["sha256"], digest.as_str());
    assert_eq!(entry["reason"], "max_age");
    let verify = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["--config", "sluice.toml", "audit", "verify"])
        .current_dir(gw.dir.path())
        .output()
        .unwrap();
    assert!(verify.status.success(), "{verify:?}");
}

/// `replay --follow` prints a live session as it goes and stops at its end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_follow_tracks_a_live_session_until_it_ends() {
    let pg = TestPostgres::start();
    seed(&pg);
    let gw = start(&pg, "");
    let token = gw.token_for("follow-agent", &["agents"]);
    let conninfo = format!(
        "host=127.0.0.1 port={} dbname=appdb user=follow-agent password={token}",
        gw.pg_port
    );
    let (client, connection) = tokio_postgres::connect(&conninfo, tokio_postgres::NoTls)
        .await
        .unwrap();
    let conn = tokio::spawn(connection);
    client.simple_query("select 'first'").await.unwrap();

    let listed = sluice(
        &gw,
        &["sessions", "list", "--json", "--subject", "follow-agent"],
    );
    let live: Value = serde_json::from_str(listed.lines().next().unwrap()).unwrap();
    assert!(live["ended_ms"].is_null(), "{live}");
    let id = live["id"].as_str().unwrap().to_string();
    let human = sluice(&gw, &["sessions", "list"]);
    assert!(human.contains(&id) && human.contains("live"), "{human}");

    let follower = tokio::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args([
            "--config",
            "sluice.toml",
            "sessions",
            "replay",
            &id,
            "--follow",
        ])
        .current_dir(gw.dir.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    client.simple_query("select 'second'").await.unwrap();
    drop(client);
    conn.await.unwrap().unwrap();

    let out = tokio::time::timeout(Duration::from_secs(15), follower.wait_with_output())
        .await
        .expect("--follow stops when the session ends")
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let first = text.find("select 'first'").expect(&text);
    let second = text.find("select 'second'").expect(&text);
    assert!(first < second, "{text}");
    assert!(text.contains("session ended (terminated)"), "{text}");
}
