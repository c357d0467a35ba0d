//! `sluice plugin check FILE`: the same load path as the gateway's, reported;
//! and the plugins `config check` loads the same way.

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
                crate::cmd::say(format_args!("{}: refused: {e}", file.display()));
                Ok(ExitCode::FAILURE)
            }
        }
    })
}

/// Loads every plugin file a connection lists, with its configuration and
/// grants, as the gateway would: what it would refuse (a config its `init`
/// rejects, a grant it cannot give). Files that are missing are reported by
/// [`super::run_time_problems`].
pub fn plugin_problems(config: &Config) -> anyhow::Result<Vec<String>> {
    let files: Vec<(&str, std::path::PathBuf)> = super::listed_plugins(config)
        .into_iter()
        .map(|n| (n, config.plugins.dir.join(format!("{n}.wasm"))))
        .filter(|(_, f)| f.is_file())
        .collect();
    if files.is_empty() {
        return Ok(Vec::new());
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // Only a handful of instances: the default pool reserves address space
    // for a whole gateway's.
    let mut plugins = config.plugins.clone();
    plugins.max_instances = plugins.max_instances.min(16);
    runtime.block_on(async {
        let host = PluginHost::new(plugins)?;
        let mut problems = Vec::new();
        for (name, file) in files {
            if let Err(e) = host.load_file(name, &file).await {
                problems.push(format!(
                    "plugin {name:?} ({}) would be refused: {e}",
                    file.display()
                ));
            }
        }
        Ok(problems)
    })
}
