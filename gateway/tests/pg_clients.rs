//! Client libraries other than libpq's tools through the real `sluice`
//! binary: psycopg 3 and asyncpg (PyPI), node-postgres (npm, in
//! tests/node-pg), pgjdbc (Debian's libpostgresql-jdbc-java, run with the
//! JDK's single-file launcher); scripts/dev.sh installs them.

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
    run_client(
        &gw,
        "psycopg",
        &[
            ("MASKED", conninfo("appdb")),
            ("PLAIN", conninfo("plaindb")),
            ("PGPASSWORD", gw.token()),
        ],
    );
}

/// asyncpg implements the protocol itself, in its own way (see the script).
#[test]
fn asyncpg_through_the_gateway() {
    let script = format!(
        "{}/tests/clients/asyncpg_session.py",
        env!("CARGO_MANIFEST_DIR")
    );
    standard_session("asyncpg", Command::new("python3").arg(script));
}

/// node-postgres also speaks the protocol itself, and sends settings such
/// as `statement_timeout` as startup parameters.
#[test]
fn node_postgres_through_the_gateway() {
    let script = format!(
        "{}/../tests/node-pg/session.mjs",
        env!("CARGO_MANIFEST_DIR")
    );
    standard_session("node-pg", Command::new("node").arg(script));
}

/// pgjdbc: server-prepared statements with binary results, batches, fetch
/// sizes (suspended portals), Statement.cancel, CopyManager, `options`.
#[test]
fn pgjdbc_through_the_gateway() {
    let source = format!(
        "{}/tests/clients/JdbcSession.java",
        env!("CARGO_MANIFEST_DIR")
    );
    standard_session(
        "jdbc",
        Command::new("java")
            .args(["-cp", "/usr/share/java/postgresql.jar"])
            .arg(source),
    );
}

/// Runs a client session against the gateway with [`Spec::STANDARD`]
/// (`appdb`: "drop" denied, emails masked) in front of a fresh server,
/// with PORT and PGPASSWORD (the agent's token) in its environment.
fn standard_session(library: &str, command: &mut Command) {
    let pg = TestPostgres::start();
    seed_app(&pg);
    let gw = Gateway::start(&pg, &Spec::STANDARD);
    check_run(
        &gw,
        library,
        command
            .env("PORT", gw.pg_port.to_string())
            .env("PGPASSWORD", gw.token()),
    );
}

/// Runs `tests/clients/<library>_session.py` with `env`; it prints
/// "<library>: all checks passed" when every check it makes passed.
fn run_client(gw: &Gateway, library: &str, env: &[(&str, String)]) {
    let script = format!(
        "{}/tests/clients/{library}_session.py",
        env!("CARGO_MANIFEST_DIR")
    );
    check_run(
        gw,
        library,
        Command::new("python3")
            .arg(script)
            .envs(env.iter().map(|(k, v)| (k, v))),
    );
}

/// Runs a client session script, which prints "<library>: all checks
/// passed" when every check it makes passed.
fn check_run(gw: &Gateway, library: &str, command: &mut Command) {
    let program = command.get_program().to_string_lossy().into_owned();
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("{program} (scripts/dev.sh installs it with {library}): {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains(&format!("{library}: all checks passed")),
        "{stdout}\n{stderr}\n({library} missing? run scripts/dev.sh, which installs it)\ngateway log:\n{}",
        gw.log()
    );
}
