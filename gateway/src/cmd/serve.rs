//! `sluice serve`: start the plugin host, its watcher and the listeners.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use crate::admin::{self, AdminState};
use crate::audit::{self, Audit, Event, kinds};
use crate::config::{Config, ConnectionKind};
use crate::identity::Verifier;
use crate::plugins::{self, PluginHost};
use crate::postgres::handshake::HandshakeSettings;
use crate::postgres::listener::{PgConnection, PgListener};
use crate::postgres::{UpstreamConfig, UpstreamTls};
use crate::recording::Recorder;
use crate::sql::Analyzer;
use crate::tls::{self, TlsFiles};
use crate::workers::Workers;

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
    audit::describe_metrics();
    // The audit log before anything that could be audited: a gateway that
    // cannot keep its trail does not start.
    let audit = Audit::open(&config.gateway.state_dir, &config.audit)
        .map_err(|e| anyhow::anyhow!("audit log: {e}"))?;
    record_start(&audit, &config);
    let workers = Arc::new(
        Workers::start(config.gateway.session_workers)
            .map_err(|e| anyhow::anyhow!("cannot start the session workers: {e}"))?,
    );
    let result = run_gateway(&config, &audit, metrics, &workers).await;
    // Sessions still open are dropped before the log closes.
    let _ = tokio::task::spawn_blocking(move || workers.shutdown()).await;
    let reason = match &result {
        Ok(()) => "signal".to_string(),
        Err(e) => format!("error: {e:#}"),
    };
    audit.emit(Event::new(kinds::GATEWAY_STOPPED).with("reason", reason));
    audit.shutdown().await;
    result.map(|()| ExitCode::SUCCESS)
}

/// Everything after the audit log is open, until a shutdown signal.
async fn run_gateway(
    config: &Config,
    audit: &Audit,
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    workers: &Arc<Workers>,
) -> anyhow::Result<()> {
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
    for problem in super::run_time_problems(config) {
        tracing::warn!("{problem}");
    }
    let host = PluginHost::new(config.plugins.clone())?;
    host.set_audit(audit.clone());
    tracing::info!(dir = %host.dir().display(), "watching the plugin directory");
    let _watcher = plugins::watch(host.clone());
    let deliveries = audit::delivery::spawn(audit, host.clone(), config);
    crate::recording::describe_metrics();
    let recorder = Recorder::open(&config.gateway.state_dir, &config.recording, audit.clone())
        .map_err(|e| anyhow::anyhow!("session recordings: {e}"))?;
    let _retention = crate::recording::retention::spawn(recorder.clone());

    if let Some(addr) = config.listen.postgres {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {addr} (postgres): {e}"))?;
        let pg = postgres_listener(
            config,
            workers.count(),
            identity.clone(),
            host.clone(),
            audit.clone(),
            recorder.clone(),
        )?;
        tracing::info!(addr = %listener.local_addr()?, "postgres listener ready");
        tokio::spawn(pg.serve(listener, workers.clone()));
    }

    if let Some(addr) = config.listen.http {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {addr} (http): {e}"))?;
        let http = crate::http::from_config(
            config,
            identity.clone(),
            host.clone(),
            recorder.clone(),
            audit.clone(),
            workers.count(),
        )?;
        tracing::info!(addr = %listener.local_addr()?, "http listener ready");
        tokio::spawn(http.serve(listener, workers.clone()));
    }

    if let Some(addr) = config.listen.admin {
        let listener = admin::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {addr} (admin): {e}"))?;
        tracing::info!(addr = %listener.local_addr()?, "admin listener ready");
        let state = Arc::new(AdminState {
            plugins: host.clone(),
            identity: identity.clone(),
            metrics,
            sessions: recorder.dir().map(std::path::Path::to_path_buf),
        });
        tokio::spawn(admin::serve(listener, state));
    }

    shutdown_signal().await;
    tracing::info!("shutting down");
    deliveries.stop(Duration::from_secs(10)).await;
    Ok(())
}

fn record_start(audit: &Audit, config: &Config) {
    let previous = match audit.opened().and_then(|o| o.previous_shutdown_clean) {
        None => "none (new log)",
        Some(true) => "clean",
        Some(false) => "unclean",
    };
    if let Some(opened) = audit.opened() {
        tracing::info!(
            log_id = %opened.log_id,
            next_record = opened.next_seq,
            previous_shutdown = previous,
            "audit log open"
        );
    }
    audit.emit(
        Event::new(kinds::GATEWAY_STARTED)
            .with("version", env!("CARGO_PKG_VERSION"))
            .with("pid", std::process::id())
            .with("previous_shutdown", previous),
    );
    let mut loaded = Event::new(kinds::CONFIG_LOADED)
        .with(
            "connections",
            config
                .connections
                .iter()
                .map(|c| c.name.clone())
                .collect::<Vec<_>>(),
        )
        .with("plugin_dir", config.plugins.dir.display().to_string())
        .with("audit_sinks", config.audit.sinks.clone());
    if let Some(source) = &config.source {
        loaded = loaded
            .with("path", source.path.display().to_string())
            .with("sha256", source.sha256.clone());
    }
    audit.emit(loaded);
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

fn postgres_listener(
    config: &Config,
    workers: usize,
    identity: Verifier,
    host: Arc<PluginHost>,
    audit: Audit,
    recorder: Recorder,
) -> anyhow::Result<Arc<PgListener>> {
    let files = match (&config.postgres.tls_cert, &config.postgres.tls_key) {
        (Some(cert), Some(key)) => Some(TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
        }),
        (None, None) => None,
        _ => anyhow::bail!("[postgres] needs both tls_cert and tls_key, or neither"),
    };
    // Offering the protocol's name lets libpq 17+ clients negotiate TLS
    // directly (`sslnegotiation=direct`), which they accept only with it.
    let tls = tls::server_config_with_alpn(
        files.as_ref(),
        &config.gateway.state_dir,
        vec![crate::postgres::handshake::ALPN_POSTGRESQL.to_vec()],
    )?;
    let mut connections = Vec::new();
    for c in config
        .connections
        .iter()
        .filter(|c| c.kind == ConnectionKind::Postgres)
    {
        let pg = c.postgres()?;
        let password =
            crate::config::read_secret(pg.password_env.as_deref(), pg.password_file.as_deref())
                .map_err(|e| anyhow::anyhow!("connection {:?}: {e}", c.name))?;
        let host_name = c
            .upstream
            .rsplit_once(':')
            .map(|(h, _)| h)
            .unwrap_or(&c.upstream);
        let tls = match pg.tls.as_str() {
            "verify-full" => UpstreamTls::VerifyFull {
                ca_file: pg.ca_file.clone(),
                server_name: pg
                    .server_name
                    .clone()
                    .unwrap_or_else(|| host_name.to_string()),
            },
            _ => UpstreamTls::Disable,
        };
        connections.push(PgConnection {
            name: c.name.clone(),
            policy: c.policy()?,
            upstream: UpstreamConfig {
                addr: c.upstream.clone(),
                database: pg.database,
                user: pg.user,
                password,
                tls,
                connect_timeout: Duration::from_secs(10),
            },
            plugins: c.plugins.clone(),
        });
    }
    let settings = HandshakeSettings {
        tls: Some(tls),
        allow_plaintext_loopback: config.postgres.allow_plaintext_loopback,
        startup_timeout: Duration::from_millis(config.postgres.startup_timeout_ms),
        end_at_token_expiry: config
            .postgres
            .end_sessions_at_token_expiry
            .then(|| Duration::from_secs(config.identity.leeway_secs)),
    };
    Ok(PgListener::new(
        settings,
        connections,
        identity,
        host,
        Arc::new(
            Analyzer::new(10_000)
                .with_max_text_bytes(config.postgres.max_statement_bytes)
                .with_long_analyses(workers),
        ),
        audit,
        recorder,
    ))
}
