//! Write-ahead under a crash: `kill -9` of the gateway while a client streams
//! statements through it to a real PostgreSQL. After a restart the log
//! verifies and holds every statement the client saw acknowledged.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::postgres::TestPostgres;
use common::process::{GatewayProcess, read_log, verify};
use common::{component, free_port};

fn write_config(dir: &std::path::Path, pg: &TestPostgres, pg_port: u16, admin_port: u16) {
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(component("deny-word"), plugins.join("deny-word.wasm")).unwrap();
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
plugins = ["deny-word"]
"#,
        upstream = pg.addr()
    );
    std::fs::write(dir.join("sluice.toml"), config).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_no_acknowledged_statement() {
    let pg = TestPostgres::start();
    for sql in [
        "create role app login password 'app-pw'",
        "create database app owner app",
    ] {
        pg.psql("postgres", sql).unwrap();
    }
    pg.psql("app", "create table t(i int); alter table t owner to app;")
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (pg_port, admin_port) = (free_port(), free_port());
    write_config(dir.path(), &pg, pg_port, admin_port);
    let mut gw = GatewayProcess::start(dir.path(), admin_port);
    let token = gw.token("agent-1");

    let conninfo =
        format!("host=127.0.0.1 port={pg_port} dbname=appdb user=agent-1 password={token}");
    let (client, connection) = tokio_postgres::connect(&conninfo, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let stream = {
        let acked = acked.clone();
        tokio::spawn(async move {
            for i in 0.. {
                // Both protocols: a simple Query, and Parse/Bind/Execute.
                let text = format!("insert into t values ({i})");
                let done = if i % 2 == 0 {
                    client.simple_query(&text).await.map(|_| ())
                } else {
                    client.execute(&text, &[]).await.map(|_| ())
                };
                match done {
                    Ok(()) => acked.lock().unwrap().push(text),
                    Err(_) => return,
                }
            }
        })
    };
    let started = std::time::Instant::now();
    while acked.lock().unwrap().len() < 300 && started.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    gw.kill9();
    tokio::time::timeout(Duration::from_secs(30), stream)
        .await
        .expect("the client notices the gateway is gone")
        .unwrap();
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 300,
        "only {} statements acknowledged",
        acked.len()
    );

    // Restart on the same state, then stop cleanly: the log continues after
    // whatever the crash left and verifies.
    let mut gw = GatewayProcess::start(dir.path(), admin_port);
    gw.stop();
    let (ok, out, err) = verify(dir.path());
    assert!(ok, "{out}{err}\n{}", gw.log());

    let log = read_log(&dir.path().join("state"));
    let recorded: HashSet<&str> = log
        .iter()
        .filter(|r| r.kind == "statement.allowed")
        .filter_map(|r| r.detail.get("text")?.as_str())
        .collect();
    let missing = unseen(&acked, &recorded);
    assert!(
        missing.is_empty(),
        "{} acknowledged statements are not in the log, e.g. {:?}",
        missing.len(),
        missing.first()
    );
    // The restart is on record as following an unclean stop.
    let restarts: Vec<_> = log
        .iter()
        .filter(|r| r.kind == "gateway.started")
        .map(|r| r.detail["previous_shutdown"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(restarts, vec!["none (new log)", "unclean"]);
    // And the database agrees with the client about what ran.
    let rows: usize = pg
        .psql("app", "select count(*) from t")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(rows >= acked.len(), "{rows} rows for {} acks", acked.len());

    // The session's recording survived too: readable, closed as
    // interrupted by the restart, and holding every acknowledged statement.
    let sessions = dir.path().join("state/sessions");
    let files: Vec<_> = std::fs::read_dir(&sessions)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let text = std::fs::read_to_string(&files[0]).unwrap();
    let entries: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line of the recording is JSON"))
        .collect();
    assert_eq!(entries[0]["type"], "session");
    let last = entries.last().unwrap();
    assert_eq!(last["type"], "end", "{last}");
    assert_eq!(last["ending"], "interrupted", "{last}");
    let recorded: HashSet<&str> = entries
        .iter()
        .filter(|e| e["type"] == "statement" && e["verdict"] == "allow")
        .flat_map(|e| e["sql"].as_array().unwrap())
        .filter_map(|s| s["text"].as_str())
        .collect();
    let missing = unseen(&acked, &recorded);
    assert!(
        missing.is_empty(),
        "{} acknowledged statements are not in the recording, e.g. {:?}",
        missing.len(),
        missing.first()
    );
    let id = entries[0]["id"].as_str().unwrap();
    let replay = common::process::sluice()
        .args(["--config", "sluice.toml", "sessions", "replay", id])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(replay.status.success(), "{replay:?}");
    let transcript = String::from_utf8_lossy(&replay.stdout);
    assert!(transcript.contains(acked.last().unwrap()), "{transcript}");
}

/// The acknowledged statements that `seen` lacks.
fn unseen<'a>(acked: &'a [String], seen: &HashSet<&str>) -> Vec<&'a String> {
    acked
        .iter()
        .filter(|t| !seen.contains(t.as_str()))
        .collect()
}
