//! `sluice sessions list|replay|export`: the recordings in `state_dir`.

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use crate::config::Config;
use crate::recording::entry::Entry;
use crate::recording::read::{self, Filter};
use crate::recording::{har, sessions_dir, transcript};

#[derive(Debug, clap::Subcommand)]
pub enum SessionsCommand {
    /// One line per recorded session, oldest first.
    List {
        #[arg(long)]
        subject: Option<String>,
        #[arg(long)]
        connection: Option<String>,
        /// Sessions started since a time (RFC 3339) or within an age (`2h`, `7days`).
        #[arg(long)]
        since: Option<String>,
        /// JSON, one session per line.
        #[arg(long)]
        json: bool,
    },
    /// A session's transcript: who, what, verdicts, results, in order.
    Replay {
        /// The session id (or a unique prefix of it).
        id: String,
        /// Keep printing entries as a live session writes them, until it ends.
        #[arg(long)]
        follow: bool,
    },
    /// A session's recording as JSON lines or (HTTP sessions) HAR 1.2.
    Export {
        id: String,
        #[arg(long, value_enum, default_value = "jsonl")]
        format: ExportFormat,
        /// Shorthand for `--format har`.
        #[arg(long)]
        har: bool,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ExportFormat {
    Jsonl,
    Har,
}

pub fn run(config: &Config, command: SessionsCommand) -> anyhow::Result<ExitCode> {
    let dir = sessions_dir(&config.gateway.state_dir);
    match command {
        SessionsCommand::List {
            subject,
            connection,
            since,
            json,
        } => {
            let since_ms = since
                .map(|s| read::parse_since(&s))
                .transpose()
                .map_err(|e| anyhow::anyhow!("--since: {e}"))?;
            let filter = Filter {
                subject,
                connection,
                since_ms,
            };
            list(&dir, &filter, json)
        }
        SessionsCommand::Replay { id, follow } => replay(&dir, &id, follow),
        SessionsCommand::Export { id, format, har } => {
            let format = if har { ExportFormat::Har } else { format };
            export(&dir, &id, format)
        }
    }
}

fn list(dir: &Path, filter: &Filter, json: bool) -> anyhow::Result<ExitCode> {
    let sessions = read::list(dir, filter)?;
    let mut out = std::io::stdout().lock();
    if json {
        for s in &sessions {
            writeln!(out, "{}", serde_json::to_string(s)?)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    if sessions.is_empty() {
        crate::cmd::say(format_args!("no recorded sessions in {}", dir.display()));
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(
        out,
        "{:<32}  {:<8}  {:<16}  {:<20}  {:<24}  {:>9}  {:>7}  ENDING",
        "ID", "PROTOCOL", "CONNECTION", "SUBJECT", "STARTED", "DURATION", "REQS"
    )?;
    for s in &sessions {
        let duration = s.ended_ms.map_or("live".to_string(), |e| {
            format!("{:.1}s", e.saturating_sub(s.started_ms) as f64 / 1000.0)
        });
        let requests = if s.protocol == "http" {
            s.exchanges.to_string()
        } else {
            format!("{}/{}", s.statements_allowed, s.statements_refused)
        };
        writeln!(
            out,
            "{:<32}  {:<8}  {:<16}  {:<20}  {:<24}  {:>9}  {:>7}  {}",
            s.id,
            s.protocol,
            s.connection,
            s.subject,
            transcript::time(s.started_ms),
            duration,
            requests,
            s.ending.as_deref().unwrap_or("-")
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

fn replay(dir: &Path, id: &str, follow: bool) -> anyhow::Result<ExitCode> {
    let path = read::resolve(dir, id)?;
    if !follow {
        let recorded = read::entries(&path)?;
        let mut out = std::io::stdout().lock();
        write!(out, "{}", transcript::render(&recorded.entries))?;
        if recorded.torn {
            writeln!(
                out,
                "(the last entry is incomplete: the session is still being written)"
            )?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    // Follow: print entries as they are appended, in file order.
    let mut printed = 0usize;
    let mut started = 0u64;
    loop {
        let recorded = read::entries(&path)?;
        let mut ended = false;
        for e in recorded.entries.iter().skip(printed) {
            if let Entry::Session(h) = e {
                started = h.started_ms;
            }
            ended |= matches!(e, Entry::End(_));
            writeln!(std::io::stdout(), "{}", transcript::line(e, started))?;
        }
        printed = recorded.entries.len();
        std::io::stdout().flush()?;
        if ended {
            return Ok(ExitCode::SUCCESS);
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn export(dir: &Path, id: &str, format: ExportFormat) -> anyhow::Result<ExitCode> {
    let path = read::resolve(dir, id)?;
    let recorded = read::entries(&path)?;
    let mut out = std::io::stdout().lock();
    match format {
        ExportFormat::Jsonl => {
            for e in &recorded.entries {
                writeln!(out, "{}", serde_json::to_string(e)?)?;
            }
        }
        ExportFormat::Har => {
            let is_http = recorded
                .entries
                .iter()
                .any(|e| matches!(e, Entry::Session(h) if h.protocol == "http"));
            if !is_http {
                anyhow::bail!("session {id} is not an HTTP session: HAR holds HTTP exchanges only");
            }
            serde_json::to_writer_pretty(&mut out, &har::export(&recorded.entries))?;
            writeln!(out)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
