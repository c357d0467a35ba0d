//! Builds the plugins and test guests as wasm32-wasip2 components before the
//! gateway's tests compile, and tells the tests where they are through
//! `SLUICE_PLUGIN_DIR` (use `env!("SLUICE_PLUGIN_DIR")`).
//!
//! The work is done by `scripts/build-plugins.sh`, the same script the
//! Justfile runs, so that the crate list and build flags live in one place.

use std::path::Path;
use std::process::{Command, exit};

fn main() {
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let root = Path::new(&manifest_dir)
        .parent()
        .expect("tests/ sits in the workspace root");

    // Directories are scanned recursively by cargo. Cargo.toml/Cargo.lock
    // carry the wasm profile and the plugins' dependency versions.
    for input in [
        "wit",
        "plugin-sdk",
        "plugins",
        "tests/guests",
        "scripts/build-plugins.sh",
        "Cargo.toml",
        "Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(input).display());
    }

    let script = root.join("scripts/build-plugins.sh");
    let output = match Command::new("bash").arg(&script).output() {
        Ok(output) => output,
        Err(e) => fail(&format!("cannot run bash {}: {e}", script.display())),
    };
    if !output.status.success() {
        eprintln!("{}", String::from_utf8_lossy(&output.stdout));
        eprintln!("{}", String::from_utf8_lossy(&output.stderr));
        fail(&format!("{} failed ({})", script.display(), output.status));
    }

    println!(
        "cargo:rustc-env=SLUICE_PLUGIN_DIR={}",
        root.join("target/plugins").display()
    );
}

fn fail(message: &str) -> ! {
    eprintln!("error: building the wasm plugins: {message}");
    exit(1);
}
