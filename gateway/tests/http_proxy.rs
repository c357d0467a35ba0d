//! The HTTP data path end to end, transport side: curl and reqwest through
//! the `sluice` binary to a real upstream (hyper, plain and TLS), with
//! credential injection, the common methods, large bodies both ways,
//! chunked responses, HTTP/2 and keep-alive.

mod common;

use common::http::{Gateway, Upstream, sha256_hex};

/// Connections to `up` without plugins: `plain` injects a bearer token,
/// `keyed` an API-key header read from a file, `basic` basic auth.
fn start(up: &Upstream) -> Gateway {
    let extra = format!(
        r#"
[[connections]]
name = "plain"
kind = "http"
upstream = "{url}/base"
credential = "bearer"
credential_env = "UPSTREAM_TOKEN"
allow_groups = ["agents"]

[[connections]]
name = "keyed"
kind = "http"
upstream = "{url}"
credential = "header"
credential_header = "X-Api-Key"
credential_file = "api-key.txt"
allow_groups = ["agents"]

[[connections]]
name = "basic"
kind = "http"
upstream = "{url}"
credential = "basic"
credential_user = "svc"
credential_env = "UPSTREAM_PASSWORD"
allow_groups = ["agents"]
"#,
        url = up.url()
    );
    Gateway::start_with_files(
        &[],
        &extra,
        &[
            ("UPSTREAM_TOKEN", "upstream-secret"),
            ("UPSTREAM_PASSWORD", "pw"),
        ],
        &[("api-key.txt", "key-from-file\n")],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn methods_reach_the_upstream_with_its_credential_and_never_the_token() {
    let up = Upstream::start().await;
    let gw = start(&up);
    let token = gw.token("agent-1", &["agents"], "1h");
    let client = gw.client();

    for method in ["GET", "POST", "PUT", "DELETE", "PATCH"] {
        let body = format!("{{\"via\":\"{method}\"}}");
        let resp = client
            .request(
                method.parse().unwrap(),
                gw.https("/plain/v1/items/7?fields=a,b&x=%20y"),
            )
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .header("x-agent-header", "kept")
            .header("x-real-ip", "9.9.9.9")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let status = resp.status();
        assert_eq!(status, 200, "{method}: {}", resp.text().await.unwrap());
        let seen = up.last();
        assert_eq!(seen.method.as_str(), method);
        assert_eq!(seen.uri, "/base/v1/items/7?fields=a,b&x=%20y");
        assert_eq!(seen.headers["authorization"], "Bearer upstream-secret");
        assert_eq!(seen.headers["x-agent-header"], "kept");
        assert_eq!(seen.headers["content-type"], "application/json");
        assert_eq!(seen.headers["x-forwarded-for"], "127.0.0.1");
        assert_eq!(seen.headers["x-forwarded-proto"], "https");
        assert!(
            seen.headers.get("x-real-ip").is_none(),
            "a client address the agent wrote"
        );
        // The upstream's own name, not the gateway's the agent used.
        assert_eq!(
            seen.headers["host"],
            up.url().trim_start_matches("http://"),
            "{method}"
        );
        assert_eq!(seen.headers.get_all("host").iter().count(), 1);
        assert!(
            seen.headers["forwarded"]
                .to_str()
                .unwrap()
                .contains("proto=https")
        );
        assert_eq!(&seen.body[..], body.as_bytes(), "{method}: body changed");
        let all: String = seen
            .headers
            .iter()
            .map(|(k, v)| format!("{k}: {}\n", v.to_str().unwrap_or("")))
            .collect();
        assert!(
            !all.contains(&token),
            "the agent's token went upstream:\n{all}"
        );
    }

    let resp = client
        .get(gw.https("/keyed/k"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let seen = up.last();
    assert_eq!(seen.headers["x-api-key"], "key-from-file");
    assert!(!seen.headers.contains_key("authorization"));

    let resp = client
        .get(gw.https("/basic/b"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // base64("svc:pw")
    assert_eq!(up.last().headers["authorization"], "Basic c3ZjOnB3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_over_http1_and_http2_with_keep_alive() {
    let up = Upstream::start().await;
    let gw = start(&up);
    let token = gw.token("agent-1", &["agents"], "1h");
    let auth = format!("Authorization: Bearer {token}");

    for (version_flag, expected) in [("--http1.1", "1.1"), ("--http2", "2")] {
        for (method, data) in [
            ("GET", None),
            ("POST", Some("a=1")),
            ("PUT", Some("{}")),
            ("DELETE", None),
        ] {
            let url = gw.https("/plain/curl/x");
            let mut args = vec![version_flag, "-X", method, "-H", &auth, &url];
            if let Some(d) = data {
                args.extend(["--data-binary", d]);
            }
            let out = gw.curl(&args);
            assert_eq!(
                out.status, 200,
                "{method} {version_flag}: {}{}",
                out.body, out.stderr
            );
            assert_eq!(out.version, expected);
            let seen = up.last();
            assert_eq!(seen.method.as_str(), method);
            assert_eq!(&seen.body[..], data.unwrap_or("").as_bytes());
            assert_eq!(seen.headers["authorization"], "Bearer upstream-secret");
        }
    }

    // Two requests in one curl run share the connection (and the token is
    // verified once for it).
    let first = gw.https("/plain/one");
    let second = gw.https("/plain/two");
    let out = std::process::Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "-o", "/dev/null", "--cacert"])
        .arg(gw.cert())
        .args(["-H", &auth, "-w", "%{num_connects} ", &first, &second])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1 0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_bodies_and_chunked_responses_stream_through() {
    let up = Upstream::start().await;
    let gw = start(&up);
    let token = gw.token("agent-1", &["agents"], "1h");
    let client = gw.client();

    let upload: Vec<u8> = (0..24 * 1024 * 1024u32).map(|i| (i % 253) as u8).collect();
    let resp = client
        .post(gw.https("/plain/upload"))
        .bearer_auth(&token)
        .body(upload.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["len"], upload.len());
    assert_eq!(v["sha256"], sha256_hex(&upload));

    let file = gw.dir.path().join("upload.bin");
    std::fs::write(&file, &upload[..8 * 1024 * 1024]).unwrap();
    let data = format!("@{}", file.display());
    let auth = format!("Authorization: Bearer {token}");
    let out = gw.curl(&[
        "--http2",
        "-H",
        &auth,
        "--data-binary",
        &data,
        &gw.https("/plain/upload"),
    ]);
    assert_eq!(out.status, 200, "{}", out.stderr);
    assert!(out.body.contains(&sha256_hex(&upload[..8 * 1024 * 1024])));

    let n = 48 * 1024 * 1024;
    let resp = client
        .get(gw.https(&format!("/plain/download?bytes={n}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.content_length(), Some(n as u64));
    let body = resp.bytes().await.unwrap();
    let expected: Vec<u8> = (0..n).map(|i| (i % 251) as u8).collect();
    assert_eq!(body.len(), n);
    assert!(body[..] == expected[..], "download corrupted");

    let resp = client
        .get(gw.https("/plain/chunked?chunks=20"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.content_length(), None, "streamed, not buffered");
    let text = resp.text().await.unwrap();
    let expected: String = (0..20).map(|i| format!("chunk {i}\n")).collect();
    assert_eq!(text, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_upstreams_are_verified_against_the_configured_ca_and_speak_http2() {
    let up = Upstream::start_tls().await;
    let ca = up.ca_pem.clone().unwrap();
    let extra = format!(
        r#"
[[connections]]
name = "private"
kind = "http"
upstream = "{url}"
ca_file = "upstream-ca.pem"
allow_groups = ["agents"]

[[connections]]
name = "untrusted"
kind = "http"
upstream = "{url}"
allow_groups = ["agents"]
"#,
        url = up.url()
    );
    let gw = Gateway::start_with_files(&[], &extra, &[], &[("upstream-ca.pem", &ca)]);
    let token = gw.token("agent-1", &["agents"], "1h");
    let client = gw.client_builder().http1_only().build().unwrap();

    let resp = client
        .get(gw.https("/private/hello"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    assert_eq!(
        up.last().version,
        hyper::Version::HTTP_2,
        "h2 by ALPN upstream"
    );

    let resp = client
        .get(gw.https("/untrusted/hello"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 502);
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["reason"], "upstream_unavailable");
    assert_eq!(up.count(), 1, "the untrusted upstream got nothing");
}

/// Redirects naming the upstream come back through the gateway, as nginx's
/// default `proxy_redirect` does: following them keeps the agent on the
/// gateway, its guardrails and its audit trail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_into_the_upstream_point_back_through_the_gateway() {
    let up = Upstream::start().await;
    let gw = start(&up);
    let token = gw.token("agent-1", &["agents"], "1h");
    let client = gw
        .client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let outside = format!("{}/outside", up.url());
    let climbed = format!("{}/billing/x", up.url());
    for (path, location) in [
        ("/plain/redirect", "/plain/moved/here?x=1"),
        ("/plain/redirect-path", "/plain/moved/here"),
        // Outside the connection's base path: nothing to point it at.
        ("/plain/redirect-out", outside.as_str()),
        // Read against the gateway's URL, `../../billing/x` would land on
        // another connection: it names the upstream instead.
        ("/plain/redirect-climb", climbed.as_str()),
    ] {
        let resp = client
            .get(gw.https(path))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 302, "{path}");
        assert_eq!(resp.headers()["location"], location, "{path}");
    }
    // Followed, the redirect reaches the upstream through the gateway, with
    // the injected credential.
    let auth = format!("Authorization: Bearer {token}");
    let out = gw.curl(&["-L", "-H", &auth, &gw.https("/plain/redirect")]);
    assert_eq!(out.status, 200, "{}", out.stderr);
    let last = up.last();
    assert_eq!(last.uri, "/base/moved/here?x=1");
    assert_eq!(last.headers["authorization"], "Bearer upstream-secret");
}
