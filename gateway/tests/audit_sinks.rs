//! Audit sinks fed from the log: `examples/audit.toml` with the audit-jsonl
//! plugin, a sink that is down for a while (and across a restart and a
//! `kill -9`) and then receives every event exactly once, and a sink that
//! only receives its connection's events.

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::postgres::{self, TestPostgres};
use common::process::{GatewayProcess, read_log, verify, wait_until};
use common::{component, free_port};
use serde_json::Value;

fn seed(pg: &TestPostgres) {
    for sql in [
        "create role app login password 'app-pw'",
        "create database app owner app",
    ] {
        pg.psql("postgres", sql).unwrap();
    }
    pg.psql(
        "app",
        "create table t(i int); alter table t owner to app; insert into t values (1), (2);",
    )
    .unwrap();
}

/// The example configuration, on test ports and with two more sinks: the
/// `audit-file` test guest as a second global sink that fails while
/// `down-b/down` exists, and as `audit-conn`, listed by connection `appdb`
/// only. A second connection `otherdb` leads to the same database.
fn configure(dir: &Path, pg: &TestPostgres, pg_port: u16, admin_port: u16) {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/audit.toml");
    let text = std::fs::read_to_string(example)
        .unwrap()
        .replace("127.0.0.1:6432", &format!("127.0.0.1:{pg_port}"))
        .replace("127.0.0.1:9090", &format!("127.0.0.1:{admin_port}"))
        .replace("127.0.0.1:5432", &pg.addr())
        .replace(
            "sinks = [\"audit-jsonl\"]",
            "sinks = [\"audit-jsonl\", \"audit-b\"]\nretry_initial_ms = 50\nretry_max_ms = 400",
        )
        .replace(
            "plugins = [\"deny-word\"]",
            "plugins = [\"deny-word\", \"audit-conn\"]",
        );
    let extra = r#"
[plugins.grants.audit-b]
dirs = [{ host = "out-b", guest = "/b", writable = true }]
[plugins.config.audit-b]
path = "/b/events.jsonl"
fail_while = "/b/down"

[plugins.grants.audit-conn]
dirs = [{ host = "out-conn", guest = "/c", writable = true }]
[plugins.config.audit-conn]
path = "/c/events.jsonl"

[[connections]]
name = "otherdb"
kind = "postgres"
upstream = "UPSTREAM"
database = "app"
user = "app"
password_env = "APPDB_PASSWORD"
allow_groups = ["agents"]
plugins = ["deny-word"]
"#
    .replace("UPSTREAM", &pg.addr());
    std::fs::write(dir.join("sluice.toml"), text + &extra).unwrap();
    for d in ["audit-out", "out-b", "out-conn", "plugins"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    for (name, built) in [
        ("deny-word", "deny-word"),
        ("audit-jsonl", "audit-jsonl"),
        ("audit-b", "audit-file"),
        ("audit-conn", "audit-file"),
    ] {
        std::fs::copy(component(built), dir.join(format!("plugins/{name}.wasm"))).unwrap();
    }
}

fn psql(port: u16, db: &str, token: &str, sql: &str) -> String {
    let out = Command::new(postgres::bin_dir().join("psql"))
        .args(["-X", "-A", "-t", "-w"])
        .arg(format!(
            "host=127.0.0.1 port={port} dbname={db} user=agent-1 sslmode=require"
        ))
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
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn sink_events(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn ids(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect()
}

/// The sink holds exactly the log's records that `wanted` selects, in log
/// order. Delivery is at least once: a `kill -9` between a delivery and the
/// save of its cursor repeats that batch after the restart, and readers drop
/// repeats by id (audit-jsonl does so itself; the audit-file guest leaves it
/// to its readers), so repeats are dropped here too.
fn caught_up(state: &Path, sink: &Path, wanted: impl Fn(&sluice::audit::Record) -> bool) -> bool {
    let expected: Vec<String> = read_log(state)
        .into_iter()
        .filter(|r| wanted(r))
        .map(|r| r.id)
        .collect();
    let mut seen = HashSet::new();
    let mut got = ids(&sink_events(sink));
    got.retain(|id| seen.insert(id.clone()));
    got == expected
}

#[test]
fn sinks_receive_every_event_once_even_after_being_down() {
    let pg = TestPostgres::start();
    seed(&pg);
    let dir = tempfile::tempdir().unwrap();
    let (pg_port, admin_port) = (free_port(), free_port());
    configure(dir.path(), &pg, pg_port, admin_port);
    let state = dir.path().join(".sluice");
    let jsonl = dir.path().join("audit-out/events.jsonl");
    let b = dir.path().join("out-b/events.jsonl");
    let conn = dir.path().join("out-conn/events.jsonl");
    std::fs::write(dir.path().join("out-b/down"), "").unwrap();

    let mut gw = GatewayProcess::start(dir.path(), admin_port);
    let token = gw.token("agent-1");
    let out = psql(
        pg_port,
        "appdb",
        &token,
        "select count(*) from t;\ndrop table t;\n",
    );
    assert!(out.contains("denied by plugin `deny-word`"), "{out}");
    psql(pg_port, "otherdb", &token, "select 1;\n");

    // audit-jsonl: everything, as it happens.
    assert!(
        wait_until(Duration::from_secs(20), || caught_up(
            &state,
            &jsonl,
            |_| true
        )),
        "audit-jsonl did not catch up:\n{}",
        gw.log()
    );
    let kinds: HashSet<String> = sink_events(&jsonl)
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect();
    for kind in [
        "audit.checkpoint",
        "gateway.started",
        "config.loaded",
        "plugin.loaded",
        "session.start",
        "statement.allowed",
        "statement.denied",
        "statement.completed",
        "session.end",
    ] {
        assert!(kinds.contains(kind), "no {kind} event in {kinds:?}");
    }
    let completed = sink_events(&jsonl)
        .into_iter()
        .find(|e| e["kind"] == "statement.completed")
        .unwrap();
    assert_eq!(completed["detail"]["commands"][0], "SELECT 1");
    assert_eq!(completed["identity"]["subject"], "agent-1");
    // Spelled as the session recordings spell it.
    let end = sink_events(&jsonl)
        .into_iter()
        .find(|e| e["kind"] == "session.end")
        .unwrap();
    assert_eq!(end["detail"]["ending"], "terminated", "{end}");

    // The down sink: nothing yet, failures and lag on the metrics.
    assert!(sink_events(&b).is_empty());
    let metric =
        |gw: &GatewayProcess, name: &str| gw.metric(name, "sink=\"audit-b\"").unwrap_or(0.0);
    assert!(wait_until(Duration::from_secs(10), || {
        metric(&gw, "sluice_audit_sink_failures_total") > 0.0
            && metric(&gw, "sluice_audit_sink_lag_records") > 0.0
    }));

    // Still down across a clean restart and a kill -9.
    gw.stop();
    let mut gw = GatewayProcess::start(dir.path(), admin_port);
    psql(pg_port, "appdb", &token, "select 2;\n");
    // Both working sinks have everything when the gateway dies.
    assert!(wait_until(Duration::from_secs(20), || {
        caught_up(&state, &jsonl, |_| true)
            && caught_up(&state, &conn, |r| r.connection.as_deref() == Some("appdb"))
    }));
    gw.kill9();
    let mut gw = GatewayProcess::start(dir.path(), admin_port);
    assert!(sink_events(&b).is_empty());

    // Back up: every event arrives, none twice, in order.
    std::fs::remove_file(dir.path().join("out-b/down")).unwrap();
    assert!(
        wait_until(Duration::from_secs(30), || caught_up(&state, &b, |_| true)),
        "audit-b did not catch up: {} events of {}\n{}",
        sink_events(&b).len(),
        read_log(&state).len(),
        gw.log()
    );
    assert!(wait_until(Duration::from_secs(20), || caught_up(
        &state,
        &jsonl,
        |_| true
    )));

    // The connection's sink: the events of appdb only.
    let appdb = |r: &sluice::audit::Record| r.connection.as_deref() == Some("appdb");
    assert!(
        wait_until(Duration::from_secs(20), || caught_up(&state, &conn, appdb)),
        "audit-conn did not catch up: it has {:?}\nthe log has {:?}\n{}",
        ids(&sink_events(&conn)),
        read_log(&state)
            .into_iter()
            .filter(appdb)
            .map(|r| format!("{} {}", r.id, r.kind))
            .collect::<Vec<_>>(),
        gw.log()
    );
    // Repeats are only possible for a batch delivered just before the kill:
    // audit-jsonl drops them itself, and the down sink got nothing before.
    for sink in [&jsonl, &b] {
        let all = ids(&sink_events(sink));
        let unique: HashSet<&String> = all.iter().collect();
        assert_eq!(unique.len(), all.len(), "repeats in {}", sink.display());
    }
    let conn_events = sink_events(&conn);
    assert!(conn_events.iter().any(|e| e["kind"] == "statement.denied"));
    assert!(conn_events.iter().all(|e| e["connection"] == "appdb"));

    // A clean stop lets each sink finish the batch it is writing: no task
    // cancelled under it, no half line in its file.
    gw.stop();
    let log = gw.log();
    assert!(
        !log.contains("panicked") && !log.contains("cancelled"),
        "{log}"
    );
    for sink in [&jsonl, &b, &conn] {
        let text = std::fs::read_to_string(sink).unwrap();
        assert!(
            text.ends_with('\n'),
            "{} ends with a partial line",
            sink.display()
        );
    }
    let (ok, out, err) = verify(dir.path());
    assert!(ok, "{out}{err}");
}
