//! The audit-webhook sink, end to end: `examples/audit-webhook.toml` on the
//! real binary, statements through a real PostgreSQL, the events POSTed over
//! HTTPS (verified against the roots the gateway finds on the system, here
//! `SSL_CERT_FILE`) to an endpoint that then fails every way an endpoint
//! fails, including across a `kill -9` of the gateway. Every event arrives;
//! the only repeat is the batch whose response was lost, sent again under
//! the same `Idempotency-Key`.

mod common;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::postgres::{self, TestPostgres};
use common::process::{GatewayProcess, http_get, read_log, verify, wait_until};
use common::webhook::{Endpoint, Mode};
use common::{component, free_port};

const TOKEN: &str = "hook-secret-1";

fn seed(pg: &TestPostgres) {
    for sql in [
        "create role app login password 'app-pw'",
        "create database app owner app",
    ] {
        pg.psql("postgres", sql).unwrap();
    }
    pg.psql("app", "create table t(i int); alter table t owner to app;")
        .unwrap();
}

/// The example, on test ports, with the endpoint's URL, small batches and
/// quick retries. `url` replaces the configured endpoint URL.
fn configure(dir: &Path, upstream: &str, pg_port: u16, admin_port: u16, grant: &str, url: &str) {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/audit-webhook.toml");
    let text = std::fs::read_to_string(example)
        .unwrap()
        .replace("127.0.0.1:6432", &format!("127.0.0.1:{pg_port}"))
        .replace("127.0.0.1:9090", &format!("127.0.0.1:{admin_port}"))
        .replace("127.0.0.1:5432", upstream)
        .replace("https://hooks.example.com/sluice/events", url)
        .replace("https://hooks.example.com/sluice", grant)
        .replace("batch_size = 256", "batch_size = 16")
        .replace("retry_initial_ms = 250", "retry_initial_ms = 50")
        .replace("retry_max_ms = 30000", "retry_max_ms = 400");
    std::fs::write(dir.join("sluice.toml"), text).unwrap();
    std::fs::create_dir_all(dir.join("plugins")).unwrap();
    for name in ["deny-word", "audit-webhook"] {
        std::fs::copy(component(name), dir.join(format!("plugins/{name}.wasm"))).unwrap();
    }
}

fn start(dir: &Path, admin_port: u16) -> GatewayProcess {
    let ca = dir.join("endpoint-ca.pem").display().to_string();
    GatewayProcess::start_with_env(
        dir,
        admin_port,
        &[("SSL_CERT_FILE", &ca), ("SLUICE_HOOK_TOKEN", TOKEN)],
    )
}

fn psql(port: u16, token: &str, sql: &str) -> String {
    let out = Command::new(postgres::bin_dir().join("psql"))
        .args(["-X", "-A", "-t", "-w", "-c", sql])
        .arg(format!(
            "host=127.0.0.1 port={port} dbname=appdb user=agent-1 sslmode=require"
        ))
        .env("PGPASSWORD", token)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The endpoint kept every event of the log, in log order (repeats dropped).
fn caught_up(state: &Path, endpoint: &Endpoint) -> bool {
    let log: Vec<String> = read_log(state).into_iter().map(|r| r.id).collect();
    endpoint.unique_ids() == log
}

#[test]
fn every_event_arrives_after_the_endpoint_recovers_and_none_twice() {
    let pg = TestPostgres::start();
    seed(&pg);
    let mut endpoint = Endpoint::start();
    let dir = tempfile::tempdir().unwrap();
    let (pg_port, admin_port) = (free_port(), free_port());
    std::fs::write(dir.path().join("endpoint-ca.pem"), &endpoint.ca_pem).unwrap();
    configure(
        dir.path(),
        &pg.addr(),
        pg_port,
        admin_port,
        &endpoint.url("/sluice"),
        &endpoint.url("/sluice/events"),
    );
    let state = dir.path().join(".sluice");
    let failures = |gw: &GatewayProcess| {
        gw.metric("sluice_audit_sink_failures_total", "sink=\"audit-webhook\"")
            .unwrap_or(0.0)
    };

    // Up: the events arrive as they happen, with the configured headers.
    let mut gw = start(dir.path(), admin_port);
    let token = gw.token("agent-1");
    let out = psql(pg_port, &token, "drop table t");
    assert!(out.contains("denied by plugin `deny-word`"), "{out}");
    psql(pg_port, &token, "select 1");
    assert!(
        wait_until(Duration::from_secs(20), || caught_up(&state, &endpoint)),
        "the endpoint did not get every event:\n{}",
        gw.log()
    );
    let first = endpoint.deliveries()[0].clone();
    assert_eq!(first.authorization.as_deref(), Some("Bearer hook-secret-1"));
    assert_eq!(first.content_type.as_deref(), Some("application/json"));
    let (from, to) = (first.ids.first().unwrap(), first.ids.last().unwrap());
    assert_eq!(first.key, format!("{from}..{to}"));

    // Down, answering 503: events wait in the log.
    endpoint.set_mode(Mode::Unavailable);
    psql(pg_port, &token, "select 2");
    assert!(wait_until(Duration::from_secs(20), || {
        endpoint.refused() > 0 && failures(&gw) > 0.0
    }));

    // Not even listening, and the gateway killed and started again.
    endpoint.stop_listening();
    psql(pg_port, &token, "select 3");
    gw.kill9();
    let mut gw = start(dir.path(), admin_port);
    psql(pg_port, &token, "select 4");
    assert!(wait_until(Duration::from_secs(20), || failures(&gw) > 0.0));
    assert!(!caught_up(&state, &endpoint));

    // Back, but the first batch's response is lost on the way back. The
    // endpoint has the events then, but the gateway does not know it: wait
    // for the answered deliveries to cover the log.
    endpoint.set_mode(Mode::LoseNextResponse);
    endpoint.listen_again();
    let answered = |endpoint: &Endpoint| {
        let ids: HashSet<String> = (endpoint.deliveries().into_iter())
            .filter(|d| d.answered)
            .flat_map(|d| d.ids)
            .collect();
        read_log(&state).iter().all(|r| ids.contains(&r.id))
    };
    assert!(
        wait_until(Duration::from_secs(30), || caught_up(&state, &endpoint)
            && answered(&endpoint)),
        "the endpoint did not catch up: {} of {} events\n{}",
        endpoint.unique_ids().len(),
        read_log(&state).len(),
        gw.log()
    );

    // The one repeat: the batch whose response was lost, with its key.
    let deliveries = endpoint.deliveries();
    let lost: Vec<_> = deliveries.iter().filter(|d| !d.answered).collect();
    assert_eq!(lost.len(), 1, "{deliveries:#?}");
    let mut by_key: HashMap<&str, Vec<&Vec<String>>> = HashMap::new();
    for d in &deliveries {
        by_key.entry(d.key.as_str()).or_default().push(&d.ids);
    }
    for (key, batches) in &by_key {
        if *key == lost[0].key {
            assert_eq!(batches.len(), 2, "{key}: sent again once");
            assert_eq!(batches[0], batches[1], "{key}: the same events");
        } else {
            assert_eq!(batches.len(), 1, "{key} was sent twice");
        }
    }
    let total: usize = deliveries.iter().map(|d| d.ids.len()).sum();
    assert_eq!(total, read_log(&state).len() + lost[0].ids.len());

    gw.stop();
    let (ok, out, err) = verify(dir.path());
    assert!(ok, "{out}{err}");
}

#[test]
fn a_url_outside_the_grant_keeps_the_sink_from_loading() {
    let granted = Endpoint::start();
    let other = Endpoint::start();
    let dir = tempfile::tempdir().unwrap();
    let (pg_port, admin_port) = (free_port(), free_port());
    std::fs::write(dir.path().join("endpoint-ca.pem"), &granted.ca_pem).unwrap();
    configure(
        dir.path(),
        "127.0.0.1:1",
        pg_port,
        admin_port,
        &granted.url("/sluice"),
        &other.url("/sluice/events"),
    );
    let gw = start(dir.path(), admin_port);
    let refused = wait_until(Duration::from_secs(20), || {
        http_get(admin_port, "/api/v1/plugins").is_some_and(|(_, body)| {
            body.contains("is not under a destination granted to this plugin")
        })
    });
    assert!(refused, "audit-webhook was not refused:\n{}", gw.log());
    std::thread::sleep(Duration::from_secs(1));
    assert!(other.deliveries().is_empty() && granted.deliveries().is_empty());
}
