//! The HTTP data path against bad input and bad peers: tokens missing,
//! forged or expired; unknown connections; oversized heads; bytes that are
//! not HTTP; clients too slow to finish a request; an upstream that is down
//! or does not answer. Every refusal is a problem document with a reason.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::free_port;
use common::http::{Gateway, Upstream};
use serde_json::Value;

fn start(up: &Upstream) -> Gateway {
    let extra = format!(
        r#"
[plugins.config.http-guardrail]
default = "allow"

[[connections]]
name = "api"
kind = "http"
upstream = "{url}"
response_timeout_ms = 500
allow_groups = ["agents"]
plugins = ["http-guardrail"]

[[connections]]
name = "small"
kind = "http"
upstream = "{url}"
max_request_body_bytes = 65536
allow_groups = ["agents"]
plugins = ["http-guardrail"]

[[connections]]
name = "down"
kind = "http"
upstream = "http://127.0.0.1:{closed}"
connect_timeout_ms = 500
allow_groups = ["agents"]
"#,
        url = up.url(),
        closed = free_port(),
    );
    Gateway::start(&["http-guardrail"], &extra, &[])
}

async fn problem(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    assert_eq!(
        resp.headers()["content-type"],
        "application/problem+json",
        "{status}"
    );
    (status, resp.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_access_and_routing_are_refused_with_reasons() {
    let up = Upstream::start().await;
    let gw = start(&up);
    let client = gw.client();
    let url = gw.https("/api/items");

    let resp = client.get(&url).send().await.unwrap();
    assert!(
        resp.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    let (status, v) = problem(resp).await;
    assert_eq!((status, v["reason"].as_str()), (401, Some("token_missing")));

    let resp = client
        .get(&url)
        .bearer_auth("not.a.token")
        .send()
        .await
        .unwrap();
    let (status, v) = problem(resp).await;
    assert_eq!(
        (status, v["reason"].as_str()),
        (401, Some("token_rejected"))
    );
    assert!(v["token_reason"].is_string(), "{v}");

    let short = gw.token("agent-1", &["agents"], "1s");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let resp = client.get(&url).bearer_auth(&short).send().await.unwrap();
    let (status, v) = problem(resp).await;
    assert_eq!((status, v["token_reason"].as_str()), (401, Some("expired")));

    let outsider = gw.token("agent-2", &["visitors"], "1h");
    let resp = client
        .get(&url)
        .bearer_auth(&outsider)
        .send()
        .await
        .unwrap();
    let (status, v) = problem(resp).await;
    assert_eq!((status, v["reason"].as_str()), (403, Some("access_denied")));
    assert_eq!(v["access_reason"], "not_allowed");

    let token = gw.token("agent-1", &["agents"], "1h");
    for path in ["/nope/items", "/"] {
        let resp = client
            .get(gw.https(path))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        let (status, v) = problem(resp).await;
        assert_eq!(
            (status, v["reason"].as_str()),
            (404, Some("unknown_connection")),
            "{path}"
        );
    }
    // The token anywhere but Authorization would reach the upstream;
    // escaped too: the upstream would decode it (`%65` is `e`), and the
    // normalised path decodes escapes of unreserved characters.
    let escaped: String = token.bytes().map(|b| format!("%{b:02X}")).collect();
    let cookie = format!("session={token}");
    for (target, header) in [
        (url.clone(), Some(("cookie", cookie.as_str()))),
        (format!("{url}?access_token={token}"), None),
        (format!("{url}?access_token={escaped}"), None),
        (
            format!("{url}?access_token={}", escaped.replace('%', "%25")),
            None,
        ),
        (format!("{url}/{token}"), None),
        (format!("{url}/{escaped}"), None),
    ] {
        let mut req = client.get(&target).bearer_auth(&token);
        if let Some((name, value)) = header {
            req = req.header(name, value);
        }
        let (status, v) = problem(req.send().await.unwrap()).await;
        assert_eq!(
            (status, v["reason"].as_str()),
            (400, Some("token_misplaced")),
            "{target} {header:?}"
        );
    }
    // Split across cookies, which a server joining chunked cookies reads
    // as one: in one `Cookie` line, or in several (HTTP/2's crumbs).
    let (head, tail) = token.split_at(token.len() / 2);
    for lines in [
        vec![format!("a={head}; b={tail}")],
        vec![format!("a={head}"), format!("b={tail}")],
        vec![format!("b={tail}; theme=dark"), format!("a={head}")],
    ] {
        let mut req = client.get(&url).bearer_auth(&token);
        for line in &lines {
            req = req.header("cookie", line.as_str());
        }
        let (status, v) = problem(req.send().await.unwrap()).await;
        assert_eq!(
            (status, v["reason"].as_str()),
            (400, Some("token_misplaced")),
            "{lines:?}"
        );
        assert!(v["detail"].as_str().unwrap().contains("cookie"), "{v}");
    }
    // The token as the connection's name: nothing reaches an upstream,
    // and the refusal's record leaves it out (searched below).
    let resp = client
        .get(gw.https(&format!("/{token}/items")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    // TRACE would come back with the injected credential in it. (Refused
    // before the token is looked at, its record still leaves the token
    // out: the log is searched for it below.)
    let resp = client
        .request(
            reqwest::Method::TRACE,
            format!("{url}?access_token={token}"),
        )
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let (status, v) = problem(resp).await;
    assert_eq!(
        (status, v["reason"].as_str()),
        (405, Some("method_not_allowed"))
    );
    assert_eq!(up.count(), 0, "nothing refused reached the upstream");

    // The audit log names each refusal's reason and the connection asked
    // for, as it does for PostgreSQL.
    let want = [
        ("token_missing", "api"),
        ("expired", "api"),
        ("not_allowed", "api"),
        ("unknown_connection", "nope"),
    ];
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        seen = audit_refusals(&gw);
        if want
            .iter()
            .all(|w| seen.iter().any(|s| (s.0.as_str(), s.1.as_str()) == *w))
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    for w in want {
        assert!(
            seen.iter().any(|s| (s.0.as_str(), s.1.as_str()) == w),
            "no refusal {w:?} in the audit log: {seen:?}"
        );
    }
    // A header named with `_` is dropped before the checks and the
    // upstream (README), but the recording keeps the request's headers.
    let before = up.count();
    let resp = client
        .get(&url)
        .bearer_auth(&token)
        .header("x_tok", token.as_str())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(up.count(), before + 1);
    drop(client);

    // The records of the misplaced tokens do not keep them: the audit log
    // and the session recordings.
    for dir in ["state/audit/log", "state/sessions"] {
        let dir = gw.dir.path().join(dir);
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            assert!(!text.contains(&token), "the token is in {:?}", entry.path());
        }
    }
}

/// The token search also reads IIS's `%uXXXX` escapes, in any mix with
/// `%XX`, and HTTP/2's `:authority`, which is no header (HTTP/1.1's `Host`
/// is searched as one): neither reaches the upstream or the audit log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_escaped_for_iis_or_in_the_authority_are_refused_and_not_recorded() {
    let up = Upstream::start().await;
    let gw = start(&up);
    let client = gw.client();
    let token = gw.token("agent-1", &["agents"], "1h");
    let url = gw.https("/api/items");

    let wide: String = token.bytes().map(|b| format!("%u{b:04X}")).collect();
    let mixed: String = token
        .bytes()
        .enumerate()
        .map(|(i, b)| match i % 3 {
            0 => format!("%u{b:04x}"),
            1 => format!("%{b:02X}"),
            _ => (b as char).to_string(),
        })
        .collect();
    for escaped in [&wide, &mixed] {
        for query in [
            format!("access_token={escaped}"),
            format!("access_token={}", escaped.replace('%', "%25")),
        ] {
            let resp = client
                .get(format!("{url}?{query}"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            let (status, v) = problem(resp).await;
            assert_eq!(
                (status, v["reason"].as_str()),
                (400, Some("token_misplaced")),
                "{query}"
            );
        }
    }
    // In the path, `%u` is no escape the gateway forwards: the path is
    // refused before the token is looked at, and its record is searched.
    let resp = client
        .get(format!("{url}/{wide}"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let (status, v) = problem(resp).await;
    assert_eq!((status, v["reason"].as_str()), (400, Some("bad_path")));

    // curl sends its `Host` as HTTP/2's `:authority`, as written. (An
    // escaped token cannot be one: `%` is no character of a host.)
    let auth = format!("Authorization: Bearer {token}");
    let host = format!("Host: {token}");
    let out = gw.curl(&["--http2", "-H", &auth, "-H", &host, &url]);
    assert_eq!(out.version, "2", "{}", out.stderr);
    assert_eq!(out.status, 400, "{}", out.body);
    let v: Value = serde_json::from_str(&out.body).unwrap();
    assert_eq!(v["reason"], "token_misplaced", "{v}");
    assert!(v["detail"].as_str().unwrap().contains("authority"), "{v}");
    // Over HTTP/1.1 it is the Host header.
    let out = gw.curl(&["--http1.1", "-H", &auth, "-H", &host, &url]);
    assert_eq!(out.status, 400, "{}", out.body);
    let v: Value = serde_json::from_str(&out.body).unwrap();
    assert_eq!(v["reason"], "token_misplaced", "{v}");
    assert!(v["detail"].as_str().unwrap().contains("host header"), "{v}");
    assert_eq!(up.count(), 0, "nothing refused reached the upstream");

    // The bad path's refusal is in the audit log, its path without the
    // token; no spelling of the token is anywhere in it.
    let mut paths = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        paths = audit_refusal_paths(&gw, "bad_path");
        if !paths.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(paths, ["[holds the agent token]"]);
    drop(client);
    for dir in ["state/audit/log", "state/sessions"] {
        for entry in std::fs::read_dir(gw.dir.path().join(dir))
            .unwrap()
            .flatten()
        {
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            for spelling in [&token, &wide, &mixed] {
                assert!(
                    !text.contains(spelling.as_str()),
                    "the token is in {:?}",
                    entry.path()
                );
            }
        }
    }
}

/// The recorded path of each refusal for `reason` in the audit log.
fn audit_refusal_paths(gw: &Gateway, reason: &str) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir(gw.dir.path().join("state/audit/log")) else {
        return out;
    };
    for entry in dir.flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        for line in text.lines() {
            let Ok(v) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            if v["kind"] == "connection.refused" && v["detail"]["reason"] == reason {
                out.push(v["detail"]["path"].as_str().unwrap_or("").to_string());
            }
        }
    }
    out
}

/// (reason, connection) of every refusal in the gateway's audit log.
fn audit_refusals(gw: &Gateway) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir(gw.dir.path().join("state/audit/log")) else {
        return out;
    };
    for entry in dir.flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        for line in text.lines() {
            let Ok(v) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            let kind = v["kind"].as_str().unwrap_or("");
            if kind == "identity.refused" || kind == "connection.refused" {
                out.push((
                    v["detail"]["reason"].as_str().unwrap_or("").to_string(),
                    v["connection"].as_str().unwrap_or("").to_string(),
                ));
            }
        }
    }
    out
}

/// What guardrails and upstream could read differently is refused before
/// anything reaches the upstream: a path with an encoded slash or a `;`, a
/// method in another case, a method-override header or parameter, a JSON
/// body with a key twice (ignoring case).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_the_upstream_could_read_otherwise_are_refused() {
    let up = Upstream::start().await;
    let gw = start(&up);
    let client = gw.client();
    let token = gw.token("agent-1", &["agents"], "1h");

    for path in [
        "/api/admin%2Fusers/7",
        "/api/admin%5cusers",
        "/api/admin;x/users/7",
        "/api/v1/..;/admin",
        "/api/admin./users/7",
        "/api/admin%20/users/7",
    ] {
        let resp = client
            .delete(gw.https(path))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        let (status, v) = problem(resp).await;
        assert_eq!(
            (status, v["reason"].as_str()),
            (400, Some("bad_path")),
            "{path}"
        );
        assert!(
            v["detail"]
                .as_str()
                .unwrap()
                .contains("read in different ways"),
            "{v}"
        );
    }

    let lower = reqwest::Method::from_bytes(b"delete").unwrap();
    let resp = client
        .request(lower, gw.https("/api/admin/users/7"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let (status, v) = problem(resp).await;
    assert_eq!(
        (status, v["reason"].as_str()),
        (400, Some("ambiguous_method"))
    );

    let resp = client
        .post(gw.https("/api/admin/users/7"))
        .bearer_auth(&token)
        .header("X-HTTP-Method-Override", "DELETE")
        .send()
        .await
        .unwrap();
    let (status, v) = problem(resp).await;
    assert_eq!(
        (status, v["reason"].as_str()),
        (400, Some("override_header"))
    );

    // `_method` read as the method: in the query string, in a form body,
    // as a key of a JSON body.
    let overrides = [
        ("/api/admin/users/7?_method=DELETE", None, ""),
        ("/api/admin/users/7?a=1&%5FMETHOD=delete", None, ""),
        ("/api/admin/users/7?a=1;_method=DELETE", None, ""),
        ("/api/admin/users/7?%20_method=DELETE", None, ""),
        ("/api/admin/users/7?_method[]=DELETE", None, ""),
        (
            "/api/admin/users/7",
            Some("application/x-www-form-urlencoded"),
            "name=x&_method=DELETE",
        ),
        (
            "/api/admin/users/7",
            Some("application/json"),
            r#"{"_method": "DELETE"}"#,
        ),
        (
            "/api/admin/users/7",
            Some("multipart/form-data; boundary=b1"),
            "--b1\r\nContent-Disposition: form-data; name=\"_method\"\r\n\r\nDELETE\r\n--b1--\r\n",
        ),
    ];
    for (path, content_type, body) in overrides {
        let mut req = client
            .post(gw.https(path))
            .bearer_auth(&token)
            .body(body.to_string());
        if let Some(t) = content_type {
            req = req.header("content-type", t);
        }
        let (status, v) = problem(req.send().await.unwrap()).await;
        assert_eq!(
            (status, v["reason"].as_str()),
            (400, Some("override_parameter")),
            "{path} {body}"
        );
    }

    // The same from curl's own multipart encoder.
    let out = gw.curl(&[
        "-H",
        &format!("Authorization: Bearer {token}"),
        "-F",
        "name=x",
        "-F",
        "_method=DELETE",
        &gw.https("/api/admin/users/7"),
    ]);
    assert_eq!(out.status, 400, "{}", out.body);
    assert!(out.body.contains("override_parameter"), "{}", out.body);

    let resp = client
        .post(gw.https("/api/refunds"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(r#"{"refund": {"amount": 5, "Amount": 5000}}"#)
        .send()
        .await
        .unwrap();
    let (status, v) = problem(resp).await;
    assert_eq!(
        (status, v["reason"].as_str()),
        (400, Some("ambiguous_json"))
    );
    assert!(v["detail"].as_str().unwrap().contains("Amount"), "{v}");
    assert_eq!(up.count(), 0, "nothing refused reached the upstream");

    // The unambiguous forms pass.
    let resp = client
        .post(gw.https("/api/refunds"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"refund": {"amount": 5}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(up.count(), 1);

    // A length with leading zeros goes upstream as the number it is.
    let out = gw.curl(&[
        "-H",
        &format!("Authorization: Bearer {token}"),
        "-H",
        "Content-Length: 010",
        "--data-binary",
        "0123456789",
        &gw.https("/api/v1/items"),
    ]);
    assert_eq!(out.status, 200, "{}", out.body);
    let seen = up.last();
    assert_eq!(seen.headers["content-length"], "10");
    assert_eq!(&seen.body[..], b"0123456789");
}

/// Header names with `_` (`X_Env`), which CGI, WSGI and Rack upstreams read
/// as `X-Env` where a guardrail's rule on `X-Env` does not look: dropped by
/// default, refused or checked for a twin on request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_names_with_underscores_are_dropped_or_refused() {
    let up = Upstream::start().await;
    let gw = start(&up);
    let token = gw.token("agent-1", &["agents"], "1h");
    let out = gw.curl(&[
        "-H",
        &format!("Authorization: Bearer {token}"),
        "-H",
        "X_Env: prod",
        "-H",
        "X_Api_Key: forged",
        "-H",
        "X-Kept: yes",
        &gw.https("/api/v1/items"),
    ]);
    assert_eq!(out.status, 200, "{}", out.body);
    let seen = up.last();
    assert_eq!(seen.headers["x-kept"], "yes");
    for gone in ["x_env", "x_api_key"] {
        assert!(
            !seen.headers.contains_key(gone),
            "{gone} reached the upstream"
        );
    }

    // HTTP/2 carries what HTTP/1.1 parsers trim: a value with whitespace
    // around it would reach the upstream as `prod`, unseen by a rule on
    // `prod`. And `:authority` must agree with `Host`.
    let h2 = gw.client_builder().http2_prior_knowledge().build().unwrap();
    let before = up.count();
    for value in [" prod", "prod\t"] {
        let resp = h2
            .get(gw.http("/api/v1/items"))
            .bearer_auth(&token)
            .header("x-env", value)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.version(), reqwest::Version::HTTP_2);
        let (status, v) = problem(resp).await;
        assert_eq!(
            (status, v["reason"].as_str()),
            (400, Some("bad_header")),
            "{value:?}"
        );
    }
    let resp = h2
        .get(gw.http("/api/v1/items"))
        .bearer_auth(&token)
        .header("host", "elsewhere.example")
        .send()
        .await
        .unwrap();
    let (status, v) = problem(resp).await;
    assert_eq!(
        (status, v["reason"].as_str()),
        (400, Some("ambiguous_host"))
    );
    assert_eq!(up.count(), before);

    let extra = format!(
        "[[connections]]\nname = \"api\"\nkind = \"http\"\nupstream = \"{}\"\nallow_groups = [\"agents\"]\n",
        up.url()
    );
    let refusing = Gateway::start_with_http(&[], "underscore_headers = \"refuse\"", &extra);
    let token = refusing.token("agent-1", &["agents"], "1h");
    let before = up.count();
    let resp = refusing
        .client()
        .get(refusing.https("/api/v1/items"))
        .bearer_auth(&token)
        .header("X_Env", "prod")
        .send()
        .await
        .unwrap();
    let (status, v) = problem(resp).await;
    assert_eq!(
        (status, v["reason"].as_str()),
        (400, Some("underscore_header"))
    );
    assert!(v["detail"].as_str().unwrap().contains("x_env"), "{v}");
    assert_eq!(up.count(), before);

    let passing = Gateway::start_with_http(&[], "underscore_headers = \"pass\"", &extra);
    let token = passing.token("agent-1", &["agents"], "1h");
    let client = passing.client();
    let resp = client
        .get(passing.https("/api/v1/items"))
        .bearer_auth(&token)
        .header("X_Env", "prod")
        .header("X-Env", "dev")
        .send()
        .await
        .unwrap();
    let (status, v) = problem(resp).await;
    assert_eq!(
        (status, v["reason"].as_str()),
        (400, Some("ambiguous_header"))
    );
    assert_eq!(up.count(), before);
    let resp = client
        .get(passing.https("/api/v1/items"))
        .bearer_auth(&token)
        .header("X_Trace", "t1")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(up.last().headers["x_trace"], "t1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_down_is_502_and_slow_is_504() {
    let up = Upstream::start().await;
    let gw = start(&up);
    let token = gw.token("agent-1", &["agents"], "1h");
    let client = gw.client();

    let resp = client
        .get(gw.https("/down/x"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let (status, v) = problem(resp).await;
    assert_eq!(
        (status, v["reason"].as_str()),
        (502, Some("upstream_unavailable"))
    );
    assert!(
        v["detail"].as_str().unwrap().contains("could not connect"),
        "{v}"
    );

    let started = Instant::now();
    let resp = client
        .get(gw.https("/api/slow?ms=3000"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let (status, v) = problem(resp).await;
    assert_eq!(
        (status, v["reason"].as_str()),
        (504, Some("upstream_timeout"))
    );
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_heads_malformed_requests_and_slow_clients_are_bounded() {
    let up = Upstream::start().await;
    let gw = start(&up);
    let token = gw.token("agent-1", &["agents"], "1h");

    // Over `max_header_bytes` (32 KiB here) but within four times it, the
    // head is read whole and answered with a problem naming the limit, on
    // HTTP/1.1 and HTTP/2 alike. (curl's HTTP/2 library sends no header
    // block over 64 KiB.)
    let big = format!("X-Big: {}", "a".repeat(40 * 1024));
    let auth = format!("Authorization: Bearer {token}");
    for version in ["--http1.1", "--http2"] {
        let out = gw.curl(&[version, "-H", &big, "-H", &auth, &gw.https("/api/x")]);
        assert_eq!(out.status, 431, "{version}: {}", out.stderr);
        let v: serde_json::Value = serde_json::from_str(&out.body).unwrap();
        assert_eq!(v["reason"], "head_too_large", "{v}");
        assert!(
            v["detail"].as_str().unwrap().contains("at most 32768"),
            "{v}"
        );
    }
    // The refusal leaves the connection usable: the same pooled client
    // goes on.
    let client = gw.client();
    for (i, big) in [true, false, true, false].into_iter().enumerate() {
        let mut req = client.get(gw.https("/api/x")).bearer_auth(&token);
        if big {
            req = req.header("X-Big", "b".repeat(40 * 1024));
        }
        let status = req.send().await.unwrap().status().as_u16();
        assert_eq!(status, if big { 431 } else { 200 }, "request {i}");
    }
    assert_eq!(up.count(), 2);
    // Past four times the limit the parser answers 431 itself and closes
    // without reading the rest of the head; curl, still sending it, may hit
    // the closed socket first (EPIPE) and never read the answer. That race
    // is the client's: try again. (The header comes from a file: one
    // command-line argument holds at most 128 KiB.)
    let huge_file = gw.dir.path().join("huge-header");
    std::fs::write(&huge_file, format!("X-Big: {}\n", "a".repeat(160 * 1024))).unwrap();
    let huge = format!("@{}", huge_file.display());
    let mut attempts = Vec::new();
    for _ in 0..5 {
        let out = gw.curl(&["--http1.1", "-H", &huge, "-H", &auth, &gw.https("/api/x")]);
        if out.status == 431 {
            break;
        }
        assert_eq!(out.status, 0, "{}", out.stderr);
        attempts.push(out.stderr);
    }
    assert!(attempts.len() < 5, "never answered 431: {attempts:?}");
    // (HTTP/2 past four times the limit is not tried: curl's HTTP/2
    // library sends no header block over 64 KiB, so it would never reach
    // the gateway.)
    assert_eq!(up.count(), 2);

    let mut raw = TcpStream::connect(("127.0.0.1", gw.port)).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    raw.write_all(b"THIS IS NOT HTTP\r\n\r\n").unwrap();
    let mut answer = String::new();
    let _ = raw.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer:?}");

    // A head trickled byte by byte is cut off at the header deadline (1.5 s
    // in these tests; it is answered 408, see
    // `a_request_head_that_stalls_is_answered_408`), as is a connection that
    // never says anything and a body that never arrives.
    let started = Instant::now();
    let mut slow = TcpStream::connect(("127.0.0.1", gw.port)).unwrap();
    slow.write_all(b"GET /api/x HTTP/1.1\r\nHost: a\r\n")
        .unwrap();
    let closed = loop {
        std::thread::sleep(Duration::from_millis(200));
        if slow.write_all(b"X").is_err() || started.elapsed() > Duration::from_secs(10) {
            break started.elapsed();
        }
        let mut probe = [0u8; 1];
        slow.set_nonblocking(true).unwrap();
        let gone = matches!(slow.read(&mut probe), Ok(0));
        slow.set_nonblocking(false).unwrap();
        if gone {
            break started.elapsed();
        }
    };
    assert!(
        closed < Duration::from_secs(4),
        "slowloris held on for {closed:?}"
    );

    let started = Instant::now();
    let mut silent = TcpStream::connect(("127.0.0.1", gw.port)).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 16];
    let n = silent.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0);
    assert!(started.elapsed() < Duration::from_secs(4));

    let mut stalled = TcpStream::connect(("127.0.0.1", gw.port)).unwrap();
    stalled
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let head = format!(
        "POST /api/upload HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {token}\r\nContent-Length: 100\r\n\r\n0123456789"
    );
    stalled.write_all(head.as_bytes()).unwrap();
    let mut answer = String::new();
    let _ = stalled.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
    assert_eq!(up.count(), 2);
}

/// A request head begun and not finished within `header_timeout_ms` is
/// answered 408 with a problem document, on a new connection or a kept-alive
/// one, over TLS too; hyper itself would close without a word. A connection
/// with no head begun is closed without a word at that deadline: a new one
/// that says nothing, and a kept-alive one idle after a response (a client
/// reusing it would read a 408 there as the answer to its next request).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_head_that_stalls_is_answered_408() {
    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    let up = Upstream::start().await;
    let gw = start(&up);
    let token = gw.token("agent-1", &["agents"], "1h");
    let full = format!("GET /api/x HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {token}\r\n\r\n");
    let full = full.as_bytes();
    let partial = b"GET /api/x HTTP/1.1\r\nHost: a\r\n";
    let addr = ("127.0.0.1", gw.port);

    /// Everything until the gateway closes (an error after some bytes, as
    /// TLS without close_notify reports, ends it too).
    async fn rest<S: AsyncRead + Unpin>(stream: &mut S) -> Vec<u8> {
        let mut got = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut got))
            .await
            .expect("the gateway closes the connection");
        got
    }

    // Plain HTTP, a new connection: partial head, 408.
    let fresh = async {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(partial).await.unwrap();
        rest(&mut tcp).await
    };
    // A new connection that says nothing: closed, nothing written.
    let silent = async {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        rest(&mut tcp).await
    };
    // A kept-alive connection, one whole exchange first; then idle: closed,
    // nothing written. (The read sees the end of the stream, not an error.)
    let idle = async {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(full).await.unwrap();
        let first = read_response(&mut tcp).await;
        let mut after = Vec::new();
        let n = tokio::time::timeout(Duration::from_secs(30), tcp.read_to_end(&mut after))
            .await
            .expect("the gateway closes an idle connection")
            .expect("a clean end of stream");
        assert_eq!(n, 0);
        (first, after)
    };
    // The same, then a partial head: 408.
    let kept_alive = async {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(full).await.unwrap();
        let first = read_response(&mut tcp).await;
        tcp.write_all(partial).await.unwrap();
        (first, rest(&mut tcp).await)
    };
    // TLS: a partial head, 408; nothing after the handshake, no answer.
    let pem = std::fs::read(gw.cert()).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::pem::PemObject::pem_slice_iter(&pem) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tls = |head: &'static [u8]| {
        let connector = connector.clone();
        async move {
            let tcp = TcpStream::connect(addr).await.unwrap();
            let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
            let mut tls = connector.connect(name, tcp).await.unwrap();
            tls.write_all(head).await.unwrap();
            rest(&mut tls).await
        }
    };

    let (fresh, silent, (first, idle), (second, kept_alive), tls_partial, tls_silent) =
        tokio::join!(fresh, silent, idle, kept_alive, tls(partial), tls(b""));

    let check = |answer: &[u8]| {
        let answer = String::from_utf8_lossy(answer);
        let timed_out = answer
            .strip_prefix("HTTP/1.1 408 Request Timeout\r\n")
            .unwrap_or_else(|| panic!("no 408: {answer}"));
        let (head, body) = timed_out.split_once("\r\n\r\n").unwrap();
        assert!(
            head.contains("content-type: application/problem+json"),
            "{head}"
        );
        assert!(head.contains("connection: close"), "{head}");
        let v: Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["status"], 408, "{v}");
        assert_eq!(v["reason"], "header_timeout", "{v}");
        assert!(v["detail"].as_str().unwrap().contains("1500 ms"), "{v}");
    };
    check(&fresh);
    check(&kept_alive);
    check(&tls_partial);
    for (what, answer) in [("new", &silent), ("idle", &idle), ("TLS", &tls_silent)] {
        assert!(
            answer.is_empty(),
            "{what} connection with no head begun was sent {:?}",
            String::from_utf8_lossy(answer)
        );
    }
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    assert!(second.starts_with("HTTP/1.1 200"), "{second}");
    assert_eq!(up.count(), 2);

    // The idle connection's session ends as a connection ending did before
    // the 408, the stalled one as a header timeout.
    let mut endings = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        endings = audit_session_endings(&gw);
        if endings.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    endings.sort();
    assert_eq!(endings, ["connection_error", "header_timeout"]);
}

/// One whole HTTP/1.1 response (Content-Length or chunked), read without
/// reading past it.
async fn read_response<S: tokio::io::AsyncRead + Unpin>(stream: &mut S) -> String {
    use tokio::io::AsyncReadExt;

    fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
        hay.windows(needle.len()).position(|w| w == needle)
    }
    fn complete(got: &[u8]) -> bool {
        let Some(head_end) = find(got, b"\r\n\r\n").map(|i| i + 4) else {
            return false;
        };
        let head = String::from_utf8_lossy(&got[..head_end]).to_ascii_lowercase();
        let body = &got[head_end..];
        match head.lines().find_map(|l| l.strip_prefix("content-length:")) {
            Some(len) => body.len() >= len.trim().parse::<usize>().unwrap(),
            None => {
                assert!(head.contains("transfer-encoding: chunked"), "{head}");
                body.starts_with(b"0\r\n\r\n") || body.ends_with(b"\r\n0\r\n\r\n")
            }
        }
    }

    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !complete(&got) {
        let n = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut buf))
            .await
            .expect("a response")
            .unwrap();
        assert!(
            n > 0,
            "closed mid-response: {:?}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// The `ending` of every HTTP session in the gateway's audit log.
fn audit_session_endings(gw: &Gateway) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir(gw.dir.path().join("state/audit/log")) else {
        return out;
    };
    for entry in dir.flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        for line in text.lines() {
            let Ok(v) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            if v["kind"] == "session.end" && v["detail"]["protocol"] == "http" {
                out.push(v["detail"]["ending"].as_str().unwrap_or("").to_string());
            }
        }
    }
    out
}

/// A client that sends its whole body before it reads the answer (Python's
/// requests, Node's fetch) reads the refusal, not a reset: the gateway reads
/// and discards what it will not use.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_bodies_are_read_so_the_refusal_arrives() {
    let up = Upstream::start().await;
    let gw = start(&up);
    let token = gw.token("agent-1", &["agents"], "1h");
    let body = vec![b'x'; 16 << 20];

    // HTTP/1.1: over the body limit (declared), and with a token refused
    // before the body is looked at; the connection then serves the next
    // request.
    // (Without an accepted token, at most 8 MiB are read.)
    for (path, auth, len, status) in [
        ("/small/upload", token.as_str(), body.len(), "413"),
        ("/small/upload", "not-a-token", 6 << 20, "401"),
    ] {
        let mut tcp = TcpStream::connect(("127.0.0.1", gw.port)).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {auth}\r\nContent-Length: {len}\r\n\r\n"
        );
        tcp.write_all(head.as_bytes()).unwrap();
        tcp.write_all(&body[..len]).unwrap();
        let next =
            format!("GET /small/x HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {token}\r\n\r\n");
        tcp.write_all(next.as_bytes()).unwrap();
        let answer = read_until(&mut tcp, "HTTP/1.1 200", Vec::new());
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}")),
            "{answer}"
        );
        assert!(answer.contains("application/problem+json"), "{answer}");
    }

    // HTTP/2: the stream ends with the answer, not with a reset that some
    // clients (Debian 12's curl) report instead of it.
    let file = gw.dir.path().join("16mb");
    std::fs::write(&file, &body).unwrap();
    let data = format!("@{}", file.display());
    let auth = format!("Authorization: Bearer {token}");
    let out = gw.curl(&[
        "--http2",
        "-H",
        "Expect:",
        "-H",
        &auth,
        "--data-binary",
        &data,
        &gw.https("/small/upload"),
    ]);
    assert_eq!(out.status, 413, "{}", out.stderr);
    assert!(out.body.contains("body_too_large"), "{}", out.body);
    // With `Expect: 100-continue` and a body of unknown length, the gateway
    // asks for the body (to inspect it), then refuses it: the rest is read
    // too, so a client that sends it all after the 100 still gets the 413.
    // (Over a declared `Content-Length` it answers before asking.)
    let mut tcp = TcpStream::connect(("127.0.0.1", gw.port)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let head = format!(
        "POST /small/upload HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {token}\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    tcp.write_all(head.as_bytes()).unwrap();
    let mut answer = read_until(&mut tcp, "100 Continue\r\n\r\n", Vec::new());
    tcp.write_all(format!("{:x}\r\n", body.len()).as_bytes())
        .unwrap();
    tcp.write_all(&body).unwrap();
    tcp.write_all(b"\r\n0\r\n\r\n").unwrap();
    let _ = tcp.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.contains("HTTP/1.1 413"), "{answer}");
    assert_eq!(up.count(), 2);
}

/// Reads from `tcp` onto `answer` until it holds `needle`; the connection
/// closing first fails the test.
fn read_until(tcp: &mut TcpStream, needle: &str, mut answer: Vec<u8>) -> Vec<u8> {
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&answer).contains(needle) {
        let n = tcp.read(&mut buf).unwrap();
        assert!(n > 0, "closed after {:?}", String::from_utf8_lossy(&answer));
        answer.extend_from_slice(&buf[..n]);
    }
    answer
}

/// HTTP/2 has no head timer in hyper: a connection that has not completed
/// its first request at the header deadline (1.5 s here) is closed, whether
/// it stalls after the preface, inside a header block, or inside the
/// preface itself; a connection that completed one stays open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_connections_without_a_request_are_closed_at_the_header_deadline() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    const SETTINGS: &[u8] = &[0, 0, 0, 4, 0, 0, 0, 0, 0];
    // HEADERS on stream 1 without END_HEADERS: `:method: GET` (indexed 2)
    // and nothing more, the CONTINUATION never sent.
    const HEADERS: &[u8] = &[0, 0, 1, 1, 0, 0, 0, 0, 1, 0x82];

    let up = Upstream::start().await;
    let gw = start(&up);
    let addr = ("127.0.0.1", gw.port);

    /// Sends `chunks` one after another (`pause` apart), then reads until
    /// the gateway closes: how long that took.
    async fn held(addr: (&str, u16), chunks: &[&[u8]], pause: Duration) -> Duration {
        let started = Instant::now();
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        for c in chunks {
            if tcp.write_all(c).await.is_err() {
                break;
            }
            tokio::time::sleep(pause).await;
        }
        let mut sink = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(30), tcp.read_to_end(&mut sink)).await;
        started.elapsed()
    }

    let after_preface = held(addr, &[PREFACE, SETTINGS], Duration::ZERO).await;
    let in_header_block = held(addr, &[PREFACE, SETTINGS, HEADERS], Duration::ZERO).await;
    let bytes: Vec<&[u8]> = PREFACE.chunks(1).collect();
    let trickled_preface = held(addr, &bytes, Duration::from_millis(300)).await;
    for (what, took) in [
        ("after the preface", after_preface),
        ("inside a header block", in_header_block),
        ("inside the preface", trickled_preface),
    ] {
        assert!(took < Duration::from_secs(4), "{what}: held for {took:?}");
    }

    // A connection whose first request completed is not cut at that
    // deadline: it is idle, and bounded by the idle timeout.
    let token = gw.token("agent-1", &["agents"], "1h");
    let h2 = gw.client_builder().http2_prior_knowledge().build().unwrap();
    for _ in 0..2 {
        let resp = h2
            .get(gw.http("/api/x"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.version(), reqwest::Version::HTTP_2);
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// RFC 9112 (3.2): an HTTP/1.1 request without a Host is answered 400
/// (an upstream could read it as any of its virtual hosts); HTTP/1.0 has
/// no such rule.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http11_request_without_host_is_refused() {
    let up = Upstream::start().await;
    let gw = start(&up);
    let token = gw.token("agent-1", &["agents"], "1h");
    let send = |request: String| {
        let mut tcp = TcpStream::connect(("127.0.0.1", gw.port)).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        tcp.write_all(request.as_bytes()).unwrap();
        let mut answer = String::new();
        let _ = tcp.read_to_string(&mut answer);
        answer
    };
    let answer = send(format!(
        "GET /api/x HTTP/1.1\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    ));
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("missing_host"), "{answer}");
    let answer = send(format!(
        "GET /api/x HTTP/1.0\r\nAuthorization: Bearer {token}\r\n\r\n"
    ));
    assert!(
        answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200"),
        "{answer}"
    );
    assert_eq!(up.count(), 1);
}

/// A JWT's header is every token's of the same key: its payload or its
/// signature alone is the agent's token, in a body read for the
/// guardrails (and an MCP message) as much as in a streamed one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jwts_payload_or_signature_in_a_body_is_the_token() {
    let up = Upstream::start().await;
    let gw = start(&up);
    let token = gw.token("agent-1", &["agents"], "1h");
    let segments: Vec<&str> = token.split('.').collect();
    let (payload, signature) = (segments[1], segments[2]);
    let client = gw.client();
    for body in [
        format!(r#"{{"a":"{signature}"}}"#),
        format!(r#"{{"a":"{payload}"}}"#),
        format!("q={payload}.{signature}"),
    ] {
        let resp = client
            .post(gw.https("/api/echo"))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let (status, v) = problem(resp).await;
        assert_eq!(status, 400, "{body}: {v}");
        assert_eq!(v["reason"], "token_misplaced", "{body}: {v}");
    }
    assert_eq!(up.count(), 0);
}

/// A refusal of a HEAD carries its status and headers without content:
/// over HTTP/2 a body after it made clients reset the stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_of_head_requests_have_no_body() {
    let up = Upstream::start().await;
    let gw = start(&up);
    let token = gw.token("agent-1", &["agents"], "1h");
    let auth = format!("Authorization: Bearer {token}");
    for version in ["--http1.1", "--http2"] {
        let out = gw.curl(&[version, "-I", &gw.https("/api/x")]);
        assert_eq!(out.status, 401, "{version}: {}", out.stderr);
        let out = gw.curl(&[version, "-I", "-H", &auth, &gw.https("/nowhere/x")]);
        assert_eq!(out.status, 404, "{version}: {}", out.stderr);
        let out = gw.curl(&[version, "-I", "-H", &auth, &gw.https("/api/x")]);
        assert_eq!(out.status, 200, "{version}: {}", out.stderr);
    }
}
