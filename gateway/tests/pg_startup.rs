//! What a client may ask for before it is logged in, answered as PostgreSQL
//! answers it: encryption requests, `replication`, and startup parameters
//! the server refuses. The `sluice` binary in front of a real PostgreSQL,
//! spoken to in the raw protocol.

mod common;

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use common::gateway::{Gateway, Spec, seed_app};
use common::postgres::TestPostgres;
use common::raw::{self, RawSession};

/// A parameter that only shapes how results are presented, refused by the
/// server, is reported to the client as the server refused it, as a
/// checked setting's refusal is (not as an unreachable database).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_servers_refusal_of_a_startup_parameter_reaches_the_client() {
    let pg = TestPostgres::start();
    seed_app(&pg);
    let gw = Gateway::start(&pg, &Spec::STANDARD);
    for (name, value) in [
        ("TimeZone", "Nowhere/Bad"),
        ("DateStyle", "bogus"),
        ("IntervalStyle", "x"),
        ("extra_float_digits", "abc"),
        ("statement_timeout", "abc"),
    ] {
        let Err((code, message)) = RawSession::login(&gw, "agents", &[(name, value)]).await else {
            panic!("{name}={value} accepted");
        };
        assert_eq!(code, "22023", "{name}: {message}");
        let expected = format!(
            "the server refused a startup setting: invalid value for parameter \"{name}\": \"{value}\""
        );
        assert!(message.starts_with(&expected), "{name}: {message}");
    }

    // The same parameters, valid, are passed and hold.
    let mut s = RawSession::login(&gw, "agents", &[("TimeZone", "Asia/Tokyo")])
        .await
        .unwrap();
    let r = s.query("show timezone").await;
    assert_eq!(r.rows, [[Some("Asia/Tokyo".to_string())]], "{r:?}");
}

/// `replication` read as PostgreSQL reads it: a false boolean is an
/// ordinary connection, a true one or `database` a walsender, which the
/// gateway refuses, and anything else an invalid value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replication_off_is_an_ordinary_connection() {
    let pg = TestPostgres::start();
    seed_app(&pg);
    let gw = Gateway::start(&pg, &Spec::STANDARD);
    for off in ["off", "false", "0", "no", "OFF", "f", "n", "of"] {
        let login = RawSession::login(&gw, "agents", &[("replication", off)]).await;
        let mut s = login.unwrap_or_else(|e| panic!("replication={off}: {e:?}"));
        // Not passed on as a walsender either: the server runs SQL in an
        // ordinary backend.
        let r = s
            .query("select backend_type from pg_stat_activity where pid = pg_backend_pid()")
            .await;
        assert_eq!(
            r.rows,
            [[Some("client backend".to_string())]],
            "{off}: {r:?}"
        );
    }
    for on in ["database", "true", "on", "1", "yes", "TRUE"] {
        let Err((code, message)) = RawSession::login(&gw, "agents", &[("replication", on)]).await
        else {
            panic!("replication={on} accepted");
        };
        assert_eq!(code, "0A000", "{on}: {message}");
        assert!(message.contains("replication"), "{message}");
    }
    for bad in ["maybe", "", "o", "2"] {
        let Err((code, message)) = RawSession::login(&gw, "agents", &[("replication", bad)]).await
        else {
            panic!("replication={bad:?} accepted");
        };
        assert_eq!(code, "22023", "{bad:?}: {message}");
    }
}

const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
const GSSENC_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30];

/// Sends `request` and reads the one-byte answer.
async fn answer(s: &mut TcpStream, request: &[u8]) -> u8 {
    s.write_all(request).await.unwrap();
    let mut answer = [0u8; 1];
    s.read_exact(&mut answer).await.unwrap();
    answer[0]
}

/// Everything the gateway sends until it closes: the SQLSTATE and message
/// of the error in it.
async fn error_then_close(s: &mut TcpStream) -> (String, String) {
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut rest))
        .await
        .expect("the connection was closed")
        .unwrap();
    assert_eq!(rest.first(), Some(&b'E'), "{rest:?}");
    let len = u32::from_be_bytes(rest[1..5].try_into().unwrap()) as usize;
    assert_eq!(rest.len(), 1 + len, "one message, then the close: {rest:?}");
    raw::error_of(&rest[5..])
}

/// As PostgreSQL: a declined GSSENCRequest may be followed by an
/// SSLRequest or the startup message, but not by another GSSENCRequest,
/// which the server reads as an unknown protocol version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_encryption_request_is_answered_once() {
    let pg = TestPostgres::start();
    seed_app(&pg);
    let gw = Gateway::start(&pg, &Spec::STANDARD);
    let addr = ("127.0.0.1", gw.pg_port);

    let mut s = TcpStream::connect(addr).await.unwrap();
    assert_eq!(answer(&mut s, &GSSENC_REQUEST).await, b'N');
    s.write_all(&GSSENC_REQUEST).await.unwrap();
    let (code, message) = error_then_close(&mut s).await;
    assert_eq!(code, "0A000", "{message}");
    assert_eq!(
        message,
        "unsupported frontend protocol 1234.5680: server supports 3.0 to 3.2"
    );

    // Declined, then TLS, as libpq does with gssencmode=prefer.
    let mut s = TcpStream::connect(addr).await.unwrap();
    assert_eq!(answer(&mut s, &GSSENC_REQUEST).await, b'N');
    assert_eq!(answer(&mut s, &SSL_REQUEST).await, b'S');

    // Declined, then the startup message: the login goes on.
    let mut s = TcpStream::connect(addr).await.unwrap();
    assert_eq!(answer(&mut s, &GSSENC_REQUEST).await, b'N');
    let mut startup = bytes::BytesMut::new();
    postgres_protocol::message::frontend::startup_message(
        [("user", "agent-1"), ("database", "appdb")],
        &mut startup,
    )
    .unwrap();
    s.write_all(&startup).await.unwrap();
    let mut asked = [0u8; 9];
    s.read_exact(&mut asked).await.unwrap();
    assert_eq!(asked, [b'R', 0, 0, 0, 8, 0, 0, 0, 3], "a password asked");
}
