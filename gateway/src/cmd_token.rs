//! `sluice token issue`: mint a token with the embedded dev issuer.
//!
//! ```text
//! sluice token issue --subject agent-1 --group agents --ttl 1h
//! ```
//!
//! Only works when the dev issuer is in use (no `[[identity.issuers]]`, not `production`);
//! the key is the one `sluice serve` uses, in `<state_dir>/identity/dev-issuer.key`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;

use crate::identity::{DevIssuer, IdentityConfig, IdentityError};

/// Arguments of `sluice token issue`.
#[derive(Debug, Clone, clap::Args)]
pub struct TokenIssueArgs {
    /// The token's subject (`sub`).
    #[arg(long)]
    pub subject: String,
    /// A group (repeat for several).
    #[arg(long = "group", value_name = "GROUP")]
    pub groups: Vec<String>,
    /// Lifetime, e.g. 30s, 15m, 1h, 7d.
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    pub ttl: Duration,
}

/// Mints the token and returns it (the caller prints it).
pub fn run(
    args: &TokenIssueArgs,
    cfg: &IdentityConfig,
    state_dir: &Path,
) -> Result<String, IdentityError> {
    if !cfg.issuers.is_empty() {
        return Err(IdentityError::Config(
            "[[identity.issuers]] are configured, so the embedded dev issuer is not in use: \
             get tokens from your identity provider"
                .into(),
        ));
    }
    if cfg.production {
        return Err(IdentityError::DevIssuerInProduction);
    }
    let dev = DevIssuer::load_or_create_with(state_dir, &cfg.dev_issuer)?;
    dev.issue(&args.subject, &args.groups, args.ttl)
}

/// Reads `[gateway] state_dir` (default `.sluice`) and `[identity]` from the config file; a
/// missing file at the default path means defaults. A stopgap for the command until the
/// gateway's own config module owns this.
pub fn load_config(path: &Path, explicit: bool) -> anyhow::Result<(IdentityConfig, PathBuf)> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => String::new(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let mut table: toml::Table =
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let state_dir = table
        .get("gateway")
        .and_then(|g| g.get("state_dir"))
        .and_then(toml::Value::as_str)
        .unwrap_or(".sluice")
        .into();
    let identity = match table.remove("identity") {
        Some(value) => value
            .try_into()
            .with_context(|| format!("{}: [identity]", path.display()))?,
        None => IdentityConfig::default(),
    };
    Ok((identity, state_dir))
}
