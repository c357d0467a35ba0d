//! The `pii-mask` plugin end to end: the `sluice` binary configured by
//! `examples/pii-mask.toml` in front of a real PostgreSQL, read through
//! psql (simple protocol, text results) and tokio-postgres (extended
//! protocol, binary results) by agents in different groups.

mod common;

use std::path::Path;

use common::gateway::Gateway;
use common::postgres::TestPostgres;
use serde_json::{Value, json};

const KEY: &str = "pii-mask-end-to-end-test-key";

fn seed(pg: &TestPostgres) {
    for sql in [
        "create role app login password 'app-pw'",
        "create database app owner app",
    ] {
        pg.psql("postgres", sql).unwrap();
    }
    pg.psql(
        "app",
        r#"create table customers(
             id int primary key, name text, email text, phone varchar(40),
             customer_ssn text, notes text, profile jsonb);
           insert into customers values
             (1, 'Ann Lee', 'ann.lee@example.com', '+44 20 7946 0958', '536-90-4399',
              'paid with 4242 4242 4242 4242 from 203.0.113.9',
              '{"contacts": [{"email": "bob@example.org", "iban": "DE89 3704 0044 0532 0130 00"}], "age": 41}'),
             (2, 'Bo', null, '(415) 555-2671', null,
              'order 1234567890 on 2024-01-15, total 1,234.56',
              '{"auth": "Bearer abc123def456ghi789", "n": [1, 2]}'),
             (3, 'Cy', 'cy@example.net', null, '078-05-1120', 'key AKIAIOSFODNN7EXAMPLE', null);
           alter table customers owner to app;"#,
    )
    .unwrap();
}

fn start(pg: &TestPostgres) -> Gateway {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/pii-mask.toml");
    let mut config: toml::Table = std::fs::read_to_string(&example)
        .unwrap()
        .parse()
        .expect("the example is TOML");
    let connection = config["connections"][0].as_table().cloned().unwrap();
    let mut connection = connection;
    connection.insert("upstream".into(), pg.addr().into());
    config.insert(
        "connections".into(),
        toml::Value::Array(vec![toml::Value::Table(connection)]),
    );
    Gateway::from_toml(
        config,
        &["pii-mask"],
        &[("APPDB_PASSWORD", "app-pw"), ("PII_MASK_KEY", KEY)],
    )
}

const QUERY: &str =
    "select id, name, email, phone, customer_ssn, notes, profile from customers order by id;\n";

/// psql's unaligned rows, the profile column parsed.
fn parse_rows(out: &str) -> Vec<(Vec<String>, Value)> {
    out.lines()
        .map(|line| {
            let mut cells: Vec<String> = line.split('|').map(str::to_string).collect();
            let profile = cells.pop().unwrap();
            let profile = if profile.is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&profile).unwrap_or_else(|e| panic!("{profile}: {e}"))
            };
            (cells, profile)
        })
        .collect()
}

#[test]
fn psql_sees_masked_rows_by_group() {
    let pg = TestPostgres::start();
    seed(&pg);
    let gw = start(&pg);

    let (out, err) = gw.psql_on("appdb", &gw.token_for("agent-1", &["agents"]), QUERY);
    let rows = parse_rows(&out);
    assert_eq!(rows.len(), 3, "{out}{err}\n{}", gw.log());
    let (ann, profile) = &rows[0];
    assert!(
        ann[2].starts_with("email_") && ann[2].len() == 22,
        "{ann:?}"
    );
    assert_eq!(
        ann[..],
        [
            "1",
            "Ann Lee",
            ann[2].as_str(),
            "+** ** **** 0958",
            "",
            "paid with **** **** **** 4242 from [IP]",
        ]
    );
    assert_eq!(
        *profile,
        json!({"contacts": [{"email": "b***@example.org", "iban": "[IBAN]"}], "age": 41})
    );
    let (bo, profile) = &rows[1];
    assert_eq!(
        bo[..],
        [
            "2",
            "Bo",
            "",
            "(***) ***-2671",
            "",
            "order 1234567890 on 2024-01-15, total 1,234.56"
        ]
    );
    assert_eq!(*profile, json!({"auth": "Bearer [SECRET]", "n": [1, 2]}));
    let (cy, _) = &rows[2];
    assert_eq!(cy[4..], ["", "key [SECRET]"]);
    assert_ne!(cy[2], ann[2], "different emails, different pseudonyms");

    // Arrays and composite rows cannot take a replacement: NULL when they
    // hold anything, as they are when they do not.
    let (out, err) = gw.psql_on(
        "appdb",
        &gw.token_for("agent-1", &["agents"]),
        "select array_agg(notes order by id) from customers;\n\
         select row(id, name), row(id, notes) from customers where id = 1;\n",
    );
    assert_eq!(out, "\n(1,\"Ann Lee\")|\n", "{err}");

    // The same value gets the same pseudonym in every session.
    let (again, _) = gw.psql_on(
        "appdb",
        &gw.token_for("agent-2", &["agents"]),
        "select email from customers where id = 1;\n",
    );
    assert_eq!(again.trim(), ann[2]);

    // pii-readers see what the database holds.
    let (clear, _) = gw.psql_on(
        "appdb",
        &gw.token_for("analyst", &["agents", "pii-readers"]),
        QUERY,
    );
    let direct = pg
        .psql("app", QUERY.trim_end_matches(";\n"))
        .expect("direct query");
    assert_eq!(rows_text(&clear), rows_text(&direct));

    // support sees contact details, nothing else.
    let (out, _) = gw.psql_on(
        "appdb",
        &gw.token_for("helpdesk", &["agents", "support"]),
        QUERY,
    );
    let rows = parse_rows(&out);
    assert_eq!(
        rows[0].0[2..],
        [
            "ann.lee@example.com",
            "+44 20 7946 0958",
            "",
            "paid with **** **** **** 4242 from [IP]",
        ]
    );
    assert_eq!(
        rows[0].1,
        json!({"contacts": [{"email": "bob@example.org", "iban": "[IBAN]"}], "age": 41})
    );

    // What was masked is counted per connection and entity.
    let metrics = gw.admin_get("/metrics").unwrap_or_default();
    for entity in ["email", "phone", "card", "ssn", "iban", "ip", "secret"] {
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with("sluice_masked_values_total{")
                    && l.contains(r#"connection="appdb""#)
                    && l.contains(&format!(r#"entity="{entity}""#))),
            "no count for {entity}:\n{metrics}"
        );
    }
}

/// The rows as psql prints them, whatever the output options.
fn rows_text(out: &str) -> Vec<String> {
    out.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// tokio-postgres uses the extended protocol and binary results: text,
/// varchar and jsonb values are masked in their binary form too.
#[tokio::test]
async fn binary_results_are_masked() {
    let pg = TestPostgres::start();
    seed(&pg);
    let gw = start(&pg);
    let token = gw.token_for("agent-1", &["agents"]);
    let conninfo = format!(
        "host=127.0.0.1 port={} dbname=appdb user=agent password={token}",
        gw.pg_port
    );
    let (client, connection) = tokio_postgres::connect(&conninfo, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);

    let rows = client
        .query(
            "select name, email, phone, customer_ssn, notes, profile from customers where id = $1",
            &[&1i32],
        )
        .await
        .unwrap();
    let row = &rows[0];
    assert_eq!(row.get::<_, String>(0), "Ann Lee");
    let email: String = row.get(1);
    assert!(email.starts_with("email_"), "{email}");
    assert_eq!(row.get::<_, String>(2), "+** ** **** 0958");
    assert_eq!(row.get::<_, Option<String>>(3), None);
    assert_eq!(
        row.get::<_, String>(4),
        "paid with **** **** **** 4242 from [IP]"
    );
    let profile: Value = row.get(5);
    assert_eq!(
        profile,
        json!({"contacts": [{"email": "b***@example.org", "iban": "[IBAN]"}], "age": 41})
    );

    // Expressions have no source column: content detection still applies.
    let rows = client
        .query(
            "select 'call ' || phone as msg, profile -> 'auth' as auth from customers where id = 2",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(rows[0].get::<_, String>(0), "call (***) ***-2671");
    assert_eq!(rows[0].get::<_, Value>(1), json!("Bearer [SECRET]"));

    // The text of a query result computed by the server is masked as well.
    let rows = client
        .query("select 'mail ' || 'x@example.com'::text", &[])
        .await
        .unwrap();
    assert_eq!(rows[0].get::<_, String>(0), "mail x***@example.com");

    // jsonb keeps a numeric's scale: a card number written as a decimal
    // (as Python writes floats) is a card number all the same.
    let rows = client
        .query(
            r#"select '{"d":4242424242424242.0}'::jsonb, '[4242424242424242.00]'::jsonb"#,
            &[],
        )
        .await
        .unwrap();
    assert_eq!(rows[0].get::<_, Value>(0), json!({"d": "************4242"}));
    assert_eq!(rows[0].get::<_, Value>(1), json!(["************4242"]));

    // A cast to bytea is the same text in hex (text results) or as raw
    // bytes (binary results): found there, the value becomes NULL.
    let rows = client
        .query(
            "select notes::bytea, name::bytea from customers where id = 1",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(rows[0].get::<_, Option<Vec<u8>>>(0), None);
    assert_eq!(rows[0].get::<_, Vec<u8>>(1), b"Ann Lee".to_vec());
    let messages = client
        .simple_query("select notes::bytea, name::bytea from customers where id = 1")
        .await
        .unwrap();
    let row = messages
        .iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => Some(r),
            _ => None,
        })
        .expect("a row");
    assert_eq!(row.get(0), None);
    assert_eq!(row.get(1), Some("\\x416e6e204c6565"));
}

/// `text` in bytea's hex output, without the `\x`.
fn hex(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

/// What an outside tester got past the masker through psql: bytea inside
/// arrays, rows and JSON; values with a character glued on; and values of
/// rule columns quoted by server messages.
#[test]
fn bytea_glued_values_and_rule_columns_in_messages() {
    let pg = TestPostgres::start();
    seed(&pg);
    pg.psql(
        "app",
        "create table people(id int primary key, name text not null, ssn text unique);
         insert into people values (1, 'Ada', '536221847');
         alter table people owner to app;",
    )
    .unwrap();
    let gw = start(&pg);
    let agent = gw.token_for("agent-1", &["agents"]);

    let masked = hex("paid with **** **** **** 4242 from [IP]");
    let (out, err) = gw.psql_on(
        "appdb",
        &agent,
        "select array[notes::bytea] as a, row(notes::bytea) as r, \
                array[row(notes::bytea)] as ar, \
                jsonb_build_object('k', notes::bytea) as j, notes::bytea::text as t \
         from customers where id = 1;\n",
    );
    assert_eq!(
        out.trim_end(),
        format!(r#"|||{{"k": "\\x{masked}"}}|\x{masked}"#),
        "{err}"
    );

    let (out, err) = gw.psql_on(
        "appdb",
        &agent,
        "select customer_ssn || 'x' as a, 'x' || customer_ssn as b, \
                customer_ssn || '_' as c, email || '0' as d \
         from customers where id = 1;\n\
         select (customer_ssn || 'x')::int from customers where id = 1;\n",
    );
    assert_eq!(
        out.trim_end(),
        "[SSN]x|x[SSN]|[SSN]_|a***@example.com0",
        "{err}"
    );
    assert!(err.contains(r#"integer: "[SSN]x""#), "{err}");

    let (_, err) = gw.psql_on(
        "appdb",
        &agent,
        "insert into people values (2, 'Bo', '536221847');\n\
         update people set name = null where id = 1;\n",
    );
    assert!(!err.contains("536221847"), "{err}");
    assert!(err.contains("Key (ssn)=([SSN]) already exists."), "{err}");
    assert!(
        err.contains("Failing row contains (withheld by pii-mask)."),
        "{err}"
    );

    // pii-readers see the messages as the server wrote them.
    let (_, err) = gw.psql_on(
        "appdb",
        &gw.token_for("analyst", &["agents", "pii-readers"]),
        "insert into people values (2, 'Bo', '536221847');\n",
    );
    assert!(
        err.contains("Key (ssn)=(536221847) already exists."),
        "{err}"
    );
}
