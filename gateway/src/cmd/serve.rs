//! `sluice serve`: start the plugin host, its watcher and the listeners.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use crate::admin::{self, AdminState};
use crate::config::Config;
use crate::identity::Verifier;
use crate::plugins::{self, PluginHost};

pub fn run(config: Config) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("sluice")
        .build()?;
    runtime.block_on(serve(config))
}

async fn serve(config: Config) -> anyhow::Result<ExitCode> {
    let metrics = match metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder() {
        Ok(handle) => {
            let upkeep = handle.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(5));
                loop {
                    tick.tick().await;
                    upkeep.run_upkeep();
                }
            });
            Some(handle)
        }
        Err(e) => {
            tracing::warn!("metrics recorder not installed: {e}");
            None
        }
    };

    crate::identity::metrics::describe();
    // Identity first: with `production = true` and no issuer this refuses to
    // start, before anything listens.
    let identity = Verifier::from_config(&config.identity, &config.gateway.state_dir)
        .await
        .map_err(|e| anyhow::anyhow!("identity: {e}"))?;

    std::fs::create_dir_all(&config.plugins.dir).map_err(|e| {
        anyhow::anyhow!(
            "cannot create plugin dir {}: {e}",
            config.plugins.dir.display()
        )
    })?;
    let host = PluginHost::new(config.plugins.clone())?;
    tracing::info!(dir = %host.dir().display(), "watching the plugin directory");
    let _watcher = plugins::watch(host.clone());

    if let Some(addr) = config.listen.admin {
        let listener = admin::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {addr} (admin): {e}"))?;
        tracing::info!(addr = %listener.local_addr()?, "admin listener ready");
        let state = Arc::new(AdminState {
            plugins: host.clone(),
            identity: identity.clone(),
            metrics,
        });
        tokio::spawn(admin::serve(listener, state));
    }

    shutdown_signal().await;
    tracing::info!("shutting down");
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
