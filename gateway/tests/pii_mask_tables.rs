//! pii-mask's table-qualified column rules on PostgreSQL results. The
//! gateway names each result column's table (`schema.table`) from the
//! RowDescription's table OID, on a catalog connection of its own, so that
//! `public.customers.email` masks that column and not `staff.email`; views,
//! lookups that fail and expressions fall back to the column name. Columns
//! are matched by their name in the table, so an alias does not hide them.
//! Read through psql (text results) and tokio-postgres (binary results)
//! from the real `sluice` binary in front of a real PostgreSQL.

mod common;

use std::time::Duration;

use common::gateway::{Gateway, as_app, seed_app};
use common::postgres::TestPostgres;
use sluice::plugins::bindings::types::{Column, ValueFormat};
use sluice::postgres::catalog::Catalog;
use sluice::postgres::{UpstreamConfig, UpstreamTls};

const KEY: &str = "pii-mask-table-rules-test-key";

const CONFIG: &str = r#"
[plugins.config.pii-mask]
hash_key_env = "PII_MASK_KEY"

[[plugins.config.pii-mask.columns]]
match = "public.customers.email"   # a pseudonym agents can join on
strategy = "hash"
entity = "email"

[[plugins.config.pii-mask.columns]]
match = "public.staff.email"       # work addresses: shown in clear
strategy = "keep"

[[plugins.config.pii-mask.columns]]
match = "public.customers.salary"  # not text: no detector would find it
strategy = "redact"
entity = "salary"

[[plugins.config.pii-mask.columns]]
match = "billing.cards.holder"     # a schema other than public
strategy = "redact"
entity = "card_holder"

[plugins.grants.pii-mask]
env = ["PII_MASK_KEY"]

[[connections]]
name = "appdb"
kind = "postgres"
upstream = "UPSTREAM"
database = "app"
user = "app"
password_env = "APPDB_PASSWORD"
allow_groups = ["agents"]
plugins = ["pii-mask"]
"#;

fn seed(pg: &TestPostgres) {
    seed_app(pg);
    as_app(
        pg,
        "create table customers(id int primary key, email text, salary int);
         create table staff(id int primary key, email text);
         create table vendors(id int primary key, email text);
         create schema billing;
         create table billing.cards(id int primary key, holder text);
         create table cards(id int primary key, holder text);
         insert into customers values (1, 'ann@example.com', 5000);
         insert into staff values (1, 'bob@corp.example');
         insert into vendors values (1, 'cy@vendor.example');
         insert into billing.cards values (1, 'Ann Lee');
         insert into cards values (1, 'Bo Ray');
         create view customer_contacts as select id, email from customers;
         create view staff_directory as select id, email from staff;",
    );
}

fn start(pg: &TestPostgres) -> Gateway {
    let config = CONFIG.replace("UPSTREAM", &pg.addr()).parse().unwrap();
    Gateway::from_toml(
        config,
        &["pii-mask"],
        &[("APPDB_PASSWORD", "app-pw"), ("PII_MASK_KEY", KEY)],
    )
}

/// psql through the gateway: one line per result row (command tags left out).
fn rows(gw: &Gateway, sql: &str) -> Vec<String> {
    let (out, err) = gw.psql_on("appdb", &gw.token(), sql);
    assert!(err.is_empty(), "{err}\n{}", gw.log());
    out.lines()
        .filter(|l| !["BEGIN", "COMMIT", "ALTER TABLE"].contains(l))
        .map(str::to_string)
        .collect()
}

fn is_pseudonym(v: &str) -> bool {
    v.starts_with("email_") && v.len() == 22
}

/// `sluice_pg_table_lookups_total{connection="appdb",outcome}`.
fn lookups(gw: &Gateway, outcome: &str) -> u64 {
    let metrics = gw.admin_get("/metrics").unwrap_or_default();
    metrics
        .lines()
        .find(|l| {
            l.starts_with("sluice_pg_table_lookups_total{")
                && l.contains(r#"connection="appdb""#)
                && l.contains(&format!(r#"outcome="{outcome}""#))
        })
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0)
}

async fn binary_client(gw: &Gateway) -> tokio_postgres::Client {
    let conninfo = format!(
        "host=127.0.0.1 port={} dbname=appdb user=agent password={}",
        gw.pg_port,
        gw.token()
    );
    // The previous client's upstream backend may still be exiting (the
    // failure test allows the role one connection).
    for _ in 0..50 {
        if let Ok((client, connection)) =
            tokio_postgres::connect(&conninfo, tokio_postgres::NoTls).await
        {
            tokio::spawn(connection);
            return client;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("cannot connect through the gateway:\n{}", gw.log());
}

#[tokio::test]
async fn rules_apply_to_the_table_they_name() {
    let pg = TestPostgres::start();
    seed(&pg);
    let gw = start(&pg);

    // Text results (psql, simple protocol).
    let out = rows(
        &gw,
        "select email from customers;
         select email from staff;
         select email from vendors;
         select c.email, s.email, v.email from customers c join staff s using (id) join vendors v using (id);
         select holder from billing.cards;
         select holder from cards;",
    );
    let ann = out[0].clone();
    assert!(is_pseudonym(&ann), "{out:?}");
    assert_eq!(
        out[1..],
        [
            "bob@corp.example",
            "[EMAIL]",
            &format!("{ann}|bob@corp.example|[EMAIL]"),
            "[CARD_HOLDER]",
            "Bo Ray",
        ]
    );

    // Binary results (tokio-postgres, extended protocol), a parameter too.
    let client = binary_client(&gw).await;
    let row = client
        .query_one(
            "select c.email, s.email, v.email, b.holder, p.holder
               from customers c join staff s using (id) join vendors v using (id)
               join billing.cards b using (id) join cards p using (id) where c.id = $1",
            &[&1i32],
        )
        .await
        .unwrap();
    let got: Vec<String> = (0..5).map(|i| row.get(i)).collect();
    assert_eq!(
        got,
        [
            &ann,
            "bob@corp.example",
            "[EMAIL]",
            "[CARD_HOLDER]",
            "Bo Ray"
        ]
    );

    // An alias does not hide a column from its table's rules, in text or
    // binary results; a column with no table (an expression) keeps its alias.
    let out = rows(
        &gw,
        "select email as contact, salary as pay, id as n from customers;
         select holder as h from billing.cards;
         select salary + 0 as pay from customers;",
    );
    assert_eq!(
        out,
        [
            format!("{ann}||1"),
            "[CARD_HOLDER]".to_string(),
            "5000".to_string()
        ]
    );
    let row = client
        .query_one(
            "select c.email as contact, c.salary as pay from customers c where c.id = $1",
            &[&1i32],
        )
        .await
        .unwrap();
    assert_eq!(
        (row.get::<_, String>(0), row.get::<_, Option<i32>>(1)),
        (ann.clone(), None)
    );
    assert_eq!(
        row.columns()[0].name(),
        "contact",
        "the client sees its alias"
    );

    // A view's columns are reported with the view as their table, whatever
    // table they read: they get no name, so the customers rule applies by
    // column name (to the staff addresses too) and the staff `keep` rule
    // does not.
    let out = rows(
        &gw,
        "select email from customer_contacts; select email from staff_directory;",
    );
    assert_eq!(out[0], ann);
    let bob = out[1].clone();
    assert!(is_pseudonym(&bob) && bob != ann, "{out:?}");
    let row = client
        .query_one(
            "select c.email, s.email from customer_contacts c join staff_directory s using (id)",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        (row.get::<_, String>(0), row.get::<_, String>(1)),
        (ann.clone(), bob)
    );

    // Names are cached: the same tables again cost no lookup.
    let before = lookups(&gw, "ok");
    assert!(
        before >= 1,
        "{}",
        gw.admin_get("/metrics").unwrap_or_default()
    );
    rows(&gw, "select email from customers; select email from staff;");
    client.query("select email from staff", &[]).await.unwrap();
    assert_eq!(lookups(&gw, "ok"), before);
    assert_eq!(lookups(&gw, "failed"), 0);

    // A rename through the gateway applies once its transaction is over
    // (until then the catalog connection cannot see it).
    assert_eq!(
        rows(
            &gw,
            "alter table staff rename to employees; select email from employees;"
        ),
        ["[EMAIL]"]
    );
    assert_eq!(
        rows(
            &gw,
            "begin; alter table employees rename to staff; select email from staff; commit;
             select email from staff;"
        ),
        ["[EMAIL]", "bob@corp.example"]
    );
    let row = client
        .query_one("select email from staff", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "bob@corp.example");

    // A rename made elsewhere is seen when the cached name expires (a
    // minute; see `names_follow_renames_elsewhere_when_they_expire`): until
    // then the table keeps the rules of its old name.
    pg.psql("app", "alter table staff rename to team").unwrap();
    assert_eq!(rows(&gw, "select email from team;"), ["bob@corp.example"]);
}

/// When the table names cannot be looked up (here: the role may open only
/// the agent's session, so the catalog connection is refused), masking does
/// not weaken: the customers rule applies to every `email` column and the
/// staff `keep` rule to none. The catalog connection is retried lazily.
#[tokio::test]
async fn a_failed_lookup_masks_by_column_name() {
    let pg = TestPostgres::start();
    seed(&pg);
    pg.psql("postgres", "alter role app connection limit 1")
        .unwrap();
    let gw = start(&pg);

    let out = rows(
        &gw,
        "select email from staff; select c.email, s.email from customers c join staff s using (id);",
    );
    let bob = out[0].clone();
    assert!(is_pseudonym(&bob), "{out:?}\n{}", gw.log());
    let (ann, staff) = out[1].split_once('|').unwrap();
    assert!(is_pseudonym(ann) && ann != bob, "{out:?}");
    assert_eq!(staff, bob);
    assert!(lookups(&gw, "failed") >= 1);
    assert!(gw.log().contains("table names unavailable"), "{}", gw.log());

    let client = binary_client(&gw).await;
    let email = |row: tokio_postgres::Row| row.get::<_, String>(0);
    let got = email(
        client
            .query_one("select email from staff", &[])
            .await
            .unwrap(),
    );
    assert_eq!(got, bob);

    // Once the catalog connection can be opened again (after the retry
    // window), the names come back.
    pg.psql("postgres", "alter role app connection limit -1")
        .unwrap();
    tokio::time::sleep(sluice::postgres::catalog::RETRY_AFTER + Duration::from_millis(300)).await;
    let got = email(
        client
            .query_one("select email from staff", &[])
            .await
            .unwrap(),
    );
    assert_eq!(got, "bob@corp.example");
}

/// The catalog itself against a real server: names of tables in any
/// schema, none for views and unknown OIDs, and a rename made outside the
/// gateway seen once the cached name expires.
#[tokio::test]
async fn names_follow_renames_elsewhere_when_they_expire() {
    let pg = TestPostgres::start();
    seed(&pg);
    let oid = |relation: &str| -> u32 {
        pg.psql("app", &format!("select '{relation}'::regclass::oid"))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    let upstream = UpstreamConfig {
        addr: pg.addr(),
        database: "app".into(),
        user: "app".into(),
        password: Some("app-pw".into()),
        tls: UpstreamTls::Disable,
        connect_timeout: Duration::from_secs(5),
    };
    let ttl = Duration::from_millis(500);
    let catalog = Catalog::with_limits(
        "appdb".into(),
        upstream,
        Duration::from_secs(2),
        Duration::from_secs(3),
        ttl,
    );
    let column = |table_oid| Column {
        name: "email".into(),
        table_oid,
        table: None,
        column_id: 1,
        type_oid: 25,
        type_name: Some("text".into()),
        format: ValueFormat::Binary,
    };
    let (staff, cards, view) = (oid("staff"), oid("billing.cards"), oid("staff_directory"));
    let names = |columns: &[Column]| -> Vec<Option<String>> {
        columns.iter().map(|c| c.table.clone()).collect()
    };
    let mut columns = [
        column(staff),
        column(cards),
        column(view),
        column(4_000_000_000),
        column(0),
    ];
    // Attribute 2 of each: `email`, `holder`, the view's `email`.
    for c in &mut columns {
        c.column_id = 2;
        c.name = "alias".into();
    }
    catalog.name_tables(&mut columns).await;
    assert_eq!(
        columns.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
        ["email", "holder", "email", "alias", "alias"]
    );
    assert_eq!(
        names(&columns),
        [
            Some("public.staff".into()),
            Some("billing.cards".into()),
            None,
            None,
            None
        ]
    );

    pg.psql("app", "alter table staff rename to team").unwrap();
    let mut again = [column(staff)];
    catalog.name_tables(&mut again).await;
    assert_eq!(names(&again), [Some("public.staff".into())], "cached");
    tokio::time::sleep(ttl + Duration::from_millis(100)).await;
    let mut again = [column(staff)];
    catalog.name_tables(&mut again).await;
    assert_eq!(names(&again), [Some("public.team".into())], "expired");
}
