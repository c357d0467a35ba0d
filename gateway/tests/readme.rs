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

/// "Running the gateway" shows `examples/sluice.toml` in full, and copies
/// into the plugin directory every plugin the example configures, so that
/// its first run warns of no plugin missing.
#[test]
fn the_running_example_is_the_example_file() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let example = std::fs::read_to_string(root.join("examples/sluice.toml")).unwrap();
    let section = readme
        .split_once("## Running the gateway")
        .expect("the section")
        .1;
    let block = section
        .split_once("```toml\n")
        .and_then(|(_, rest)| rest.split_once("```"))
        .expect("its TOML block")
        .0;
    assert_eq!(block, example, "README and examples/sluice.toml differ");

    let config = sluice::config::Config::parse(&example, Path::new("/srv")).unwrap();
    let copied = section
        .split_once("for p in ")
        .and_then(|(_, rest)| rest.split_once("; do"))
        .expect("the copy loop")
        .0;
    let copied: std::collections::BTreeSet<&str> = copied.split_whitespace().collect();
    let configured: std::collections::BTreeSet<&str> = config
        .plugins
        .config
        .keys()
        .chain(config.plugins.grants.keys())
        .map(String::as_str)
        .collect();
    assert_eq!(copied, configured);
}
