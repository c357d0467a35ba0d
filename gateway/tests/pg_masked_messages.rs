//! On a connection with maskers, data reaches the agent only masked, also
//! when it comes in an error, a notice, a notification or a reported
//! parameter rather than a row: the `sluice` binary between a raw-protocol
//! client and a real PostgreSQL (SCRAM), with `mask-email`.

mod common;

use common::gateway::{Gateway, Spec, as_app, seed_app};
use common::postgres::TestPostgres;
use common::raw::RawSession;
use postgres_protocol::message::frontend;

fn text(messages: &[(u8, Vec<u8>)]) -> String {
    messages
        .iter()
        .map(|(tag, body)| format!("{}:{}\n", *tag as char, String::from_utf8_lossy(body)))
        .collect()
}

fn has(messages: &[(u8, Vec<u8>)], tag: u8, needle: &str) -> bool {
    messages
        .iter()
        .any(|(t, body)| *t == tag && String::from_utf8_lossy(body).contains(needle))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_notices_notifications_and_parameters_are_masked() {
    let pg = TestPostgres::start();
    seed_app(&pg);
    as_app(
        &pg,
        "create table accounts(id int primary key, email text unique);
         insert into accounts values (1, 'ann@example.com');",
    );
    let gw = Gateway::start(&pg, &Spec::STANDARD);
    let mut s = RawSession::connect(&gw, "agents").await;
    // (statement, the message it brings, what that message must say)
    let cases: [(&str, u8, &[&str]); 7] = [
        // A unique violation quotes the existing value in its DETAIL.
        (
            "insert into accounts select 2, email from accounts where id = 1",
            b'E',
            &["Key (email)=([EMAIL]) already exists"],
        ),
        // A cast error quotes the value it could not read.
        (
            "select cast(email as int) from accounts where id = 1",
            b'E',
            &["\"[EMAIL]\""],
        ),
        // A notice raised with a column's value, in its message and detail.
        (
            "do $$ declare e text; begin select email into e from accounts where id = 1; \
             raise notice 'owner %', e using detail = 'contact ' || e; end $$",
            b'N',
            &["owner [EMAIL]", "contact [EMAIL]"],
        ),
        // A notification carrying a column's value.
        (
            "listen jobs; select pg_notify('jobs', email) from accounts where id = 1",
            b'A',
            &["jobs\0[EMAIL]"],
        ),
        // A notification on a channel named by a column's value.
        (
            "listen \"ann@example.com\"; select pg_notify(email, 'x') from accounts where id = 1",
            b'A',
            &["[EMAIL]\0x"],
        ),
        // A column named by a value, through dynamic SQL.
        (
            "do $$ begin execute format('create temp view v as select 1 as %I, 2 as plain', \
             (select email from accounts where id = 1)); end $$; select * from v",
            b'T',
            &["[EMAIL]\0", "plain\0"],
        ),
        // A parameter the server reports after set_config.
        (
            "select set_config('application_name', email, false) from accounts where id = 1",
            b'S',
            &["application_name\0[EMAIL]"],
        ),
    ];
    for (sql, tag, expected) in cases {
        let m = s.query_messages(sql).await;
        let seen = text(&m);
        for needle in expected {
            assert!(has(&m, tag, needle), "{sql}: {seen}");
        }
        assert!(!seen.contains("ann@example.com"), "{sql}: {seen}");
    }

    // A statement's description (Describe) is masked as a portal's is.
    let mut out = bytes::BytesMut::new();
    frontend::parse("named_by_value", "select * from v", [], &mut out).unwrap();
    frontend::describe(b'S', "named_by_value", &mut out).unwrap();
    frontend::sync(&mut out);
    s.send(&out).await;
    let m = s.messages().await;
    assert!(has(&m, b'T', "[EMAIL]\0"), "{}", text(&m));
    assert!(!text(&m).contains("ann@example.com"), "{}", text(&m));

    // Debug output the client asks for is withheld: it prints constants
    // as byte values (`[ 97 110 110 64 …]`), which no masker reads.
    let m = s
        .query_messages(
            "set client_min_messages = debug5; set debug_print_plan = on; \
             select 1 from accounts where email = 'ann@example.com'",
        )
        .await;
    assert!(!has(&m, b'N', "VLOG\0"), "{}", text(&m));
    assert!(!has(&m, b'N', "VDEBUG"), "{}", text(&m));
    assert!(m.iter().any(|(tag, _)| *tag == b'D'), "{}", text(&m));
    s.query("reset debug_print_plan; reset client_min_messages")
        .await;

    // The session goes on, and the server holds the real values.
    let r = s.query("select count(*) from accounts").await;
    assert_eq!(r.rows, [[Some("1".to_string())]], "{r:?}");
    assert_eq!(
        pg.psql("app", "select email from accounts").unwrap().trim(),
        "ann@example.com"
    );
}
