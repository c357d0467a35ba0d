//! Messages the gateway refuses while the session goes on, as PostgreSQL
//! itself does: bodies that do not hold their fields (08P01, 22021), and a
//! Parse past the named statements the gateway keeps track of (54000).
//! Against a real PostgreSQL, through the `sluice` binary.

mod common;

use bytes::BytesMut;
use postgres_protocol::message::frontend;

use common::gateway::{Gateway, Spec, seed_app};
use common::postgres::TestPostgres;
use common::raw::{self, RawSession, Replies};

/// A message with `tag` and `body`, its length as given.
fn message(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![tag];
    m.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
    m.extend_from_slice(body);
    m
}

fn sync() -> Vec<u8> {
    message(b'S', b"")
}

/// Bodies whose length is right and whose fields are not, each with the
/// SQLSTATE and message PostgreSQL answers it with, and whether it is an
/// extended-protocol message (the server then discards until Sync).
fn malformed() -> Vec<(&'static str, Vec<u8>, &'static str, &'static str, bool)> {
    // A Bind of the unnamed statement with one text parameter of 100 bytes,
    // of which 3 are there.
    let mut bind_past_end = b"\0\0\0\0\0\x01".to_vec();
    bind_past_end.extend_from_slice(&100i32.to_be_bytes());
    bind_past_end.extend_from_slice(b"abc");
    // A parameter count the server reads as 65535, not -1.
    let mut bind_huge_count = b"\0\0\xff\xff".to_vec();
    bind_huge_count.extend_from_slice(&[0, 0, 0, 0]);
    vec![
        (
            "a Query without its terminating NUL",
            message(b'Q', b"select 1"),
            "08P01",
            "invalid string in message",
            false,
        ),
        (
            "a Query with data after its text",
            message(b'Q', b"select 1\0select 2\0"),
            "08P01",
            "invalid message format",
            false,
        ),
        (
            "a Parse declaring 3 parameter types and holding one",
            message(b'P', b"s1\0select $1\0\0\x03\0\0\0\x17"),
            "08P01",
            "insufficient data left in message",
            true,
        ),
        (
            "a Parse whose statement name is not UTF-8",
            message(b'P', b"s\xff\0select 1\0\0\0"),
            "22021",
            "invalid byte sequence for encoding \"UTF8\"",
            true,
        ),
        (
            "a Bind whose parameter value runs past the message",
            message(b'B', &bind_past_end),
            "08P01",
            "insufficient data left in message",
            true,
        ),
        (
            "a Bind with 65535 parameter formats and none there",
            message(b'B', &bind_huge_count),
            "08P01",
            "insufficient data left in message",
            true,
        ),
        (
            "an Execute without its row limit",
            message(b'E', b"\0"),
            "08P01",
            "insufficient data left in message",
            true,
        ),
    ]
}

/// Sends `frame` (then Sync for an extended-protocol message): one error
/// with `code` and `text`, then ReadyForQuery.
async fn refused(s: &mut RawSession, what: &str, frame: &[u8], extended: bool) -> Replies {
    let mut out = frame.to_vec();
    if extended {
        out.extend(sync());
    }
    s.send(&out).await;
    let r = s.until_ready().await;
    assert!(r.rows.is_empty(), "{what}: {r:?}");
    r
}

async fn select_1(s: &mut RawSession, what: &str) {
    let r = s.query("select 1").await;
    assert_eq!(r.rows, [[Some("1".to_string())]], "{what}: {r:?}");
    assert_eq!(r.status, b'I', "{what}: {r:?}");
}

/// A message whose length is right but whose body is malformed gets the
/// error PostgreSQL gives it, and the session goes on: after a simple
/// Query at once, after an extended-protocol message at the Sync (messages
/// up to it are discarded). In a transaction block the transaction fails,
/// on the client's side as on the server's, and ROLLBACK ends it.
#[tokio::test]
async fn malformed_messages_are_refused_and_the_session_goes_on() {
    let pg = TestPostgres::start();
    seed_app(&pg);
    let gw = Gateway::start(&pg, &Spec::STANDARD);
    let mut s = RawSession::connect(&gw, "agents").await;

    for (what, frame, code, text, extended) in malformed() {
        let r = refused(&mut s, what, &frame, extended).await;
        assert_eq!(
            r.error.as_ref().map(|(c, m)| (c.as_str(), m.as_str())),
            Some((code, text)),
            "{what}: {r:?}"
        );
        assert_eq!(r.status, b'I', "{what}: {r:?}");
        select_1(&mut s, what).await;

        assert_eq!(s.query("begin").await.status, b'T', "{what}");
        let r = refused(&mut s, what, &frame, extended).await;
        assert_eq!(r.code(), Some(code), "{what}: {r:?}");
        assert_eq!(r.status, b'E', "{what}: the transaction failed: {r:?}");
        let r = s.query("select 1").await;
        assert_eq!(r.code(), Some("25P02"), "{what}: {r:?}");
        let r = s.query("rollback").await;
        assert_eq!((r.code(), r.status), (None, b'I'), "{what}: {r:?}");
        select_1(&mut s, what).await;
    }

    // In the middle of a batch: what came before it stands, the rest of the
    // batch is discarded.
    let mut out = BytesMut::new();
    frontend::parse("s1", "select 1", std::iter::empty(), &mut out).unwrap();
    out.extend_from_slice(&message(b'P', b"s2\0select 2\0\0\x01"));
    frontend::parse("s3", "select 3", std::iter::empty(), &mut out).unwrap();
    raw::bind(&mut out, "s3", 0, std::iter::empty());
    frontend::execute("", 0, &mut out).unwrap();
    frontend::sync(&mut out);
    s.send(&out).await;
    let r = s.until_ready().await;
    assert_eq!(r.code(), Some("08P01"), "{r:?}");
    assert!(r.rows.is_empty(), "{r:?}");
    let r = s.run_prepared("s1", &[]).await;
    assert_eq!(r.rows, [[Some("1".to_string())]], "{r:?}");
    let r = s.run_prepared("s3", &[]).await;
    assert_eq!(r.code(), Some("26000"), "{r:?}");
    assert_eq!(s.parse("s3", "select 'again'").await.code(), None);
    let r = s.run_prepared("s3", &[]).await;
    assert_eq!(r.rows, [[Some("again".to_string())]], "{r:?}");

    // A message whose length itself is wrong loses the framing: the
    // session ends, as PostgreSQL ends it.
    s.send(&[b'Q', 0, 0, 0, 3]).await;
    let errors = s.until_closed().await;
    assert_eq!(errors, [("08P01".to_string(), "FATAL".to_string())]);

    let mut other = RawSession::connect(&gw, "agents").await;
    select_1(&mut other, "a new session").await;
}

/// A Parse that would prepare one named statement more than the 10,000 the
/// gateway keeps track of is refused with 54000 (the server never gets
/// it), as is a SQL `PREPARE`; the unnamed statement is not counted, and a
/// Close or DEALLOCATE frees a name.
#[tokio::test]
async fn named_prepared_statements_are_bounded() {
    const LIMIT: usize = 10_000;
    let pg = TestPostgres::start();
    seed_app(&pg);
    let gw = Gateway::start(&pg, &Spec::STANDARD);
    let mut s = RawSession::connect(&gw, "agents").await;

    // Pipelined, in batches: the answers are read after all are sent.
    const BATCH: usize = 1_000;
    let mut out = BytesMut::new();
    for i in 0..LIMIT {
        frontend::parse(&format!("s{i}"), "select 1", std::iter::empty(), &mut out).unwrap();
        if (i + 1) % BATCH == 0 {
            frontend::sync(&mut out);
        }
    }
    s.send(&out).await;
    for _ in 0..LIMIT / BATCH {
        let r = s.until_ready().await;
        assert_eq!(r.code(), None, "{r:?}");
    }
    let prepared = "select count(*) from pg_prepared_statements";
    let r = s.query(prepared).await;
    assert_eq!(r.rows, [[Some(LIMIT.to_string())]], "{r:?}");

    let r = s.parse("one_more", "select 'one more'").await;
    let (code, text) = r.error.clone().unwrap_or_default();
    assert_eq!(code, "54000", "{r:?}");
    assert!(text.contains("10000 named prepared statements"), "{text}");
    assert!(text.contains("DEALLOCATE"), "{text}");
    // The server never got it.
    let r = s.run_prepared("one_more", &[]).await;
    assert_eq!(r.code(), Some("26000"), "{r:?}");
    let r = s.query(prepared).await;
    assert_eq!(r.rows, [[Some(LIMIT.to_string())]], "{r:?}");

    // The unnamed statement replaces itself: not counted.
    for n in ["2", "3"] {
        assert_eq!(s.parse("", &format!("select {n}")).await.code(), None);
        let r = s.run_prepared("", &[]).await;
        assert_eq!(r.rows, [[Some(n.to_string())]], "{r:?}");
    }
    // A name in use is the server's to refuse.
    assert_eq!(s.parse("s0", "select 1").await.code(), Some("42P05"));

    // SQL PREPARE counts too; in a transaction block the refusal fails it.
    assert_eq!(s.query("begin").await.status, b'T');
    let r = s.query("prepare by_sql as select 'by sql'").await;
    assert_eq!((r.code(), r.status), (Some("54000"), b'E'), "{r:?}");
    let r = s.parse("one_more", "select 'one more'").await;
    assert_eq!((r.code(), r.status), (Some("54000"), b'E'), "{r:?}");
    assert_eq!(s.query("rollback").await.status, b'I');

    // A Close frees a name, and so does DEALLOCATE; pipelined in the same
    // batch as the Parse, too.
    assert_eq!(s.close("s0").await.code(), None);
    assert_eq!(s.parse("one_more", "select 'one more'").await.code(), None);
    let r = s.run_prepared("one_more", &[]).await;
    assert_eq!(r.rows, [[Some("one more".to_string())]], "{r:?}");
    assert_eq!(s.query("deallocate s1").await.code(), None);
    let r = s.query("prepare by_sql as select 'by sql'").await;
    assert_eq!(r.code(), None, "{r:?}");
    let r = s.query("execute by_sql").await;
    assert_eq!(r.rows, [[Some("by sql".to_string())]], "{r:?}");
    let mut out = BytesMut::new();
    frontend::close(b'S', "s2", &mut out).unwrap();
    frontend::parse("in_batch", "select $1::text", std::iter::empty(), &mut out).unwrap();
    frontend::sync(&mut out);
    s.send(&out).await;
    assert_eq!(s.until_ready().await.code(), None);
    // Tracked: its Binds reach the guardrails with its text and types.
    let r = s.run_prepared("in_batch", &["drop"]).await;
    assert_eq!(r.code(), Some("42501"), "{r:?}");
    let r = s.run_prepared("in_batch", &["kept"]).await;
    assert_eq!(r.rows, [[Some("kept".to_string())]], "{r:?}");

    let r = s.query(prepared).await;
    assert_eq!(r.rows, [[Some(LIMIT.to_string())]], "{r:?}");
    select_1(&mut s, "at the limit").await;
}
