//! Binary-format results are masked as text-format ones are: the `sluice`
//! binary with `pii-mask` (configured by `examples/pii-mask.toml`) in front
//! of a real PostgreSQL, read in text (simple protocol) and in binary
//! (tokio-postgres, whose extended-protocol Binds ask for binary results),
//! and compared with the same query run on PostgreSQL directly.
//!
//! Addresses (`inet`, `cidr`, `macaddr`, `macaddr8` and arrays of them) are
//! rendered for the maskers, so a binary value is masked exactly when its
//! text is. Containers holding addresses (records, `anyarray`) and types
//! whose binary form hides an address are withheld: never less masked than
//! their text.

mod common;

use std::error::Error;
use std::path::Path;

use common::gateway::Gateway;
use common::postgres::TestPostgres;
use sluice::postgres::binary::{Kind, builtin, classify};
use tokio_postgres::types::{FromSql, Type};
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

/// Any value as the bytes the server sent.
#[derive(Debug, PartialEq)]
struct Raw(Vec<u8>);

impl<'a> FromSql<'a> for Raw {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn Error + Sync + Send>> {
        Ok(Raw(raw.to_vec()))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

fn seed(pg: &TestPostgres) {
    for sql in [
        "create role app login password 'app-pw'",
        "create database app owner app",
    ] {
        pg.psql("postgres", sql).unwrap();
    }
    // A base type whose binary form is inet's, as an extension's address
    // type (ip4r, say) would be: not built in, and hiding an address.
    pg.psql(
        "app",
        "create type myinet;
         create function myinet_in(cstring) returns myinet
           language internal immutable strict as 'inet_in';
         create function myinet_out(myinet) returns cstring
           language internal immutable strict as 'inet_out';
         create function myinet_recv(internal) returns myinet
           language internal immutable strict as 'inet_recv';
         create function myinet_send(myinet) returns bytea
           language internal immutable strict as 'inet_send';
         create type myinet (input = myinet_in, output = myinet_out,
           receive = myinet_recv, send = myinet_send,
           internallength = variable, storage = main, alignment = int4);",
    )
    .unwrap();
    pg.psql(
        "app",
        "create type mood as enum ('happy', 'sad');
         create type contact as (name text, ip inet);
         create type label as (name text, n int);
         create table hosts(
           id int primary key, ip inet, net cidr, mac macaddr, mac8 macaddr8,
           ips inet[], nets cidr[], note text, mood mood, contact contact,
           label label, addr myinet);
         insert into hosts values
           (1, '10.1.2.3', '10.1.2.0/24', '08:00:2b:01:02:03',
            '08:00:2b:01:02:03:04:05', '{10.1.2.3,NULL}', '{10.1.2.0/24}',
            'alpha', 'happy', '(ann,10.1.2.3)', '(ann,1)', '10.1.2.3'),
           (2, '::1', '2001:db8::/32', null, null, '{::1}', '{}',
            'beta', 'sad', '(bo,)', '(bo,2)', null),
           (3, '2001:db8::1/64', null, '08:00:2b:aa:bb:cc', null,
            '[0:1]={::1,::ffff:1.2.3.4}', null, 'gamma', null, null, null, null);
         analyze hosts;
         alter table hosts owner to app;",
    )
    .unwrap();
}

fn start(pg: &TestPostgres) -> Gateway {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/pii-mask.toml");
    let mut config: toml::Table = std::fs::read_to_string(&example)
        .unwrap()
        .parse()
        .expect("the example is TOML");
    let mut connection = config["connections"][0].as_table().cloned().unwrap();
    connection.insert("upstream".into(), pg.addr().into());
    config.insert(
        "connections".into(),
        toml::Value::Array(vec![toml::Value::Table(connection)]),
    );
    Gateway::from_toml(
        config,
        &["pii-mask"],
        &[
            ("APPDB_PASSWORD", "app-pw"),
            ("PII_MASK_KEY", "binary-masking-test-key"),
        ],
    )
}

async fn connect(conninfo: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(conninfo, NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}

async fn through_gateway(gw: &Gateway, groups: &[&str]) -> Client {
    let token = gw.token_for("agent-1", groups);
    connect(&format!(
        "host=127.0.0.1 port={} dbname=appdb user=agent password={token}",
        gw.pg_port
    ))
    .await
}

async fn direct(pg: &TestPostgres, dbname: &str) -> Client {
    connect(&format!(
        "host=127.0.0.1 port={} dbname={dbname} user={} password={}",
        pg.port, pg.user, pg.password
    ))
    .await
}

/// Binary results, as raw bytes per cell.
async fn binary(client: &Client, sql: &str) -> Vec<Vec<Option<Raw>>> {
    client
        .query(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"))
        .iter()
        .map(|row| (0..row.len()).map(|i| row.get(i)).collect())
        .collect()
}

/// Text results.
async fn text(client: &Client, sql: &str) -> Vec<Vec<Option<String>>> {
    client
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"))
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(row) => Some(
                (0..row.len())
                    .map(|i| row.get(i).map(str::to_string))
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

/// One query three ways: text and binary through the gateway, binary on the
/// server directly.
struct Compared {
    text: Vec<Vec<Option<String>>>,
    binary: Vec<Vec<Option<Raw>>>,
    direct: Vec<Vec<Option<Raw>>>,
}

impl Compared {
    async fn run(gateway: &Client, server: &Client, sql: &str) -> Self {
        let compared = Compared {
            text: text(gateway, sql).await,
            binary: binary(gateway, sql).await,
            direct: binary(server, sql).await,
        };
        assert_eq!(compared.text.len(), compared.direct.len(), "{sql}");
        assert_eq!(compared.binary.len(), compared.direct.len(), "{sql}");
        // Never less masked than the text: a value masked there is NULL in
        // binary, and a binary value that is not NULL is the server's.
        for (r, ((t, b), d)) in compared
            .text
            .iter()
            .zip(&compared.binary)
            .zip(&compared.direct)
            .enumerate()
        {
            for (c, ((t, b), d)) in t.iter().zip(b).zip(d).enumerate() {
                if t.is_none() {
                    assert_eq!(*b, None, "{sql}: row {r} column {c}: NULL in text");
                }
                if b.is_some() {
                    assert_eq!(b, d, "{sql}: row {r} column {c}: changed in binary");
                }
            }
        }
        compared
    }

    /// Column `c` is masked in binary exactly where it is in text.
    fn same_as_text(&self, c: usize) {
        for (r, (t, b)) in self.text.iter().zip(&self.binary).enumerate() {
            assert_eq!(
                t[c].is_none(),
                b[c].is_none(),
                "row {r} column {c}: text {:?}, binary {:?}",
                t[c],
                b[c]
            );
        }
    }

    fn binary(&self, r: usize, c: usize) -> Option<&[u8]> {
        self.binary[r][c].as_ref().map(|v| &v.0[..])
    }

    fn direct(&self, r: usize, c: usize) -> Option<&[u8]> {
        self.direct[r][c].as_ref().map(|v| &v.0[..])
    }
}

/// The reported leak: `inet` values left unmasked in binary results.
#[tokio::test]
async fn addresses_are_masked_in_binary_as_in_text() {
    let pg = TestPostgres::start();
    seed(&pg);
    let gw = start(&pg);
    let agent = through_gateway(&gw, &["agents"]).await;
    let server = direct(&pg, "app").await;

    let sql = "select ip, net, mac, mac8, ips, nets, array[ip], '10.9.8.7'::inet \
               from hosts order by id";
    let got = Compared::run(&agent, &server, sql).await;
    for c in 0..8 {
        got.same_as_text(c);
    }
    // 10.1.2.3 in every form is masked ...
    assert_eq!(got.text[0][0], None, "{}", gw.log());
    for c in [0, 1, 4, 5, 6, 7] {
        assert_eq!(got.binary(0, c), None, "column {c}");
    }
    // ... as `2001:db8::1/64` is, and `2001:db8::/32` (as IPv6 text) ...
    assert_eq!(got.binary(2, 0), None);
    assert_eq!(got.binary(1, 1), None);
    // ... and a macaddr8, whose eight groups read as an IPv6 address.
    assert_eq!(got.text[0][3], None);
    assert_eq!(got.binary(0, 3), None);
    // `::1` is not one pii-mask detects: unchanged in both formats, as are
    // MAC addresses.
    assert_eq!(got.text[1][0].as_deref(), Some("::1"));
    assert_eq!(got.binary(1, 0), got.direct(1, 0));
    assert!(got.binary(1, 0).is_some());
    assert_eq!(got.text[0][2].as_deref(), Some("08:00:2b:01:02:03"));
    assert_eq!(got.binary(0, 2), Some(&[8, 0, 0x2b, 1, 2, 3][..]));
    assert_eq!(got.binary(2, 2), got.direct(2, 2));
    // An empty array has nothing to mask.
    assert_eq!(got.text[1][5].as_deref(), Some("{}"));
    assert!(got.binary(1, 5).is_some());

    // A parameter does not change that.
    let rows = agent
        .query("select ip from hosts where id = $1", &[&1i32])
        .await
        .unwrap();
    assert_eq!(rows[0].get::<_, Option<Raw>>(0), None);

    // Readers exempt from masking get every value as the server sent it.
    let reader = through_gateway(&gw, &["agents", "pii-readers"]).await;
    assert_eq!(binary(&reader, sql).await, got.direct);
}

/// Containers walked by the types their values name, and types not built in
/// classified by the catalog.
#[tokio::test]
async fn containers_and_other_types_are_never_less_masked_than_text() {
    let pg = TestPostgres::start();
    seed(&pg);
    let gw = start(&pg);
    let agent = through_gateway(&gw, &["agents"]).await;
    let server = direct(&pg, "app").await;

    let got = Compared::run(
        &agent,
        &server,
        "select row(id, ip), row(id, note), contact, label, mood, addr, \
                array[contact], array[label] \
         from hosts order by id",
    )
    .await;
    // Records and arrays of records holding an address: withheld, NULL in
    // text too where pii-mask finds the address.
    assert_eq!(got.text[0][0], None);
    for r in 0..3 {
        assert_eq!(got.binary(r, 0), None, "row {r}");
    }
    assert_eq!(got.binary(0, 2), None);
    assert_eq!(got.binary(0, 6), None);
    // One whose address is NULL holds nothing hidden.
    assert_eq!(got.text[1][2].as_deref(), Some("(bo,)"));
    assert_eq!(got.binary(1, 2), got.direct(1, 2));
    assert!(got.binary(1, 2).is_some());
    // Records of text and numbers, enums: as the server sent them.
    for (r, c) in [
        (0, 1),
        (1, 1),
        (2, 1),
        (0, 3),
        (1, 3),
        (0, 4),
        (1, 4),
        (0, 7),
    ] {
        assert!(got.binary(r, c).is_some(), "row {r} column {c}");
        assert_eq!(got.binary(r, c), got.direct(r, c), "row {r} column {c}");
    }
    // A type not built in whose binary form hides an address.
    assert_eq!(got.text[0][5], None);
    assert_eq!(got.binary(0, 5), None);

    // `anyarray`: an inet column's histogram is withheld, a text one's is
    // not.
    let got = Compared::run(
        &agent,
        &server,
        "select attname, histogram_bounds from pg_stats \
         where schemaname = 'public' and tablename = 'hosts' and attname in ('ip', 'note') \
         order by attname",
    )
    .await;
    assert_eq!(got.text.len(), 2);
    assert!(
        got.direct(0, 1).is_some(),
        "the inet column has a histogram"
    );
    assert_eq!(got.text[0][1], None);
    assert_eq!(got.binary(0, 1), None);
    assert_eq!(got.text[1][1].as_deref(), Some("{alpha,beta,gamma}"));
    assert_eq!(got.binary(1, 1), got.direct(1, 1));

    // Withheld values are counted.
    let metrics = gw.admin_get("/metrics").unwrap_or_default();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("sluice_pg_values_withheld_total{")),
        "{metrics}"
    );
}

/// The gateway's table of built-in types agrees with what this server's
/// catalog says of them, and leaves none out.
#[tokio::test]
async fn built_in_types_are_classified_as_the_catalog_describes_them() {
    let pg = TestPostgres::start();
    let server = direct(&pg, "postgres").await;
    let rows = server
        .query(
            "select t.oid, t.typname::text, t.typtype::text, t.typbasetype, l.lanname::text, \
                    p.prosrc, p.probin, \
                    (select r.rngsubtype from pg_range r \
                     where r.rngtypid = t.oid \
                        or (to_jsonb(r) ->> 'rngmultitypid')::oid = t.oid limit 1) \
             from pg_type t \
             join pg_proc p on p.oid = t.typsend \
             join pg_language l on l.oid = p.prolang \
             where t.oid < 10000",
            &[],
        )
        .await
        .unwrap();
    assert!(rows.len() > 100);
    for row in rows {
        let oid: u32 = row.get(0);
        let name: String = row.get(1);
        let catalog = classify(
            row.get::<_, &str>(2),
            row.get(3),
            row.get(4),
            row.get(5),
            row.get(6),
            row.get(7),
        );
        // Built-in ranges are listed as what their subtype is.
        let catalog = match catalog {
            Kind::Range(subtype) => builtin(subtype).unwrap_or(Kind::Opaque),
            kind => kind,
        };
        assert_eq!(builtin(oid), Some(catalog), "{name} ({oid})");
    }
}

/// The clients the leak was found with: asyncpg (binary results by
/// default) and psycopg with a binary cursor.
#[tokio::test]
async fn python_clients_get_addresses_masked_in_binary() {
    let pg = TestPostgres::start();
    seed(&pg);
    let gw = start(&pg);
    let script = r#"
import asyncio, os
import asyncpg, psycopg

def check(cond, what):
    if not cond:
        raise AssertionError(what)

async def via_asyncpg():
    conn = await asyncpg.connect(host="127.0.0.1", port=int(os.environ["PORT"]),
        user="agent-1", password=os.environ["PGPASSWORD"], database="appdb")
    row = await conn.fetchrow("select ip, array[ip] as ips, net, mac from hosts where id = 1")
    check(row["ip"] is None and row["ips"] is None and row["net"] is None, f"asyncpg {row}")
    check(row["mac"] == "08:00:2b:01:02:03", f"asyncpg {row}")
    row = await conn.fetchrow("select ip from hosts where id = 2")
    check(str(row["ip"]) == "::1", f"asyncpg {row}")
    await conn.close()

asyncio.run(via_asyncpg())
with psycopg.connect(host="127.0.0.1", port=os.environ["PORT"], user="agent-1",
        password=os.environ["PGPASSWORD"], dbname="appdb") as conn:
    cur = conn.cursor(binary=True)
    cur.execute("select ip, array[ip], net, mac from hosts where id = 1")
    row = cur.fetchone()
    check(row[0] is None and row[1] is None and row[2] is None, f"psycopg {row}")
    check(row[3] is not None, f"psycopg {row}")
print("clients: all checks passed")
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", script])
        .env("PORT", gw.pg_port.to_string())
        .env("PGPASSWORD", gw.token_for("agent-1", &["agents"]))
        .output()
        .expect("python3 (scripts/dev.sh installs asyncpg and psycopg)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("clients: all checks passed"),
        "{stdout}\n{}\ngateway log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        gw.log()
    );
}
