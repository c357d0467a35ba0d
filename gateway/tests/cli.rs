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
    assert!(out.contains("world:   guardrail"), "{out}");
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
    let _gateway = Gateway(
        sluice()
            .arg("--config")
            .arg(&config)
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
