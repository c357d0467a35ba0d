//! The README's configuration snippets are real configuration: every TOML
//! block in it that configures the gateway must parse and validate.

use std::path::Path;

#[test]
fn readme_config_snippets_are_valid() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .unwrap();
    let mut checked = 0;
    let mut rest = readme.as_str();
    while let Some(start) = rest.find("```toml\n") {
        let body = &rest[start + 8..];
        let end = body.find("```").expect("unterminated code block");
        let block = &body[..end];
        rest = &body[end + 3..];
        // Cargo manifests of the plugin walkthrough are not gateway config.
        if block.contains("[package]") {
            continue;
        }
        if let Err(e) = sluice::config::Config::parse(block, Path::new("/srv/sluice")) {
            panic!("README block does not parse: {e}\n{block}");
        }
        checked += 1;
    }
    assert!(checked >= 3, "only {checked} config blocks found");

    for example in [
        "sluice.toml",
        "http-gateway.toml",
        "audit.toml",
        "audit-webhook.toml",
    ] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../examples")
            .join(example);
        if let Err(e) = sluice::config::Config::load(&path) {
            panic!("{example}: {e}");
        }
    }
}
