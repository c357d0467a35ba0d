//! `sluice plugin check FILE`: the same load path as the gateway's, reported.

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

use crate::config::Config;
use crate::plugins::{PluginHost, plugin_name};

pub fn run(config: Config, file: &Path, name: Option<String>) -> anyhow::Result<ExitCode> {
    let name = match name.or_else(|| plugin_name(file)) {
        Some(n) => n,
        None => anyhow::bail!(
            "{}: cannot derive a plugin name (expected NAME.wasm with NAME of [a-z0-9_-]); pass --name",
            file.display()
        ),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let host = PluginHost::new(config.plugins.clone())?;
        match host.load_file(&name, file).await {
            Ok(plugin) => {
                let mut out = std::io::stdout().lock();
                writeln!(out, "{}: ok", file.display())?;
                writeln!(out, "  plugin:  {name}")?;
                writeln!(out, "  world:   {}", plugin.world())?;
                writeln!(out, "  sha256:  {}", plugin.digest())?;
                writeln!(out, "  config:  {}", plugin.config_json())?;
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("{}: refused: {e}", file.display());
                Ok(ExitCode::FAILURE)
            }
        }
    })
}
