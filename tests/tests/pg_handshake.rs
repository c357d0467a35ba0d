//! The PostgreSQL listener's way in, driven by psql: TLS, the token as the
//! password, identity and access policy, and protocol-native refusals. The
//! relay is not part of this suite: after a successful handshake the test
//! server answers any query with the identity it authenticated.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use sluice::identity::{ConnectionPolicy, IdentityConfig, Verifier};
use sluice::postgres::errors::{Severity, error_response};
use sluice::postgres::frame::{self, Frame};
use sluice::postgres::handshake::{self, Accepted, ConnectionLookup, HandshakeSettings};
use tokio::io::AsyncWriteExt;

struct Connections(HashMap<String, ConnectionPolicy>);

impl ConnectionLookup for Connections {
    fn policy(&self, name: &str) -> Option<ConnectionPolicy> {
        self.0.get(name).cloned()
    }
}

struct Gateway {
    addr: SocketAddr,
    verifier: Verifier,
    _state: tempfile::TempDir,
}

async fn start(allow_plaintext_loopback: bool) -> Gateway {
    let state = tempfile::tempdir().unwrap();
    let identity = IdentityConfig {
        leeway_secs: 0,
        ..Default::default()
    };
    let verifier = Verifier::from_config(&identity, state.path())
        .await
        .unwrap();
    let tls = sluice::tls::server_config(None, state.path()).unwrap();
    let settings = Arc::new(HandshakeSettings {
        tls: Some(tls),
        allow_plaintext_loopback,
        startup_timeout: std::time::Duration::from_secs(60),
        end_at_token_expiry: None,
    });
    let connections = Arc::new(Connections(HashMap::from([(
        "appdb".to_string(),
        ConnectionPolicy {
            allow_groups: vec!["agents".into()],
            deny_subjects: vec!["agent-banned".into()],
            ..Default::default()
        },
    )])));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let v = verifier.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, peer)) = listener.accept().await else {
                continue;
            };
            let (v, settings, connections) = (v.clone(), settings.clone(), connections.clone());
            tokio::spawn(async move {
                let Ok(Accepted::Session(mut s)) =
                    handshake::accept(tcp, peer, &settings, &v, connections.as_ref()).await
                else {
                    return;
                };
                let ok = [
                    Frame::new(b'R', &[0u8, 0, 0, 0][..]),
                    Frame::new(b'Z', &b"I"[..]),
                ];
                frame::write_frames(&mut s.io, &ok).await.unwrap();
                while let Ok(Some(f)) = frame::read_frame(&mut s.io, 1 << 20).await {
                    if f.tag != b'Q' {
                        break;
                    }
                    let who = format!(
                        "authenticated as {} in {:?} on {} over {}",
                        s.identity.subject,
                        s.identity.groups,
                        s.connection,
                        if s.tls { "TLS" } else { "plaintext" }
                    );
                    let reply = [
                        error_response(Severity::Error, "XX000", &who),
                        Frame::new(b'Z', &b"I"[..]),
                    ];
                    frame::write_frames(&mut s.io, &reply).await.unwrap();
                }
                let _ = s.io.shutdown().await;
            });
        }
    });
    Gateway {
        addr,
        verifier,
        _state: state,
    }
}

impl Gateway {
    fn token(&self, subject: &str, groups: &[&str], ttl: Duration) -> String {
        let groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
        self.verifier
            .dev_issuer()
            .unwrap()
            .issue(subject, &groups, ttl)
            .unwrap()
    }

    /// Runs `psql -c "select 1"`; returns its stderr (psql prints the
    /// server's ERROR/FATAL there).
    async fn psql(&self, dbname: &str, sslmode: &str, password: &str) -> String {
        let (port, dbname, sslmode, password) = (
            self.addr.port().to_string(),
            dbname.to_string(),
            sslmode.to_string(),
            password.to_string(),
        );
        tokio::task::spawn_blocking(move || {
            let out = Command::new(sluice_tests::postgres::bin_dir().join("psql"))
                .args(["-X", "-w", "-c", "select 1"])
                .arg(format!(
                    "host=127.0.0.1 port={port} dbname={dbname} user=agent sslmode={sslmode} connect_timeout=5"
                ))
                .env("PGPASSWORD", password)
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stderr).into_owned()
        })
        .await
        .unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_gets_in_with_a_token_over_tls() {
    let gw = start(false).await;
    let token = gw.token("agent-1", &["agents"], Duration::from_secs(600));
    let err = gw.psql("appdb", "require", &token).await;
    assert!(
        err.contains(r#"authenticated as agent-1 in ["agents"] on appdb over TLS"#),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_fatal_errors_naming_the_reason() {
    let gw = start(false).await;
    let good = gw.token("agent-1", &["agents"], Duration::from_secs(600));
    let cases = [
        (
            "appdb",
            "disable",
            good.clone(),
            "the token must be sent over TLS",
        ),
        (
            "appdb",
            "require",
            "not-a-token".into(),
            "token rejected (malformed)",
        ),
        (
            "nosuchdb",
            "require",
            good.clone(),
            r#"connection "nosuchdb" does not exist"#,
        ),
        // Which connections exist is told only to a verified identity.
        (
            "nosuchdb",
            "disable",
            good.clone(),
            "the token must be sent over TLS",
        ),
        (
            "nosuchdb",
            "require",
            "not-a-token".into(),
            "token rejected (malformed)",
        ),
        (
            "appdb",
            "require",
            gw.token("agent-2", &["readers"], Duration::from_secs(600)),
            "access denied (not_allowed)",
        ),
        (
            "appdb",
            "require",
            gw.token("agent-banned", &["agents"], Duration::from_secs(600)),
            "access denied (denied_subject)",
        ),
        ("appdb", "require", "x".repeat(40_000), "too_large"),
    ];
    for (db, sslmode, password, expected) in cases {
        let err = gw.psql(db, sslmode, &password).await;
        assert!(err.contains("FATAL"), "{db}/{sslmode}: {err}");
        assert!(
            err.contains(expected),
            "{db}/{sslmode}: expected {expected:?} in {err}"
        );
    }

    // An expired token.
    let short = gw.token("agent-1", &["agents"], Duration::from_secs(1));
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let err = gw.psql("appdb", "require", &short).await;
    assert!(err.contains("token rejected (expired)"), "{err}");

    // Garbage and a 1 GB length prefix: a clean close, and the listener
    // keeps serving.
    for bytes in [
        &b"\x00\x00\x00\x10garbage-garbage!"[..],
        &[0x40, 0, 0, 0, 0, 3, 0, 0][..],
        &b"GET / HTTP/1.1\r\n\r\n"[..],
    ] {
        let mut s = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
        s.write_all(bytes).await.unwrap();
        let mut buf = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), async {
            use tokio::io::AsyncReadExt;
            s.read_to_end(&mut buf).await
        })
        .await;
        assert!(read.is_ok(), "connection not closed for {bytes:?}");
    }
    let err = gw.psql("appdb", "require", &good).await;
    assert!(err.contains("authenticated as agent-1"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_from_loopback_only_when_configured() {
    let gw = start(true).await;
    let token = gw.token("agent-1", &["agents"], Duration::from_secs(600));
    let err = gw.psql("appdb", "disable", &token).await;
    assert!(err.contains("over plaintext"), "{err}");
}
