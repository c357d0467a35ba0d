//! The `pii-mask` plugin on the HTTP data path: the `sluice` binary with
//! the example's pii-mask configuration in front of a real upstream,
//! masking JSON, text, form and streamed NDJSON responses per group.

mod common;

use std::path::Path;

use common::http::{Gateway, PII_FORM, PII_JSON, PII_NDJSON, PII_TEXT, Upstream};
use serde_json::{Value, json};

const KEY: &str = "pii-mask-http-test-key-0123";

/// The example's pii-mask tables, and an HTTP connection to `up` using them.
fn start(up: &Upstream) -> Gateway {
    let example = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/pii-mask.toml"),
    )
    .unwrap();
    let start = example.find("[plugins.config.pii-mask]").unwrap();
    let end = example.find("[[connections]]").unwrap();
    let extra = format!(
        r#"{plugins}
[[connections]]
name = "crm"
kind = "http"
upstream = "{url}"
allow_groups = ["agents"]
plugins = ["pii-mask"]
"#,
        plugins = &example[start..end],
        url = up.url()
    );
    Gateway::start(&["pii-mask"], &extra, &[("PII_MASK_KEY", KEY)])
}

async fn get(gw: &Gateway, token: &str, path: &str) -> (String, String) {
    let resp = gw
        .client()
        .get(gw.https(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{path}: {}", gw.log());
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (content_type, resp.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_are_masked_by_content_type_and_group() {
    let up = Upstream::start().await;
    let gw = start(&up);
    let agent = gw.token("agent-1", &["agents"], "1h");

    let (content_type, body) = get(&gw, &agent, "/crm/v1/pii.json").await;
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let masked: Value = serde_json::from_str(&body).expect("still JSON");
    assert_eq!(
        masked,
        json!({
            "customers": [{
                "name": "Ann Lee",
                "email": "a***@example.com",
                "phone": "+** ** **** 0958",
                "card": "**** **** **** 4242",
                "iban": "[IBAN]",
                "ssn": "[SSN]",
                "seen_from": "[IP]",
            }],
            "auth": "Bearer [SECRET]",
            "total": 120.5,
        })
    );

    let (_, body) = get(&gw, &agent, "/crm/v1/pii.txt").await;
    assert_eq!(
        body,
        "Ann Lee <a***@example.com>, card ****-****-****-4242, key [SECRET]\n"
    );

    let (_, body) = get(&gw, &agent, "/crm/v1/pii.form").await;
    assert_eq!(
        body,
        "email=a***%40example.com&phone=%2B*+***+***+2671&note=ok"
    );

    let (_, body) = get(&gw, &agent, "/crm/v1/pii.ndjson").await;
    assert_eq!(
        body,
        "{\"email\":\"b***@example.org\",\"n\":1}\n{\"ip\":\"[IP]\",\"n\":2}\n"
    );

    // pii-readers get the upstream's bytes; support sees contact details.
    let reader = gw.token("analyst", &["agents", "pii-readers"], "1h");
    assert_eq!(get(&gw, &reader, "/crm/v1/pii.json").await.1, PII_JSON);
    assert_eq!(get(&gw, &reader, "/crm/v1/pii.txt").await.1, PII_TEXT);
    assert_eq!(get(&gw, &reader, "/crm/v1/pii.form").await.1, PII_FORM);
    assert_eq!(
        get(&gw, &reader, "/crm/v1/pii.ndjson").await.1,
        PII_NDJSON.concat()
    );
    let support = gw.token("helpdesk", &["agents", "support"], "1h");
    let (_, body) = get(&gw, &support, "/crm/v1/pii.json").await;
    let masked: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(masked["customers"][0]["email"], "ann.lee@example.com");
    assert_eq!(masked["customers"][0]["phone"], "+44 20 7946 0958");
    assert_eq!(masked["customers"][0]["card"], "**** **** **** 4242");

    let metrics = reqwest::get(format!("http://127.0.0.1:{}/metrics", gw.admin))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for entity in ["email", "phone", "card", "iban", "ssn", "ip", "secret"] {
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with("sluice_masked_values_total{")
                    && l.contains(r#"connection="crm""#)
                    && l.contains(&format!(r#"entity="{entity}""#))),
            "no count for {entity}:\n{metrics}"
        );
    }
}

/// A response header's name holds data as a value does: a name the masker
/// would change fails the response, which does not repeat it; a name of
/// letters and dashes, or one the masker leaves, passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_header_names_are_masked_too() {
    let up = Upstream::start().await;
    let gw = start(&up);
    let agent = gw.token("agent-1", &["agents"], "1h");
    let client = gw.client();
    for (name, status) in [
        ("4242-4242-4242-4242", 502),
        ("x-ann%40example.com", 502),
        ("x-request-id", 200),
        ("x-trace-2", 200),
    ] {
        let resp = client
            .get(gw.https(&format!("/crm/header-named?name={name}")))
            .bearer_auth(&agent)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), status, "{name}");
        if status == 200 {
            assert_eq!(resp.headers()[name], "1");
            continue;
        }
        let text = resp.text().await.unwrap();
        assert!(text.contains("masking_failed"), "{name}: {text}");
        assert!(!text.contains(name), "{name}: {text}");
    }
}
