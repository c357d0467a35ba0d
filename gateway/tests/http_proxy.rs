//! The HTTP data path end to end, transport side: curl and reqwest through
//! the `sluice` binary to a real upstream (hyper, plain and TLS), with
//! credential injection, the common methods, large bodies both ways,
//! chunked responses, HTTP/2 and keep-alive.

mod common;

use common::http::{Gateway, Upstream, sha256_hex};
use serde_json::Value;

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

const ECHO_KEY: &str = "MCP_SECRET_KEY_ABC/x+y=";
const ECHO_PASSWORD: &str = "correct-horse-battery";
const MARKER: &str = "[sluice: upstream credential]";

/// Connections without maskers whose credential an echoing upstream hands
/// back: an API-key header, a bearer token, basic auth; recorded with
/// bodies.
fn start_echo(up: &Upstream) -> Gateway {
    let extra = format!(
        r#"
[recording]
http_body_bytes = 65536

[[connections]]
name = "keyed"
kind = "http"
upstream = "{url}"
credential = "header"
credential_header = "X-Api-Key"
credential_env = "ECHO_KEY"
allow_groups = ["agents"]

[[connections]]
name = "bearer"
kind = "http"
upstream = "{url}"
credential = "bearer"
credential_env = "ECHO_KEY"
allow_groups = ["agents"]

[[connections]]
name = "basic"
kind = "http"
upstream = "{url}"
credential = "basic"
credential_user = "svc"
credential_env = "ECHO_PASSWORD"
allow_groups = ["agents"]
"#,
        url = up.url()
    );
    Gateway::start(
        &[],
        &extra,
        &[("ECHO_KEY", ECHO_KEY), ("ECHO_PASSWORD", ECHO_PASSWORD)],
    )
}

/// Every spelling of the credentials an echo could carry them in.
fn credential_spellings() -> Vec<String> {
    use base64::Engine as _;
    let b64 = &base64::engine::general_purpose::STANDARD;
    let mut out = Vec::new();
    for secret in [ECHO_KEY, ECHO_PASSWORD] {
        out.push(secret.to_string());
        out.push(secret.replace('/', "\\/"));
        out.push(
            secret
                .chars()
                .map(|c| format!("\\u{:04x}", c as u32))
                .collect(),
        );
        out.push(secret.bytes().map(|b| format!("%{b:02X}")).collect());
        out.push(b64.encode(secret).trim_end_matches('=').to_string());
    }
    out.push(b64.encode(format!("svc:{ECHO_PASSWORD}")));
    out
}

fn assert_no_credential(text: &str, what: &str) {
    for spelling in credential_spellings() {
        assert!(
            !text.contains(&spelling),
            "{what} holds {spelling:?}:\n{text}"
        );
    }
}

/// What the gateway wrote, once every recorded session has ended (the
/// agents' connections closed): its audit log and session recordings.
async fn written_when_ended(gw: &Gateway) -> String {
    for _ in 0..150 {
        let ended = std::fs::read_dir(gw.dir.path().join("state/sessions"))
            .into_iter()
            .flatten()
            .flatten()
            .all(|e| {
                std::fs::read_to_string(e.path()).is_ok_and(|t| t.contains("{\"type\":\"end\""))
            });
        if ended {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    written(gw)
}

/// What the gateway wrote: its audit log and session recordings.
fn written(gw: &Gateway) -> String {
    let mut all = String::new();
    for dir in ["state/audit/log", "state/sessions"] {
        let Ok(entries) = std::fs::read_dir(gw.dir.path().join(dir)) else {
            continue;
        };
        for entry in entries.flatten() {
            all.push_str(&std::fs::read_to_string(entry.path()).unwrap_or_default());
        }
    }
    all
}

/// An upstream that echoes its request (httpbin's `/anything`) would hand
/// the agent the credential the gateway added. A small body is read whole
/// and the credential replaced, in every spelling an echo uses (JSON
/// escapes, percent-encoding, base64, basic auth's encoded pair and its
/// password), compressed too; the JSON stays JSON and its length is fixed
/// up. Response headers and the reason phrase are cleaned likewise, and
/// nothing the gateway records holds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_echoing_the_credential_never_hands_it_to_the_agent() {
    let up = Upstream::start().await;
    let gw = start_echo(&up);
    let token = gw.token("agent-1", &["agents"], "1h");
    let client = gw.client();

    for conn in ["keyed", "bearer", "basic"] {
        for query in [
            "",
            "?style=php",
            "?style=unicode",
            "?style=percent",
            "?style=base64",
            "?gzip=1",
        ] {
            let what = format!("/{conn}/anything{query}");
            let resp = client
                .get(gw.https(&what))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200, "{what}");
            let h = resp.headers().clone();
            let body = resp.bytes().await.unwrap();
            let length: usize = h["content-length"].to_str().unwrap().parse().unwrap();
            assert_eq!(length, body.len(), "{what}: Content-Length fixed up");
            assert!(h.get("content-encoding").is_none(), "{what}: sent decoded");
            assert!(h.get("etag").is_none(), "{what}: the validator is stale");
            let text = String::from_utf8(body.to_vec()).unwrap();
            let v: Value =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{what}: {e}\n{text}"));
            assert!(text.contains(MARKER), "{what}: {text}");
            assert_no_credential(&text, &what);
            let headers = &v["headers"];
            match conn {
                // In base64, the last characters also carry what follows.
                "keyed" if !query.contains("base64") => {
                    assert_eq!(headers["x-api-key"], MARKER, "{what}")
                }
                "bearer" if query.is_empty() => {
                    assert_eq!(headers["authorization"], format!("Bearer {MARKER}"))
                }
                "basic" if query.is_empty() => {
                    assert_eq!(headers["authorization"], format!("Basic {MARKER}"));
                    assert_eq!(headers["password"], MARKER);
                }
                _ => {}
            }
        }
    }
    // The upstream is asked only for codings the gateway can decode, and an
    // answer in another one is refused rather than passed on unsearched.
    let resp = client
        .get(gw.https("/keyed/anything"))
        .bearer_auth(&token)
        .header("accept-encoding", "zstd, br;q=0.9, gzip, *;q=0.1")
        .send()
        .await
        .unwrap();
    let v: Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
    assert_eq!(v["headers"]["accept-encoding"], "br;q=0.9, gzip");
    for what in [
        "/keyed/anything?coding=zstd",
        "/keyed/anything?coding=gzip,%20gzip",
    ] {
        let resp = client
            .get(gw.https(what))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 502, "{what}");
        let text = resp.text().await.unwrap();
        assert!(text.contains("unsearchable_response"), "{what}: {text}");
        assert_no_credential(&text, what);
    }
    // In UTF-16, as sent.
    let resp = client
        .get(gw.https("/keyed/anything?utf16=1"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body = resp.bytes().await.unwrap();
    for form in [
        ECHO_KEY
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect::<Vec<u8>>(),
        ECHO_KEY.as_bytes().to_vec(),
    ] {
        assert!(!body.windows(form.len()).any(|w| w == form), "{body:?}");
    }

    // A body that does not hold it is passed as sent, validators and all.
    let resp = client
        .get(gw.https("/keyed/emails"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), common::http::EMAILS_JSON);

    // Headers: values (a cookie, a redirect, a link) and the reason phrase.
    let resp = client
        .get(gw.https("/bearer/echo-headers"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let h = resp.headers();
    assert_eq!(h["x-echo"], format!("Bearer {MARKER}").as_str());
    assert_eq!(
        h["set-cookie"],
        format!("k=Bearer {MARKER}; Path=/").as_str()
    );
    assert_eq!(
        h["location"],
        format!("/bearer/next?key=%42%65%61%72%65%72%20{MARKER}").as_str()
    );
    assert_eq!(
        h["link"],
        format!("<https://elsewhere.example/?k=Bearer {MARKER}>; rel=\"next\"").as_str()
    );
    assert_eq!(h["x-plain"], "nothing to hide");
    let out = gw.curl(&[
        "-i",
        "--http1.1",
        "-H",
        &format!("Authorization: Bearer {token}"),
        &gw.https("/keyed/echo-headers"),
    ]);
    assert!(out.body.starts_with("HTTP/1.1 200 OK\r\n"), "{}", out.body);
    assert_no_credential(&out.body, "the response head");
    drop(client);

    let all = written_when_ended(&gw).await;
    assert_no_credential(&all, "what the gateway wrote");
    assert!(all.contains(MARKER));
}

/// A body that is not read whole (no declared length, or large) is searched
/// as it streams and cut where the credential begins: no byte of it
/// leaves, however the upstream's writes split it. The exchange is
/// recorded as cut.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_echoing_the_credential_is_cut_before_it() {
    let up = Upstream::start().await;
    let gw = start_echo(&up);
    let token = gw.token("agent-1", &["agents"], "1h");
    let client = gw.client();

    for (path, before) in [
        ("/keyed/echo-sse", "data: first\n\ndata: {\"seen\":\""),
        (
            "/bearer/echo-sse",
            "data: first\n\ndata: {\"seen\":\"Bearer ",
        ),
        (
            "/keyed/anything?chunked=1",
            "{\"url\":\"/anything?chunked=1\"",
        ),
    ] {
        let mut resp = client
            .get(gw.https(path))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        let mut received = Vec::new();
        let mut failed = false;
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => received.extend_from_slice(&chunk),
                Ok(None) => break,
                Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
        let received = String::from_utf8_lossy(&received).into_owned();
        assert!(failed, "{path}: the stream ended normally: {received}");
        assert_no_credential(&received, path);
        assert!(
            received.starts_with(before) || before.starts_with(&received),
            "{path}: {received:?}"
        );
        if path.ends_with("sse") {
            // Nothing of the credential itself, not even its first bytes.
            // (What came before it usually arrives too, but a body that
            // fails can take hyper's last queued bytes with it.)
            assert!(before.starts_with(&received), "{path}: {received:?}");
        }
    }
    drop(client);

    // The recordings say the exchanges did not complete; the audit log
    // names why.
    let mut cut = 0;
    for _ in 0..100 {
        cut = written(&gw).matches("credential_echoed").count();
        if cut >= 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(cut >= 3, "{}", written(&gw));
    assert_no_credential(&written_when_ended(&gw).await, "what the gateway wrote");
}

/// On a connection without guardrails the body streams to the upstream
/// unread; it is searched as it goes, and an upload carrying the agent's
/// token is aborted before the bytes that complete it leave: the agent
/// gets `token_misplaced`, the upstream never a whole request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_in_a_streamed_request_body_aborts_the_upload() {
    let up = Upstream::start().await;
    let gw = start_echo(&up);
    let token = gw.token("agent-1", &["agents"], "1h");
    let client = gw.client();
    let mut big: Vec<u8> = (0..4 * 1024 * 1024u32)
        .map(|i| b'a' + (i % 26) as u8)
        .collect();
    big.extend_from_slice(format!("\"t\":\"{token}\"}}").as_bytes());
    let escaped: String = token
        .chars()
        .map(|c| format!("\\u{:04x}", c as u32))
        .collect();

    for body in [
        format!("{{\"t\":\"{token}\"}}").into_bytes(),
        format!("{{\"t\":\"{escaped}\"}}").into_bytes(),
        big.clone(),
    ] {
        let resp = client
            .post(gw.https("/keyed/upload"))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{}", body.len());
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["reason"], "token_misplaced", "{v}");
        assert!(
            v["detail"].as_str().unwrap().contains("request body"),
            "{v}"
        );
    }
    for seen in up.seen.lock().unwrap().iter() {
        let text = String::from_utf8_lossy(&seen.body);
        assert!(
            !text.contains(&token) && !text.contains(&escaped),
            "upstream got the token"
        );
        assert!(
            seen.body.len() < big.len(),
            "the upstream got the whole upload"
        );
    }
    // Bodies without it still stream through.
    let resp = client
        .post(gw.https("/keyed/upload"))
        .bearer_auth(&token)
        .body(big[..big.len() - token.len()].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    drop(client);
    let all = written_when_ended(&gw).await;
    assert!(
        !all.contains(&token),
        "the token is in what the gateway wrote"
    );
}
