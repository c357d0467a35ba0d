//! The `sluice` binary as a process the audit tests start, stop cleanly,
//! kill with SIGKILL and start again on the same state directory.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sluice::audit::{Layout, LogReader, Record};

pub fn sluice() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sluice"));
    cmd.env_remove("SLUICE_CONFIG").env("SLUICE_LOG", "info");
    cmd
}

/// `sluice --config sluice.toml ARGS` in `dir`, which must succeed: its
/// stdout.
pub fn sluice_ok(dir: &Path, args: &[&str]) -> String {
    let out = sluice()
        .args(["--config", "sluice.toml"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "sluice {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A gateway running `sluice --config sluice.toml serve` in `dir`, its log
/// appended to `dir/gateway.log`.
pub struct GatewayProcess {
    child: Option<Child>,
    pub dir: PathBuf,
    pub admin_port: u16,
}

impl GatewayProcess {
    pub fn start(dir: &Path, admin_port: u16) -> Self {
        Self::start_with_env(dir, admin_port, &[])
    }

    /// As [`Self::start`], with more environment variables.
    pub fn start_with_env(dir: &Path, admin_port: u16, env: &[(&str, &str)]) -> Self {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("gateway.log"))
            .unwrap();
        let child = sluice()
            .args(["--config", "sluice.toml", "serve"])
            .current_dir(dir)
            .env("APPDB_PASSWORD", "app-pw")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let gw = GatewayProcess {
            child: Some(child),
            dir: dir.to_path_buf(),
            admin_port,
        };
        let ready = wait_until(Duration::from_secs(60), || {
            http_get(admin_port, "/readyz").is_some_and(|(status, _)| status == 200)
        });
        assert!(ready, "gateway did not become ready:\n{}", gw.log());
        gw
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("gateway.log")).unwrap_or_default()
    }

    /// SIGTERM, and wait for a clean exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let status = child.wait().unwrap();
            assert!(status.success(), "unclean exit {status}:\n{}", self.log());
        }
    }

    /// SIGKILL: no chance to flush or checkpoint anything.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn token(&self, subject: &str) -> String {
        let args = ["token", "issue", "--subject", subject, "--group", "agents"];
        sluice_ok(&self.dir, &args).trim().to_string()
    }

    /// One sample of a Prometheus metric with these labels, if exported.
    pub fn metric(&self, name: &str, labels: &str) -> Option<f64> {
        let (_, text) = http_get(self.admin_port, "/metrics")?;
        text.lines()
            .filter(|l| l.starts_with(name) && l.contains(labels))
            .find_map(|l| l.rsplit(' ').next()?.parse().ok())
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// `sluice audit verify` on a config file: (success, stdout, stderr).
pub fn verify(dir: &Path) -> (bool, String, String) {
    let out = sluice()
        .args(["--config", "sluice.toml", "audit", "verify"])
        .current_dir(dir)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Every record of the log in `state_dir`, in order.
pub fn read_log(state_dir: &Path) -> Vec<Record> {
    let mut reader = LogReader::new(Layout::new(state_dir), 1);
    std::iter::from_fn(|| reader.next(u64::MAX).unwrap()).collect()
}

/// A minimal HTTP/1.1 GET: status code and body.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
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

pub fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}
