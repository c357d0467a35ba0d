//! Recordings of HTTP sessions: one agent connection (HTTP/2 over TLS)
//! with allowed, denied, masked and gzip-masked exchanges, exported as HAR
//! and checked against the HAR 1.2 schema by `har-validator` (node).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::http::{Gateway, Upstream};
use serde_json::Value;

fn start(up: &Upstream) -> Gateway {
    let extra = format!(
        r#"
[recording]
http_body_bytes = 65536

[plugins.config.http-guardrail]
default = "allow"

[[plugins.config.http-guardrail.rules]]
name = "no-admin-delete"
methods = ["DELETE"]
path = "/admin/*"
action = "deny"
reason = "agents may not delete admin resources"

[[connections]]
name = "api"
kind = "http"
upstream = "{url}"
allow_groups = ["agents"]
plugins = ["http-guardrail", "mask-email"]
"#,
        url = up.url()
    );
    Gateway::start(&["http-guardrail", "mask-email"], &extra, &[])
}

fn sluice(gw: &Gateway, args: &[&str]) -> String {
    common::process::sluice_ok(gw.dir.path(), args)
}

fn har_validator() -> std::path::PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/har-validator");
    assert!(
        dir.join("node_modules/har-validator").exists(),
        "run `npm ci --prefix tests/har-validator` (scripts/dev.sh does)"
    );
    dir.join("check.js")
}

/// The agent's requests over one HTTP/2 connection; returns the masked
/// body of the first.
async fn agent(client: reqwest::Client, base: &str, token: &str) -> String {
    let auth = format!("Bearer {token}");

    let r = client
        .get(format!("{base}/api/v1/emails?page=1&q=a%20b"))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    let masked = r.text().await.unwrap();
    assert!(masked.contains("[EMAIL]"), "{masked}");
    let r = client
        .post(format!("{base}/api/v1/upload"))
        .header("authorization", &auth)
        .header("content-type", "application/json")
        .body(r#"{"note":"hello"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = client
        .delete(format!("{base}/api/admin/users/7"))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = client
        .get(format!("{base}/api/v1/emails.gz"))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Bytes the maskers cannot read are withheld on a masked connection.
    let r = client
        .get(format!("{base}/api/v1/download?bytes=300"))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502);

    masked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_session_exports_to_valid_har() {
    let up = Upstream::start().await;
    let gw = start(&up);
    let token = gw.token("har-agent", &["agents"], "10m");
    // The agent runs on its own runtime: when it is dropped, its
    // connection closes, which ends the session.
    let masked = {
        let client = gw.client();
        let urls = (gw.https(""), token.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().unwrap();
            rt.block_on(agent(client, &urls.0, &urls.1))
        })
        .join()
        .unwrap()
    };

    let start = Instant::now();
    let session = loop {
        let listed = sluice(
            &gw,
            &["sessions", "list", "--json", "--subject", "har-agent"],
        );
        let ended = listed
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .find(|s| !s["ended_ms"].is_null());
        if let Some(s) = ended {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "no ended session: {listed}\n{}\n{}",
            gw.log(),
            std::fs::read_dir(gw.dir.path().join("state/sessions"))
                .unwrap()
                .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
                .collect::<String>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(session["protocol"], "http");
    assert_eq!(session["exchanges"], 5);
    let id = session["id"].as_str().unwrap();

    let har_text = sluice(&gw, &["sessions", "export", id, "--har"]);
    let har_file = gw.dir.path().join("session.har");
    std::fs::write(&har_file, &har_text).unwrap();
    let check = Command::new("node")
        .arg(har_validator())
        .arg(&har_file)
        .output()
        .expect("node runs");
    assert!(
        check.status.success(),
        "{}{}\n{har_text}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );

    let har: Value = serde_json::from_str(&har_text).unwrap();
    let entries = har["log"]["entries"].as_array().unwrap();
    let summary: Vec<(&str, &str, u64)> = entries
        .iter()
        .map(|e| {
            (
                e["request"]["method"].as_str().unwrap(),
                e["_sluice"]["outcome"].as_str().unwrap(),
                e["response"]["status"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("GET", "forwarded", 200),
            ("POST", "forwarded", 200),
            ("DELETE", "denied", 403),
            ("GET", "forwarded", 200),
            ("GET", "upstream_error", 502),
        ]
    );
    let first = &entries[0];
    assert!(
        first["request"]["url"]
            .as_str()
            .unwrap()
            .ends_with("/api/v1/emails?page=1&q=a%20b"),
        "{first}"
    );
    assert_eq!(first["request"]["httpVersion"], "HTTP/2.0");
    assert_eq!(
        first["request"]["queryString"],
        serde_json::json!([{"name": "page", "value": "1"}, {"name": "q", "value": "a b"}])
    );
    // The response as the agent received it: masked, and counted.
    assert_eq!(first["response"]["content"]["text"], masked.as_str());
    assert!(first["_sluice"]["masked"]["email"].as_u64().unwrap() > 0);
    assert_eq!(
        entries[1]["request"]["postData"]["text"],
        r#"{"note":"hello"}"#
    );
    assert_eq!(entries[2]["_sluice"]["rule"], "no-admin-delete");
    // The gzip response was masked after decoding: what the agent got.
    assert!(
        entries[3]["response"]["content"]["text"]
            .as_str()
            .is_some_and(|t| t.contains("[EMAIL]")),
        "{}",
        entries[3]
    );
    // The binary download was withheld: nothing of it is in the record.
    assert_eq!(entries[4]["response"]["status"], 502);

    // The agent's token is never written; unmasked emails never are.
    let recording =
        std::fs::read_to_string(gw.dir.path().join(format!("state/sessions/{id}.jsonl"))).unwrap();
    assert!(!recording.contains(&token));
    assert!(recording.contains("[redacted]"));
    for raw in ["ann@example.com", "bob@example.org"] {
        assert!(!recording.contains(raw), "{raw} in the recording");
    }

    // The transcript, and the admin API's HAR.
    let transcript = sluice(&gw, &["sessions", "replay", id]);
    assert!(transcript.contains("DELETE"), "{transcript}");
    assert!(
        transcript.contains("refused by http-guardrail/no-admin-delete"),
        "{transcript}"
    );
    let api_har = reqwest::get(format!(
        "http://127.0.0.1:{}/api/v1/sessions/{id}/har",
        gw.admin
    ))
    .await
    .unwrap()
    .json::<Value>()
    .await
    .unwrap();
    assert_eq!(api_har["log"]["entries"].as_array().unwrap().len(), 5);
}

/// Exporting a session that was never recorded fails, naming the id.
#[test]
fn har_export_of_an_unknown_session_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("sluice.toml"),
        "[gateway]\nstate_dir = \"state\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args([
            "--config",
            "sluice.toml",
            "sessions",
            "export",
            "abc123",
            "--har",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("abc123"), "{err}");
}

/// What a recording keeps of an echoing upstream and of a body carrying the
/// agent's token: the credential replaced in the response as the agent got
/// it, a cut stream recorded as cut, and the token replaced in the refused
/// request's body. No spelling of either is in the recording or its HAR.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recordings_keep_neither_the_credential_nor_the_token() {
    const KEY: &str = "rec-secret-KEY/0123+abc";
    let up = Upstream::start().await;
    let extra = format!(
        r#"
[recording]
http_body_bytes = 65536

[plugins.config.http-guardrail]
default = "allow"

[[connections]]
name = "echo"
kind = "http"
upstream = "{url}"
credential = "header"
credential_header = "X-Api-Key"
credential_env = "ECHO_KEY"
allow_groups = ["agents"]
plugins = ["http-guardrail"]
"#,
        url = up.url()
    );
    let gw = Gateway::start(&["http-guardrail"], &extra, &[("ECHO_KEY", KEY)]);
    let token = gw.token("rec-agent", &["agents"], "10m");
    {
        let client = gw.client();
        let base = gw.https("");
        let token = token.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().unwrap();
            rt.block_on(async {
                let auth = format!("Bearer {token}");
                let r = client
                    .get(format!("{base}/echo/anything?style=php"))
                    .header("authorization", &auth)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                assert!(!r.text().await.unwrap().contains("rec-secret"));
                let r = client
                    .get(format!("{base}/echo/echo-sse"))
                    .header("authorization", &auth)
                    .send()
                    .await
                    .unwrap();
                assert!(r.text().await.is_err(), "the stream was cut");
                let r = client
                    .post(format!("{base}/echo/upload"))
                    .header("authorization", &auth)
                    .header("content-type", "application/json")
                    .body(format!(r#"{{"token":"{token}"}}"#))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 400);
            })
        })
        .join()
        .unwrap();
    }

    let start = Instant::now();
    let id = loop {
        let listed = sluice(
            &gw,
            &["sessions", "list", "--json", "--subject", "rec-agent"],
        );
        let ended = listed
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .find(|s| !s["ended_ms"].is_null());
        if let Some(s) = ended {
            break s["id"].as_str().unwrap().to_string();
        }
        assert!(start.elapsed() < Duration::from_secs(15), "{listed}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let har_text = sluice(&gw, &["sessions", "export", &id, "--har"]);
    let recording =
        std::fs::read_to_string(gw.dir.path().join(format!("state/sessions/{id}.jsonl"))).unwrap();
    for text in [&har_text, &recording] {
        for spelling in [KEY, "rec-secret-KEY\\/0123+abc", &token] {
            assert!(!text.contains(spelling), "{spelling} in\n{text}");
        }
    }
    let har: Value = serde_json::from_str(&har_text).unwrap();
    let entries = har["log"]["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 3, "{har_text}");
    assert!(
        entries[0]["response"]["content"]["text"]
            .as_str()
            .unwrap()
            .contains("[sluice: upstream credential]"),
        "{}",
        entries[0]
    );
    assert_eq!(
        entries[1]["_sluice"]["outcome"], "upstream_error",
        "{}",
        entries[1]
    );
    assert_eq!(entries[1]["_sluice"]["completed"], false, "{}", entries[1]);
    assert_eq!(
        entries[2]["request"]["postData"]["text"], r#"{"token":"[agent token]"}"#,
        "{}",
        entries[2]
    );
    assert_eq!(entries[2]["response"]["status"], 400);
}
