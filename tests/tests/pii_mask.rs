//! The `pii-mask` component through the real plugin host, configured by
//! `examples/pii-mask.toml`: HTTP bodies (the masker world's `mask-body`)
//! and result rows, with the example's strategies, column rules and
//! exemptions.

use std::path::Path;
use std::sync::Arc;

use serde_json::{Value, json};
use sluice::config::Config;
use sluice::plugins::bindings::types::{Column, Detection, ValueFormat};
use sluice::plugins::{Chain, PluginHost};
use sluice_tests::{PluginDir, session, text_column};

const KEY: &str = "example-key-for-the-pii-mask-tests";

/// A host running pii-mask with the example's configuration; the hash key
/// is given inline instead of through the granted environment variable.
async fn example_host(dir: &PluginDir) -> Arc<PluginHost> {
    dir.install("pii-mask", "pii-mask");
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/pii-mask.toml");
    let mut config = Config::load(&example)
        .expect("the example config loads")
        .plugins;
    config.dir = dir.path().to_path_buf();
    let table = config
        .config
        .get_mut("pii-mask")
        .expect("the example configures pii-mask");
    assert!(table.remove("hash_key_env").is_some());
    table.insert("hash_key".into(), KEY.into());
    let host = PluginHost::new(config).expect("plugin host");
    host.rescan().await;
    host
}

fn chain(host: &PluginHost) -> Chain {
    host.chain(&["pii-mask".into()])
        .unwrap_or_else(|r| panic!("pii-mask is not active: {r}"))
}

fn detected(detections: &[Detection]) -> Vec<(String, u32)> {
    let mut d: Vec<(String, u32)> = detections
        .iter()
        .map(|d| (d.entity.clone(), d.count))
        .collect();
    d.sort();
    d
}

#[tokio::test]
async fn json_bodies_are_masked_and_stay_valid() {
    let dir = PluginDir::new();
    let host = example_host(&dir).await;
    let chain = chain(&host);
    let body = json!({
        "invoices": [{
            "customer": {"name": "Ann Lee", "email": "ann.lee@example.com", "phone": "+44 20 7946 0958"},
            "card": "4242 4242 4242 4242",
            "iban": "DE89 3704 0044 0532 0130 00",
            "notes": ["paid", "ssn 536-90-4399 on file", {"ip": "203.0.113.9"}],
            "total": 120.5
        }],
        "next": null
    });
    let (masked, report) = chain
        .mask_body(
            &session("agent-1", &["agents"]),
            "application/json",
            serde_json::to_vec(&body).unwrap(),
        )
        .await
        .unwrap();
    let masked: Value = serde_json::from_slice(&masked).expect("still JSON");
    let invoice = &masked["invoices"][0];
    assert_eq!(
        invoice["customer"],
        json!({"name": "Ann Lee", "email": "a***@example.com", "phone": "+** ** **** 0958"})
    );
    assert_eq!(invoice["card"], "**** **** **** 4242");
    assert_eq!(invoice["iban"], "[IBAN]");
    assert_eq!(
        invoice["notes"],
        json!(["paid", "ssn [SSN] on file", {"ip": "[IP]"}])
    );
    assert_eq!(invoice["total"], 120.5);
    assert_eq!(masked["next"], Value::Null);
    assert_eq!(
        detected(&report.detections),
        [
            ("card", 1),
            ("email", 1),
            ("iban", 1),
            ("ip", 1),
            ("phone", 1),
            ("ssn", 1)
        ]
        .map(|(e, n)| (e.to_string(), n))
    );
}

#[tokio::test]
async fn text_and_form_bodies_and_exempt_groups() {
    let dir = PluginDir::new();
    let host = example_host(&dir).await;
    let chain = chain(&host);
    let text =
        b"Contact ann@example.com or +1 415 555 2671; token Bearer abc123def456ghi789".to_vec();
    let agent = session("agent-1", &["agents"]);

    let (masked, _) = chain
        .mask_body(&agent, "text/plain; charset=utf-8", text.clone())
        .await
        .unwrap();
    assert_eq!(
        String::from_utf8(masked).unwrap(),
        "Contact a***@example.com or +* *** *** 2671; token Bearer [SECRET]"
    );

    let (masked, _) = chain
        .mask_body(
            &agent,
            "application/x-www-form-urlencoded",
            b"email=ann%40example.com&card=4242424242424242".to_vec(),
        )
        .await
        .unwrap();
    assert_eq!(masked, b"email=a***%40example.com&card=************4242");

    // pii-readers see everything; support sees contact details only.
    let reader = session("analyst", &["agents", "pii-readers"]);
    let (clear, report) = chain
        .mask_body(&reader, "text/plain", text.clone())
        .await
        .unwrap();
    assert_eq!(clear, text);
    assert!(report.detections.is_empty());
    let support = session("helpdesk", &["agents", "support"]);
    let (masked, _) = chain.mask_body(&support, "text/plain", text).await.unwrap();
    assert_eq!(
        String::from_utf8(masked).unwrap(),
        "Contact ann@example.com or +1 415 555 2671; token Bearer [SECRET]"
    );
}

#[tokio::test]
async fn rows_with_column_rules_through_the_host() {
    let dir = PluginDir::new();
    let host = example_host(&dir).await;
    let chain = chain(&host);
    let mut jsonb = text_column("profile");
    jsonb.type_oid = 3802;
    jsonb.type_name = Some("jsonb".into());
    jsonb.format = ValueFormat::Binary;
    let sku = Column {
        table: Some("public.products".into()),
        ..text_column("sku")
    };
    let columns = vec![
        text_column("name"),
        text_column("email"),
        text_column("customer_ssn"),
        jsonb,
        sku,
    ];
    let cell = |s: &str| Some(s.as_bytes().to_vec());
    let row = vec![
        cell("Ann Lee"),
        cell("ann.lee@example.com"),
        cell("536-90-4399"),
        cell(r#"{"contacts": [{"email": "bob@example.org"}], "age": 41}"#),
        cell("0612345678"),
    ];
    let mut rows = vec![row.clone(), row.clone()];
    let who = session("agent-1", &["agents"]);
    let selection = chain.select_columns(&who, &columns).await.unwrap();
    let report = chain
        .mask_rows(&who, &columns, &selection, &mut rows)
        .await
        .unwrap();
    let email = String::from_utf8(rows[0][1].clone().unwrap()).unwrap();
    assert!(email.starts_with("email_") && email.len() == 22, "{email}");
    assert_eq!(rows[1][1], rows[0][1], "pseudonyms are stable");
    assert_eq!(rows[0][0], row[0]);
    assert_eq!(rows[0][2], None);
    assert_eq!(
        rows[0][3],
        cell(r#"{"contacts": [{"email": "b***@example.org"}], "age": 41}"#)
    );
    assert_eq!(rows[0][4], row[4], "`keep` columns are not scanned");
    assert_eq!(report.cells_changed, 6);
    assert_eq!(
        detected(&report.detections),
        [("email", 4), ("ssn", 2)].map(|(e, n)| (e.to_string(), n))
    );
}

/// The README's pii-mask section shows the example's plugin configuration.
#[test]
fn readme_shows_the_example_configuration() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let block = readme
        .split("```toml\n")
        .skip(1)
        .filter_map(|b| b.split("```").next())
        .find(|b| b.contains("[plugins.config.pii-mask]"))
        .expect("a pii-mask block in the README");
    let shown = Config::parse(block, &root)
        .expect("the README block parses")
        .plugins;
    let example = Config::load(&root.join("examples/pii-mask.toml"))
        .unwrap()
        .plugins;
    assert_eq!(shown.config.get("pii-mask"), example.config.get("pii-mask"));
    assert_eq!(
        shown.grants.get("pii-mask").map(|g| &g.env),
        example.grants.get("pii-mask").map(|g| &g.env)
    );
}
