//! The HTTP data path end to end, policy side: the first-party
//! `http-guardrail` and the `mask-email` test masker in the `sluice` binary,
//! between reqwest/curl and a real upstream: denials with reasons,
//! byte-identical forwarding of what is allowed, masked JSON (also gzip),
//! text and event streams, and MCP tool calls.

mod common;

use common::http::{Gateway, Upstream};
use serde_json::{Value, json};

fn start(up: &Upstream) -> Gateway {
    let extra = format!(
        r#"
[plugins.config.http-guardrail]
default = "allow"

[[plugins.config.http-guardrail.rules]]
name = "no-admin-delete"
methods = ["DELETE"]
path = "/admin/*"
action = "deny"
reason = "agents may not delete admin resources"

[[plugins.config.http-guardrail.rules]]
name = "big-refunds"
methods = ["POST"]
path = "/refunds"
body = [{{ pointer = "/amount", greater_than = 1000 }}]
action = "require-approval"

[[plugins.config.http-guardrail.tools]]
name = "no-destructive-tools"
tools = ["delete_*"]
action = "deny"
reason = "destructive tools are not for agents"

[[plugins.config.http-guardrail.tools]]
name = "big-payments"
tools = ["pay"]
arguments = [{{ pointer = "/amount", greater_than = 1000 }}]
action = "deny"
reason = "payments over 1000 need a person"

[[connections]]
name = "api"
kind = "http"
upstream = "{url}"
max_request_body_bytes = 65536
allow_groups = ["agents"]
plugins = ["http-guardrail", "mask-email"]

[[connections]]
name = "small"
kind = "http"
upstream = "{url}"
max_request_body_bytes = 1024
max_response_body_bytes = 100
allow_groups = ["agents"]
plugins = ["http-guardrail", "mask-email"]

[[connections]]
name = "streamed"
kind = "http"
upstream = "{url}"
max_request_body_bytes = 1024
stream_large_requests = true
allow_groups = ["agents"]
plugins = ["http-guardrail", "mask-email"]

[[connections]]
name = "tools"
kind = "http"
upstream = "{url}"
mcp = true
allow_groups = ["agents"]
plugins = ["http-guardrail", "mask-email"]

[[connections]]
name = "echo"
kind = "http"
upstream = "{url}"
credential = "header"
credential_header = "X-Api-Key"
credential_env = "ECHO_KEY"
allow_groups = ["agents"]
plugins = ["mask-email"]
"#,
        url = up.url()
    );
    Gateway::start(
        &["http-guardrail", "mask-email"],
        &extra,
        &[("ECHO_KEY", ECHO_KEY)],
    )
}

const ECHO_KEY: &str = "MCP_SECRET_KEY_ABC/x+y=";
const MARKER: &str = "[sluice: upstream credential]";

/// Sends `body` as JSON exactly as written: `.json()` would print it again
/// from a parsed value, losing spellings the tests are about.
async fn send_json(
    gw: &Gateway,
    client: &reqwest::Client,
    token: &str,
    method: &str,
    path: &str,
    body: &str,
) -> reqwest::Response {
    client
        .request(method.parse().unwrap(), gw.https(path))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guardrail_denies_with_reason_and_allowed_requests_arrive_unchanged() {
    let up = Upstream::start().await;
    let gw = start(&up);
    let token = gw.token("agent-1", &["agents"], "1h");
    let client = gw.client();

    let resp = client
        .delete(gw.https("/api/admin/users/42"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["reason"], "denied");
    assert_eq!(v["rule"], "no-admin-delete");
    assert_eq!(v["plugin"], "http-guardrail");
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .contains("agents may not delete admin resources"),
        "{v}"
    );
    // The same path normalised differently is the same path.
    let resp = client
        .delete(gw.https("/api/v1/../%61dmin//users/42"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert_eq!(up.count(), 0, "nothing denied reached the upstream");

    let body = br#"{"name": "x", "note": "binary-safe \u00e9 \ud83d\ude00"}"#.to_vec();
    let resp = client
        .put(gw.https("/api/admin/users/42?dry_run=1"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .header("x-request-id", "r-1")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let seen = up.last();
    assert_eq!(seen.method, "PUT");
    assert_eq!(seen.uri, "/admin/users/42?dry_run=1");
    assert_eq!(seen.body.to_vec(), body);
    assert_eq!(seen.headers["x-request-id"], "r-1");
    assert_eq!(seen.headers["content-type"], "application/json");

    let resp = client
        .post(gw.https("/api/refunds"))
        .bearer_auth(&token)
        .json(&json!({"amount": 5000}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["reason"], "approval_required");
    assert!(v["detail"].as_str().unwrap().contains("approval required"));
    // A key in another case is the same key to case-insensitive upstreams
    // (Go's encoding/json).
    let before = up.count();
    // So is a number written as text to upstreams that convert it (Jackson,
    // PHP, Rails), and a path with a trailing slash.
    for (path, body) in [
        ("/api/refunds", r#"{"Amount": 5000}"#),
        ("/api/refunds", r#"{"AMOUNT": 5000}"#),
        ("/api/refunds", r#"{"amount": "5000"}"#),
        ("/api/refunds/", r#"{"amount": 5000}"#),
        // More than 1000 to an upstream that reads decimals exactly.
        ("/api/refunds", r#"{"amount": 1000.0000000000001}"#),
    ] {
        let resp = send_json(&gw, &client, &token, "POST", path, body).await;
        assert_eq!(resp.status(), 403, "{path} {body}");
    }
    // An escaped character that upstreams may read as an ASCII one.
    let resp = client
        .delete(gw.https("/api/%61dmin/u%C5%BFers/42"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["reason"], "bad_path", "{v}");
    assert_eq!(up.count(), before, "nothing refused reached the upstream");

    // Over the inspection limit: refused before anything is forwarded.
    let before = up.count();
    let resp = client
        .post(gw.https("/small/upload"))
        .bearer_auth(&token)
        .body(vec![b'x'; 4096])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    assert_eq!(up.count(), before);
}

/// `stream_large_requests`: a body over the inspection limit is forwarded
/// whole, the guardrails having judged its first part, whether the client
/// sent a length or chunks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_bodies_stream_where_the_connection_allows_it() {
    let up = Upstream::start().await;
    let gw = start(&up);
    let token = gw.token("agent-1", &["agents"], "1h");
    let client = gw.client();
    let big: Vec<u8> = (0..200_000u32).map(|i| b'a' + (i % 26) as u8).collect();

    let resp = client
        .post(gw.https("/streamed/upload"))
        .bearer_auth(&token)
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", gw.log());
    let seen = up.last();
    assert_eq!(
        seen.headers["content-length"],
        big.len().to_string().as_str()
    );
    assert!(seen.body == big, "the body arrived whole with its length");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big");
    std::fs::write(&file, &big).unwrap();
    let out = gw.curl(&[
        "-H",
        &format!("authorization: Bearer {token}"),
        "-H",
        "transfer-encoding: chunked",
        "--data-binary",
        &format!("@{}", file.display()),
        &gw.https("/streamed/upload"),
    ]);
    assert_eq!(out.status, 200, "{}", out.stderr);
    assert!(up.last().body == big, "the chunked body arrived whole");

    // The rules still see the first part: a denied route is denied.
    let before = up.count();
    let resp = client
        .delete(gw.https("/streamed/admin/x"))
        .bearer_auth(&token)
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert_eq!(up.count(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_header_values_are_masked() {
    let up = Upstream::start().await;
    let gw = start(&up);
    let token = gw.token("agent-1", &["agents"], "1h");
    let client = gw.client();
    let send = async |method: &reqwest::Method, path: &str| {
        client
            .request(method.clone(), gw.https(path))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
    };

    for method in [reqwest::Method::GET, reqwest::Method::HEAD] {
        let resp = send(&method, "/api/headers").await;
        assert_eq!(resp.status(), 201, "{method}");
        let h = resp.headers();
        // Pointed back through the gateway, then masked.
        assert_eq!(h["location"], "/api/users/[EMAIL]", "{method}");
        let owners: Vec<_> = h.get_all("x-owner").iter().collect();
        assert_eq!(owners, ["[EMAIL]", "team lead [EMAIL]"], "{method}");
        assert_eq!(h["x-request-id"], "r-42", "{method}");
        assert_eq!(h["server"], "test-upstream", "{method}");
        assert_eq!(h["content-type"], "application/json", "{method}");
    }

    // HEAD says what GET sends: the masked body, decoded, with no
    // validator of the upstream's.
    for method in [reqwest::Method::GET, reqwest::Method::HEAD] {
        let resp = send(&method, "/api/emails.gz").await;
        assert_eq!(resp.status(), 200, "{method}");
        let h = resp.headers();
        for absent in ["content-encoding", "etag", "accept-ranges"] {
            assert!(h.get(absent).is_none(), "{method}: {absent} {h:?}");
        }
    }

    // Headers of a fixed syntax are masked when they hold free text.
    for method in [reqwest::Method::GET, reqwest::Method::HEAD] {
        let resp = send(&method, "/api/headers-typed").await;
        assert_eq!(resp.status(), 200, "{method}");
        let h = resp.headers();
        let content_type = h["content-type"].to_str().unwrap();
        assert!(
            content_type.starts_with("text/csv; name=\"[EMAIL]"),
            "{method}: {content_type}"
        );
        assert_eq!(
            h["last-modified"], "Sun, 06 Nov 1994 08:49:37 GMT",
            "{method}"
        );
        if let Some(etag) = h.get("etag") {
            assert_eq!(etag, "\"[EMAIL]\"", "{method}");
        }
    }

    // A 101 the agent never asked for (its Upgrade is hop-by-hop) is not
    // relayed.
    let resp = client
        .get(gw.https("/api/upgrade"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 502);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["reason"], "upstream_upgrade", "{v}");

    // Nor does the upstream's own reason phrase reach the agent.
    let out = gw.curl(&[
        "-i",
        "--http1.1",
        "-H",
        &format!("Authorization: Bearer {token}"),
        &gw.https("/api/headers"),
    ]);
    assert!(
        out.body.starts_with("HTTP/1.1 201 Created\r\n"),
        "{}",
        out.body
    );
    assert!(!out.body.contains("dave@"), "{}", out.body);

    // A value maskers cannot read is not sent.
    let resp = client
        .get(gw.https("/api/headers-latin1"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 502);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["reason"], "unmaskable_response", "{v}");

    // The recording holds the headers as the agent received them.
    let sessions = gw.dir.path().join("state/sessions");
    let mut recorded = String::new();
    for _ in 0..50 {
        recorded = std::fs::read_dir(&sessions)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
            .collect();
        if recorded.contains("/api/users/[EMAIL]") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(recorded.contains("/api/users/[EMAIL]"), "{recorded}");
    assert!(!recorded.contains("ann@example.com"), "{recorded}");
    assert!(!recorded.contains("bob@example.org"), "{recorded}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_are_masked_json_gzip_text_and_events() {
    let up = Upstream::start().await;
    let gw = start(&up);
    let token = gw.token("agent-1", &["agents"], "1h");
    let client = gw.client();

    for path in ["/api/emails", "/api/emails.gz"] {
        let resp = client
            .get(gw.https(path))
            .bearer_auth(&token)
            .header("accept-encoding", "gzip")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        assert!(resp.headers().get("content-encoding").is_none(), "{path}");
        let length: usize = resp.headers()["content-length"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let body = resp.bytes().await.unwrap();
        assert_eq!(body.len(), length, "{path}: Content-Length fixed up");
        let v: Value = serde_json::from_slice(&body).expect("still valid JSON");
        assert_eq!(v["users"][0]["email"], "[EMAIL]");
        assert_eq!(v["users"][1]["email"], "[EMAIL]");
        assert_eq!(v["note"], "write to [EMAIL]");
        assert_eq!(v["users"][0]["name"], "Ann");
    }
    // Masked connections ask the upstream only for codings they can undo.
    assert_eq!(up.last().headers["accept-encoding"], "gzip, deflate, br");

    let out = gw.curl(&[
        "--compressed",
        "-H",
        &format!("Authorization: Bearer {token}"),
        &gw.https("/api/emails.txt"),
    ]);
    assert_eq!(out.status, 200);
    assert_eq!(out.body, "mail [EMAIL] today");

    let resp = client
        .get(gw.https("/api/sse"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    assert!(!text.contains('@'), "an address got through: {text}");
    assert_eq!(
        text,
        "event: greeting\ndata: {\"to\":\"[EMAIL]\"}\n\n:\n\ndata: plain text for [EMAIL]\ndata: second line\n\n\
         id: [EMAIL]\ndata: ok\n\n"
    );

    // An event maskers cannot read ends the stream: what came before it
    // arrives (also when both came in one read), it does not.
    for path in ["/api/sse-utf16", "/api/sse-utf16-together"] {
        let mut resp = client
            .get(gw.https(path))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let mut received = Vec::new();
        while let Ok(Some(chunk)) = resp.chunk().await {
            received.extend_from_slice(&chunk);
        }
        assert_eq!(received, b"data: first\n\n", "{path}: {received:?}");
    }

    // What cannot be masked is refused, never passed on.
    for (path, reason) in [
        ("/api/emails.zst", "unmaskable_response"),
        ("/small/emails", "unmaskable_response"),
        ("/api/emails.two-types", "unmaskable_response"),
        ("/api/emails.type-list", "unmaskable_response"),
        ("/api/emails.partial", "unmaskable_response"),
    ] {
        let resp = client
            .get(gw.https(path))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 502, "{path}");
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["reason"], reason, "{path}: {v}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_tool_calls_are_judged_per_tool() {
    let up = Upstream::start().await;
    let gw = start(&up);
    let token = gw.token("agent-1", &["agents"], "1h");
    let client = gw.client();
    let call = |id: u32, tool: &str| {
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
               "params": {"name": tool, "arguments": {"repo": "sluice"}}})
    };

    let resp = client
        .post(gw.https("/tools/mcp"))
        .bearer_auth(&token)
        .header("accept", "application/json, text/event-stream")
        .json(&call(1, "delete_repo"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["jsonrpc"], "2.0");
    assert_eq!(v["id"], 1);
    assert_eq!(v["error"]["code"], -32010);
    assert_eq!(v["error"]["data"]["rule"], "no-destructive-tools");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("destructive tools are not for agents")
    );
    assert_eq!(up.count(), 0);

    let resp = client
        .post(gw.https("/tools/mcp"))
        .bearer_auth(&token)
        .json(&call(2, "search_code"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["id"], 2);
    assert_eq!(
        v["result"]["content"][0]["text"],
        "ran search_code; owner [EMAIL]"
    );
    assert_eq!(up.count(), 1);

    // A batch with one denied call is refused whole.
    let resp = client
        .post(gw.https("/tools/mcp"))
        .bearer_auth(&token)
        .json(&json!([call(3, "search_code"), call(4, "delete_branch")]))
        .send()
        .await
        .unwrap();
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2);
    assert_eq!(v[1]["error"]["code"], -32010);
    assert_eq!(up.count(), 1);

    // A key twice, ignoring case: which one a parser takes varies (Go's
    // encoding/json would run `delete_repo` here).
    let body = r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"search_code","Name":"delete_repo"}}"#;
    let resp = send_json(&gw, &client, &token, "POST", "/tools/mcp", body).await;
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], -32600, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("ambiguous JSON"),
        "{v}"
    );
    assert_eq!(up.count(), 1);

    // Arguments are judged as the client wrote them: more than 1000 to a
    // server that reads decimals exactly, though 1000.0 as a float.
    let pay = |id: u32, amount: &str| {
        format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"pay","arguments":{{"amount":{amount}}}}}}}"#
        )
    };
    for (id, amount, denied) in [(6, "1000.0000000000001", true), (7, "999.5", false)] {
        let resp = send_json(&gw, &client, &token, "POST", "/tools/mcp", &pay(id, amount)).await;
        let v: Value = resp.json().await.unwrap();
        if denied {
            assert_eq!(v["error"]["data"]["rule"], "big-payments", "{v}");
        } else {
            assert!(v.get("error").is_none(), "{v}");
        }
    }
    assert_eq!(up.count(), 2);

    // Member names as Go servers read them (`"Method"` is `method`), a
    // request dressed as a response, and a message in a GET.
    let before = up.count();
    for (method, body, code, rule) in [
        (
            "POST",
            r#"{"jsonrpc":"2.0","id":8,"Method":"tools/call","Params":{"Name":"delete_repo"}}"#,
            -32010,
            "no-destructive-tools",
        ),
        (
            "POST",
            r#"{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"pay","Arguments":{"amount":5000}}}"#,
            -32010,
            "big-payments",
        ),
        (
            "POST",
            r#"{"jsonrpc":"2.0","id":10,"Method":"tools/call","params":{"name":"delete_repo"},"error":null}"#,
            -32600,
            "",
        ),
        (
            "GET",
            r#"{"jsonrpc":"2.0","id":11,"method":"tools/call","params":{"name":"delete_repo"}}"#,
            -32010,
            "no-destructive-tools",
        ),
    ] {
        let resp = send_json(&gw, &client, &token, method, "/tools/mcp", body).await;
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["error"]["code"], code, "{body}: {v}");
        if !rule.is_empty() {
            assert_eq!(v["error"]["data"]["rule"], rule, "{body}: {v}");
        }
    }
    assert_eq!(up.count(), before, "none of them reached the server");

    // What cannot be judged is not forwarded.
    let resp = client
        .post(gw.https("/tools/mcp"))
        .bearer_auth(&token)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], -32700);
    assert_eq!(up.count(), 2);
}

/// A method a server may read as MCP's although it is not spelled so
/// (trimmed, or compared without regard to case) is refused rather than
/// forwarded: the guardrails would have judged it under another name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_methods_spelled_almost_as_mcp_spells_them_are_refused() {
    let up = Upstream::start().await;
    let gw = start(&up);
    let token = gw.token("agent-1", &["agents"], "1h");
    let client = gw.client();
    let call = |id: usize, method: &str, tool: &str| {
        format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"{method}","params":{{"name":"{tool}"}}}}"#)
    };

    // As JSON escapes: `\u0000` reaches the parser as a NUL.
    let near = [
        "tools/call ",
        " tools/call",
        "\\ttools/call\\r\\n",
        "tools/call\\u0000",
        "\\ufefftools/call",
        "Tools/Call",
        "tool\\u017f/call",
        "tools/list ",
    ];
    for (id, method) in near.iter().enumerate() {
        // Both tools: a denied one would be refused anyway, an allowed one
        // only for its spelling.
        for tool in ["search_code", "delete_repo"] {
            let resp = send_json(
                &gw,
                &client,
                &token,
                "POST",
                "/tools/mcp",
                &call(id, method, tool),
            )
            .await;
            assert_eq!(resp.status(), 400, "{method}");
            assert_eq!(resp.headers()["content-type"], "application/json");
            let v: Value = resp.json().await.unwrap();
            assert_eq!(v["jsonrpc"], "2.0", "{v}");
            assert_eq!(v["id"], id, "{method}: {v}");
            assert_eq!(v["error"]["code"], -32600, "{method}: {v}");
            assert_eq!(v["error"]["data"]["reason"], "invalid_mcp", "{v}");
            let message = v["error"]["message"].as_str().unwrap();
            assert!(
                message.contains("send the method exactly as MCP spells it"),
                "{v}"
            );
        }
    }
    // In a batch, one near miss refuses the batch, which is answered as a
    // whole (`"id": null`), as any message the gateway cannot judge.
    let batch = format!(
        "[{},{}]",
        call(20, "tools/call", "search_code"),
        call(21, "tools/call ", "search_code")
    );
    let resp = send_json(&gw, &client, &token, "POST", "/tools/mcp", &batch).await;
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["id"], Value::Null, "{v}");
    assert_eq!(v["error"]["code"], -32600, "{v}");
    // A name no MCP server shares with MCP's still may not hide whitespace.
    let resp = send_json(
        &gw,
        &client,
        &token,
        "POST",
        "/tools/mcp",
        &call(22, "custom/run\\u0000", "x"),
    )
    .await;
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], -32600, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("control characters"),
        "{v}"
    );
    assert_eq!(up.count(), 0, "no near miss reached the server");

    // Spelled exactly, the allowed call goes through.
    let resp = send_json(
        &gw,
        &client,
        &token,
        "POST",
        "/tools/mcp",
        &call(23, "tools/call", "search_code"),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["id"], 23, "{v}");
    assert!(v.get("error").is_none(), "{v}");
    assert_eq!(up.count(), 1);
}

/// On a connection with maskers, the masked body (read whole, decoded) and
/// each masked event have the credential replaced: JSON stays JSON, an
/// event stays an event, and the stream goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn masked_responses_echoing_the_credential_have_it_replaced() {
    let up = Upstream::start().await;
    let gw = start(&up);
    let token = gw.token("agent-1", &["agents"], "1h");
    let client = gw.client();

    for query in ["", "?style=php", "?style=unicode", "?gzip=1", "?chunked=1"] {
        let path = format!("/echo/anything{query}");
        let resp = client
            .get(gw.https(&path))
            .bearer_auth(&token)
            .header("x-owner", "ann@example.com")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        let length: usize = resp.headers()["content-length"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let text = resp.text().await.unwrap();
        assert_eq!(length, text.len(), "{path}");
        let v: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}: {text}"));
        assert_eq!(v["headers"]["x-api-key"], MARKER, "{path}: {text}");
        assert!(!text.contains("MCP_SECRET"), "{path}: {text}");
        assert!(!text.contains("ann@example.com"), "masked too: {text}");
    }

    let resp = client
        .get(gw.https("/echo/echo-sse"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.text().await.unwrap(),
        format!("data: first\n\ndata: {{\"seen\":\"{MARKER}\"}}\n\ndata: last\n\n")
    );
}

/// The agent's token in the request body would reach the upstream (and
/// the guardrails): refused as it is in the head, as sent, JSON-escaped or
/// form-encoded. A body streamed past the inspection limit is searched as
/// it goes, and the upload aborted before the upstream has it whole. The
/// records keep the body with the token replaced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_in_a_request_body_is_refused() {
    let up = Upstream::start().await;
    let gw = start(&up);
    let token = gw.token("agent-1", &["agents"], "1h");
    let client = gw.client();
    let escaped: String = token
        .chars()
        .map(|c| format!("\\u{:04x}", c as u32))
        .collect();
    let percent: String = token.bytes().map(|b| format!("%{b:02X}")).collect();

    for (path, content_type, body) in [
        (
            "/api/echo",
            "application/json",
            format!(r#"{{"t":"{token}"}}"#),
        ),
        (
            "/api/echo",
            "application/json",
            format!(r#"{{"t":"{escaped}"}}"#),
        ),
        (
            "/api/echo",
            "application/x-www-form-urlencoded",
            format!("a=1&t={token}"),
        ),
        (
            "/api/echo",
            "application/x-www-form-urlencoded",
            format!("a=1&t={percent}"),
        ),
        ("/api/echo", "text/plain", format!("token: {token}\n")),
        (
            "/tools/mcp",
            "application/json",
            format!(
                r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"search","arguments":{{"t":"{token}"}}}}}}"#
            ),
        ),
    ] {
        let resp = client
            .post(gw.https(path))
            .bearer_auth(&token)
            .header("content-type", content_type)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{body}");
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["reason"], "token_misplaced", "{v}");
        assert!(
            v["detail"].as_str().unwrap().contains("request body"),
            "{v}"
        );
    }
    assert_eq!(up.count(), 0, "nothing reached the upstream");

    // Past `max_request_body_bytes` with `stream_large_requests`: the token
    // near the end is found as the body streams.
    let mut big: Vec<u8> = (0..200_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    big.extend_from_slice(format!("&t={token}&end=1").as_bytes());
    let resp = client
        .post(gw.https("/streamed/upload"))
        .bearer_auth(&token)
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["reason"], "token_misplaced", "{v}");
    for seen in up.seen.lock().unwrap().iter() {
        assert!(
            seen.body.len() < big.len(),
            "the upstream got the whole body"
        );
        assert!(
            !String::from_utf8_lossy(&seen.body).contains(&token),
            "the upstream got the token"
        );
    }
    drop(client);

    let mut written = String::new();
    for _ in 0..50 {
        written = std::fs::read_dir(gw.dir.path().join("state/sessions"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
            .collect();
        if written.contains("[agent token]") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(written.contains("[agent token]"), "{written}");
    for spelling in [&token, &escaped, &percent] {
        assert!(
            !written.contains(spelling.as_str()),
            "the recording holds the token"
        );
    }
}

/// A tool name a server may trim, or read without what does not show, is
/// refused as a method near miss is: the guardrail's `delete_*` would not
/// match `" delete_repo"`, which the server runs as `delete_repo`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_tool_names_with_hidden_characters_are_refused() {
    let up = Upstream::start().await;
    let gw = start(&up);
    let token = gw.token("agent-1", &["agents"], "1h");
    let client = gw.client();
    let call = |id: usize, tool: &str| {
        format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{tool}"}}}}"#
        )
    };
    // As JSON escapes.
    let near = [
        " delete_repo",
        "delete_repo ",
        "\\tdelete_repo",
        "delete_repo\\u0000",
        "\\u200bdelete_repo",
        "delete\\u200d_repo",
        "\\ufeffsearch_code",
        "search_code\\u00a0",
    ];
    for (id, tool) in near.iter().enumerate() {
        let resp = send_json(&gw, &client, &token, "POST", "/tools/mcp", &call(id, tool)).await;
        assert_eq!(resp.status(), 400, "{tool}");
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["id"], id, "{tool}: {v}");
        assert_eq!(v["error"]["code"], -32600, "{tool}: {v}");
        assert_eq!(v["error"]["data"]["reason"], "invalid_mcp", "{v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("exactly as the server lists it"),
            "{v}"
        );
    }
    assert_eq!(up.count(), 0, "no near miss reached the server");
    let resp = send_json(
        &gw,
        &client,
        &token,
        "POST",
        "/tools/mcp",
        &call(9, "search_code"),
    )
    .await;
    let v: Value = resp.json().await.unwrap();
    assert!(v.get("error").is_none(), "{v}");
    assert_eq!(up.count(), 1);
}
