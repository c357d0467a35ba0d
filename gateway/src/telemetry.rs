//! Logging setup. `SLUICE_LOG` takes a tracing filter (default `info`);
//! `SLUICE_LOG_FORMAT=json` switches to one JSON object per line.

use tracing_subscriber::EnvFilter;

pub fn init() {
    let filter = EnvFilter::try_from_env("SLUICE_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let result = if std::env::var("SLUICE_LOG_FORMAT").as_deref() == Ok("json") {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    // Already initialised (tests embed the gateway): keep the first.
    let _ = result;
}
