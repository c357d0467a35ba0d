//! `sluice audit verify`: checks the audit log in `state_dir`.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::audit::keys::PublicKey;
use crate::audit::store::Layout;
use crate::audit::verify::{VerifyError, verify};
use crate::config::Config;

#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// Check the whole hash chain, every checkpoint signature and the signed
    /// head; name the first broken record. Exits non-zero unless the log is
    /// intact.
    Verify {
        /// The trusted public key (base64, as in `<state_dir>/audit/signing.pub`).
        /// Default: the key in the state directory. Pin a copy kept elsewhere
        /// to also detect a state directory whose key was replaced.
        #[arg(long, value_name = "FILE")]
        public_key: Option<PathBuf>,
    },
}

pub fn run(config: &Config, command: AuditCommand) -> anyhow::Result<ExitCode> {
    match command {
        AuditCommand::Verify { public_key } => run_verify(config, public_key.as_deref()),
    }
}

fn run_verify(config: &Config, public_key: Option<&Path>) -> anyhow::Result<ExitCode> {
    let layout = Layout::new(&config.gateway.state_dir);
    if !layout.segments_dir().exists() {
        crate::cmd::say(format_args!(
            "no audit log in {}",
            layout.segments_dir().display()
        ));
        return Ok(ExitCode::FAILURE);
    }
    let key = match public_key {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            PublicKey::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
        }
        None => PublicKey::of_state(&layout.dir)?,
    };
    match verify(&layout, &key) {
        Ok(r) => {
            // writeln, not println: a closed pipe (`| head`) is an error to
            // report, not a panic.
            let mut out = std::io::stdout().lock();
            writeln!(
                out,
                "audit log ok: {} records in {} segment(s) of log {}, {} checkpoint(s) signed by key {}",
                r.records, r.segments, r.log_id, r.checkpoints, r.key_id
            )?;
            writeln!(
                out,
                "  the last checkpoint is record {}; {} record(s) after it are chained but not yet signed",
                r.last_checkpoint, r.unsigned_tail
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Err(e @ VerifyError::Broken { .. }) => {
            crate::cmd::say(format_args!("audit log BROKEN at {e}"));
            Ok(ExitCode::FAILURE)
        }
        Err(e) => {
            crate::cmd::say(format_args!("audit log cannot be verified: {e}"));
            Ok(ExitCode::FAILURE)
        }
    }
}
