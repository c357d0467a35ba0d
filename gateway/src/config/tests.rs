//! Unit tests of the configuration file's parsing and validation.
use super::*;

#[test]
fn defaults_and_relative_paths() {
    let c = Config::parse("", Path::new("/etc/sluice")).unwrap();
    assert_eq!(c.plugins.dir, PathBuf::from("/etc/sluice/plugins"));
    assert_eq!(c.plugins.call_deadline_ms, 50);
    assert_eq!(c.plugins.memory_limit_mib, 64);
    assert_eq!(c.gateway.state_dir, PathBuf::from("/etc/sluice/.sluice"));
}

#[test]
fn unknown_keys_are_errors() {
    let err = Config::parse("[plugins]\ndeadline = 5\n", Path::new(".")).unwrap_err();
    assert!(err.to_string().contains("unknown field"), "{err}");
}

#[test]
fn plugin_config_becomes_json() {
    let c = Config::parse(
        "[plugins.config.deny-word]\nwords = [\"drop\"]\nlimit = 3\n",
        Path::new("."),
    )
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&c.plugin_config_json("deny-word")).unwrap();
    assert_eq!(v, serde_json::json!({"words": ["drop"], "limit": 3}));
    assert_eq!(c.plugin_config_json("other"), "{}");
}

#[test]
fn connection_access_policy() {
    let text = r#"
[[connections]]
name = "appdb"
kind = "postgres"
upstream = "127.0.0.1:5432"
database = "app"
user = "app"
allow_groups = ["agents"]
deny_subjects = ["agent-9"]
"#;
    let c = Config::parse(text, Path::new(".")).unwrap();
    let policy = c.connections[0].policy().unwrap();
    assert_eq!(policy.allow_groups, vec!["agents".to_string()]);
    assert_eq!(policy.deny_subjects, vec!["agent-9".to_string()]);
    assert!(!policy.allow_all);

    let bad = text.replace(r#"allow_groups = ["agents"]"#, r#"allow_groups = "agents""#);
    let err = Config::parse(&bad, Path::new(".")).unwrap_err();
    assert!(err.to_string().contains("appdb"), "{err}");
}

#[test]
fn connection_keys_are_checked() {
    let base =
        "[[connections]]\nname = \"appdb\"\nkind = \"postgres\"\nupstream = \"127.0.0.1:5432\"\n";
    let err = Config::parse(&format!("{base}database = \"app\"\n"), Path::new(".")).unwrap_err();
    assert!(err.to_string().contains("missing field `user`"), "{err}");
    let err = Config::parse(
        &format!("{base}database = \"app\"\nuser = \"app\"\nallow_group = [\"x\"]\n"),
        Path::new("."),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("unknown key(s) allow_group"),
        "{err}"
    );
}

#[test]
fn duplicate_connections_are_refused() {
    let text = r#"
[[connections]]
name = "a"
kind = "postgres"
upstream = "127.0.0.1:5432"
database = "app"
user = "app"
[[connections]]
name = "a"
kind = "http"
upstream = "127.0.0.1:80"
"#;
    let err = Config::parse(text, Path::new(".")).unwrap_err();
    assert!(err.to_string().contains("defined twice"), "{err}");
}

#[test]
fn ssh_connections_are_refused_until_supported() {
    let text = "[[connections]]\nname = \"box\"\nkind = \"ssh\"\nupstream = \"10.0.0.1:22\"\n\
                user = \"root\"\nallow_all = true\n";
    let err = Config::parse(text, Path::new(".")).unwrap_err().to_string();
    assert!(err.contains("\"box\""), "{err}");
    assert!(err.contains("\"ssh\" is not supported yet"), "{err}");
}
