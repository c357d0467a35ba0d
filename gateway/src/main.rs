use std::io::Write as _;

use clap::Parser;

// The data path allocates per message (frames, rows, records) from every
// worker thread; glibc's allocator spent ~12% of the gateway's CPU on it
// under pgbench, mimalloc's thread-local pages far less.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    sluice::telemetry::init();
    match sluice::cmd::run(sluice::cmd::Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            // Not eprintln!: a closed stderr must not turn an error into a panic.
            let _ = writeln!(std::io::stderr(), "error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
