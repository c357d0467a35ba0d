use std::path::PathBuf;

use clap::{Parser, Subcommand};
use sluice::cmd_token::{self, TokenIssueArgs};

/// Identity-aware gateway with WebAssembly policy for AI agents.
#[derive(Debug, Parser)]
#[command(name = "sluice", version)]
struct Cli {
    /// The configuration file.
    #[arg(long, short, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Tokens of the embedded dev issuer.
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Print a token for a subject.
    Issue(TokenIssueArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let explicit = cli.config.is_some();
    let config = cli.config.unwrap_or_else(|| PathBuf::from("sluice.toml"));
    match cli.command {
        Command::Token(TokenCommand::Issue(args)) => {
            let (identity, state_dir) = cmd_token::load_config(&config, explicit)?;
            println!("{}", cmd_token::run(&args, &identity, &state_dir)?);
        }
    }
    Ok(())
}
