//! The real `sluice` binary in front of a [`TestPostgres`], with components
//! from `target/plugins/` copied into its plugin directory.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::postgres::{self, TestPostgres};
use super::{component, free_port};

/// What a test gateway runs: components (by crate name) copied into its
/// plugin directory and listed, in this order, on the connection `appdb`, and
/// extra TOML appended to the config (plugin tables, grants, …).
pub struct Spec<'a> {
    pub plugins: &'a [&'a str],
    pub toml: &'a str,
}

impl Spec<'_> {
    /// A guardrail that denies the word "drop" and a masker that replaces emails.
    pub const STANDARD: Spec<'static> = Spec {
        plugins: &["deny-word", "mask-email"],
        toml: "[plugins.config.deny-word]\nwords = [\"drop\"]\n",
    };
}

pub struct Gateway {
    child: Child,
    pub dir: tempfile::TempDir,
    pub pg_port: u16,
    pub admin_port: u16,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Gateway {
    /// Starts the gateway with connection `appdb` → database `app` as role
    /// `app` (password `app-pw`, see [`seed_app`]) for group `agents`, and
    /// waits until its plugins are loaded.
    pub fn start(pg: &TestPostgres, spec: &Spec) -> Self {
        let list = spec
            .plugins
            .iter()
            .map(|p| format!("\"{p}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let config: toml::Table = toml::from_str(&format!(
            r#"
[[connections]]
name = "appdb"
kind = "postgres"
upstream = "{upstream}"
database = "app"
user = "app"
password_env = "APPDB_PASSWORD"
allow_groups = ["agents"]
plugins = [{list}]

{extra}
"#,
            upstream = pg.addr(),
            extra = spec.toml,
        ))
        .unwrap();
        Self::from_toml(config, spec.plugins, &[("APPDB_PASSWORD", "app-pw")])
    }

    /// Starts `sluice serve` with `config` after setting its listeners (free
    /// ports, plaintext allowed on loopback), state directory and plugin
    /// directory; `plugins` are copied from the built components and `env`
    /// is the gateway's extra environment. Returns once every plugin is
    /// active and the PostgreSQL listener accepts connections.
    pub fn from_toml(mut config: toml::Table, plugins: &[&str], env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let plugin_dir = dir.path().join("plugins");
        std::fs::create_dir(&plugin_dir).unwrap();
        for name in plugins {
            std::fs::copy(component(name), plugin_dir.join(format!("{name}.wasm"))).unwrap();
        }
        let (pg_port, admin_port) = (free_port(), free_port());
        let mut set = |section: &str, key: &str, value: toml::Value| {
            config
                .entry(section)
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                .as_table_mut()
                .unwrap()
                .insert(key.into(), value);
        };
        set("gateway", "state_dir", "state".into());
        set("listen", "postgres", format!("127.0.0.1:{pg_port}").into());
        set("listen", "admin", format!("127.0.0.1:{admin_port}").into());
        set("postgres", "allow_plaintext_loopback", true.into());
        set("plugins", "dir", "plugins".into());
        std::fs::write(dir.path().join("sluice.toml"), config.to_string()).unwrap();
        let log = std::fs::File::create(dir.path().join("gateway.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["--config", "sluice.toml", "serve"])
            .current_dir(dir.path())
            .envs(env.iter().copied())
            .env("SLUICE_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let gw = Gateway {
            child,
            dir,
            pg_port,
            admin_port,
        };
        gw.wait_until_ready(plugins);
        gw
    }

    fn wait_until_ready(&self, plugins: &[&str]) {
        let start = Instant::now();
        loop {
            let active = self
                .admin_get("/api/v1/plugins")
                .and_then(|body| serde_json::from_str::<serde_json::Value>(&body).ok())
                .map(|v| {
                    plugins.iter().all(|n| {
                        v["plugins"].as_array().is_some_and(|ps| {
                            ps.iter().any(|p| p["name"] == *n && p["state"] == "active")
                        })
                    })
                })
                .unwrap_or(false);
            if active && std::net::TcpStream::connect(("127.0.0.1", self.pg_port)).is_ok() {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "gateway or its plugins did not start:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// GET on the admin listener: the body of a 200 response.
    pub fn admin_get(&self, path: &str) -> Option<String> {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.admin_port)).ok()?;
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        )
        .ok()?;
        let mut raw = String::new();
        s.read_to_string(&mut raw).ok()?;
        let (head, body) = raw.split_once("\r\n\r\n")?;
        head.starts_with("HTTP/1.1 200")
            .then(|| dechunk(head, body))
    }

    /// Calls of plugin `name` so far, every outcome (`/metrics`).
    pub fn plugin_calls(&self, name: &str) -> u64 {
        let metrics = self.admin_get("/metrics").unwrap_or_default();
        let label = format!(r#"plugin="{name}""#);
        metrics
            .lines()
            .filter(|l| l.starts_with("sluice_plugin_calls_total{") && l.contains(&label))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    }

    /// Plugin `name` as `/api/v1/plugins` reports it.
    pub fn plugin_status(&self, name: &str) -> Option<serde_json::Value> {
        let body = self.admin_get("/api/v1/plugins")?;
        let mut v: serde_json::Value = serde_json::from_str(&body).ok()?;
        let plugins = v["plugins"].as_array_mut()?;
        let i = plugins.iter().position(|p| p["name"] == name)?;
        Some(plugins.swap_remove(i))
    }

    /// The generation of plugin `name` while it is active.
    pub fn plugin_generation(&self, name: &str) -> Option<u64> {
        let status = self.plugin_status(name)?;
        (status["state"] == "active")
            .then(|| status["generation"].as_u64())
            .flatten()
    }

    /// tokio-postgres to `appdb` as `agent-1`, in plaintext (the test
    /// listener allows it on loopback), with a dev-issuer token.
    pub async fn plaintext_client(&self) -> tokio_postgres::Client {
        let conninfo = format!(
            "host=127.0.0.1 port={} dbname=appdb user=agent-1 password={}",
            self.pg_port,
            self.token()
        );
        let (client, connection) = tokio_postgres::connect(&conninfo, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        client
    }

    /// The names of the gateway process's threads.
    pub fn thread_names(&self) -> Vec<String> {
        let tasks = format!("/proc/{}/task", self.child.id());
        std::fs::read_dir(tasks)
            .unwrap()
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
            .map(|name| name.trim().to_string())
            .collect()
    }

    /// What the gateway has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("gateway.log")).unwrap_or_default()
    }

    /// A dev-issuer token for `agent-1` in group `agents`.
    pub fn token(&self) -> String {
        self.token_for("agent-1", &["agents"])
    }

    pub fn token_for(&self, subject: &str, groups: &[&str]) -> String {
        self.token_with_ttl(subject, groups, "1h")
    }

    pub fn token_with_ttl(&self, subject: &str, groups: &[&str], ttl: &str) -> String {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sluice"));
        cmd.args([
            "--config",
            "sluice.toml",
            "token",
            "issue",
            "--subject",
            subject,
            "--ttl",
            ttl,
        ])
        .current_dir(self.dir.path());
        for g in groups {
            cmd.args(["--group", g]);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// libpq connection string for `appdb` over TLS (the token goes in PGPASSWORD).
    pub fn conninfo(&self) -> String {
        self.conninfo_for("appdb")
    }

    /// libpq connection string for connection `dbname` over TLS.
    pub fn conninfo_for(&self, dbname: &str) -> String {
        format!(
            "host=127.0.0.1 port={} dbname={dbname} user=agent-1 sslmode=require",
            self.pg_port
        )
    }

    /// psql through the gateway to `appdb`: (stdout, stderr).
    pub fn psql(&self, token: &str, sql: &str) -> (String, String) {
        self.psql_on("appdb", token, sql)
    }

    /// psql (unaligned, tuples only) through the gateway to connection
    /// `dbname`, `token` as the password: (stdout, stderr).
    pub fn psql_on(&self, dbname: &str, token: &str, sql: &str) -> (String, String) {
        use std::io::Write;
        let mut child = Command::new(postgres::bin_dir().join("psql"))
            .args(["-X", "-A", "-t", "-w"])
            .arg(self.conninfo_for(dbname))
            .env("PGPASSWORD", token)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(sql.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    pub fn state_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("state")
    }

    pub fn plugin_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("plugins")
    }
}

fn dechunk(head: &str, body: &str) -> String {
    if !head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return body.to_string();
    }
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || tail.len() < n {
            break;
        }
        out.push_str(&tail[..n]);
        rest = tail[n..].trim_start_matches("\r\n");
    }
    out
}

/// Role `app` (password `app-pw`) owning database `app`, as [`Gateway::start`]
/// expects.
pub fn seed_app(pg: &TestPostgres) {
    for sql in [
        "create role app login password 'app-pw'",
        "create database app owner app",
    ] {
        pg.psql("postgres", sql).unwrap();
    }
}

/// Runs `sql` in database `app` as its owner would (objects owned by `app`).
pub fn as_app(pg: &TestPostgres, sql: &str) {
    pg.psql("app", &format!("set role app; {sql}")).unwrap();
}
