//! `sluice token issue`: mint a token with the embedded dev issuer.
//!
//! ```text
//! sluice token issue --subject agent-1 --group agents --ttl 1h
//! ```
//!
//! Only works when the dev issuer is in use (no `[[identity.issuers]]`, not `production`);
//! the key is the one `sluice serve` uses, in `<state_dir>/identity/dev-issuer.key`.

use std::path::Path;
use std::time::Duration;

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
