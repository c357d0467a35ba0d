//! The gateway's upstream PostgreSQL connection against a real server
//! (initdb with SCRAM-SHA-256 on a free port): SCRAM, md5 and trust, and the
//! server's refusals surfaced with their SQLSTATE.

use std::time::Duration;

use sluice::postgres::frame::{self, Frame};
use sluice::postgres::{Upstream, UpstreamConfig, UpstreamError, UpstreamTls};
use sluice_tests::postgres::TestPostgres;

fn config(pg: &TestPostgres, user: &str, password: Option<&str>, database: &str) -> UpstreamConfig {
    UpstreamConfig {
        addr: pg.addr(),
        database: database.into(),
        user: user.into(),
        password: password.map(str::to_string),
        tls: UpstreamTls::Disable,
        connect_timeout: Duration::from_secs(5),
    }
}

async fn select_one(up: &mut Upstream) -> String {
    frame::write_frames(&mut up.io, &[Frame::new(b'Q', &b"select 40 + 2\0"[..])])
        .await
        .unwrap();
    let mut value = String::new();
    loop {
        let f = frame::read_frame(&mut up.io, 1 << 20)
            .await
            .unwrap()
            .unwrap();
        match f.tag {
            b'D' => value = String::from_utf8_lossy(&f.body[6..]).into_owned(),
            b'Z' => return value,
            b'E' => panic!("query failed: {:?}", frame::error_fields(&f.body)),
            _ => {}
        }
    }
}

#[tokio::test]
async fn authenticates_with_each_method_and_surfaces_refusals() {
    let pg = TestPostgres::start();
    for sql in [
        "create role app login password 'app-secret'",
        "create database app owner app",
        "set password_encryption = 'md5'; create role legacy login password 'legacy-secret'",
        "create role trusted login",
    ] {
        pg.psql("postgres", sql).unwrap();
    }
    // md5 and trust for the two roles that need them; SCRAM for everything else.
    let hba = pg.data_dir().join("pg_hba.conf");
    let rest = std::fs::read_to_string(&hba).unwrap();
    std::fs::write(
        &hba,
        format!("host all legacy 127.0.0.1/32 md5\nhost all trusted 127.0.0.1/32 trust\n{rest}"),
    )
    .unwrap();
    pg.psql("postgres", "select pg_reload_conf()").unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    // SCRAM-SHA-256.
    let mut up = Upstream::connect(&config(&pg, "app", Some("app-secret"), "app"), &[])
        .await
        .unwrap();
    assert!(up.backend_pid > 0);
    assert_eq!(up.backend_secret.len(), 4);
    assert_eq!(up.status, b'I');
    assert!(up.parameters.iter().any(|(k, _)| k == "server_version"));
    assert_eq!(select_one(&mut up).await, "42");

    // md5 and trust.
    let mut up = Upstream::connect(
        &config(&pg, "legacy", Some("legacy-secret"), "postgres"),
        &[],
    )
    .await
    .unwrap();
    assert_eq!(select_one(&mut up).await, "42");
    let mut up = Upstream::connect(&config(&pg, "trusted", None, "postgres"), &[])
        .await
        .unwrap();
    assert_eq!(select_one(&mut up).await, "42");

    // Startup parameters pass through.
    let params = vec![("application_name".to_string(), "agent-tool".to_string())];
    let up = Upstream::connect(&config(&pg, "app", Some("app-secret"), "app"), &params)
        .await
        .unwrap();
    assert!(
        up.parameters
            .contains(&("application_name".into(), "agent-tool".into()))
    );

    // The server's refusals, with its SQLSTATE.
    let err = Upstream::connect(&config(&pg, "app", Some("wrong"), "app"), &[])
        .await
        .err()
        .unwrap();
    assert!(
        matches!(&err, UpstreamError::Server { code, .. } if code == "28P01"),
        "{err}"
    );
    let err = Upstream::connect(&config(&pg, "app", Some("app-secret"), "nope"), &[])
        .await
        .err()
        .unwrap();
    assert!(
        matches!(&err, UpstreamError::Server { code, .. } if code == "3D000"),
        "{err}"
    );
    let err = Upstream::connect(&config(&pg, "app", None, "app"), &[])
        .await
        .err()
        .unwrap();
    assert!(matches!(err, UpstreamError::PasswordRequired), "{err}");

    // Nothing listening.
    let mut c = config(&pg, "app", Some("app-secret"), "app");
    c.addr = "127.0.0.1:1".into();
    let err = Upstream::connect(&c, &[]).await.err().unwrap();
    assert!(matches!(err, UpstreamError::Connect { .. }), "{err}");

    // The password never shows in debug output.
    assert!(!format!("{:?}", config(&pg, "app", Some("app-secret"), "app")).contains("app-secret"));
}

#[tokio::test]
async fn tls_is_required_when_configured() {
    // The test server has no certificate: a verify-full upstream must refuse
    // to continue in plaintext.
    let pg = TestPostgres::start();
    let mut c = config(
        &pg,
        pg.user.as_str(),
        Some(pg.password.as_str()),
        "postgres",
    );
    c.tls = UpstreamTls::VerifyFull {
        ca_file: None,
        server_name: "localhost".into(),
    };
    let err = Upstream::connect(&c, &[]).await.err().unwrap();
    assert!(matches!(err, UpstreamError::TlsRefused), "{err}");
}
