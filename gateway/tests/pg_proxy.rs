//! The PostgreSQL data path end to end: the `sluice` binary between real
//! clients (psql, pgbench) and a real PostgreSQL (initdb, SCRAM), with a
//! dev-issuer token as the password, a guardrail and a masker.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::component;
use common::gateway::{Gateway, Spec, seed_app};
use common::postgres::{self, TestPostgres};
use common::raw::{self, RawSession, Replies};

fn seed(pg: &TestPostgres) {
    seed_app(pg);
    pg.psql(
        "app",
        "create table customers(id int primary key, name text, email text);
         insert into customers values (1, 'Ada', 'ada@example.com'), (2, 'Bob', null), (3, 'Cy', 'write to cy@example.org');
         alter table customers owner to app;",
    )
    .unwrap();
}

#[test]
fn psql_through_the_gateway_is_guarded_and_masked() {
    let pg = TestPostgres::start();
    seed(&pg);
    let gw = Gateway::start(&pg, &Spec::STANDARD);
    let token = gw.token();

    // Queries work; emails are masked.
    let (out, err) = gw.psql(
        &token,
        "select id, name, email from customers order by id;\n",
    );
    assert_eq!(
        out, "1|Ada|[EMAIL]\n2|Bob|\n3|Cy|write to [EMAIL]\n",
        "{err}"
    );

    // One Query with an allowed and a denied statement is refused whole.
    let (out, err) = gw.psql(
        &token,
        "select 1; drop table customers;\nselect 'still here';\n",
    );
    assert!(err.contains("denied by plugin `deny-word`"), "{err}");
    assert!(out.contains("still here"), "the session goes on: {out}");
    assert_eq!(
        pg.psql("app", "select count(*) from customers")
            .unwrap()
            .trim(),
        "3"
    );

    // Inside a transaction: the client sees the failed-transaction state the
    // server is really in.
    let (out, err) = gw.psql(
        &token,
        "begin;\nselect 'in tx';\ndrop table customers;\nselect 'after';\nrollback;\nselect 'recovered';\n",
    );
    assert!(err.contains("denied by plugin `deny-word`"), "{err}");
    assert!(err.contains("current transaction is aborted"), "{err}");
    assert!(!out.contains("after"), "{out}");
    assert!(out.contains("recovered"), "{out}");

    // A statement that does not parse is refused by the gateway's parser,
    // with the server's own message and position (psql draws its caret).
    let (_, err) = gw.psql(&token, "selec 1;\n");
    assert!(err.contains("could not be analysed"), "{err}");
    assert!(err.contains("syntax error at or near \"selec\""), "{err}");
    assert!(err.contains("LINE 1: selec 1;\n        ^"), "{err}");

    // COPY TO STDOUT cannot be masked: refused.
    let (_, err) = gw.psql(&token, "copy customers to stdout;\n");
    assert!(err.contains("COPY"), "{err}");

    // COPY FROM STDIN is relayed; the rows arrive (and are masked on the way out).
    let (out, err) = gw.psql(
        &token,
        "copy customers from stdin;\n4\tDee\tdee@example.com\n\\.\nselect email from customers where id = 4;\n",
    );
    assert_eq!(out.trim(), "COPY 1\n[EMAIL]", "{err}");
    assert_eq!(
        pg.psql("app", "select email from customers where id = 4")
            .unwrap()
            .trim(),
        "dee@example.com"
    );

    // LISTEN/NOTIFY: the notification reaches the client.
    let (out, err) = gw.psql(&token, "listen jobs;\nnotify jobs, 'hello';\nselect 1;\n");
    let all = format!("{out}{err}");
    assert!(
        all.contains(r#"notification "jobs" with payload "hello""#),
        "{all}"
    );
}

#[test]
fn pgbench_extended_and_prepared_protocols() {
    let pg = TestPostgres::start();
    seed(&pg);
    let gw = Gateway::start(&pg, &Spec::STANDARD);
    let token = gw.token();
    let scripts = tempfile::tempdir().unwrap();
    let read = scripts.path().join("read.sql");
    std::fs::write(&read, "select name, email from customers where id = 1;\n").unwrap();
    let drop = scripts.path().join("drop.sql");
    std::fs::write(&drop, "drop table customers;\n").unwrap();

    for mode in ["simple", "extended", "prepared"] {
        let out = Command::new(postgres::bin_dir().join("pgbench"))
            .args(["-n", "-t", "20", "-c", "2", "-M", mode, "-f"])
            .arg(&read)
            .arg(gw.conninfo())
            .env("PGPASSWORD", &token)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{mode}: {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains("number of failed transactions: 0"),
            "{mode}: {stdout}"
        );

        let out = Command::new(postgres::bin_dir().join("pgbench"))
            .args(["-n", "-t", "1", "-M", mode, "-f"])
            .arg(&drop)
            .arg(gw.conninfo())
            .env("PGPASSWORD", &token)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("denied by plugin `deny-word`"),
            "{mode}: {stderr}"
        );
    }
    assert_eq!(
        pg.psql("app", "select count(*) from customers")
            .unwrap()
            .trim(),
        "3"
    );
}

#[test]
fn psql_cancels_a_running_query_through_the_gateway() {
    let pg = TestPostgres::start();
    seed(&pg);
    let gw = Gateway::start(&pg, &Spec::STANDARD);
    let token = gw.token();
    let child = Command::new(postgres::bin_dir().join("psql"))
        .args(["-X", "-w", "-c", "select pg_sleep(10)"])
        .arg(gw.conninfo())
        .env("PGPASSWORD", &token)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Cancel only once the server runs the query: a cancel that arrives
    // while the statement is still on its way (connecting, checked by the
    // guardrails) finds nothing to cancel, at the server as through the
    // gateway, and a fixed wait lost that race on a loaded machine.
    wait_until("the query started", || sleeping(&pg));
    let started = Instant::now();
    // psql turns SIGINT into a CancelRequest with the backend key it was given.
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("canceling statement due to user request"),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "the query ran to the end"
    );
}

/// Whether the server runs `select pg_sleep(10)` now.
fn sleeping(pg: &TestPostgres) -> bool {
    pg.psql(
        "postgres",
        "select count(*) from pg_stat_activity \
         where state = 'active' and query = 'select pg_sleep(10)'",
    )
    .unwrap()
    .trim()
        == "1"
}

/// A CancelRequest with the process id and secret this session was given.
async fn send_cancel(port: u16, pid: i32, secret: &[u8]) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut packet = Vec::new();
    packet.extend_from_slice(&(12 + secret.len() as i32).to_be_bytes());
    packet.extend_from_slice(&80877102i32.to_be_bytes());
    packet.extend_from_slice(&pid.to_be_bytes());
    packet.extend_from_slice(secret);
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    s.write_all(&packet).await.unwrap();
    // The gateway answers nothing and closes, as PostgreSQL does.
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest).await;
    assert!(rest.is_empty(), "a CancelRequest got an answer: {rest:?}");
}

/// The cancel key names the session's upstream backend, as
/// `pg_backend_pid()` and its own notifications do (drivers compare them),
/// with a secret of the gateway's: the upstream server's key never reaches
/// the agent, a CancelRequest with another secret or another pid does
/// nothing, and the key given cancels.
#[tokio::test]
async fn cancel_keys_name_the_backend_and_only_the_given_secret_cancels() {
    let pg = TestPostgres::start();
    seed(&pg);
    let gw = Gateway::start(&pg, &Spec::STANDARD);
    let mut s = RawSession::connect(&gw, "agents").await;
    let (pid, secret) = s.key.clone();
    assert_eq!(secret.len(), 4, "protocol 3.0 keys are 4 bytes");
    let r = s.query("select pg_backend_pid()").await;
    assert_eq!(r.rows, vec![vec![Some(pid.to_string())]]);
    let notified = s.query_messages("listen jobs; notify jobs, 'x'").await;
    let (_, a) = notified
        .iter()
        .find(|(tag, _)| *tag == b'A')
        .expect("the session's own notification");
    assert_eq!(i32::from_be_bytes(a[..4].try_into().unwrap()), pid);

    let mut out = bytes::BytesMut::new();
    postgres_protocol::message::frontend::query("select pg_sleep(10)", &mut out).unwrap();
    s.send(&out).await;
    wait_until("the query started", || sleeping(&pg));
    let mut wrong = secret.clone();
    wrong[0] ^= 1;
    send_cancel(gw.pg_port, pid, &wrong).await;
    send_cancel(gw.pg_port, pid ^ 1, &secret).await;
    send_cancel(gw.pg_port, pid, &[secret.clone(), vec![0; 28]].concat()).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(sleeping(&pg), "a forged cancel key cancelled the query");

    let started = Instant::now();
    send_cancel(gw.pg_port, pid, &secret).await;
    let r = s.until_ready().await;
    assert_eq!(r.code(), Some("57014"), "{r:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(s.query("select 1").await.rows, vec![vec![Some("1".into())]]);
}

/// tokio-postgres asks for binary results: masking must apply to them too.
#[tokio::test]
async fn binary_results_are_masked_for_tokio_postgres() {
    let pg = TestPostgres::start();
    seed(&pg);
    pg.psql("app", "create table docs(id int, body jsonb, note varchar(80)); alter table docs owner to app;
                    insert into docs values (1, '{\"to\": \"eve@example.net\"}', 'cc bob@example.com')")
        .unwrap();
    let gw = Gateway::start(&pg, &Spec::STANDARD);
    let client = gw.plaintext_client().await;

    let rows = client
        .query(
            "select id, name, email from customers where id = $1",
            &[&1i32],
        )
        .await
        .unwrap();
    assert_eq!(rows[0].get::<_, String>(1), "Ada");
    assert_eq!(rows[0].get::<_, String>(2), "[EMAIL]");

    let rows = client
        .query("select body::text, body, note from docs", &[])
        .await
        .unwrap();
    assert_eq!(rows[0].get::<_, String>(0), r#"{"to": "[EMAIL]"}"#);
    let body: serde_json::Value = rows[0].get(1);
    assert_eq!(body, serde_json::json!({"to": "[EMAIL]"}));
    assert_eq!(rows[0].get::<_, String>(2), "cc [EMAIL]");

    // Denied through Parse; the connection stays usable.
    let err = client
        .query("drop table customers", &[])
        .await
        .err()
        .unwrap();
    assert!(
        err.to_string().contains("denied by plugin `deny-word`")
            || format!("{err:?}").contains("deny-word"),
        "{err:?}"
    );
    let rows = client
        .query("select count(*) from customers", &[])
        .await
        .unwrap();
    assert_eq!(rows[0].get::<_, i64>(0), 3);
}

/// tokio-postgres prepares statements (Parse, Describe) and later executes
/// them without describing them again (Bind, Execute): rows are masked by
/// the columns of the portal that produced them, whatever statement was
/// described last, and so are the rows of a portal resumed after another
/// one ran.
#[tokio::test]
async fn rows_are_masked_by_their_own_columns_not_the_last_described() {
    let pg = TestPostgres::start();
    seed(&pg);
    let gw = Gateway::start(&pg, &Spec::STANDARD);
    let mut client = gw.plaintext_client().await;

    let emails = client
        .prepare("select email, id from customers where id = 1")
        .await
        .unwrap();
    // Described last: an int column first, a text column second.
    let numbers = client
        .prepare("select id, 'x'::text from customers where id = 1")
        .await
        .unwrap();
    for _ in 0..2 {
        let rows = client.query(&emails, &[]).await.unwrap();
        assert_eq!(rows[0].get::<_, String>(0), "[EMAIL]");
        let rows = client.query(&numbers, &[]).await.unwrap();
        assert_eq!(rows[0].get::<_, i32>(0), 1);
    }

    // Portals executed a row at a time, interleaved.
    let all_emails = client
        .prepare("select email, id from customers where email is not null order by id")
        .await
        .unwrap();
    let tx = client.transaction().await.unwrap();
    let by_email = tx.bind(&all_emails, &[]).await.unwrap();
    let by_number = tx.bind(&numbers, &[]).await.unwrap();
    let first = tx.query_portal(&by_email, 1).await.unwrap();
    assert_eq!(first[0].get::<_, String>(0), "[EMAIL]");
    let other = tx.query_portal(&by_number, 1).await.unwrap();
    assert_eq!(other[0].get::<_, i32>(0), 1);
    let second = tx.query_portal(&by_email, 1).await.unwrap();
    assert_eq!(second[0].get::<_, String>(0), "write to [EMAIL]");
    tx.commit().await.unwrap();
}

/// tokio-postgres runs `COPY … FROM STDIN` as Bind, Execute, Sync, then the
/// data, CopyDone and Sync; the server, copying, ignores the first Sync and
/// answers one ReadyForQuery. The session goes on: statements prepared
/// after it are checked and masked as before.
#[tokio::test]
async fn tokio_postgres_copy_in_then_more_statements() {
    use futures_util::SinkExt;
    let pg = TestPostgres::start();
    seed(&pg);
    let gw = Gateway::start(&pg, &Spec::STANDARD);
    let client = gw.plaintext_client().await;
    let later = async {
        let sink = client
            .copy_in("copy customers (id, name, email) from stdin")
            .await
            .unwrap();
        futures_util::pin_mut!(sink);
        sink.send(bytes::Bytes::from_static(b"4\tDee\tdee@example.com\n"))
            .await
            .unwrap();
        assert_eq!(sink.finish().await.unwrap(), 1);
        for _ in 0..2 {
            let statement = client
                .prepare("select email from customers where name = $1")
                .await
                .unwrap();
            let rows = client.query(&statement, &[&"Dee"]).await.unwrap();
            assert_eq!(rows[0].get::<_, String>(0), "[EMAIL]");
            let err = client
                .query("select $1::text", &[&"drop"])
                .await
                .unwrap_err();
            assert_eq!(
                err.as_db_error().map(|e| e.code().code()),
                Some("42501"),
                "{err:?}"
            );
        }
    };
    tokio::time::timeout(Duration::from_secs(30), later)
        .await
        .expect("the session goes on after COPY FROM STDIN");
}

/// Calls of the mask-email plugin so far (`sluice_plugin_calls_total`).
/// mask-email is a column masker that changes text-like columns only: a
/// result without one costs no masker call, and it is asked which columns it
/// masks once per result shape in a session, not once per result.
#[tokio::test]
async fn results_without_maskable_columns_skip_the_masker() {
    let pg = TestPostgres::start();
    seed(&pg);
    let gw = Gateway::start(&pg, &Spec::STANDARD);
    let client = gw.plaintext_client().await;

    let before = gw.plugin_calls("mask-email");
    for _ in 0..20 {
        let rows = client
            .query("select id, id * 2 from customers where id > $1", &[&0i32])
            .await
            .unwrap();
        assert_eq!(rows.len(), 3);
    }
    assert_eq!(
        gw.plugin_calls("mask-email") - before,
        2,
        "one select-columns call, and the column names shown once"
    );

    let before = gw.plugin_calls("mask-email");
    for _ in 0..5 {
        let rows = client
            .query("select id, email from customers where id = $1", &[&1i32])
            .await
            .unwrap();
        assert_eq!(rows[0].get::<_, String>(1), "[EMAIL]");
    }
    assert_eq!(
        gw.plugin_calls("mask-email") - before,
        1 + 1 + 5,
        "one select-columns call, the names shown once, then mask-rows for each result"
    );

    // A reloaded plugin is asked again, in the same session: the answer
    // cached for the previous generation (column 1) no longer holds. The
    // `wrong-column` guest, installed under the masker's name, selects only
    // columns named `selected` (and would fail the result had it been
    // handed the old selection, since it edits every other column).
    let generation = gw.plugin_generation("mask-email");
    assert!(generation.is_some());
    let plugin = gw.dir.path().join("plugins/mask-email.wasm");
    let staged = gw.dir.path().join("plugins/.mask-email.wasm.tmp");
    std::fs::copy(component("wrong-column"), &staged).unwrap();
    std::fs::rename(&staged, &plugin).unwrap();
    wait_until("mask-email reloaded", || {
        gw.plugin_generation("mask-email")
            .is_some_and(|g| Some(g) != generation)
    });
    let rows = client
        .query("select id, email from customers where id = $1", &[&1i32])
        .await
        .unwrap();
    assert_eq!(rows[0].get::<_, String>(1), "ada@example.com");
}

/// Bound values reach the guardrails too: tokio-postgres sends them in
/// binary, decoded by the types the server described. A refused Bind fails
/// its batch like a refused Parse, the transaction is in the failed state,
/// and the session goes on; an unrefused one runs as sent.
#[tokio::test]
async fn bound_parameters_are_checked_in_binary_too() {
    let pg = TestPostgres::start();
    seed(&pg);
    let gw = Gateway::start(&pg, &Spec::STANDARD);
    let mut client = gw.plaintext_client().await;

    let statement = client
        .prepare("select id from customers where name = $1 or id = $2")
        .await
        .unwrap();
    let err = client
        .query(&statement, &[&"Robert'); DROP TABLE customers;--", &1i32])
        .await
        .unwrap_err();
    let db = err.as_db_error().expect("a server error");
    assert_eq!(db.code().code(), "42501", "{db:?}");
    assert!(
        db.message()
            .contains("a bound parameter contains the denied word `drop`"),
        "{db:?}"
    );
    let rows = client.query(&statement, &[&"Ada", &2i32]).await.unwrap();
    assert_eq!(rows.len(), 2);
    // Refused again. The Execute that followed the refused Bind is skipped by
    // the server, so no write-ahead record may claim it ran (checked below).
    assert!(client.query(&statement, &[&"drop", &3i32]).await.is_err());

    // In a transaction: the refusal aborts it, as a failed statement would.
    let tx = client.transaction().await.unwrap();
    tx.query("select 1", &[]).await.unwrap();
    assert!(
        tx.query("select $1::text", &[&"drop"]).await.is_err(),
        "{}",
        gw.log()
    );
    let err = tx.query("select 1", &[]).await.unwrap_err();
    assert_eq!(
        err.as_db_error().map(|e| e.code().code()),
        Some("25P02"),
        "{err:?}"
    );
    tx.rollback().await.unwrap();
    let rows = client
        .query("select count(*) from customers", &[])
        .await
        .unwrap();
    assert_eq!(rows[0].get::<_, i64>(0), 3);

    // The refusals are in the audit trail with their phase (emitted events
    // reach the log within milliseconds).
    let bind_denials = || {
        common::process::read_log(&gw.state_dir())
            .iter()
            .filter(|r| r.kind == "statement.denied" && r.detail["phase"] == "bind")
            .count()
    };
    wait_until("the three bind refusals are in the audit log", || {
        bind_denials() >= 3
    });
    // The Ada execution is the statement's first: its Parse record covers it.
    let executed = common::process::read_log(&gw.state_dir())
        .iter()
        .filter(|r| {
            r.kind == "statement.executed"
                && r.detail["text"]
                    .as_str()
                    .is_some_and(|t| t.contains("name = $1"))
        })
        .count();
    assert_eq!(executed, 0, "an execution the server skipped was recorded");
}

/// A Bind's binary values reach the guardrails decoded by the types of the
/// statement the server will bind, whatever else the client asked for
/// before: a name freed by SQL `DEALLOCATE` and prepared again, a Parse the
/// server refused, a Close the server skipped after an error, all of it
/// pipelined. Each Bind carries the word deny-word refuses, in binary, to a
/// statement that reads it as text; read as an int4 it would pass.
#[tokio::test]
async fn binds_are_read_with_the_types_the_server_holds() {
    const INT4: u32 = 23;
    const TEXT: u32 = 25;
    let pg = TestPostgres::start();
    seed(&pg);
    let gw = Gateway::start(&pg, &Spec::STANDARD);
    let mut s = RawSession::connect(&gw, "agents").await;
    let word = || std::iter::once(&b"drop"[..]);

    assert_eq!(s.parse_typed("s1", "select $1", &[INT4]).await.code(), None);
    assert_eq!(s.query("DEALLOCATE s1").await.code(), None);
    assert_eq!(s.parse_typed("s1", "select $1", &[TEXT]).await.code(), None);
    let r = s.run_bound("s1", 1, word()).await;
    assert_eq!(r.code(), Some("42501"), "{r:?}");

    let bad = s
        .parse_typed("s2", "select $1 from no_such_table", &[INT4])
        .await;
    assert_eq!(bad.code(), Some("42P01"), "{bad:?}");
    assert_eq!(s.parse_typed("s2", "select $1", &[TEXT]).await.code(), None);
    let r = s.run_bound("s2", 1, word()).await;
    assert_eq!(r.code(), Some("42501"), "{r:?}");

    assert_eq!(s.parse_typed("s3", "select $1", &[TEXT]).await.code(), None);
    let mut out = bytes::BytesMut::new();
    raw::bind(&mut out, "no_such_statement", 0, std::iter::empty());
    postgres_protocol::message::frontend::close(b'S', "s3", &mut out).unwrap();
    postgres_protocol::message::frontend::sync(&mut out);
    s.send(&out).await;
    assert_eq!(s.until_ready().await.code(), Some("26000"));
    let taken = s.parse_typed("s3", "select $1", &[INT4]).await;
    assert_eq!(taken.code(), Some("42P05"), "{taken:?}");
    let r = s.run_bound("s3", 1, word()).await;
    assert_eq!(r.code(), Some("42501"), "{r:?}");

    // The same, pipelined: the Bind is sent before the server has answered
    // either Parse, so the gateway must wait for those answers.
    use postgres_protocol::message::frontend;
    let mut out = bytes::BytesMut::new();
    frontend::parse("s4", "select $1 from no_such_table", [INT4], &mut out).unwrap();
    frontend::sync(&mut out);
    frontend::parse("s4", "select $1", [TEXT], &mut out).unwrap();
    frontend::sync(&mut out);
    raw::bind(&mut out, "s4", 1, word());
    frontend::execute("", 0, &mut out).unwrap();
    frontend::sync(&mut out);
    s.send(&out).await;
    let answers = tokio::time::timeout(Duration::from_secs(20), async {
        [
            s.until_ready().await,
            s.until_ready().await,
            s.until_ready().await,
        ]
    })
    .await
    .expect("the pipelined batches are answered");
    let codes: Vec<_> = answers.iter().map(Replies::code).collect();
    assert_eq!(codes, [Some("42P01"), None, Some("42501")], "{answers:?}");

    // No declared types and no Describe: the gateway asks the server, and
    // the client sees only the answers to what it sent.
    assert_eq!(s.parse("s5", "select $1::text").await.code(), None);
    let r = s.run_bound("s5", 1, word()).await;
    assert_eq!(r.code(), Some("42501"), "{r:?}");
    let mut out = bytes::BytesMut::new();
    raw::bind(&mut out, "s5", 1, std::iter::once(&b"hello"[..]));
    frontend::execute("", 0, &mut out).unwrap();
    frontend::sync(&mut out);
    s.send(&out).await;
    let mut tags = Vec::new();
    while tags.last() != Some(&b'Z') {
        tags.push(s.next().await.0);
    }
    assert_eq!(String::from_utf8_lossy(&tags), "2DCZ");

    // Text that must wait behind unseen code (see parity::Fence), pipelined
    // in one write behind it, is answered too.
    let mut out = bytes::BytesMut::new();
    frontend::query("DO $$ BEGIN PERFORM 1; END $$", &mut out).unwrap();
    frontend::query("select 'é'", &mut out).unwrap();
    s.send(&out).await;
    let answers = tokio::time::timeout(Duration::from_secs(20), async {
        [s.until_ready().await, s.until_ready().await]
    })
    .await
    .expect("a fenced statement pipelined behind unseen code is answered");
    assert_eq!(answers[1].rows, [[Some("é".to_string())]], "{answers:?}");

    // The session goes on.
    let r = s.run_bound("s1", 0, std::iter::once(&b"hello"[..])).await;
    assert_eq!(r.rows, [[Some("hello".to_string())]], "{r:?}");

    // A statement freed by DEALLOCATE ALL: a Bind with parameters gets the
    // server's 26000 (not a guardrail's refusal), which clients that
    // prepare again on it (sqlx, pgjdbc) count on.
    assert_eq!(s.query("DEALLOCATE ALL").await.code(), None);
    let r = s.run_bound("s1", 1, std::iter::once(&b"hello"[..])).await;
    assert_eq!(r.code(), Some("26000"), "{r:?}");
    assert_eq!(s.parse_typed("s1", "select $1", &[TEXT]).await.code(), None);
    let r = s.run_bound("s1", 1, std::iter::once(&b"hello"[..])).await;
    assert_eq!(r.rows, [[Some("hello".to_string())]], "{r:?}");
}

/// The server answers each Query and Sync with one ReadyForQuery, except a
/// Sync it reads while copying data in, which it ignores, and a Query in a
/// failed extended-protocol batch, which it skips; the gateway counts
/// batches the same way (checks of later Binds wait on that count), ends an
/// open batch with its own Sync before a Query, and ends the session, with
/// 0A000, on what the server would read as a protocol violation.
#[tokio::test]
async fn batches_are_counted_as_the_server_counts_them() {
    use postgres_protocol::message::frontend;
    let pg = TestPostgres::start();
    seed(&pg);
    let gw = Gateway::start(&pg, &Spec::STANDARD);
    let mut s = RawSession::connect(&gw, "agents").await;
    let exchange = async {
        let mut out = bytes::BytesMut::new();
        frontend::query("copy customers (id, name, email) from stdin", &mut out).unwrap();
        frontend::sync(&mut out);
        s.send(&out).await;
        s.until(b'G').await;
        let mut out = bytes::BytesMut::new();
        raw::copy_in(&mut out, b"5\tEd\ted@example.com\n");
        s.send(&out).await;
        assert_eq!(s.until_ready().await.code(), None);
        let r = s.query("select email from customers where id = 5").await;
        assert_eq!(r.rows, [[Some("[EMAIL]".to_string())]], "{r:?}");
        assert_eq!(s.parse_typed("s1", "select $1", &[25]).await.code(), None);
        let r = s.run_bound("s1", 1, std::iter::once(&b"drop"[..])).await;
        assert_eq!(r.code(), Some("42501"), "{r:?}");
    };
    tokio::time::timeout(Duration::from_secs(20), exchange)
        .await
        .expect("each exchange is answered");

    let more = async {
        // Two COPYs in one Query, each with its data.
        let mut out = bytes::BytesMut::new();
        frontend::query(
            "copy customers (id, name) from stdin; copy customers (id, name) from stdin",
            &mut out,
        )
        .unwrap();
        s.send(&out).await;
        for row in [&b"6\tFay\n"[..], b"7\tGus\n"] {
            s.until(b'G').await;
            let mut out = bytes::BytesMut::new();
            raw::copy_in(&mut out, row);
            s.send(&out).await;
        }
        assert_eq!(s.until_ready().await.code(), None);
        // A COPY the server refuses reads no data; the session goes on.
        let r = s.query("copy no_such_table from stdin").await;
        assert_eq!(r.code(), Some("42P01"), "{r:?}");
        let r = s.query("select count(*) from customers").await;
        assert_eq!(r.rows, [[Some("6".to_string())]], "{r:?}");

        // A Query inside an unfinished extended batch (asyncpg prepares
        // with Parse, Describe, Flush): answered, whether the batch
        // failed or not, with one ReadyForQuery.
        let mut out = bytes::BytesMut::new();
        frontend::parse("", "select 1", std::iter::empty(), &mut out).unwrap();
        frontend::flush(&mut out);
        frontend::query("select 2", &mut out).unwrap();
        s.send(&out).await;
        let r = s.until_ready().await;
        assert_eq!(
            (r.code(), &r.rows[..]),
            (None, &[vec![Some("2".to_string())]][..])
        );
        let mut out = bytes::BytesMut::new();
        raw::bind(&mut out, "no_such_statement", 0, std::iter::empty());
        frontend::query("select 3", &mut out).unwrap();
        s.send(&out).await;
        let r = s.until_ready().await;
        assert_eq!(r.code(), Some("26000"), "{r:?}");
        assert_eq!(r.rows, [[Some("3".to_string())]], "{r:?}");
        let r = s.query("select 4").await;
        assert_eq!(r.rows, [[Some("4".to_string())]], "{r:?}");

        // A portal keeps the statement it was bound to, even when the name
        // is prepared again before it runs: here a COPY, whose Sync the
        // server ignores.
        let mut out = bytes::BytesMut::new();
        let copy = "copy customers (id, name) from stdin";
        frontend::parse("", copy, std::iter::empty(), &mut out).unwrap();
        raw::bind(&mut out, "", 0, std::iter::empty());
        frontend::parse("", "select 1", std::iter::empty(), &mut out).unwrap();
        frontend::execute("", 0, &mut out).unwrap();
        frontend::sync(&mut out);
        s.send(&out).await;
        s.until(b'G').await;
        let mut out = bytes::BytesMut::new();
        raw::copy_in(&mut out, b"8\tHal\n");
        frontend::sync(&mut out);
        s.send(&out).await;
        assert_eq!(s.until_ready().await.code(), None);
        let r = s.query("select name from customers where id = 8").await;
        assert_eq!(r.rows, [[Some("Hal".to_string())]], "{r:?}");
    };
    tokio::time::timeout(Duration::from_secs(20), more)
        .await
        .expect("each exchange is answered");

    // Anything but COPY data, CopyDone, CopyFail, Sync or Flush while the
    // server reads COPY data ends the session.
    let mut out = bytes::BytesMut::new();
    frontend::query("copy customers (id, name) from stdin", &mut out).unwrap();
    s.send(&out).await;
    s.until(b'G').await;
    let mut out = bytes::BytesMut::new();
    frontend::query("select 5", &mut out).unwrap();
    s.send(&out).await;
    let errors = tokio::time::timeout(Duration::from_secs(20), s.until_closed())
        .await
        .expect("the session ends");
    assert_eq!(errors, [("0A000".to_string(), "FATAL".to_string())]);
}

/// The server answers nothing while it skips a failed batch, so messages
/// sent after the failure and before a Sync are bounded by the gateway:
/// past 10,000 awaiting an answer the session ends with FATAL 0A000, and
/// the gateway goes on serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswered_backlog_is_bounded() {
    use postgres_protocol::message::frontend;
    let pg = TestPostgres::start();
    seed(&pg);
    let gw = Gateway::start(&pg, &Spec::STANDARD);
    let mut s = RawSession::connect(&gw, "agents").await;
    let mut out = bytes::BytesMut::new();
    // Refused (it does not parse): the server then skips until Sync.
    frontend::parse("", "selec 1", std::iter::empty(), &mut out).unwrap();
    for _ in 0..10_001 {
        frontend::close(b'S', "s", &mut out).unwrap();
    }
    s.send(&out).await;
    let errors = tokio::time::timeout(Duration::from_secs(60), s.until_closed())
        .await
        .expect("the session ends");
    assert_eq!(
        errors.last(),
        Some(&("0A000".to_string(), "FATAL".to_string())),
        "{errors:?}"
    );
    let mut other = RawSession::connect(&gw, "agents").await;
    let r = other.query("select 1").await;
    assert_eq!(r.rows, [[Some("1".to_string())]], "{r:?}");
}

/// The standard plugins (deny-word refusing `drop`) on one session worker,
/// so that every session shares its thread.
fn one_worker_gateway(pg: &TestPostgres) -> Gateway {
    seed(pg);
    Gateway::start(
        pg,
        &Spec {
            plugins: Spec::STANDARD.plugins,
            toml: "[gateway]\nsession_workers = 1\n[plugins.config.deny-word]\nwords = [\"drop\"]\n",
        },
    )
}

/// `[gateway] session_workers` sets how many threads run sessions: every
/// session runs, on that many.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_run_on_the_configured_number_of_workers() {
    let pg = TestPostgres::start();
    let gw = one_worker_gateway(&pg);
    let mut sessions = Vec::new();
    for _ in 0..3 {
        let mut s = RawSession::connect(&gw, "agents").await;
        let r = s.query("select 1").await;
        assert_eq!(r.rows, [[Some("1".to_string())]], "{r:?}");
        sessions.push(s);
    }
    // Thread names are cut at 15 bytes: `sluice-session-`.
    let workers = gw
        .thread_names()
        .into_iter()
        .filter(|n| n.starts_with("sluice-session"))
        .count();
    assert_eq!(workers, 1);
}

/// A long statement is analysed off the session worker: with one worker, a
/// session's quick query is answered while another session's long text is
/// still being parsed (it is refused after its analysis, so nothing but the
/// analysis stands between it and its answer).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_statement_does_not_hold_the_worker() {
    let pg = TestPostgres::start();
    let gw = one_worker_gateway(&pg);
    let long_client = gw.plaintext_client().await;
    let quick = gw.plaintext_client().await;
    quick.simple_query("select 1").await.unwrap();
    let text = format!(
        "select count(*) from (values (1)) v(x) where x = 0{} or 'drop' = ''",
        " or x = 1".repeat(15_000)
    );
    let finished = std::sync::Mutex::new(Vec::new());
    let long = async {
        let refused = long_client.simple_query(&text).await.unwrap_err();
        assert_eq!(
            refused.code(),
            Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE)
        );
        finished.lock().unwrap().push("long");
    };
    let other = async {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        quick.simple_query("select 2").await.unwrap();
        finished.lock().unwrap().push("quick");
    };
    tokio::join!(long, other);
    assert_eq!(
        *finished.lock().unwrap(),
        ["quick", "long"],
        "the quick query waited for the long one's analysis"
    );
}

/// With `end_sessions_at_token_expiry`, a session ends with FATAL 28000 when
/// its token expires, and the statement it was running is cancelled; the
/// next login with a fresh token works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_can_end_when_their_token_expires() {
    let pg = TestPostgres::start();
    seed(&pg);
    let gw = Gateway::start(
        &pg,
        &Spec {
            plugins: Spec::STANDARD.plugins,
            toml: "[postgres]\nend_sessions_at_token_expiry = true\n[identity]\nleeway_secs = 0\n\
                   [plugins.config.deny-word]\nwords = [\"drop\"]\n",
        },
    );
    let token = gw.token_with_ttl("agent-1", &["agents"], "4s");
    let conninfo = format!(
        "host=127.0.0.1 port={} dbname=appdb user=agent-1 password={token}",
        gw.pg_port
    );
    let (client, connection) = tokio_postgres::connect(&conninfo, tokio_postgres::NoTls)
        .await
        .unwrap();
    let ended = tokio::spawn(connection);
    client.simple_query("select 1").await.unwrap();
    // Still running when the token expires.
    let err = client
        .simple_query("select pg_sleep(30)")
        .await
        .expect_err("the session outlived its token");
    let db = err
        .as_db_error()
        .map(|e| (e.code().code().to_string(), e.message().to_string()));
    assert!(
        matches!(&db, Some((code, msg)) if code == "28000" && msg.contains("expired")),
        "{err:?}"
    );
    let _ = ended.await;
    wait_until("the expired session's backend was left behind", || {
        app_backends(&pg).is_empty()
    });
    let fresh = gw.plaintext_client().await;
    fresh.simple_query("select 1").await.unwrap();
}

/// A session that began while a configured masker was missing must mask
/// once the masker is back: maskers are resolved per result set, never
/// fixed (or skipped) for the whole session.
#[test]
fn a_masker_missing_when_the_session_began_still_masks_later() {
    let pg = TestPostgres::start();
    seed(&pg);
    let gw = Gateway::start(&pg, &Spec::STANDARD);
    let token = gw.token();
    let plugin = gw.dir.path().join("plugins/mask-email.wasm");
    std::fs::remove_file(&plugin).unwrap();
    wait_until("mask-email reported removed", || {
        gw.plugin_status("mask-email")
            .is_some_and(|s| s["state"] == "removed")
    });

    // Inside the session: restore the file, then wait (in the shell psql
    // runs) until the gateway reports the masker active again.
    let active = format!(
        "for i in $(seq 600); do curl -sf http://127.0.0.1:{port}/api/v1/plugins | python3 -c \
         'import json, sys; sys.exit(0 if any(p[\"name\"] == \"mask-email\" and p[\"state\"] == \"active\" \
         for p in json.load(sys.stdin)[\"plugins\"]) else 1)' && break; sleep 0.1; done",
        port = gw.admin_port
    );
    let script = format!(
        "select 'while missing';\n\\! cp {src} {dst}\n\\! {active}\nselect email from customers where id = 1;\n",
        src = component("mask-email").display(),
        dst = plugin.display()
    );
    let (out, err) = gw.psql(&token, &script);
    assert!(
        err.contains("plugin `mask-email` is not available"),
        "{err}"
    );
    assert!(!out.contains("while missing"), "{out}");
    assert!(out.contains("[EMAIL]"), "{out} / {err}");
    assert!(!out.contains("ada@example.com"), "unmasked: {out}");
}

/// A guardrail that cannot judge (here it spins past its deadline) refuses
/// the statement with class 53, which clients may retry, not the 42501 of a
/// policy; the session goes on.
#[tokio::test]
async fn a_guardrail_that_cannot_judge_refuses_with_a_retryable_code() {
    let pg = TestPostgres::start();
    seed(&pg);
    let gw = Gateway::start(
        &pg,
        &Spec {
            plugins: &["hostile"],
            toml: "[plugins.config.hostile]\nmode = \"loop\"\n",
        },
    );
    let client = gw.plaintext_client().await;
    let err = client
        .simple_query("select 'attack'")
        .await
        .expect_err("the guardrail could not judge it");
    let db = err.as_db_error().expect("a server error");
    assert_eq!(db.code().code(), "53000", "{db:?}");
    assert!(db.message().contains("failing closed"), "{db:?}");
    let rows = client.query("select 1::int4", &[]).await.unwrap();
    assert_eq!(rows[0].get::<_, i32>(0), 1);
}

/// mask-email's entry in `GET /api/v1/plugins`.
/// Upstream backends of role `app` (the gateway's sessions), seen directly.
/// A server with no room for the session says so through the gateway
/// (53300, which clients back off on), not as a generic connection failure.
#[tokio::test]
async fn a_full_server_is_reported_as_full() {
    let pg = TestPostgres::start();
    seed(&pg);
    let gw = Gateway::start(&pg, &Spec::STANDARD);
    pg.psql("postgres", "alter role app connection limit 0")
        .unwrap();
    let conninfo = format!(
        "host=127.0.0.1 port={} dbname=appdb user=agent-1 password={}",
        gw.pg_port,
        gw.token()
    );
    let err = tokio_postgres::connect(&conninfo, tokio_postgres::NoTls)
        .await
        .err()
        .expect("the server has no room");
    let db = err.as_db_error().expect("a server error");
    assert_eq!(db.code().code(), "53300", "{db:?}");
    assert!(db.message().contains("too many connections"), "{db:?}");
}

fn app_backends(pg: &TestPostgres) -> Vec<String> {
    pg.psql(
        "postgres",
        "select state || ':' || query from pg_stat_activity where usename = 'app' order by pid",
    )
    .unwrap()
    .lines()
    .map(str::to_string)
    .filter(|l| !l.is_empty())
    .collect()
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(30), "{what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Bad input and vanishing clients: each gets an error or a clean close, the
/// gateway keeps serving, and no upstream backend is left behind.
// Multi-threaded: the checks below block their thread while the client
// tasks run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_clients_leave_no_upstream_connection_behind() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let pg = TestPostgres::start();
    seed(&pg);
    let gw = Gateway::start(&pg, &Spec::STANDARD);
    let token = gw.token();
    let addr = ("127.0.0.1", gw.pg_port);
    let plain = |password: &str| {
        format!(
            "host=127.0.0.1 port={} dbname=appdb user=agent-1 password={password}",
            gw.pg_port
        )
    };

    // A client that disconnects in the middle of a long query: the upstream
    // backend is cancelled and closed, not left sleeping.
    let (client, connection) = tokio_postgres::connect(&plain(&token), tokio_postgres::NoTls)
        .await
        .unwrap();
    let conn_task = tokio::spawn(connection);
    let sleeper = tokio::spawn(async move { client.simple_query("select pg_sleep(60)").await });
    wait_until("the query never reached the server", || {
        app_backends(&pg).iter().any(|b| b.contains("pg_sleep(60)"))
    });
    conn_task.abort();
    sleeper.abort();
    let _ = conn_task.await;
    wait_until("the upstream backend outlived its client", || {
        app_backends(&pg).is_empty()
    });

    // A client that vanishes mid-message and one that sends half a startup
    // packet: closed, nothing opened upstream.
    let (client, connection) = tokio_postgres::connect(&plain(&token), tokio_postgres::NoTls)
        .await
        .unwrap();
    drop(client);
    drop(connection);
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(&[0, 0, 0, 40, 0, 3, 0, 0, b'u']).await.unwrap();
    drop(s);

    // A 1 GB length prefix: refused without reading (or allocating) it.
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(&0x4000_0000u32.to_be_bytes()).await.unwrap();
    s.write_all(&196_608u32.to_be_bytes()).await.unwrap();
    let mut reply = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut reply)).await;
    assert!(
        reply.is_empty() || reply[0] == b'E',
        "unexpected answer to a 1 GB startup packet: {reply:?}"
    );

    // The same inside an authenticated session: a 1 GB Query frame ends the
    // session with an error; the upstream session is closed.
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let packet = startup_packet();
    s.write_all(&packet).await.unwrap();
    let mut buf = [0u8; 9];
    s.read_exact(&mut buf).await.unwrap();
    assert_eq!(buf[0], b'R', "expected an authentication request");
    let mut rest = vec![0u8; u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize - 8];
    s.read_exact(&mut rest).await.unwrap();
    let mut password = vec![b'p'];
    password.extend_from_slice(&((token.len() + 5) as u32).to_be_bytes());
    password.extend_from_slice(token.as_bytes());
    password.push(0);
    s.write_all(&password).await.unwrap();
    // Read the greeting up to ReadyForQuery.
    let mut seen = Vec::new();
    loop {
        let mut head = [0u8; 5];
        s.read_exact(&mut head).await.unwrap();
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        let mut body = vec![0u8; len - 4];
        s.read_exact(&mut body).await.unwrap();
        seen.push(head[0]);
        if head[0] == b'Z' {
            break;
        }
        assert_ne!(head[0], b'E', "{}", String::from_utf8_lossy(&body));
    }
    let mut huge = vec![b'Q'];
    huge.extend_from_slice(&0x4000_0000u32.to_be_bytes());
    s.write_all(&huge).await.unwrap();
    let mut reply = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut reply)).await;
    assert!(
        reply.first() == Some(&b'E') || reply.is_empty(),
        "unexpected answer to a 1 GB Query: {reply:?}"
    );

    // Wrong, expired and unknown-connection logins are refused before any
    // upstream traffic.
    for bad in [
        plain("not-a-token"),
        format!(
            "host=127.0.0.1 port={} dbname=nosuchdb user=agent-1 password={token}",
            gw.pg_port
        ),
    ] {
        let err = tokio_postgres::connect(&bad, tokio_postgres::NoTls)
            .await
            .err()
            .expect("refused");
        let code = err.code().map(|c| c.code().to_string());
        assert!(
            matches!(code.as_deref(), Some("28P01" | "3D000")),
            "{err:?}"
        );
    }

    wait_until("an upstream backend was left behind", || {
        app_backends(&pg).is_empty()
    });

    // And the gateway still serves.
    let (out, err) = gw.psql(&token, "select 'still serving';\n");
    assert_eq!(out.trim(), "still serving", "{err}");
}

/// The gateway parses SQL with standard_conforming_strings on and UTF-8
/// text; a session may not switch the server to other lexing rules, under
/// which a literal the gateway approved could end early and the rest run
/// as a statement of its own.
#[test]
fn a_session_cannot_change_how_the_server_reads_sql() {
    let pg = TestPostgres::start();
    seed(&pg);
    let gw = Gateway::start(&pg, &Spec::STANDARD);
    let token = gw.token();

    for sql in [
        "set standard_conforming_strings = off;",
        "set session standard_conforming_strings to 'false';",
        "select set_config('standard_conforming_strings', 'off', false);",
        "update pg_settings set setting = 'off' where name = 'standard_conforming_strings';",
        "set client_encoding = 'GBK';",
        "set names 'SJIS';",
    ] {
        let (out, err) = gw.psql(&token, &format!("{sql}\nselect 'still here';\n"));
        assert!(err.contains("statement refused"), "{sql}: {err}");
        assert_eq!(out.trim(), "still here", "{sql}: {err}");
    }
    let (out, err) = gw.psql(
        &token,
        "set client_encoding = 'UTF8';\nset standard_conforming_strings = on;\nshow standard_conforming_strings;\n",
    );
    assert_eq!(out.trim(), "SET\nSET\non", "{err}");

    // Out of the analysis' sight (a DO block): the server's report of the
    // change ends the session before anything else runs.
    let (out, err) = gw.psql(
        &token,
        "do $$ begin perform set_config('standard_conforming_strings', 'off', false); end $$;\nselect 'after';\n",
    );
    assert!(err.contains("must stay on"), "{err}");
    assert!(!out.contains("after"), "{out}");
    // Likewise a set_config whose setting name is computed.
    let (out, err) = gw.psql(
        &token,
        "select set_config(lower('STANDARD_CONFORMING_STRINGS'), 'off', false);\nselect 'after';\n",
    );
    assert!(err.contains("must stay on"), "{err}");
    assert!(!out.contains("after"), "{out}");

    // A client that asks for a multibyte client-only encoding at startup.
    let out = Command::new(postgres::bin_dir().join("psql"))
        .args(["-X", "-w", "-c", "select 1"])
        .arg(gw.conninfo())
        .env("PGPASSWORD", &token)
        .env("PGCLIENTENCODING", "GBK")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "GBK session accepted");
    assert!(err.contains("client_encoding"), "{err}");

    let (out, _) = gw.psql(&token, "select 'still serving';\n");
    assert_eq!(out.trim(), "still serving");
}

/// A protocol 3.0 StartupMessage for `agent-1` on `appdb`.
fn startup_packet() -> Vec<u8> {
    let mut startup = Vec::new();
    for (k, v) in [("user", "agent-1"), ("database", "appdb")] {
        startup.extend_from_slice(k.as_bytes());
        startup.push(0);
        startup.extend_from_slice(v.as_bytes());
        startup.push(0);
    }
    startup.push(0);
    let mut packet = ((startup.len() + 8) as u32).to_be_bytes().to_vec();
    packet.extend_from_slice(&196_608u32.to_be_bytes());
    packet.extend_from_slice(&startup);
    packet
}

fn message(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![tag];
    m.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
    m.extend_from_slice(body);
    m
}

/// A client that stops anywhere before it has logged in (before a byte, in
/// TLS, at the password) is disconnected after `startup_timeout_ms`, so
/// that idle sockets cannot pile up; the gateway keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_that_never_finish_are_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let pg = TestPostgres::start();
    seed(&pg);
    let spec = Spec {
        toml: "[plugins.config.deny-word]\nwords = [\"drop\"]\n[postgres]\nstartup_timeout_ms = 1500\n",
        ..Spec::STANDARD
    };
    let gw = Gateway::start(&pg, &spec);
    let addr = ("127.0.0.1", gw.pg_port);
    let silent = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut in_tls = tokio::net::TcpStream::connect(addr).await.unwrap();
    in_tls
        .write_all(&[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f])
        .await
        .unwrap();
    let mut answer = [0u8; 1];
    in_tls.read_exact(&mut answer).await.unwrap();
    assert_eq!(answer[0], b'S', "SSLRequest answered");
    let mut at_password = tokio::net::TcpStream::connect(addr).await.unwrap();
    let packet = startup_packet();
    at_password.write_all(&packet).await.unwrap();

    let began = Instant::now();
    for (what, mut s) in [
        ("silent", silent),
        ("in TLS", in_tls),
        ("at the password", at_password),
    ] {
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut rest)).await;
        assert!(closed.is_ok(), "a login stalled {what} was not closed");
    }
    assert!(began.elapsed() >= Duration::from_millis(1000));
    let (out, err) = gw.psql(&gw.token(), "select 'still serving';\n");
    assert_eq!(out.trim(), "still serving", "{err}");
}

/// A statement that is not UTF-8 is refused as PostgreSQL refuses it
/// (22021) and the session goes on, through both protocols, and so is a
/// message whose body is malformed (08P01, see `pg_protocol_errors.rs`); a
/// message whose length the gateway cannot follow ends the session with
/// FATAL 08P01, not a silent close.
#[tokio::test]
async fn unreadable_messages_are_answered_in_the_protocol() {
    let pg = TestPostgres::start();
    seed(&pg);
    let gw = Gateway::start(&pg, &Spec::STANDARD);

    let mut s = RawSession::connect(&gw, "agents").await;
    s.send(&message(b'Q', b"select '\xc0\xaf'\0")).await;
    let r = s.until_ready().await;
    assert_eq!(r.code(), Some("22021"), "{r:?}");
    let mut batch = message(b'P', b"\0select '\xff'\0\0\0");
    batch.extend(message(b'S', b""));
    s.send(&batch).await;
    let r = s.until_ready().await;
    assert_eq!(r.code(), Some("22021"), "{r:?}");
    let r = s.query("select 'still here'").await;
    assert_eq!(r.rows, vec![vec![Some("still here".to_string())]], "{r:?}");
    // Over max_statement_bytes: refused, not parsed (its tree would take
    // hundreds of megabytes), and the session goes on.
    let long = format!("select 1 where true{}", " and true".repeat(30_000));
    let r = s.query(&long).await;
    assert_eq!(r.code(), Some("54000"), "{:?}", r.error);
    let r = s.query("select 'still here'").await;
    assert_eq!(r.rows, vec![vec![Some("still here".to_string())]], "{r:?}");

    // A Query without its terminating NUL.
    s.send(&message(b'Q', b"select 1")).await;
    let r = s.until_ready().await;
    assert_eq!(r.code(), Some("08P01"), "{r:?}");
    let r = s.query("select 'still here'").await;
    assert_eq!(r.rows, vec![vec![Some("still here".to_string())]], "{r:?}");

    // A length shorter than itself.
    s.send(&[b'Q', 0, 0, 0, 2]).await;
    let errors = s.until_closed().await;
    assert_eq!(
        errors,
        vec![("08P01".to_string(), "FATAL".to_string())],
        "{errors:?}"
    );
    wait_until("an upstream backend was left behind", || {
        app_backends(&pg).is_empty()
    });
}
