//! `sluice.toml`: the gateway's one configuration file.
//!
//! Every table rejects unknown keys so that a typo is an error at startup,
//! not a silently ignored setting. Each field documents its default and
//! whether a running gateway picks up a change without restart.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::audit::AuditConfig;
use crate::http::config::HTTP_KEYS;
pub use crate::http::config::{CredentialKind, HttpListenerConfig, HttpUpstreamConfig};
use crate::identity::IdentityConfig;
pub use crate::plugins::HttpDestination;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    // Not named `source`: the message already carries the cause, and an
    // error source would print it a second time (`error: {e:#}`).
    #[error("cannot read {path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub gateway: GatewayConfig,
    #[serde(default)]
    pub listen: ListenConfig,
    #[serde(default)]
    pub identity: IdentityConfig,
    #[serde(default)]
    pub postgres: PostgresListenerConfig,
    #[serde(default)]
    pub http: HttpListenerConfig,
    #[serde(default)]
    pub plugins: PluginsConfig,
    #[serde(default)]
    pub connections: Vec<ConnectionConfig>,
    #[serde(default)]
    pub audit: AuditConfig,
    #[serde(default)]
    pub recording: crate::recording::RecordingConfig,
    /// The file this configuration was read from, for the audit trail.
    #[serde(skip)]
    pub source: Option<ConfigSource>,
}

/// Where a configuration came from.
#[derive(Debug, Clone)]
pub struct ConfigSource {
    pub path: PathBuf,
    /// SHA-256 of the file, hex.
    pub sha256: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// Where the embedded state lives (dev issuer keys, recordings, audit log).
    /// Default `.sluice`, relative to the config file. Restart to change.
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    /// Threads that run the data path's sessions, each with its own
    /// runtime (like nginx's `worker_processes` or Envoy's `--concurrency`).
    /// Default 0: one per core the process may use. Fewer leave cores to
    /// what shares the machine. Restart to change.
    #[serde(default)]
    pub session_workers: usize,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            state_dir: default_state_dir(),
            session_workers: 0,
        }
    }
}

fn default_state_dir() -> PathBuf {
    PathBuf::from(".sluice")
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenConfig {
    /// PostgreSQL listener, e.g. `127.0.0.1:6432`. None: not listening.
    pub postgres: Option<SocketAddr>,
    /// HTTP listener, e.g. `127.0.0.1:8443`. None: not listening.
    pub http: Option<SocketAddr>,
    /// Admin listener (`/healthz`, `/readyz`, `/metrics`, `/api/v1/...`).
    /// None: not listening.
    pub admin: Option<SocketAddr>,
}

/// `[postgres]`: the agent-facing PostgreSQL listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresListenerConfig {
    /// PEM certificate chain and key for the listener's TLS. Default: a
    /// self-signed pair generated into `<state_dir>/tls/`.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Accept tokens over plaintext from loopback clients. Default false:
    /// a token is a bearer credential and travels over TLS only.
    #[serde(default)]
    pub allow_plaintext_loopback: bool,
    /// A client has this long to finish TLS, its startup packet and
    /// authentication, or it is disconnected (PostgreSQL's
    /// `authentication_timeout`): connections that never log in do not
    /// hold sockets.
    #[serde(default = "default_startup_timeout_ms")]
    pub startup_timeout_ms: u64,
    /// Longest statement text (a Query's or a Parse's) the gateway analyses;
    /// longer ones are refused with SQLSTATE 54000 (see
    /// [`crate::sql::DEFAULT_MAX_STATEMENT_BYTES`]).
    #[serde(default = "default_max_statement_bytes")]
    pub max_statement_bytes: usize,
    /// End a session (FATAL 28000) when the token it logged in with expires:
    /// at its `exp` plus `[identity] leeway_secs`, the skew login allowed it.
    /// Off by default: a session is authorised at login, as with other
    /// token-as-password databases, and outlives a short-lived token.
    #[serde(default)]
    pub end_sessions_at_token_expiry: bool,
}

impl Default for PostgresListenerConfig {
    fn default() -> Self {
        Self {
            tls_cert: None,
            tls_key: None,
            allow_plaintext_loopback: false,
            startup_timeout_ms: default_startup_timeout_ms(),
            max_statement_bytes: default_max_statement_bytes(),
            end_sessions_at_token_expiry: false,
        }
    }
}

/// A connection's secret: the environment variable when one is named (it
/// wins over a file), else the first line of the file; `Ok(None)` when
/// neither is named.
pub fn read_secret(env: Option<&str>, file: Option<&Path>) -> Result<Option<String>, String> {
    match (env, file) {
        (Some(var), _) => std::env::var(var)
            .map(Some)
            .map_err(|_| format!("environment variable {var} is not set")),
        (None, Some(file)) => std::fs::read_to_string(file)
            .map(|text| Some(text.lines().next().unwrap_or_default().to_string()))
            .map_err(|e| format!("{}: {e}", file.display())),
        (None, None) => Ok(None),
    }
}

fn default_startup_timeout_ms() -> u64 {
    60_000
}

fn default_max_statement_bytes() -> usize {
    crate::sql::DEFAULT_MAX_STATEMENT_BYTES
}

/// The upstream keys of a `kind = "postgres"` connection.
#[derive(Debug, Clone, Deserialize)]
pub struct PostgresUpstreamConfig {
    /// The real database name.
    pub database: String,
    /// The role the gateway logs in as.
    pub user: String,
    /// Environment variable holding the password.
    pub password_env: Option<String>,
    /// File holding the password (first line).
    pub password_file: Option<PathBuf>,
    /// `disable` (default) or `verify-full`.
    #[serde(default = "default_upstream_tls")]
    pub tls: String,
    pub ca_file: Option<PathBuf>,
    /// Host name checked against the certificate; default: the upstream host.
    pub server_name: Option<String>,
}

fn default_upstream_tls() -> String {
    "disable".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginsConfig {
    /// Directory watched for `NAME.wasm` components. Default `plugins`,
    /// relative to the config file. Files in it are hot-reloaded.
    #[serde(default = "default_plugin_dir")]
    pub dir: PathBuf,
    /// Deadline of one plugin call, in milliseconds: its own time, not the
    /// time it waits for its worker after handing it back. Default 50.
    #[serde(default = "default_deadline_ms")]
    pub call_deadline_ms: u64,
    /// Linear memory cap of one plugin instance, in MiB. Default 64.
    #[serde(default = "default_memory_mib")]
    pub memory_limit_mib: u64,
    /// Keep initialised instances warm between calls (default true). With
    /// false, every call instantiates afresh from the cached `InstancePre`
    /// and runs `init`: full isolation between requests, at a cost per call.
    #[serde(default = "default_true")]
    pub reuse_instances: bool,
    /// Deadline of one `deliver` call of an audit sink, in milliseconds.
    /// Default 5000: sinks write files or reach endpoints, off the data
    /// path, so they get longer than guardrails and maskers.
    #[serde(default = "default_sink_deadline_ms")]
    pub sink_call_deadline_ms: u64,
    /// Idle warm instances kept per plugin. Default 16.
    #[serde(default = "default_max_idle")]
    pub max_idle_instances: usize,
    /// Upper bound on live plugin instances across all plugins (pooling
    /// allocator slots). Default 1000. Restart to change.
    #[serde(default = "default_max_instances")]
    pub max_instances: u32,
    /// Per-plugin configuration, handed to the plugin's `init` as JSON.
    #[serde(default)]
    pub config: BTreeMap<String, toml::Table>,
    /// Per-plugin capabilities; everything not granted is denied.
    #[serde(default)]
    pub grants: BTreeMap<String, PluginGrants>,
}

impl Default for PluginsConfig {
    fn default() -> Self {
        Self {
            dir: default_plugin_dir(),
            call_deadline_ms: default_deadline_ms(),
            memory_limit_mib: default_memory_mib(),
            reuse_instances: true,
            sink_call_deadline_ms: default_sink_deadline_ms(),
            max_idle_instances: default_max_idle(),
            max_instances: default_max_instances(),
            config: BTreeMap::new(),
            grants: BTreeMap::new(),
        }
    }
}

fn default_plugin_dir() -> PathBuf {
    PathBuf::from("plugins")
}
fn default_deadline_ms() -> u64 {
    50
}
fn default_sink_deadline_ms() -> u64 {
    5000
}
fn default_memory_mib() -> u64 {
    64
}
fn default_true() -> bool {
    true
}
fn default_max_idle() -> usize {
    16
}
fn default_max_instances() -> u32 {
    1000
}

/// Capabilities granted to one plugin, on top of logging, metrics and a clock.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginGrants {
    /// Host directories made visible to the plugin (WASI preopens).
    #[serde(default)]
    pub dirs: Vec<DirGrant>,
    /// Names of gateway environment variables the plugin may read.
    #[serde(default)]
    pub env: Vec<String>,
    /// Outbound HTTP destinations (`wasi:http`): URLs whose scheme, host,
    /// port and path prefix a request must match. Default none.
    #[serde(default)]
    pub http: Vec<HttpDestination>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirGrant {
    /// Directory on the gateway host (relative to the config file).
    pub host: PathBuf,
    /// Path under which the plugin sees it, e.g. `/audit`.
    pub guest: String,
    /// Whether the plugin may create and write files there. Default false.
    #[serde(default)]
    pub writable: bool,
}

// No `deny_unknown_fields` here: serde cannot combine it with `flatten`; the
// protocol and identity layers check the keys they own.
#[derive(Debug, Clone, Deserialize)]
pub struct ConnectionConfig {
    /// Name agents use: the PostgreSQL database name, the first HTTP path segment.
    pub name: String,
    pub kind: ConnectionKind,
    /// The real resource: `host:port` for PostgreSQL, a base URL for HTTP.
    pub upstream: String,
    /// Plugins run for this connection, in order (guardrails on requests,
    /// maskers on results, audit sinks on events).
    #[serde(default)]
    pub plugins: Vec<String>,
    /// Protocol- and identity-specific keys (database, user, password_env,
    /// allow_groups, …) are read by the layers that own them.
    #[serde(flatten)]
    pub extra: toml::Table,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConnectionKind {
    Postgres,
    Http,
    Ssh,
}

impl ConnectionConfig {
    /// The connection's access policy (`allow_groups`, `allow_subjects`,
    /// `deny_groups`, `deny_subjects`, `allow_all`).
    pub fn policy(&self) -> Result<crate::identity::ConnectionPolicy, ConfigError> {
        self.keys(POLICY_KEYS)
    }

    /// The upstream settings of a PostgreSQL connection.
    pub fn postgres(&self) -> Result<PostgresUpstreamConfig, ConfigError> {
        let pg: PostgresUpstreamConfig = self.keys(POSTGRES_KEYS)?;
        if pg.tls != "disable" && pg.tls != "verify-full" {
            return Err(ConfigError::Invalid(format!(
                "connection {:?}: tls must be \"disable\" or \"verify-full\"",
                self.name
            )));
        }
        Ok(pg)
    }

    /// Deserialises the subset of this connection's keys one layer owns.
    pub(crate) fn keys<T: serde::de::DeserializeOwned>(
        &self,
        keys: &[&str],
    ) -> Result<T, ConfigError> {
        let table: toml::Table = self
            .extra
            .iter()
            .filter(|(k, _)| keys.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        table.try_into().map_err(|e: toml::de::Error| {
            ConfigError::Invalid(format!("connection {:?}: {}", self.name, e.message()))
        })
    }

    /// Keys no layer of this kind uses: a typo must not pass silently.
    fn unknown_keys(&self) -> Vec<&str> {
        let kind_keys = match self.kind {
            ConnectionKind::Postgres => POSTGRES_KEYS,
            ConnectionKind::Http => HTTP_KEYS,
            ConnectionKind::Ssh => &[],
        };
        self.extra
            .keys()
            .map(String::as_str)
            .filter(|k| !POLICY_KEYS.contains(k) && !kind_keys.contains(k))
            .collect()
    }
}

const POLICY_KEYS: &[&str] = &[
    "allow_all",
    "allow_groups",
    "allow_subjects",
    "deny_groups",
    "deny_subjects",
];
const POSTGRES_KEYS: &[&str] = &[
    "database",
    "user",
    "password_env",
    "password_file",
    "tls",
    "ca_file",
    "server_name",
];

impl Config {
    /// Reads and validates a config file; relative paths in it are resolved
    /// against the file's directory.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
            path: path.to_path_buf(),
            error,
        })?;
        let base = path.parent().unwrap_or_else(|| Path::new("."));
        let mut config = Self::parse(&text, base).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: path.to_path_buf(),
                message,
            },
            other => other,
        })?;
        config.source = Some(ConfigSource {
            path: path.to_path_buf(),
            sha256: crate::audit::event::hex(&<sha2::Sha256 as sha2::Digest>::digest(
                text.as_bytes(),
            )),
        });
        Ok(config)
    }

    pub fn parse(text: &str, base: &Path) -> Result<Self, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: PathBuf::new(),
            message: e.to_string(),
        })?;
        config.resolve_paths(base);
        config.derive_dev_issuer_url();
        config.validate()?;
        Ok(config)
    }

    fn resolve_paths(&mut self, base: &Path) {
        let resolve = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        resolve(&mut self.gateway.state_dir);
        resolve(&mut self.plugins.dir);
        for p in [
            &mut self.postgres.tls_cert,
            &mut self.postgres.tls_key,
            &mut self.http.tls_cert,
            &mut self.http.tls_key,
        ]
        .into_iter()
        .flatten()
        {
            resolve(p);
        }
        for c in &mut self.connections {
            for key in ["ca_file", "password_file", "credential_file"] {
                if let Some(toml::Value::String(p)) = c.extra.get_mut(key)
                    && Path::new(p.as_str()).is_relative()
                {
                    *p = base.join(&*p).display().to_string();
                }
            }
        }
        for grant in self.plugins.grants.values_mut() {
            for dir in &mut grant.dirs {
                resolve(&mut dir.host);
            }
        }
    }

    /// The dev issuer's `iss` is where its JWKS is served: the admin
    /// listener. Unless configured explicitly, follow `listen.admin`.
    fn derive_dev_issuer_url(&mut self) {
        let default = crate::identity::DevIssuerConfig::default().issuer;
        if let (Some(admin), true) = (
            self.listen.admin,
            self.identity.dev_issuer.issuer == default,
        ) {
            self.identity.dev_issuer.issuer = format!("http://{admin}");
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.identity
            .validate()
            .map_err(|e| ConfigError::Invalid(format!("[identity]: {e}")))?;
        self.audit
            .validate()
            .map_err(|e| ConfigError::Invalid(format!("[audit]: {e}")))?;
        self.recording
            .validate()
            .map_err(|e| ConfigError::Invalid(format!("[recording]: {e}")))?;
        let pg = &self.postgres;
        if !(1_000..=600_000).contains(&pg.startup_timeout_ms) {
            return Err(ConfigError::Invalid(
                "postgres.startup_timeout_ms must be between 1000 and 600000".into(),
            ));
        }
        // Longer texts could not arrive anyway: a message is at most
        // DEFAULT_MAX_FRAME bytes.
        let most = crate::postgres::frame::DEFAULT_MAX_FRAME;
        if pg.max_statement_bytes == 0 || pg.max_statement_bytes > most {
            return Err(ConfigError::Invalid(format!(
                "postgres.max_statement_bytes must be between 1 and {most}"
            )));
        }
        let p = &self.plugins;
        if p.call_deadline_ms == 0 || p.call_deadline_ms > 60_000 {
            return Err(ConfigError::Invalid(
                "plugins.call_deadline_ms must be between 1 and 60000".into(),
            ));
        }
        if p.sink_call_deadline_ms == 0 || p.sink_call_deadline_ms > 600_000 {
            return Err(ConfigError::Invalid(
                "plugins.sink_call_deadline_ms must be between 1 and 600000".into(),
            ));
        }
        if p.memory_limit_mib == 0 || p.memory_limit_mib > 4096 {
            return Err(ConfigError::Invalid(
                "plugins.memory_limit_mib must be between 1 and 4096".into(),
            ));
        }
        if p.max_instances == 0 {
            return Err(ConfigError::Invalid(
                "plugins.max_instances must be at least 1".into(),
            ));
        }
        for (name, grant) in &p.grants {
            for dir in &grant.dirs {
                if !dir.guest.starts_with('/') {
                    return Err(ConfigError::Invalid(format!(
                        "plugins.grants.{name}: guest path {:?} must be absolute",
                        dir.guest
                    )));
                }
            }
            let mut names = std::collections::HashSet::new();
            for var in &grant.env {
                if var.is_empty() || var.contains(['=', '\0']) {
                    return Err(ConfigError::Invalid(format!(
                        "plugins.grants.{name}: {var:?} is not an environment variable name \
                         (env lists names, not values or patterns)"
                    )));
                }
                if !names.insert(var) {
                    return Err(ConfigError::Invalid(format!(
                        "plugins.grants.{name}: environment variable {var:?} is listed twice"
                    )));
                }
            }
        }
        let mut seen = std::collections::HashSet::new();
        for c in &self.connections {
            if !seen.insert(c.name.as_str()) {
                return Err(ConfigError::Invalid(format!(
                    "connection {:?} is defined twice",
                    c.name
                )));
            }
            if c.name.is_empty() || c.name.contains('/') {
                return Err(ConfigError::Invalid(format!(
                    "connection name {:?} must be non-empty and contain no '/'",
                    c.name
                )));
            }
            // Parsed so that the error can say so, rather than "unknown
            // variant": no listener serves SSH yet.
            if c.kind == ConnectionKind::Ssh {
                return Err(ConfigError::Invalid(format!(
                    "connection {:?}: kind = \"ssh\" is not supported yet (SSH connections \
                     are planned); kind must be \"postgres\" or \"http\"",
                    c.name
                )));
            }
            c.policy()?;
            let unknown = c.unknown_keys();
            if !unknown.is_empty() {
                return Err(ConfigError::Invalid(format!(
                    "connection {:?}: unknown key(s) {}",
                    c.name,
                    unknown.join(", ")
                )));
            }
            match c.kind {
                ConnectionKind::Postgres => {
                    c.postgres()?;
                }
                ConnectionKind::Http => {
                    c.http()?;
                }
                ConnectionKind::Ssh => {}
            }
        }
        for (section, cert, key) in [
            ("postgres", &pg.tls_cert, &pg.tls_key),
            ("http", &self.http.tls_cert, &self.http.tls_key),
        ] {
            if cert.is_some() != key.is_some() {
                return Err(ConfigError::Invalid(format!(
                    "[{section}] needs both tls_cert and tls_key, or neither"
                )));
            }
        }
        let h = &self.http;
        if h.max_header_bytes < 8192 {
            return Err(ConfigError::Invalid(
                "http.max_header_bytes must be at least 8192".into(),
            ));
        }
        if h.header_timeout_ms == 0 || h.body_timeout_ms == 0 || h.idle_timeout_secs == 0 {
            return Err(ConfigError::Invalid(
                "http timeouts must be positive".into(),
            ));
        }
        if h.max_connections == 0 {
            return Err(ConfigError::Invalid(
                "http.max_connections must be at least 1".into(),
            ));
        }
        Ok(())
    }

    /// The JSON handed to a plugin's `init`: its `[plugins.config.NAME]`
    /// table, or `{}`.
    pub fn plugin_config_json(&self, name: &str) -> String {
        self.plugins.plugin_config_json(name)
    }
}

impl PluginsConfig {
    pub fn plugin_config_json(&self, name: &str) -> String {
        match self.config.get(name) {
            // A TOML table always converts to JSON: both are trees of maps,
            // arrays and scalars (datetimes become strings).
            Some(table) => serde_json::to_string(table).unwrap_or_else(|_| "{}".into()),
            None => "{}".into(),
        }
    }
}

#[cfg(test)]
mod tests;
