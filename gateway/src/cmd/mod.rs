//! The `sluice` command line: argument parsing and one module per command.

pub mod audit;
mod check;
mod serve;
pub mod sessions;
pub mod token;

use std::io::Write as _;
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

use crate::config::Config;

#[derive(Debug, Parser)]
#[command(
    name = "sluice",
    version,
    about = "Identity-aware gateway with WebAssembly policy for AI agents"
)]
pub struct Cli {
    /// The configuration file. Without it, ./sluice.toml if present, else the
    /// embedded defaults.
    #[arg(long, short, global = true, env = "SLUICE_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway.
    Serve,
    /// Inspect configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Inspect plugins.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Tokens of the embedded dev issuer.
    #[command(subcommand)]
    Token(TokenCommand),
    /// The tamper-evident audit log.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Recorded sessions: list, replay, export.
    #[command(subcommand)]
    Sessions(sessions::SessionsCommand),
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Print a token for a subject, signed by the embedded dev issuer.
    Issue(token::TokenIssueArgs),
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Parse and validate the configuration file.
    Check,
}

#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Load a component exactly as the gateway would (compile, detect its
    /// world, instantiate in the sandbox, run `init` with its config table)
    /// and report the outcome.
    Check {
        file: PathBuf,
        /// The plugin name whose `[plugins.config.NAME]` and grants apply.
        /// Default: the file name without `.wasm`.
        #[arg(long)]
        name: Option<String>,
    },
}

/// Loads the config named on the command line, or `./sluice.toml`, or the
/// embedded defaults (relative paths then resolve against the working dir).
pub fn load_config(explicit: Option<&Path>) -> anyhow::Result<Config> {
    if let Some(path) = explicit {
        return Ok(Config::load(path)?);
    }
    let default = Path::new("sluice.toml");
    if default.exists() {
        return Ok(Config::load(default)?);
    }
    Ok(Config::parse("", Path::new("."))?)
}

/// A line on standard error. A closed stderr (`… 2>&1 | head`) is not
/// worth a panic: the line is dropped.
pub(crate) fn say(line: std::fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

pub fn run(cli: Cli) -> anyhow::Result<std::process::ExitCode> {
    let serving = matches!(cli.command, Command::Serve);
    match run_command(cli) {
        // A reader that stopped reading (`sluice sessions list | head`) is
        // not an error: end quietly, as `ls | head` does.
        Err(e) if !serving && is_broken_pipe(&e) => Ok(std::process::ExitCode::SUCCESS),
        other => other,
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn run_command(cli: Cli) -> anyhow::Result<std::process::ExitCode> {
    let config = load_config(cli.config.as_deref())?;
    match cli.command {
        Command::Serve => {
            // What `config check` refuses, `serve` refuses before it opens
            // anything, with the same words.
            let errors: Vec<String> = file_errors(&config)
                .into_iter()
                .map(|e| e.message)
                .collect();
            if !errors.is_empty() {
                anyhow::bail!("{}", errors.join("; "));
            }
            serve::run(config)
        }
        Command::Config(ConfigCommand::Check) => {
            // TLS files that are there but unusable are errors: `serve`
            // would refuse to start. Missing ones are warnings, like the
            // secrets and plugin files: they are the running host's, and a
            // check often runs elsewhere (in CI).
            let (missing, errors): (Vec<_>, Vec<_>) =
                file_errors(&config).into_iter().partition(|e| e.missing);
            for e in &errors {
                crate::cmd::say(format_args!("error: {}", e.message));
            }
            for e in &missing {
                crate::cmd::say(format_args!(
                    "warning: {} (serve refuses to start without it)",
                    e.message
                ));
            }
            for p in run_time_problems(&config) {
                crate::cmd::say(format_args!("warning: {p}"));
            }
            match check::plugin_problems(&config) {
                Ok(problems) => {
                    for p in problems {
                        crate::cmd::say(format_args!("warning: {p}"));
                    }
                }
                Err(e) => crate::cmd::say(format_args!(
                    "warning: the plugin files could not be loaded for checking: {e:#}"
                )),
            }
            if !errors.is_empty() {
                return Ok(std::process::ExitCode::FAILURE);
            }
            writeln!(
                std::io::stdout(),
                "configuration ok: {} connection(s), plugin dir {}",
                config.connections.len(),
                config.plugins.dir.display()
            )?;
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Plugin(PluginCommand::Check { file, name }) => check::run(config, &file, name),
        Command::Audit(command) => audit::run(&config, command),
        Command::Sessions(command) => sessions::run(&config, command),
        Command::Token(TokenCommand::Issue(args)) => {
            let token = token::run(&args, &config.identity, &config.gateway.state_dir)?;
            writeln!(std::io::stdout(), "{token}")?;
            Ok(std::process::ExitCode::SUCCESS)
        }
    }
}

/// TLS material the configuration names that cannot be used here: a
/// listener's `tls_cert`/`tls_key` (when that listener is on) and a
/// connection's upstream `ca_file`, each missing, unreadable or holding no
/// usable PEM. `config check` reports them as errors and `serve` refuses
/// to start with them.
pub(crate) fn file_errors(config: &crate::config::Config) -> Vec<FileError> {
    use crate::config::ConnectionKind;
    use crate::tls::{self, TlsFiles};
    let mut errors = Vec::new();
    let readable = |errors: &mut Vec<FileError>, what: &str, path: &Path| -> bool {
        let (message, missing) = match std::fs::File::open(path).and_then(|f| f.metadata()) {
            Ok(meta) if meta.is_dir() => {
                (format!("{what}: {} is a directory", path.display()), false)
            }
            Ok(_) => return true,
            Err(e) => (
                format!("{what}: cannot read {}: {e}", path.display()),
                e.kind() == std::io::ErrorKind::NotFound,
            ),
        };
        errors.push(FileError { message, missing });
        false
    };
    let listeners = [
        (
            "postgres",
            config.listen.postgres.is_some(),
            &config.postgres.tls_cert,
            &config.postgres.tls_key,
        ),
        (
            "http",
            config.listen.http.is_some(),
            &config.http.tls_cert,
            &config.http.tls_key,
        ),
    ];
    for (section, listening, cert, key) in listeners {
        let (true, Some(cert), Some(key)) = (listening, cert, key) else {
            continue;
        };
        let cert_ok = readable(&mut errors, &format!("[{section}] tls_cert"), cert);
        let key_ok = readable(&mut errors, &format!("[{section}] tls_key"), key);
        if cert_ok && key_ok {
            let files = TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            };
            // Configured files are read, never generated: the state
            // directory is not touched.
            if let Err(e) = tls::server_config(Some(&files), &config.gateway.state_dir) {
                errors.push(FileError::unusable(format!(
                    "[{section}] tls_cert/tls_key: {e}"
                )));
            }
        }
    }
    for c in &config.connections {
        let ca_file = match c.kind {
            ConnectionKind::Postgres => c.postgres().ok().and_then(|pg| pg.ca_file),
            ConnectionKind::Http => c.http().ok().and_then(|http| http.ca_file),
            ConnectionKind::Ssh => None,
        };
        let Some(ca_file) = ca_file else { continue };
        let what = format!("connection {:?}: ca_file", c.name);
        if readable(&mut errors, &what, &ca_file)
            && let Err(e) = tls::client_roots(Some(&ca_file))
        {
            errors.push(FileError::unusable(format!("{what}: {e}")));
        }
    }
    errors
}

/// A TLS or CA file the configuration names that cannot be used.
pub(crate) struct FileError {
    pub(crate) message: String,
    /// Not there at all (rather than there and unusable).
    pub(crate) missing: bool,
}

impl FileError {
    fn unusable(message: String) -> Self {
        Self {
            message,
            missing: false,
        }
    }
}

/// Every plugin name the configuration runs: the connections' plugins and
/// the audit sinks, each once, in order.
pub(crate) fn listed_plugins(config: &crate::config::Config) -> std::collections::BTreeSet<&str> {
    config
        .connections
        .iter()
        .flat_map(|c| c.plugins.iter())
        .chain(config.audit.sinks.iter())
        .map(String::as_str)
        .collect()
}

/// What a configuration that parses may still get wrong where it runs:
/// secrets that cannot be read here, plugins with no file, connections no
/// listener serves. `config check` and `serve` warn of them.
pub(crate) fn run_time_problems(config: &crate::config::Config) -> Vec<String> {
    use crate::config::ConnectionKind;
    let mut problems = Vec::new();
    let mut secret = |conn: &str, env: Option<&str>, file: Option<&std::path::Path>| {
        if env.is_some() && file.is_some() {
            problems.push(format!(
                "connection {conn:?}: both an environment variable and a file name its secret; \
                 the variable is used, give only one"
            ));
        }
        if let Err(e) = crate::config::read_secret(env, file) {
            problems.push(format!("connection {conn:?}: {e}"));
        }
    };
    for c in &config.connections {
        match c.kind {
            ConnectionKind::Postgres => {
                if let Ok(pg) = c.postgres() {
                    secret(
                        &c.name,
                        pg.password_env.as_deref(),
                        pg.password_file.as_deref(),
                    );
                }
            }
            ConnectionKind::Http => {
                if let Ok(http) = c.http() {
                    secret(
                        &c.name,
                        http.credential_env.as_deref(),
                        http.credential_file.as_deref(),
                    );
                }
            }
            _ => {}
        }
    }
    problems.extend(crate::identity::offline_key_problems(&config.identity));
    for c in &config.connections {
        if let Ok(p) = c.policy()
            && !p.allow_all
            && p.allow_groups.is_empty()
            && p.allow_subjects.is_empty()
        {
            problems.push(format!(
                "connection {:?}: no allow_groups, allow_subjects or allow_all, so every \
                 agent is refused",
                c.name
            ));
        }
    }
    // A `[plugins.config.X]` or `[plugins.grants.X]` that names no plugin is
    // most likely a typo, and the plugin it meant runs with its defaults.
    let listed = listed_plugins(config);
    let sections = (config.plugins.config.keys().map(|n| (n, "config")))
        .chain(config.plugins.grants.keys().map(|n| (n, "grants")));
    for (name, section) in sections {
        let file = config.plugins.dir.join(format!("{name}.wasm"));
        if !listed.contains(name.as_str()) && !file.is_file() {
            problems.push(format!(
                "[plugins.{section}.{name}] names no plugin: no connection lists {name:?} and \
                 there is no {}",
                file.display()
            ));
        }
    }
    for (name, grant) in &config.plugins.grants {
        for dir in grant.dirs.iter().filter(|d| !d.host.is_dir()) {
            problems.push(format!(
                "[plugins.grants.{name}]: directory {} does not exist, so the plugin cannot \
                 start",
                dir.host.display()
            ));
        }
    }
    for c in &config.connections {
        let listening = match c.kind {
            ConnectionKind::Postgres => config.listen.postgres.is_some(),
            ConnectionKind::Http => config.listen.http.is_some(),
            _ => true,
        };
        if !listening {
            problems.push(format!(
                "connection {:?}: no [listen] address serves its protocol",
                c.name
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for plugin in &c.plugins {
            if !seen.insert(plugin) {
                problems.push(format!(
                    "connection {:?}: plugin {plugin:?} is listed twice",
                    c.name
                ));
            }
            let file = config.plugins.dir.join(format!("{plugin}.wasm"));
            if !file.is_file() {
                problems.push(format!(
                    "connection {:?}: there is no {} for plugin {plugin:?}, so its requests are refused",
                    c.name,
                    file.display()
                ));
            }
        }
    }
    problems
}
