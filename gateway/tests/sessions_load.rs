//! Load: 200 concurrent PostgreSQL sessions for 60 s (`SLUICE_LOAD_SECS`
//! to change it) through the gateway, each running allowed simple and
//! prepared statements and an occasional refused one. Afterwards every
//! session's recording and the audit log hold exactly what its client
//! counted: no event lost, none invented.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::gateway::{Gateway, Spec, as_app, seed_app};
use common::postgres::TestPostgres;
use serde_json::Value;

const SESSIONS: usize = 200;

#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct Counts {
    allowed: u64,
    denied: u64,
}

async fn client(port: u16, token: String, i: usize, until: Instant) -> Counts {
    let conninfo = format!(
        "host=127.0.0.1 port={port} dbname=appdb user=load password={token} application_name=load-{i}"
    );
    let (client, connection) = tokio_postgres::connect(&conninfo, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("session {i}: {e:?}"));
    let conn = tokio::spawn(connection);
    let prepared = client
        .prepare("select count(*) from t where i < $1")
        .await
        .unwrap();
    // The prepare's Parse is a statement of its own in the recording.
    let mut counts = Counts {
        allowed: 1,
        denied: 0,
    };
    let mut n = 0u64;
    while Instant::now() < until {
        n += 1;
        if n.is_multiple_of(25) {
            let refused = client.simple_query("select 'drop'").await;
            assert!(
                refused.is_err(),
                "session {i}: the guardrail let it through"
            );
            counts.denied += 1;
        } else if n.is_multiple_of(2) {
            client.simple_query(&format!("select {n}")).await.unwrap();
            counts.allowed += 1;
        } else {
            client.query(&prepared, &[&(n as i32)]).await.unwrap();
            counts.allowed += 1;
        }
    }
    drop(prepared);
    drop(client);
    conn.await.unwrap().unwrap();
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_sessions_lose_no_event() {
    let secs: u64 = std::env::var("SLUICE_LOAD_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let pg = TestPostgres::start();
    seed_app(&pg);
    as_app(
        &pg,
        "create table t(i int); insert into t select generate_series(1, 100);",
    );
    // 200 sessions on two cores starve plugin calls of CPU; what is under
    // test here is the trail, not the per-call deadline.
    let toml = format!(
        "{}\n[plugins]\ncall_deadline_ms = 10000\n",
        Spec::STANDARD.toml
    );
    let gw = Gateway::start(
        &pg,
        &Spec {
            plugins: Spec::STANDARD.plugins,
            toml: &toml,
        },
    );
    let token = gw.token_for("load", &["agents"]);

    let until = Instant::now() + Duration::from_secs(secs);
    let tasks: Vec<_> = (0..SESSIONS)
        .map(|i| tokio::spawn(client(gw.pg_port, token.clone(), i, until)))
        .collect();
    let mut expected = HashMap::new();
    for (i, t) in tasks.into_iter().enumerate() {
        expected.insert(format!("load-{i}"), t.await.unwrap());
    }
    let total: u64 = expected.values().map(|c| c.allowed + c.denied).sum();
    eprintln!("{SESSIONS} sessions ran {total} statements in {secs} s");

    // Every recording ended; count its entries per session.
    let dir = gw.state_dir().join("sessions");
    let start = Instant::now();
    let recordings = loop {
        let files: Vec<Vec<Value>> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| {
                std::fs::read_to_string(e.unwrap().path())
                    .unwrap()
                    .lines()
                    .map(|l| serde_json::from_str(l).expect("a recording line is JSON"))
                    .collect()
            })
            .collect();
        let ended = files
            .iter()
            .filter(|f| f.last().is_some_and(|l| l["type"] == "end"))
            .count();
        if ended == SESSIONS {
            break files;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{ended} of {} recordings ended\n{}",
            files.len(),
            gw.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let mut session_app = HashMap::new();
    for entries in &recordings {
        let header = &entries[0];
        let app = header["detail"]["application_name"]
            .as_str()
            .unwrap()
            .to_string();
        session_app.insert(header["id"].as_str().unwrap().to_string(), app.clone());
        let counted = Counts {
            allowed: entries
                .iter()
                .filter(|e| e["type"] == "statement" && e["verdict"] == "allow")
                .count() as u64,
            denied: entries
                .iter()
                .filter(|e| e["type"] == "statement" && e["verdict"] == "deny")
                .count() as u64,
        };
        assert_eq!(counted, expected[&app], "recording of {app}");
        let end = entries.last().unwrap();
        assert_eq!(end["statements_allowed"], expected[&app].allowed, "{app}");
        assert_eq!(end["statements_refused"], expected[&app].denied, "{app}");
        assert_eq!(end["dropped"], 0, "{app}");
    }

    // The audit log: every statement completed or denied, per session.
    let mut audited: HashMap<String, Counts> = HashMap::new();
    for r in common::process::read_log(&gw.state_dir()) {
        let Some(app) = r.session.as_ref().and_then(|s| session_app.get(s)) else {
            continue;
        };
        let c = audited.entry(app.clone()).or_default();
        match r.kind.as_str() {
            // Completed rounds that ran something (the prepare ran nothing
            // but is a round with its own allowed record).
            "statement.completed" => c.allowed += 1,
            "statement.denied" => c.denied += 1,
            _ => {}
        }
    }
    for (app, want) in &expected {
        assert_eq!(audited.get(app), Some(want), "audit log of {app}");
    }
    let dropped = gw
        .admin_get("/metrics")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("sluice_audit_events_dropped_total"))
        .map(str::to_string);
    assert!(dropped.is_none(), "{dropped:?}");
}
