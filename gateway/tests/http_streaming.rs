//! Bodies that stream through the gateway unbuffered: an upload's pace
//! sets when the upstream's answer is due, and a response framed two ways
//! at once reaches the agent framed one way.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::http::{Gateway, Upstream};

/// A connection without guardrails (its request bodies stream) whose
/// upstream must answer within 500 ms; the test gateway's body timeout is
/// 1.5 s.
fn start(upstream: &str) -> Gateway {
    let extra = format!(
        r#"
[[connections]]
name = "files"
kind = "http"
upstream = "{upstream}"
response_timeout_ms = 500
allow_groups = ["agents"]
"#
    );
    Gateway::start(&[], &extra, &[])
}

/// Sends a POST head announcing `chunks`' bytes, then the chunks `gap`
/// apart (and `missing` bytes announced that never come: a stall),
/// and reads the answer until the gateway closes.
fn upload(port: u16, token: &str, chunks: Vec<Vec<u8>>, missing: usize, gap: Duration) -> String {
    let total = chunks.iter().map(Vec::len).sum::<usize>() + missing;
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let head = format!(
        "POST /files/upload HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: {total}\r\n\
         Connection: close\r\n\r\n"
    );
    tcp.write_all(head.as_bytes()).unwrap();
    for c in chunks {
        std::thread::sleep(gap);
        if tcp.write_all(&c).is_err() {
            break;
        }
    }
    let mut answer = String::new();
    let _ = tcp.read_to_string(&mut answer);
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_slower_than_the_response_timeout_is_answered() {
    let up = Upstream::start().await;
    let gw = start(&up.url());
    let token = gw.token("agent-1", &["agents"], "1h");
    let port = gw.port;

    // Twenty chunks 150 ms apart: three seconds of upload, six times the
    // response timeout, each pause well within the body timeout.
    let started = Instant::now();
    let t = token.clone();
    let chunks = (0..20).map(|_| vec![b'x'; 1000]).collect();
    let answer = tokio::task::spawn_blocking(move || {
        upload(port, &t, chunks, 0, Duration::from_millis(150))
    })
    .await
    .unwrap();
    assert!(started.elapsed() >= Duration::from_secs(3));
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(up.last().body.len(), 20_000);

    // A body that stops arriving is the agent's stall: 408 at the body
    // timeout, not a 504 blaming the upstream at the response timeout.
    let started = Instant::now();
    let t = token.clone();
    let answer = tokio::task::spawn_blocking(move || {
        upload(
            port,
            &t,
            vec![b"0123456789".to_vec()],
            10_000,
            Duration::ZERO,
        )
    })
    .await
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("body_timeout"), "{answer}");
    assert!(started.elapsed() >= Duration::from_millis(1400));
    assert!(started.elapsed() < Duration::from_secs(10));
    // The upstream saw the upload begin and end short, never whole.
    assert!(up.last().body.len() < 10_010);
}

/// An upstream that frames its answer both by `Content-Length` (stale) and
/// by `Transfer-Encoding: chunked`: the chunks are the body (RFC 9112,
/// 6.3), and the agent gets them whole, over HTTP/1.1 and HTTP/2, framed
/// by the gateway alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_content_length_beside_chunked_framing_is_dropped() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for tcp in listener.incoming() {
            let Ok(mut tcp) = tcp else { return };
            std::thread::spawn(move || {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    match tcp.read(&mut byte) {
                        Ok(1) => head.push(byte[0]),
                        _ => return,
                    }
                }
                let _ = tcp.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\
                      Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
                      11\r\npeggy@example.com\r\n0\r\n\r\n",
                );
            });
        }
    });
    let gw = start(&format!("http://127.0.0.1:{port}"));
    let token = gw.token("agent-1", &["agents"], "1h");
    let auth = format!("Authorization: Bearer {token}");
    for version in ["--http1.1", "--http2"] {
        let out = gw.curl(&[version, "-i", "-H", &auth, &gw.https("/files/both")]);
        assert_eq!(out.status, 200, "{version}: {}", out.stderr);
        assert!(
            out.body.ends_with("peggy@example.com"),
            "{version}: {}",
            out.body
        );
        assert!(
            !out.body.to_ascii_lowercase().contains("content-length: 5"),
            "{version}: {}",
            out.body
        );
    }
}
