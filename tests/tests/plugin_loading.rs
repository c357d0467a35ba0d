//! Loading: what the gateway accepts as a plugin, and how it refuses the rest
//! while it keeps serving.

use sluice::plugins::{Decision, PluginError, PluginKind};
use sluice_tests::{PluginDir, built, built_plugins_dir, session, sql};

/// Every first-party plugin in `plugins/` builds to a component and loads.
#[tokio::test]
async fn every_first_party_plugin_loads() {
    let plugins = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins");
    let dir = PluginDir::new();
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&plugins).unwrap() {
        let entry = entry.unwrap();
        if !entry.path().join("Cargo.toml").exists() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().to_string();
        dir.install(&name, &name);
        names.push(name);
    }
    assert!(
        !names.is_empty(),
        "no plugins found in {}",
        plugins.display()
    );
    // The example configuration carries each first-party plugin's config.
    let example = plugins.join("../examples/sluice.toml");
    let mut config = sluice::config::Config::load(&example).unwrap().plugins;
    config.dir = dir.path().to_path_buf();
    let host = sluice::plugins::PluginHost::new(config).unwrap();
    host.rescan().await;
    for name in &names {
        let plugin = host
            .get(name)
            .unwrap_or_else(|| panic!("{name} did not load: {}", host.why_missing(name)));
        assert!(plugin.generation() > 0);
    }
}

#[tokio::test]
async fn kinds_are_detected_from_exports() {
    let dir = PluginDir::new();
    dir.install("a", "allow-all");
    dir.install("m", "mask-email");
    dir.install("s", "audit-file");
    let audit = tempfile::tempdir().unwrap();
    let host = dir
        .host(&format!(
            "[plugins.grants.s]\ndirs = [{{ host = {:?}, guest = \"/audit\", writable = true }}]\n",
            audit.path().display().to_string()
        ))
        .await;
    assert_eq!(host.get("a").unwrap().kind(), PluginKind::Guardrail);
    assert_eq!(host.get("m").unwrap().kind(), PluginKind::Masker);
    assert_eq!(host.get("s").unwrap().kind(), PluginKind::AuditSink);
}

/// Each bad file is refused with its own reason, reported in the status, and
/// the plugins that did load keep serving.
#[tokio::test]
async fn bad_files_are_refused_with_a_reason() {
    let good = std::fs::read(built("allow-all")).unwrap();
    let cases: Vec<(&str, Vec<u8>, &str, &str)> = vec![
        (
            "core-module",
            // The smallest valid core module: magic and version 1.
            b"\0asm\x01\0\0\0".to_vec(),
            "core_module",
            "core WebAssembly module, not a component",
        ),
        (
            "foreign",
            std::fs::read(built("foreign-cli")).unwrap(),
            "no_world",
            "matches no sluice:plugin@0.1 world",
        ),
        (
            "garbage",
            b"this is not wasm at all, just text\n".to_vec(),
            "not_wasm",
            "not WebAssembly",
        ),
        (
            "truncated",
            good[..good.len() / 2].to_vec(),
            "compile",
            "invalid component",
        ),
        ("empty", Vec::new(), "not_wasm", "not WebAssembly"),
    ];

    let dir = PluginDir::new();
    dir.install("ok", "allow-all");
    for (name, bytes, _, _) in &cases {
        dir.install_bytes(name, bytes);
    }
    let host = dir.host("").await;

    for (name, bytes, label, text) in &cases {
        assert!(host.get(name).is_none(), "{name} must not be active");
        let status = host
            .statuses()
            .into_iter()
            .find(|s| s.name == *name)
            .unwrap_or_else(|| panic!("{name} has no status"));
        assert_eq!(status.state, "failed");
        let error = status.last_error.unwrap();
        assert!(error.contains(text), "{name}: {error}");
        assert!(host.why_missing(name).contains(text));

        // The same reason through the `plugin check` path.
        let err = host.load_bytes(name, bytes.clone()).await.err().unwrap();
        assert_eq!(err.label(), *label, "{name}: {err}");
    }

    // The gateway keeps serving with what did load.
    let chain = host.chain(&["ok".into()]).unwrap();
    assert!(matches!(
        chain
            .check(&session("agent-1", &[]), &sql("select 1"))
            .await,
        Decision::Allow
    ));
}

#[tokio::test]
async fn an_oversized_file_is_refused_without_reading_it() {
    let dir = PluginDir::new();
    // Sparse: costs no disk, but its length is past the limit.
    let file = std::fs::File::create(dir.path().join("huge.wasm")).unwrap();
    file.set_len(sluice::plugins::MAX_COMPONENT_BYTES + 1)
        .unwrap();
    let host = dir.host("").await;
    assert!(host.get("huge").is_none());
    let why = host.why_missing("huge");
    assert!(why.contains("larger than the 256 MiB limit"), "{why}");
}

#[tokio::test]
async fn a_component_importing_unknown_interfaces_is_refused() {
    // A component built for another world entirely: wasi:cli/command.
    let dir = PluginDir::new();
    let host = dir.host("").await;
    let err = host
        .load_file("foreign", &built("foreign-cli"))
        .await
        .err()
        .unwrap();
    assert!(matches!(err, PluginError::NoWorld(_)), "{err}");
    assert!(
        err.to_string()
            .contains("a guardrail exports init and check"),
        "{err}"
    );
}

#[test]
fn built_plugins_are_components() {
    for entry in std::fs::read_dir(built_plugins_dir()).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(
            &bytes[..8],
            b"\0asm\x0d\0\x01\0",
            "{} is not a component",
            path.display()
        );
    }
}
