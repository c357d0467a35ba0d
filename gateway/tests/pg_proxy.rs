//! The PostgreSQL data path end to end: the `sluice` binary between real
//! clients (psql, pgbench) and a real PostgreSQL (initdb, SCRAM), with a
//! dev-issuer token as the password, a guardrail and a masker.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::postgres::{self, TestPostgres};
use common::{component, free_port};

struct Gateway {
    child: Child,
    dir: tempfile::TempDir,
    pg_port: u16,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Gateway {
    fn start(pg: &TestPostgres) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let plugins = dir.path().join("plugins");
        std::fs::create_dir(&plugins).unwrap();
        std::fs::copy(component("deny-word"), plugins.join("deny-word.wasm")).unwrap();
        std::fs::copy(component("mask-email"), plugins.join("mask-email.wasm")).unwrap();
        let (pg_port, admin_port) = (free_port(), free_port());
        let config = format!(
            r#"
[gateway]
state_dir = "state"
[listen]
postgres = "127.0.0.1:{pg_port}"
admin = "127.0.0.1:{admin_port}"
[postgres]
allow_plaintext_loopback = true
[plugins]
dir = "plugins"
[plugins.config.deny-word]
words = ["drop"]
[[connections]]
name = "appdb"
kind = "postgres"
upstream = "{upstream}"
database = "app"
user = "app"
password_env = "APPDB_PASSWORD"
allow_groups = ["agents"]
plugins = ["deny-word", "mask-email"]
"#,
            upstream = pg.addr()
        );
        std::fs::write(dir.path().join("sluice.toml"), config).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["--config", "sluice.toml", "serve"])
            .current_dir(dir.path())
            .env("APPDB_PASSWORD", "app-pw")
            .env("SLUICE_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let gw = Gateway {
            child,
            dir,
            pg_port,
        };
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", admin_port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "gateway did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        // Ready once the first scan of the plugin directory has loaded the
        // plugins (compiling them takes seconds on a loaded machine).
        let ready = common::gateway::wait_until(Duration::from_secs(60), || {
            common::gateway::http_get(admin_port, "/readyz").is_some_and(|(s, _)| s == 200)
        });
        assert!(ready, "gateway did not become ready");
        gw
    }

    fn token(&self) -> String {
        let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args([
                "--config",
                "sluice.toml",
                "token",
                "issue",
                "--subject",
                "agent-1",
                "--group",
                "agents",
            ])
            .current_dir(self.dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    fn conninfo(&self) -> String {
        format!(
            "host=127.0.0.1 port={} dbname=appdb user=agent-1 sslmode=require",
            self.pg_port
        )
    }

    /// psql through the gateway: (stdout, stderr).
    fn psql(&self, token: &str, sql: &str) -> (String, String) {
        let out = Command::new(postgres::bin_dir().join("psql"))
            .args(["-X", "-A", "-t", "-w"])
            .arg(self.conninfo())
            .env("PGPASSWORD", token)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                child.stdin.take().unwrap().write_all(sql.as_bytes())?;
                child.wait_with_output()
            })
            .unwrap();
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

fn seed(pg: &TestPostgres) {
    for sql in [
        "create role app login password 'app-pw'",
        "create database app owner app",
    ] {
        pg.psql("postgres", sql).unwrap();
    }
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
    let gw = Gateway::start(&pg);
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

    // A statement that does not parse is refused by the gateway's parser.
    let (_, err) = gw.psql(&token, "selec 1;\n");
    assert!(err.contains("could not be analysed"), "{err}");

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
    let gw = Gateway::start(&pg);
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
    let gw = Gateway::start(&pg);
    let token = gw.token();
    let child = Command::new(postgres::bin_dir().join("psql"))
        .args(["-X", "-w", "-c", "select pg_sleep(10)"])
        .arg(gw.conninfo())
        .env("PGPASSWORD", &token)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
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

/// tokio-postgres asks for binary results: masking must apply to them too.
#[tokio::test]
async fn binary_results_are_masked_for_tokio_postgres() {
    let pg = TestPostgres::start();
    seed(&pg);
    pg.psql("app", "create table docs(id int, body jsonb, note varchar(80)); alter table docs owner to app;
                    insert into docs values (1, '{\"to\": \"eve@example.net\"}', 'cc bob@example.com')")
        .unwrap();
    let gw = Gateway::start(&pg);
    let token = gw.token();
    let conninfo = format!(
        "host=127.0.0.1 port={} dbname=appdb user=agent-1 password={token}",
        gw.pg_port
    );
    let (client, connection) = tokio_postgres::connect(&conninfo, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);

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

/// A session that began while a configured masker was missing must mask
/// once the masker is back: maskers are resolved per result set, never
/// fixed (or skipped) for the whole session.
#[test]
fn a_masker_missing_when_the_session_began_still_masks_later() {
    let pg = TestPostgres::start();
    seed(&pg);
    let gw = Gateway::start(&pg);
    let token = gw.token();
    let plugin = gw.dir.path().join("plugins/mask-email.wasm");
    std::fs::remove_file(&plugin).unwrap();
    std::thread::sleep(Duration::from_millis(1500));

    let script = format!(
        "select 'while missing';\n\\! cp {src} {dst}\n\\! sleep 2\nselect email from customers where id = 1;\n",
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
