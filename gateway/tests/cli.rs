//! The `sluice` binary as an operator uses it: `plugin check`, `config
//! check`, and `serve` with the admin API reporting hot reloads.
//!
//! The components come from `target/plugins/`, built by the `sluice-tests`
//! build script (or `just build-plugins`); a workspace-wide `cargo test`
//! builds them before any test runs.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};

use common::{component, free_port};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn sluice() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sluice"));
    cmd.env_remove("SLUICE_CONFIG").env("SLUICE_LOG", "info");
    cmd
}

fn run(cmd: &mut Command) -> (bool, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().expect("run sluice");
    (
        status.success(),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

fn write_config(dir: &Path, body: &str) -> PathBuf {
    let path = dir.join("sluice.toml");
    std::fs::write(&path, body).unwrap();
    path
}

#[test]
fn plugin_check_reports_world_and_config() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "[plugins.config.deny-word]\nwords = [\"drop\"]\n",
    );
    let (ok, out, err) = run(sluice()
        .arg("--config")
        .arg(&config)
        .args(["plugin", "check"])
        .arg(component("deny-word")));
    assert!(ok, "stdout: {out}\nstderr: {err}");
    assert!(out.contains("world:   selective-guardrail"), "{out}");
    assert!(out.contains(r#"{"words":["drop"]}"#), "{out}");
}

#[test]
fn plugin_check_names_the_reason_for_refusal() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("junk.wasm");
    std::fs::write(&garbage, b"not a component").unwrap();
    let empty_words = write_config(dir.path(), "[plugins.config.deny-word]\nwords = []\n");

    let cases = [
        (garbage.clone(), "refused: not WebAssembly"),
        (
            component("foreign-cli"),
            "matches no sluice:plugin@0.1 world",
        ),
    ];
    for (file, expected) in cases {
        let (ok, out, err) = run(sluice().args(["plugin", "check"]).arg(file));
        assert!(!ok, "must fail: {out}");
        assert!(err.contains(expected), "{err}");
    }

    let (ok, _, err) = run(sluice()
        .arg("--config")
        .arg(&empty_words)
        .args(["plugin", "check"])
        .arg(component("deny-word")));
    assert!(!ok);
    assert!(err.contains("init rejected its configuration"), "{err}");
}

#[test]
fn config_check_rejects_unknown_keys() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write_config(dir.path(), "[plugins]\ndeadline_ms = 5\n");
    let (ok, _, err) = run(sluice().arg("--config").arg(&bad).args(["config", "check"]));
    assert!(!ok);
    assert!(err.contains("unknown field `deadline_ms`"), "{err}");

    let good = write_config(dir.path(), "[plugins]\ncall_deadline_ms = 5\n");
    let (ok, out, err) = run(sluice()
        .arg("--config")
        .arg(&good)
        .args(["config", "check"]));
    assert!(ok, "{err}");
    assert!(out.contains("configuration ok"));
}

struct Gateway(Child);

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A minimal HTTP/1.1 GET: status code and body.
/// `sluice serve` with `config`, once its admin listener on `port` says ready.
fn serve(config: &std::path::Path, port: u16) -> Gateway {
    let gateway = Gateway(
        sluice()
            .arg("--config")
            .arg(config)
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    assert!(
        wait_until(Duration::from_secs(20), || get(port, "/readyz")
            .is_some_and(|(s, _)| s == 200)),
        "gateway not ready"
    );
    gateway
}

fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n")?.1.to_string();
    Some((status, body))
}

fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

fn plugin_state(port: u16, name: &str) -> Option<serde_json::Value> {
    let (_, body) = get(port, "/api/v1/plugins")?;
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    v["plugins"]
        .as_array()?
        .iter()
        .find(|p| p["name"] == name)
        .cloned()
}

#[test]
fn serve_hot_reloads_and_reports_through_the_admin_api() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    let port = free_port();
    let config = write_config(
        dir.path(),
        &format!(
            "[listen]\nadmin = \"127.0.0.1:{port}\"\n[plugins]\ndir = \"plugins\"\n\
             [plugins.config.deny-word]\nwords = [\"drop\"]\n"
        ),
    );
    let _gateway = serve(&config, port);
    assert_eq!(get(port, "/healthz").unwrap().0, 200);

    // The embedded dev issuer publishes its keys at its `iss`, the admin listener.
    let (status, jwks) = get(port, "/.well-known/jwks.json").unwrap();
    assert_eq!(status, 200);
    assert!(jwks.contains("\"keys\""), "{jwks}");
    let (_, discovery) = get(port, "/.well-known/openid-configuration").unwrap();
    assert!(
        discovery.contains(&format!("http://127.0.0.1:{port}")),
        "{discovery}"
    );

    // Add a plugin while running.
    std::fs::copy(component("deny-word"), plugins.join("deny-word.wasm")).unwrap();
    assert!(wait_until(Duration::from_secs(30), || {
        plugin_state(port, "deny-word").is_some_and(|p| p["state"] == "active")
    }));
    let first = plugin_state(port, "deny-word").unwrap();
    assert_eq!(first["kind"], "guardrail");

    // A broken replacement: reported, previous generation keeps serving.
    std::fs::write(plugins.join("deny-word.wasm"), b"\0asm\x0d\0\x01\0broken").unwrap();
    assert!(wait_until(Duration::from_secs(30), || {
        plugin_state(port, "deny-word").is_some_and(|p| p["last_error"].is_string())
    }));
    let broken = plugin_state(port, "deny-word").unwrap();
    assert_eq!(broken["state"], "active");
    assert_eq!(broken["generation"], first["generation"]);
    assert!(
        broken["last_error"]
            .as_str()
            .unwrap()
            .contains("invalid component")
    );
    let (_, metrics) = get(port, "/metrics").unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("sluice_plugin_loads_total")
                && l.contains("outcome=\"failed\"")
                && l.contains("reason=\"compile\"")),
        "{metrics}"
    );

    // Removal is reported too.
    std::fs::remove_file(plugins.join("deny-word.wasm")).unwrap();
    assert!(wait_until(Duration::from_secs(30), || {
        plugin_state(port, "deny-word").is_some_and(|p| p["state"] == "removed")
    }));
    assert_eq!(get(port, "/nope").unwrap().0, 404);
}

#[test]
fn config_check_warns_of_what_would_fail_on_this_host() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        r#"[plugins]
dir = "plugins"

[[connections]]
name = "appdb"
kind = "postgres"
upstream = "127.0.0.1:5432"
database = "app"
user = "app"
password_env = "SLUICE_TEST_SURELY_UNSET"
plugins = ["sql-guardrail", "sql-guardrail", "deny-word"]

[plugins.config.deny-word]
words = []

[plugins.config.sql-guardrial.default]
read_only = true

[plugins.grants.deny-word]
dirs = [{ host = "no-such-dir", guest = "/data" }]

[[identity.issuers]]
issuer = "https://idp.example.com"
audiences = ["sluice"]
jwks_inline = "garbage"
"#,
    );
    std::fs::create_dir(dir.path().join("plugins")).unwrap();
    std::fs::copy(
        component("deny-word"),
        dir.path().join("plugins/deny-word.wasm"),
    )
    .unwrap();
    let (ok, out, err) = run(sluice()
        .arg("--config")
        .arg(&config)
        .args(["config", "check"]));
    assert!(ok, "{err}");
    assert!(out.contains("configuration ok"), "{out}");
    for warning in [
        "SLUICE_TEST_SURELY_UNSET is not set",
        "listed twice",
        "there is no",
        "no [listen] address",
        "[plugins.config.sql-guardrial] names no plugin",
        "no-such-dir does not exist",
        "plugin \"deny-word\"",
        "https://idp.example.com",
        "every agent is refused",
    ] {
        assert!(err.contains(warning), "no {warning:?} in {err}");
    }
}

#[test]
fn ssh_connections_are_refused_by_config_check_and_serve() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "[[connections]]\nname = \"box\"\nkind = \"ssh\"\nupstream = \"10.0.0.1:22\"\n\
         allow_all = true\n",
    );
    for command in [&["config", "check"][..], &["serve"]] {
        let (ok, out, err) = run(sluice().arg("--config").arg(&config).args(command));
        assert!(!ok, "{command:?} accepted an ssh connection: {out}{err}");
        assert!(
            err.contains("connection \"box\": kind = \"ssh\" is not supported yet"),
            "{command:?}: {err}"
        );
        assert!(!out.contains("configuration ok"), "{out}");
    }
}

#[test]
fn config_check_and_serve_refuse_unusable_tls_files() {
    let dir = tempfile::tempdir().unwrap();
    // A usable pair, generated as the gateway generates its own.
    sluice::tls::server_config(None, dir.path()).unwrap();
    let cert = dir.path().join("tls/listener-cert.pem");
    let key = dir.path().join("tls/listener-key.pem");
    std::fs::write(dir.path().join("not-pem.pem"), "hello\n").unwrap();
    let [pg_port, http_port] = [free_port(), free_port()];
    let body = |pg_cert: &str, http_key: &str, ca: &str| {
        format!(
            "[listen]\npostgres = \"127.0.0.1:{pg_port}\"\nhttp = \"127.0.0.1:{http_port}\"\n\
             [postgres]\ntls_cert = \"{pg_cert}\"\ntls_key = \"{key}\"\n\
             [http]\ntls_cert = \"{cert}\"\ntls_key = \"{http_key}\"\n\
             [[connections]]\nname = \"appdb\"\nkind = \"postgres\"\nupstream = \"127.0.0.1:5432\"\n\
             database = \"app\"\nuser = \"app\"\ntls = \"verify-full\"\nca_file = \"{ca}\"\n\
             allow_all = true\n",
            key = key.display(),
            cert = cert.display(),
        )
    };

    let good = write_config(
        dir.path(),
        &body(
            &cert.display().to_string(),
            &key.display().to_string(),
            &cert.display().to_string(),
        ),
    );
    let (ok, out, err) = run(sluice()
        .arg("--config")
        .arg(&good)
        .args(["config", "check"]));
    assert!(ok, "{out}{err}");
    assert!(!err.contains("error:"), "{err}");

    let bad = write_config(dir.path(), &body("ex/c.pem", "not-pem.pem", "no-ca.pem"));
    let (ok, out, err) = run(sluice().arg("--config").arg(&bad).args(["config", "check"]));
    assert!(!ok, "{out}{err}");
    assert!(!out.contains("configuration ok"), "{out}");
    // Missing files are the running host's to provide (a check may run
    // elsewhere): warned about; unusable ones are errors.
    for expected in [
        "warning: [postgres] tls_cert: cannot read ",
        "ex/c.pem",
        "(serve refuses to start without it)",
        "error: [http] tls_cert/tls_key: ",
        "not-pem.pem",
        "warning: connection \"appdb\": ca_file: cannot read ",
        "no-ca.pem",
    ] {
        assert!(err.contains(expected), "no {expected:?} in {err}");
    }

    // `serve` refuses the same, naming the key, before anything listens.
    let (ok, _, err) = run(sluice().arg("--config").arg(&bad).arg("serve"));
    assert!(!ok);
    assert!(
        err.contains("error: [postgres] tls_cert: cannot read ") && err.contains("ex/c.pem"),
        "{err}"
    );
    assert!(!err.contains("listener ready"), "{err}");
}

#[test]
fn a_missing_config_file_is_named_once() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.toml");
    let (ok, _, err) = run(sluice()
        .arg("--config")
        .arg(&missing)
        .args(["config", "check"]));
    assert!(!ok);
    assert!(err.contains(&missing.display().to_string()), "{err}");
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
}

/// A finished recording of `protocol`, as the gateway writes one.
fn write_recording(sessions: &Path, id: &str, protocol: &str) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let lines = [
        serde_json::json!({
            "type": "session", "version": 1, "id": id, "protocol": protocol,
            "connection": "c", "subject": "agent-1", "issuer": "http://127.0.0.1",
            "groups": [], "client_addr": "127.0.0.1:50000", "started_ms": now - 2000,
        }),
        serde_json::json!({
            "type": "end", "time_ms": now - 1000, "duration_ms": 1000,
            "ending": "terminated", "entries": 1,
        }),
    ];
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(sessions.join(format!("{id}.jsonl")), text).unwrap();
}

/// One HTTP/1.1 request: status, head and body.
fn request(port: u16, method: &str, path: &str) -> Option<(u16, String, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    Some((status, head.to_ascii_lowercase(), body.to_string()))
}

const PG_SESSION: &str = "aa01aa01aa01aa01aa01aa01aa01aa01";
const HTTP_SESSION: &str = "bb02bb02bb02bb02bb02bb02bb02bb02";

#[test]
fn sessions_cli_says_what_it_cannot_do_and_stops_quietly_on_a_closed_pipe() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let sessions = dir.path().join(".sluice/sessions");
    std::fs::create_dir_all(&sessions).unwrap();
    write_recording(&sessions, PG_SESSION, "postgres");
    // Enough output that it cannot all fit in the pipe before it closes.
    for i in 0..600 {
        write_recording(&sessions, &format!("cc{i:030x}"), "http");
    }

    let (ok, _, err) = run(sluice()
        .arg("--config")
        .arg(&config)
        .args(["sessions", "export", "aa01", "--har"]));
    assert!(!ok);
    assert!(
        err.starts_with("error: session aa01 is not an HTTP session"),
        "{err}"
    );

    // `sluice sessions list --json | head -0`: the reader is gone.
    let mut child = sluice()
        .arg("--config")
        .arg(&config)
        .args(["sessions", "list", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{:?}: {err}", output.status);
    assert!(err.is_empty(), "{err}");
}

#[test]
fn admin_api_status_codes() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = write_config(
        dir.path(),
        &format!("[listen]\nadmin = \"127.0.0.1:{port}\"\n"),
    );
    let sessions = dir.path().join(".sluice/sessions");
    std::fs::create_dir_all(&sessions).unwrap();
    write_recording(&sessions, PG_SESSION, "postgres");
    write_recording(&sessions, HTTP_SESSION, "http");
    let _gateway = serve(&config, port);
    let json = |body: &str| -> serde_json::Value { serde_json::from_str(body).unwrap() };

    // HAR of an HTTP session; of a PostgreSQL one, a conflict, not an empty HAR.
    let (status, _, body) =
        request(port, "GET", &format!("/api/v1/sessions/{HTTP_SESSION}/har")).unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(json(&body)["log"]["version"], "1.2");
    for id in [PG_SESSION, "aa01"] {
        let (status, _, body) =
            request(port, "GET", &format!("/api/v1/sessions/{id}/har")).unwrap();
        assert_eq!(status, 409, "{body}");
        assert_eq!(json(&body)["error"], "conflict");
        assert!(
            json(&body)["detail"]
                .as_str()
                .unwrap()
                .contains("not an HTTP session"),
            "{body}"
        );
    }

    // An id no recording has is not found; text that is no id is a bad request.
    for path in [
        "/api/v1/sessions/ffff",
        "/api/v1/sessions/ffff/har",
        "/api/v1/sessions/ffff/events",
    ] {
        let (status, _, body) = request(port, "GET", path).unwrap();
        assert_eq!(status, 404, "{path}: {body}");
        assert_eq!(json(&body)["error"], "not_found");
    }
    let (status, _, body) = request(port, "GET", "/api/v1/sessions/not-an-id").unwrap();
    assert_eq!(status, 400, "{body}");
    assert_eq!(json(&body)["error"], "bad_request");

    // A known path with another method: 405 and what it allows.
    for (method, path) in [
        ("POST", "/healthz"),
        ("DELETE", "/api/v1/plugins"),
        ("POST", "/api/v1/sessions"),
        ("DELETE", &format!("/api/v1/sessions/{PG_SESSION}")),
    ] {
        let (status, head, body) = request(port, method, path).unwrap();
        assert_eq!(status, 405, "{method} {path}: {body}");
        assert!(head.contains("\r\nallow: get"), "{head}");
        assert_eq!(json(&body)["error"], "method_not_allowed");
    }
    assert_eq!(request(port, "POST", "/nope").unwrap().0, 404);
    assert_eq!(request(port, "HEAD", "/healthz").unwrap().0, 200);
}
