//! The real `sluice` binary as a child process: a config file written into
//! a temporary directory (listeners on free ports, state and plugins inside
//! it), built components copied in, and helpers to talk to it.

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::postgres::{self, free_port};

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
    /// Starts `sluice serve` with `config`, after setting its listeners,
    /// state directory and plugin directory; `plugins` are copied from the
    /// built components, `env` is the gateway's extra environment. Returns
    /// once every plugin is active.
    pub fn start(mut config: toml::Table, plugins: &[&str], env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let plugin_dir = dir.path().join("plugins");
        std::fs::create_dir(&plugin_dir).unwrap();
        for name in plugins {
            std::fs::copy(
                super::component(name),
                plugin_dir.join(format!("{name}.wasm")),
            )
            .unwrap();
        }
        let (pg_port, admin_port) = (free_port(), free_port());
        let set = |config: &mut toml::Table, section: &str, key: &str, value: toml::Value| {
            let table = config
                .entry(section)
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            table.as_table_mut().unwrap().insert(key.into(), value);
        };
        set(&mut config, "gateway", "state_dir", "state".into());
        set(
            &mut config,
            "listen",
            "postgres",
            format!("127.0.0.1:{pg_port}").into(),
        );
        set(
            &mut config,
            "listen",
            "admin",
            format!("127.0.0.1:{admin_port}").into(),
        );
        set(
            &mut config,
            "postgres",
            "allow_plaintext_loopback",
            true.into(),
        );
        set(&mut config, "plugins", "dir", "plugins".into());
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
        let start = Instant::now();
        loop {
            let statuses = gw.http_get("/api/v1/plugins").unwrap_or_default();
            let parsed: serde_json::Value = serde_json::from_str(&statuses).unwrap_or_default();
            let active = plugins.iter().all(|p| {
                parsed["plugins"].as_array().is_some_and(|all| {
                    all.iter()
                        .any(|s| s["name"] == *p && s["state"] == "active")
                })
            });
            if active && std::net::TcpStream::connect(("127.0.0.1", pg_port)).is_ok() {
                return gw;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "gateway not ready: {statuses}\n{}",
                gw.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// What the gateway has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("gateway.log")).unwrap_or_default()
    }

    /// A dev-issuer token for `subject` in `groups`.
    pub fn token(&self, subject: &str, groups: &[&str]) -> String {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sluice"));
        cmd.args([
            "--config",
            "sluice.toml",
            "token",
            "issue",
            "--subject",
            subject,
        ]);
        for g in groups {
            cmd.args(["--group", g]);
        }
        let out = cmd.current_dir(self.dir.path()).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// libpq connection string for connection `dbname` as `user`.
    pub fn conninfo(&self, dbname: &str, user: &str) -> String {
        format!(
            "host=127.0.0.1 port={} dbname={dbname} user={user} sslmode=require",
            self.pg_port
        )
    }

    /// `sql` through psql (unaligned, tuples only) with `token` as the
    /// password: (stdout, stderr).
    pub fn psql(&self, dbname: &str, token: &str, sql: &str) -> (String, String) {
        let out = Command::new(postgres::bin_dir().join("psql"))
            .args(["-X", "-A", "-t", "-w"])
            .arg(self.conninfo(dbname, "agent"))
            .env("PGPASSWORD", token)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                if let Some(mut stdin) = child.stdin.take() {
                    stdin.write_all(sql.as_bytes())?;
                }
                child.wait_with_output()
            })
            .unwrap();
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// A GET on the admin listener: the response body, `None` if it could
    /// not be fetched.
    pub fn http_get(&self, path: &str) -> Option<String> {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", self.admin_port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).ok()?;
        let (_, body) = response.split_once("\r\n\r\n")?;
        Some(body.to_string())
    }
}
