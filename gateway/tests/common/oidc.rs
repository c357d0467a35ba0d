//! A real OpenID Provider: `tests/oidc-provider/provider.mjs` (the `oidc-provider` npm
//! package) run with node on 127.0.0.1. `npm ci` runs first if its node_modules is missing.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

pub struct OidcProvider {
    pub issuer: String,
    pub port: u16,
    /// The kids of this start's key set.
    pub kids: Vec<String>,
    child: Child,
}

fn provider_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/oidc-provider")
}

/// Runs `npm ci` once per test process when node_modules is missing.
fn ensure_npm_install() {
    static DONE: Mutex<bool> = Mutex::new(false);
    let mut done = DONE.lock().unwrap_or_else(|e| e.into_inner());
    if *done {
        return;
    }
    let dir = provider_dir();
    if !dir.join("node_modules/oidc-provider/package.json").exists() {
        let status = std::process::Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&dir)
            .status()
            .expect("npm must be installed to run the OIDC provider tests");
        assert!(status.success(), "npm ci in {} failed", dir.display());
    }
    *done = true;
}

impl OidcProvider {
    /// Starts the provider on `port` (0 = any free port) with a fresh key set tagged
    /// `generation`, and waits until discovery answers.
    pub async fn start(port: u16, generation: u32) -> OidcProvider {
        ensure_npm_install();
        let log =
            std::env::temp_dir().join(format!("sluice-oidc-provider-{}.log", std::process::id()));
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let mut child = Command::new("node")
            .arg("provider.mjs")
            .current_dir(provider_dir())
            .env("PORT", port.to_string())
            .env("KEY_GENERATION", generation.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .expect("node must be installed to run the OIDC provider tests");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("provider did not start in 30s; see {}", log.display()))
            .unwrap()
            .unwrap_or_else(|| panic!("provider exited; see {}", log.display()));
        let info: Value = serde_json::from_str(&line).unwrap();
        let provider = OidcProvider {
            issuer: info["issuer"].as_str().unwrap().to_owned(),
            port: info["port"].as_u64().unwrap() as u16,
            kids: info["kids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k.as_str().unwrap().to_owned())
                .collect(),
            child,
        };
        provider.wait_for_discovery().await;
        provider
    }

    async fn wait_for_discovery(&self) {
        let url = format!("{}/.well-known/openid-configuration", self.issuer);
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        for _ in 0..100 {
            if let Ok(r) = client.get(&url).send().await
                && r.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("discovery at {url} never answered");
    }

    /// A client_credentials access token (a JWT) for `client_id`, for `resource` (one of
    /// urn:sluice:rs256 / es256 / eddsa; None = the default, RS256).
    pub async fn token(&self, client_id: &str, secret: &str, resource: Option<&str>) -> String {
        let mut body =
            format!("grant_type=client_credentials&client_id={client_id}&client_secret={secret}");
        if let Some(r) = resource {
            body.push_str(&format!("&resource={r}"));
        }
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let response = client
            .post(format!("{}/token", self.issuer))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let json: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
        assert!(status.is_success(), "token endpoint: {status} {json}");
        json["access_token"].as_str().unwrap().to_owned()
    }

    /// Stops the provider and waits for it to exit.
    pub async fn stop(mut self) -> u16 {
        let _ = self.child.kill().await;
        self.port
    }
}
