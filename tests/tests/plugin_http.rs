//! Outbound HTTP from plugins (wasi:http): refused unless granted, and then
//! only to the granted scheme, host, port and path; a plugin waiting on the
//! network (or a timer) in the host is still cut off at its call deadline.
//!
//! The `hostile` guest's `http-get` mode GETs its configured URL and denies
//! with the status it got, so a refusal reason tells what happened. The
//! server is a real TCP listener that counts the requests reaching it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sluice::plugins::{Decision, RefusalCause};
use sluice_tests::{PluginDir, session, sql};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Answers `200 ok` to every request (or never answers, with `silent`),
/// counting the requests it read.
async fn server(silent: bool) -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = Arc::new(AtomicUsize::new(0));
    let count = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let count = count.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tcp.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                count.fetch_add(1, Ordering::SeqCst);
                if silent {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    return;
                }
                let _ = tcp
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                    )
                    .await;
            });
        }
    });
    (port, hits)
}

struct Case {
    name: &'static str,
    /// `[plugins.grants.NAME] http`, `{port}` replaced.
    grant: Option<&'static str>,
    /// The URL the guest GETs.
    url: &'static str,
    /// Text expected in the refusal.
    expect: &'static str,
    reaches_server: bool,
}

const CASES: &[Case] = &[
    Case {
        name: "nothing-granted",
        grant: None,
        url: "http://127.0.0.1:{port}/hook",
        expect: "http error ErrorCode::HttpRequestDenied",
        reaches_server: false,
    },
    Case {
        name: "granted",
        grant: Some("http://127.0.0.1:{port}/hook"),
        url: "http://127.0.0.1:{port}/hook/events",
        expect: "http status 200",
        reaches_server: true,
    },
    Case {
        name: "other-path",
        grant: Some("http://127.0.0.1:{port}/hook"),
        url: "http://127.0.0.1:{port}/admin",
        expect: "http error ErrorCode::HttpRequestDenied",
        reaches_server: false,
    },
    Case {
        name: "climbing-out",
        grant: Some("http://127.0.0.1:{port}/hook"),
        url: "http://127.0.0.1:{port}/hook/../admin",
        expect: "http error ErrorCode::HttpRequestDenied",
        reaches_server: false,
    },
    Case {
        name: "other-host-name",
        grant: Some("http://127.0.0.1:{port}/hook"),
        url: "http://localhost:{port}/hook",
        expect: "http error ErrorCode::HttpRequestDenied",
        reaches_server: false,
    },
    Case {
        name: "other-port",
        grant: Some("http://127.0.0.1:1/hook"),
        url: "http://127.0.0.1:{port}/hook",
        expect: "http error ErrorCode::HttpRequestDenied",
        reaches_server: false,
    },
];

#[tokio::test]
async fn outbound_http_reaches_only_granted_destinations() {
    let (port, hits) = server(false).await;
    let dir = PluginDir::new();
    let mut extra = "call_deadline_ms = 5000\n".to_string();
    for case in CASES {
        let name = format!("http-{}", case.name);
        dir.install(&name, "hostile");
        let url = case.url.replace("{port}", &port.to_string());
        extra.push_str(&format!(
            "[plugins.config.{name}]\nmode = \"http-get\"\nurl = {url:?}\n"
        ));
        if let Some(grant) = case.grant {
            let grant = grant.replace("{port}", &port.to_string());
            extra.push_str(&format!("[plugins.grants.{name}]\nhttp = [{grant:?}]\n"));
        }
    }
    let host = dir.host(&extra).await;
    let who = session("agent-1", &[]);
    for case in CASES {
        let name = format!("http-{}", case.name);
        let chain = host
            .chain(std::slice::from_ref(&name))
            .unwrap_or_else(|r| panic!("{name}: {r}"));
        let before = hits.load(Ordering::SeqCst);
        let Decision::Deny(refusal) = chain.check(&who, &sql("select 'attack'")).await else {
            panic!("{name}: the guest always denies or fails");
        };
        assert!(
            refusal.reason.contains(case.expect),
            "{name}: {:?} should contain {:?}",
            refusal.reason,
            case.expect
        );
        let reached = hits.load(Ordering::SeqCst) > before;
        assert_eq!(reached, case.reaches_server, "{name}: {}", refusal.reason);
        if !case.reaches_server {
            assert_eq!(refusal.cause, RefusalCause::PluginFailure, "{name}");
        }
    }
}

/// Epoch interruption stops guest code only; a guest blocked in the host
/// (a timer, a silent server) is stopped by the call's wall-clock deadline.
#[tokio::test]
async fn a_plugin_waiting_in_the_host_is_cut_off_at_its_deadline() {
    let (port, hits) = server(true).await;
    let dir = PluginDir::new();
    dir.install("sleeper", "hostile");
    dir.install("silent-server", "hostile");
    let url = format!("http://127.0.0.1:{port}/hook");
    let host = dir
        .host(&format!(
            "call_deadline_ms = 200\n\
             [plugins.config.sleeper]\nmode = \"sleep\"\n\
             [plugins.config.silent-server]\nmode = \"http-get\"\nurl = {url:?}\n\
             [plugins.grants.silent-server]\nhttp = [{url:?}]\n"
        ))
        .await;
    let who = session("agent-1", &[]);
    for name in ["sleeper", "silent-server"] {
        let chain = host.chain(&[name.to_string()]).unwrap();
        let started = Instant::now();
        let decision = chain.check(&who, &sql("select 'attack'")).await;
        let took = started.elapsed();
        let Decision::Deny(refusal) = decision else {
            panic!("{name}: expected a refusal, got {decision:?}");
        };
        assert_eq!(refusal.cause, RefusalCause::PluginFailure, "{name}");
        // The silent server's request is given what is left of the call's
        // deadline: on a busy machine its read timeout can fire first, and
        // the plugin fails with it, inside the deadline all the same.
        assert!(
            refusal.reason.contains("exceeded its 200 ms deadline")
                || (name == "silent-server" && refusal.reason.contains("ConnectionReadTimeout")),
            "{name}: {}",
            refusal.reason
        );
        assert!(took < Duration::from_secs(2), "{name}: took {took:?}");
        // The instance cut off mid-call is not reused: the next call works.
        assert!(matches!(
            chain.check(&who, &sql("select 1")).await,
            Decision::Allow
        ));
    }
    assert_eq!(
        hits.load(Ordering::SeqCst),
        1,
        "the silent server saw the request"
    );
}
