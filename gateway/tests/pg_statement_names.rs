//! Prepared statement and portal names as PostgreSQL compares them: on their
//! first 63 bytes (`NAMEDATALEN - 1`). Two longer names sharing those are
//! one statement at the server, so the gateway refuses every
//! extended-protocol message naming a statement or portal over 63 bytes
//! (42622, never forwarded) rather than track them apart; the session goes
//! on. Against a real PostgreSQL, through the `sluice` binary.

mod common;

use std::time::{Duration, Instant};

use bytes::BytesMut;
use postgres_protocol::message::frontend;

use common::gateway::{Gateway, Spec, seed_app};
use common::postgres::TestPostgres;
use common::raw::{self, RawSession, Replies};

/// A Bind of `statement` to `portal` with text parameters `params`.
fn bind(out: &mut BytesMut, portal: &str, statement: &str, params: &[&str]) {
    raw::bind_portal(
        out,
        portal,
        statement,
        0,
        params.iter().map(|p| p.as_bytes()),
    );
}

/// Each extended-protocol message that names a statement or a portal,
/// naming `long` there (the rest named by short names that exist or not).
fn messages_naming(long: &str) -> Vec<(&'static str, BytesMut)> {
    let build = |f: &dyn Fn(&mut BytesMut)| {
        let mut out = BytesMut::new();
        f(&mut out);
        out
    };
    vec![
        (
            "Parse",
            build(&|o| frontend::parse(long, "select 1", std::iter::empty(), o).unwrap()),
        ),
        ("Bind (portal)", build(&|o| bind(o, long, "short", &[]))),
        ("Bind (statement)", build(&|o| bind(o, "", long, &[]))),
        (
            "Describe (statement)",
            build(&|o| frontend::describe(b'S', long, o).unwrap()),
        ),
        (
            "Describe (portal)",
            build(&|o| frontend::describe(b'P', long, o).unwrap()),
        ),
        (
            "Close (statement)",
            build(&|o| frontend::close(b'S', long, o).unwrap()),
        ),
        (
            "Close (portal)",
            build(&|o| frontend::close(b'P', long, o).unwrap()),
        ),
        (
            "Execute",
            build(&|o| frontend::execute(long, 0, o).unwrap()),
        ),
    ]
}

/// Sends `out` then Sync: what came back up to ReadyForQuery.
async fn synced(s: &mut RawSession, mut out: BytesMut) -> Replies {
    frontend::sync(&mut out);
    s.send(&out).await;
    s.until_ready().await
}

async fn select_1(s: &mut RawSession, what: &str) {
    let r = s.query("select 1").await;
    assert_eq!(r.rows, [[Some("1".to_string())]], "{what}: {r:?}");
    assert_eq!(r.status, b'I', "{what}: {r:?}");
}

/// The named statements the server holds.
async fn server_statements(s: &mut RawSession) -> Vec<String> {
    let r = s
        .query("select name from pg_prepared_statements order by name")
        .await;
    assert_eq!(r.code(), None, "{r:?}");
    r.rows
        .into_iter()
        .filter_map(|mut row| row.remove(0))
        .collect()
}

fn assert_too_long(r: &Replies, what: &str) {
    let (code, text) = r.error.clone().unwrap_or_default();
    assert_eq!(code, "42622", "{what}: {r:?}");
    assert!(
        text.contains("is too long: at most 63 bytes"),
        "{what}: {text}"
    );
    assert!(r.rows.is_empty(), "{what}: {r:?}");
}

/// A 63-byte name is the longest the server tells apart: Parse, Bind,
/// Describe, Execute and Close work with it, for a statement and a portal.
#[tokio::test]
async fn names_of_63_bytes_work() {
    let pg = TestPostgres::start();
    seed_app(&pg);
    let gw = Gateway::start(&pg, &Spec::STANDARD);
    let mut s = RawSession::connect(&gw, "agents").await;

    let statement = "s".repeat(63);
    let portal = "p".repeat(63);
    let mut out = BytesMut::new();
    frontend::parse(&statement, "select $1::text", std::iter::empty(), &mut out).unwrap();
    frontend::describe(b'S', &statement, &mut out).unwrap();
    bind(&mut out, &portal, &statement, &["kept"]);
    frontend::describe(b'P', &portal, &mut out).unwrap();
    frontend::execute(&portal, 0, &mut out).unwrap();
    frontend::close(b'P', &portal, &mut out).unwrap();
    let r = synced(&mut s, out).await;
    assert_eq!(r.code(), None, "{r:?}");
    assert_eq!(r.rows, [[Some("kept".to_string())]], "{r:?}");
    assert_eq!(server_statements(&mut s).await, [statement.as_str()]);

    // Tracked as the server holds it: its Binds reach the guardrails with
    // its text.
    let r = s.run_prepared(&statement, &["drop"]).await;
    assert_eq!(r.code(), Some("42501"), "{r:?}");
    // An Execute of the portal, without a Describe.
    let mut out = BytesMut::new();
    bind(&mut out, &portal, &statement, &["again"]);
    frontend::execute(&portal, 0, &mut out).unwrap();
    let r = synced(&mut s, out).await;
    assert_eq!(r.rows, [[Some("again".to_string())]], "{r:?}");

    assert_eq!(s.close(&statement).await.code(), None);
    assert!(server_statements(&mut s).await.is_empty());
    let r = s.run_prepared(&statement, &["gone"]).await;
    assert_eq!(r.code(), Some("26000"), "{r:?}");
    select_1(&mut s, "after the 63-byte names").await;
}

/// Every message naming a statement or portal of 64 bytes is refused with
/// 42622, the server never gets it and the session goes on: at the Sync
/// (the rest of the batch is discarded), in a transaction block the
/// transaction fails and ROLLBACK ends it. The refusals are in the audit
/// log.
#[tokio::test]
async fn names_over_63_bytes_are_refused_and_the_session_goes_on() {
    let pg = TestPostgres::start();
    seed_app(&pg);
    let gw = Gateway::start(&pg, &Spec::STANDARD);
    let mut s = RawSession::connect(&gw, "agents").await;
    assert_eq!(s.parse("short", "select 'short'").await.code(), None);

    let long = format!("{}x", "L".repeat(63));
    let kinds = messages_naming(&long);
    for (what, out) in &kinds {
        let r = synced(&mut s, out.clone()).await;
        assert_too_long(&r, what);
        let (_, text) = r.error.clone().unwrap_or_default();
        let quoted = format!("\"{}…\"", "L".repeat(20));
        assert!(text.contains(&quoted), "{what}: the name shortened: {text}");
        let expected = if what.contains("portal") || *what == "Execute" {
            "portal name"
        } else {
            "prepared statement name"
        };
        assert!(text.starts_with(expected), "{what}: {text}");
        assert_eq!(r.status, b'I', "{what}: {r:?}");
        select_1(&mut s, what).await;

        assert_eq!(s.query("begin").await.status, b'T', "{what}");
        let r = synced(&mut s, out.clone()).await;
        assert_too_long(&r, what);
        assert_eq!(r.status, b'E', "{what}: the transaction failed: {r:?}");
        let r = s.query("select 1").await;
        assert_eq!(r.code(), Some("25P02"), "{what}: {r:?}");
        let r = s.query("rollback").await;
        assert_eq!((r.code(), r.status), (None, b'I'), "{what}: {r:?}");
        select_1(&mut s, what).await;
    }
    assert_eq!(server_statements(&mut s).await, ["short"]);

    // In the middle of a batch: what came before it stands, the rest of the
    // batch is discarded.
    for (what, refused) in &kinds {
        let mut out = BytesMut::new();
        frontend::parse("before", "select 'before'", std::iter::empty(), &mut out).unwrap();
        out.extend_from_slice(refused);
        frontend::parse("after", "select 'after'", std::iter::empty(), &mut out).unwrap();
        bind(&mut out, "", "short", &[]);
        frontend::execute("", 0, &mut out).unwrap();
        let r = synced(&mut s, out).await;
        assert_too_long(&r, what);
        assert_eq!(
            server_statements(&mut s).await,
            ["before", "short"],
            "{what}"
        );
        let r = s.run_prepared("after", &[]).await;
        assert_eq!(r.code(), Some("26000"), "{what}: {r:?}");
        assert_eq!(s.close("before").await.code(), None, "{what}");
    }

    let r = s.run_prepared("short", &[]).await;
    assert_eq!(r.rows, [[Some("short".to_string())]], "{r:?}");

    // Recorded like the gateway's other refusals (emitted events reach the
    // log within milliseconds).
    let refusals = || {
        common::process::read_log(&gw.state_dir())
            .iter()
            .filter(|r| r.kind == "statement.denied" && r.detail["rule"] == "name-too-long")
            .count()
    };
    let expected = 3 * kinds.len();
    let start = Instant::now();
    while refusals() < expected {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{} of {expected} refusals in the audit log",
            refusals()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Two names sharing their first 63 bytes are one statement at the server:
/// neither reaches it, so nothing the gateway tracks can differ from what
/// the server holds, and neither can the count of named statements.
#[tokio::test]
async fn names_sharing_63_bytes_cannot_desync_the_gateway() {
    let pg = TestPostgres::start();
    seed_app(&pg);
    let gw = Gateway::start(&pg, &Spec::STANDARD);
    let mut s = RawSession::connect(&gw, "agents").await;

    let stem = "A".repeat(63);
    let (l1, l2) = (format!("{stem}1"), format!("{stem}2"));

    // Parse L1 then Bind L2: both refused, the server holds neither.
    let r = s.parse(&l1, "select 'one'").await;
    assert_too_long(&r, "Parse L1");
    let r = s.run_prepared(&l2, &[]).await;
    assert_too_long(&r, "Bind L2");
    assert!(server_statements(&mut s).await.is_empty());

    // The 63-byte name they share is a statement of its own, which neither
    // reaches: a Bind of L1 does not run it, a Close of L2 does not close it.
    assert_eq!(s.parse(&stem, "select $1::text").await.code(), None);
    let r = s.run_prepared(&l1, &["via L1"]).await;
    assert_too_long(&r, "Bind L1");
    let mut out = BytesMut::new();
    frontend::close(b'S', &l2, &mut out).unwrap();
    let r = synced(&mut s, out).await;
    assert_too_long(&r, "Close L2");
    assert_eq!(server_statements(&mut s).await, [stem.as_str()]);
    // Still tracked with its text: a Bind is judged as the server runs it.
    let r = s.run_prepared(&stem, &["drop"]).await;
    assert_eq!(r.code(), Some("42501"), "{r:?}");
    let r = s.run_prepared(&stem, &["kept"]).await;
    assert_eq!(r.rows, [[Some("kept".to_string())]], "{r:?}");

    // Pipelined Parse/Close pairs of long names, more than the named
    // statements the gateway keeps track of: none counts.
    const PAIRS: usize = 10_001;
    const BATCH: usize = 1_000;
    let mut sent = 0;
    while sent < PAIRS {
        let mut out = BytesMut::new();
        for i in sent..(sent + BATCH).min(PAIRS) {
            let name = format!("{stem}{i}");
            frontend::parse(&name, "select 1", std::iter::empty(), &mut out).unwrap();
            frontend::close(b'S', &name, &mut out).unwrap();
        }
        sent = (sent + BATCH).min(PAIRS);
        let r = synced(&mut s, out).await;
        assert_too_long(&r, "pipelined pairs");
        assert_eq!(r.status, b'I', "{r:?}");
    }
    let r = s.parse("after", "select 'after'").await;
    assert_eq!(r.code(), None, "{r:?}");
    let r = s.run_prepared("after", &[]).await;
    assert_eq!(r.rows, [[Some("after".to_string())]], "{r:?}");
    assert_eq!(server_statements(&mut s).await, [stem, "after".to_string()]);
    select_1(&mut s, "after the pipelined pairs").await;
}
