use clap::Parser;

fn main() -> std::process::ExitCode {
    sluice::telemetry::init();
    match sluice::cmd::run(sluice::cmd::Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
