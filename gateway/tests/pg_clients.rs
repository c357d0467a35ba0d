//! Client libraries other than libpq's tools through the real `sluice`
//! binary: psycopg 3 and asyncpg (PyPI, installed by scripts/dev.sh).

mod common;

use std::process::Command;

use common::gateway::{Gateway, Spec, seed_app};
use common::postgres::TestPostgres;

#[test]
fn psycopg_through_the_gateway() {
    let pg = TestPostgres::start();
    seed_app(&pg);
    // `appdb` has the guardrail and the masker; `plaindb` only the guardrail
    // (COPY TO STDOUT is refused where a masker applies).
    let spec = Spec {
        plugins: &["deny-word", "mask-email"],
        toml: &format!(
            r#"
[plugins.config.deny-word]
words = ["drop"]

[[connections]]
name = "plaindb"
kind = "postgres"
upstream = "{}"
database = "app"
user = "app"
password_env = "APPDB_PASSWORD"
allow_groups = ["agents"]
plugins = ["deny-word"]
"#,
            pg.addr()
        ),
    };
    let gw = Gateway::start(&pg, &spec);
    let conninfo = |db: &str| {
        format!(
            "host=127.0.0.1 port={} dbname={db} user=agent-1",
            gw.pg_port
        )
    };
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/clients/psycopg_session.py"
    );
    let out = Command::new("python3")
        .arg(script)
        .env("MASKED", conninfo("appdb"))
        .env("PLAIN", conninfo("plaindb"))
        .env("PGPASSWORD", gw.token())
        .output()
        .expect("python3 (scripts/dev.sh installs it with psycopg)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("psycopg: all checks passed"),
        "{stdout}\n{stderr}\n(psycopg missing? run scripts/dev.sh, which installs tests/requirements.txt)\ngateway log:\n{}",
        gw.log()
    );
}

/// asyncpg implements the protocol itself, in its own way (see the script).
#[test]
fn asyncpg_through_the_gateway() {
    let pg = TestPostgres::start();
    seed_app(&pg);
    let gw = Gateway::start(&pg, &Spec::STANDARD);
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/clients/asyncpg_session.py"
    );
    let out = Command::new("python3")
        .arg(script)
        .env("PORT", gw.pg_port.to_string())
        .env("PGPASSWORD", gw.token())
        .output()
        .expect("python3 (scripts/dev.sh installs it with asyncpg)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("asyncpg: all checks passed"),
        "{stdout}\n{stderr}\n(asyncpg missing? run scripts/dev.sh, which installs tests/requirements.txt)\ngateway log:\n{}",
        gw.log()
    );
}
