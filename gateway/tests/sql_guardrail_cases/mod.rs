//! The sql-guardrail evasion corpus (see ../sql_guardrail.rs): one row per
//! attempt, with the group whose token sends it and what must happen.
//!
//! Groups follow examples/sql-guardrail.toml: `readers` fall to the default
//! policy (read-only), `agents` write with deny lists and an approval rule,
//! `analysts` read an allow-listed set of tables, `dba` may run code the
//! gateway cannot inspect. `{marker}` is replaced by a path the server could
//! write to, so a COPY that ran would leave a file behind.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Runs without error.
    Allow,
    /// Runs without error and changes nothing (text that only looks dangerous).
    AllowInert,
    /// SQLSTATE 42501 from sql-guardrail naming this rule; nothing ran.
    Deny(&'static str),
    /// SQLSTATE 42501, held for approval under this rule; nothing ran.
    Approval(&'static str),
    /// SQLSTATE 42501 from the gateway itself, the message holding this; nothing ran.
    Refused(&'static str),
    /// SQLSTATE 42601: the gateway's parser refuses the text; nothing ran.
    Unparsed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocols {
    /// Simple Query, then Parse/Bind/Execute.
    Both,
    /// Several statements in one message: only a simple Query can carry them
    /// (a Parse holds one statement).
    SimpleOnly,
}

pub struct Case {
    pub group: &'static str,
    pub sql: &'static str,
    pub expect: Expect,
    pub protocols: Protocols,
}

use Expect::*;
use Protocols::*;

fn case(group: &'static str, sql: &'static str, expect: Expect) -> Case {
    Case {
        group,
        sql,
        expect,
        protocols: Both,
    }
}

fn multi(group: &'static str, sql: &'static str, expect: Expect) -> Case {
    Case {
        group,
        sql,
        expect,
        protocols: SimpleOnly,
    }
}

const R: &str = "readers";
const AG: &str = "agents";
const AN: &str = "analysts";
const DBA: &str = "dba";

#[rustfmt::skip]
pub fn cases() -> Vec<Case> {
    vec![
        // ---- read-only (the default policy)
        case(R, "SELECT id, name FROM customers ORDER BY id", Allow),
        case(R, "select * from CUSTOMERS where ID = 1", Allow),
        case(R, "SELECT * FROM U&\"\\0063ustomers\"", Allow),
        case(R, "SHOW search_path", Allow),
        case(R, "EXPLAIN DELETE FROM customers", AllowInert),
        case(R, "SET statement_timeout = 5000", Allow),
        multi(R, "BEGIN; SELECT count(*) FROM customers; COMMIT", Allow),
        multi(R, "PREPARE q2 AS SELECT name FROM customers; DEALLOCATE q2", Allow),
        case(R, "DELETE FROM customers WHERE id = 1", Deny("read-only")),
        case(R, "dElEtE fRoM CuStOmErS wHeRe Id = 2", Deny("read-only")),
        case(R, "/* harmless */ DELETE /* ; */ FROM customers -- ;\nWHERE id = 3", Deny("read-only")),
        case(R, "DELETE FROM U&\"\\0063ustomers\" WHERE id = 1", Deny("read-only")),
        multi(R, "SELECT 1; DELETE FROM customers WHERE id = 1", Deny("read-only")),
        multi(R, "SELECT 1;;; UPDATE customers SET name = 'x' WHERE id = 1;", Deny("read-only")),
        case(R, "WITH gone AS (DELETE FROM customers RETURNING *) SELECT count(*) FROM gone", Deny("read-only")),
        case(R, "SELECT * FROM (WITH w AS (INSERT INTO scratch VALUES (9, 'cte') RETURNING 1) SELECT * FROM w) s", Deny("read-only")),
        case(R, "SELECT * INTO customers_copy FROM customers", Deny("read-only")),
        case(R, "CREATE TABLE customers_copy AS SELECT * FROM customers", Deny("read-only")),
        case(R, "EXPLAIN ANALYZE DELETE FROM customers WHERE id = 1", Deny("read-only")),
        case(R, "EXPLAIN (FORMAT JSON, ANALYZE) UPDATE customers SET name = 'x' WHERE id = 1", Deny("read-only")),
        case(R, "MERGE INTO customers c USING (VALUES (1)) v(id) ON c.id = v.id WHEN MATCHED THEN DELETE", Deny("read-only")),
        case(R, "SELECT nextval('seq')", Deny("read-only")),
        case(R, "SELECT * FROM customers FOR UPDATE", Deny("read-only")),
        case(R, "PREPARE p AS DELETE FROM customers WHERE id = 1", Deny("read-only")),
        case(R, "EXECUTE p", Deny("dynamic-sql")),
        multi(R, "PREPARE q1 AS SELECT name FROM customers; EXECUTE q1", Deny("dynamic-sql")),
        case(R, "DO $$ BEGIN DELETE FROM customers; END $$", Deny("dynamic-sql")),
        case(R, "DO LANGUAGE plpgsql $body$ BEGIN EXECUTE 'DROP TABLE ' || 'customers'; END $body$", Deny("dynamic-sql")),
        case(R, "EXPLAIN (ANALYZE false) DELETE FROM customers", AllowInert),
        case(R, "EXPLAIN (ANALYZE 'on') DELETE FROM customers WHERE id = 1", Deny("read-only")),
        case(R, "SELECT * FROM customers FOR NO KEY UPDATE", Deny("read-only")),
        case(R, "SELECT pg_advisory_lock(42)", Deny("read-only")),
        case(R, "SELECT pg_notify('jobs', 'x')", Deny("read-only")),
        case(R, "NOTIFY jobs, 'x'", Deny("read-only")),
        case(R, "LOCK TABLE customers IN ACCESS SHARE MODE", Deny("read-only")),
        case(R, "VACUUM customers", Deny("read-only")),
        case(R, "CREATE TEMP TABLE mine (x int)", Deny("read-only")),
        case(R, "DISCARD ALL", Deny("read-only")),
        case(R, "INSERT INTO scratch VALUES (5, 'x') ON CONFLICT DO NOTHING", Deny("read-only")),
        case(R, "CALL purge_scratch()", Deny("dynamic-sql")),
        case(R, "SELECT query_to_xml('DELETE FROM customers RETURNING 1', true, true, '')", Deny("dynamic-sql")),
        // ---- text that only looks dangerous is parsed as the server parses it
        case(R, "SELECT $$ ; DELETE FROM customers; $$", AllowInert),
        case(R, "SELECT $q$ it's ; $$ DROP TABLE customers $$ $q$ AS harmless", AllowInert),
        case(R, "SELECT ';DELETE FROM customers', E'\\';DELETE FROM customers'", AllowInert),
        case(R, "SELECT 'a\\''; DELETE FROM customers; --'", AllowInert),
        case(R, "SELECT 1 /* outer /* nested ; DELETE FROM customers */ still a comment */", AllowInert),
        case(R, "SELECT \"DELETE FROM customers;\" FROM (SELECT 1 AS \"DELETE FROM customers;\") s", AllowInert),
        // ---- reaching outside the database, from any group
        case(R, "SELECT pg_read_file('PG_VERSION')", Deny("deny-functions")),
        case(R, "SELECT \"pg_read_file\"('PG_VERSION')", Deny("deny-functions")),
        case(R, "SELECT * FROM pg_catalog.PG_LS_DIR('.')", Deny("deny-functions")),
        case(R, "SELECT pg_catalog.\"pg_read_file\"('PG_VERSION', 0, 10)", Deny("deny-functions")),
        case(R, "SELECT * FROM ROWS FROM (generate_series(1, 2), pg_ls_dir('.')) AS x(a, b)", Deny("deny-functions")),
        case(R, "SELECT x FROM customers, LATERAL pg_ls_dir('.') AS x", Deny("deny-functions")),
        case(R, "SELECT CASE WHEN id > 0 THEN pg_read_file('PG_VERSION') END FROM customers", Deny("deny-functions")),
        case(R, "SELECT ARRAY(SELECT pg_ls_dir('.'))", Deny("deny-functions")),
        case(R, "WITH RECURSIVE r AS (SELECT pg_read_file('PG_VERSION') AS x) SELECT * FROM r", Deny("deny-functions")),
        case(R, "SELECT xmlelement(name f, pg_read_file('PG_VERSION'))", Deny("deny-functions")),
        multi(R, "SELECT 1; SELECT pg_read_file('PG_VERSION')", Deny("deny-functions")),
        case(R, "SELECT ('PG_VERSION'::text).pg_read_file", Deny("deny-functions")),
        case(R, "SELECT length(x) FROM (VALUES ((SELECT pg_read_binary_file('PG_VERSION')))) v(x)", Deny("deny-functions")),
        case(AG, "SELECT lo_import('/etc/hostname')", Deny("deny-functions")),
        case(AG, "SELECT lo_export(1, '{marker}')", Deny("deny-functions")),
        case(AG, "SELECT pg_cancel_backend(pg_backend_pid())", Deny("deny-functions")),
        case(AG, "SELECT pg_reload_conf()", Deny("deny-functions")),
        case(AG, "SELECT dblink_exec('dbname=app', 'DROP TABLE customers')", Deny("deny-functions")),
        case(AG, "INSERT INTO scratch VALUES (1, pg_read_file('PG_VERSION'))", Deny("deny-functions")),
        case(AG, "CREATE TABLE leak (v text DEFAULT pg_read_file('PG_VERSION'))", Deny("deny-functions")),
        case(AG, "CREATE OPERATOR ### (FUNCTION = pg_read_file, RIGHTARG = text)", Deny("deny-functions")),
        case(AG, "COPY customers TO PROGRAM 'touch {marker}'", Deny("copy-program")),
        case(DBA, "COPY (SELECT 1) TO PROGRAM 'touch {marker}'", Deny("copy-program")),
        case(AG, "COPY customers TO '{marker}'", Deny("copy-file")),
        case(AG, "copy scratch from '/etc/hostname'", Deny("copy-file")),
        case(AG, "ALTER SYSTEM SET log_statement = 'none'", Deny("server-admin")),
        case(AG, "LOAD 'auto_explain'", Deny("server-admin")),
        case(AG, "CREATE EXTENSION IF NOT EXISTS dblink", Deny("server-admin")),
        // ---- who the session is, and how it reads statements
        case(R, "SET ROLE sluice_admin", Deny("role-change")),
        case(AG, "SET SESSION AUTHORIZATION sluice_admin", Deny("role-change")),
        case(DBA, "SET LOCAL ROLE sluice_admin", Deny("role-change")),
        case(AG, "SELECT set_config('role', 'sluice_admin', false)", Deny("role-change")),
        case(AG, "SELECT set_config(lower('ROLE'), 'sluice_admin', false)", Deny("role-change")),
        case(AG, "SELECT set_config('ROLE', 'sluice_admin', false)", Deny("role-change")),
        case(AG, "SELECT * FROM set_config('role', 'sluice_admin', false)", Deny("role-change")),
        case(AG, "SET \"ROLE\" TO sluice_admin", Deny("role-change")),
        case(AG, "SET SESSION AUTHORIZATION DEFAULT", Deny("role-change")),
        case(AG, "RESET SESSION AUTHORIZATION", Deny("role-change")),
        multi(AG, "BEGIN; SET LOCAL ROLE sluice_admin; COMMIT", Deny("role-change")),
        case(AG, "RESET ALL", Deny("role-change")),
        multi(AG, "SELECT 1; SET ROLE sluice_admin", Deny("role-change")),
        case(AG, "SET search_path = billing, public", Deny("protected-setting")),
        case(AG, "SELECT set_config('search_path', 'billing', false)", Deny("protected-setting")),
        case(AG, "SET session_replication_role = replica", Deny("protected-setting")),
        case(AG, "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE", Deny("protected-setting")),
        case(AG, "SELECT set_config('default_transaction_read_only', 'off', false)", Deny("protected-setting")),
        case(AG, "SET LOCAL row_security = off", Deny("protected-setting")),
        case(AG, "SET standard_conforming_strings = off", Refused("standard_conforming_strings")),
        case(R, "SET NAMES 'SJIS'", Refused("client_encoding")),
        case(AG, "SELECT set_config('standard_conforming_strings', 'off', false)", Refused("standard_conforming_strings")),
        case(AG, "GRANT ALL ON customers TO PUBLIC", Deny("privilege-change")),
        case(AG, "GRANT SELECT ON billing.card_tokens TO PUBLIC", Deny("privilege-change")),
        case(AG, "CREATE ROLE intruder LOGIN SUPERUSER", Deny("privilege-change")),
        case(AG, "ALTER ROLE app SET search_path = billing", Deny("privilege-change")),
        // ---- agents: writes with a WHERE, no schema changes, no card tokens
        case(AG, "INSERT INTO scratch VALUES (1, 'x')", Allow),
        case(AG, "UPDATE customers SET name = name WHERE id = 1", Allow),
        case(AG, "SELECT * FROM billing.invoices", Allow),
        case(AG, "UPDATE customers SET name = 'everyone'", Deny("write-without-where")),
        case(AG, "DELETE FROM scratch", Deny("write-without-where")),
        case(AG, "WITH d AS (DELETE FROM scratch RETURNING *) SELECT count(*) FROM d", Deny("write-without-where")),
        case(AG, "EXPLAIN ANALYZE UPDATE customers SET name = 'x'", Deny("write-without-where")),
        case(AG, "PREPARE wipe AS DELETE FROM scratch", Deny("write-without-where")),
        case(AG, "WITH x AS (UPDATE customers SET name = 'x' RETURNING 1) SELECT 1", Deny("write-without-where")),
        case(AG, "DELETE FROM ONLY scratch", Deny("write-without-where")),
        case(AG, "UPDATE ONLY customers SET name = 'x'", Deny("write-without-where")),
        case(AG, "DELETE FROM scratch USING customers", Deny("write-without-where")),
        case(AG, "UPDATE customers SET name = o.name FROM customers o", Deny("write-without-where")),
        multi(AG, "BEGIN; DELETE FROM customers; COMMIT", Deny("write-without-where")),
        case(AG, "DROP TABLE customers", Deny("deny-commands")),
        case(AG, "drop table if exists \"customers\"", Deny("deny-commands")),
        multi(AG, "SELECT $$x$$; DROP TABLE customers; SELECT $$y$$", Deny("deny-commands")),
        case(AG, "TRUNCATE billing.invoices", Deny("deny-commands")),
        case(AG, "TRUNCATE ONLY scratch", Deny("deny-commands")),
        case(AG, "ALTER TABLE billing.card_tokens RENAME TO public_tokens", Deny("deny-commands")),
        case(AG, "ALTER TABLE customers DROP COLUMN email", Deny("deny-commands")),
        case(AG, "ALTER SCHEMA billing RENAME TO b2", Deny("deny-commands")),
        case(AG, "SELECT * FROM billing.card_tokens", Deny("tables-deny")),
        case(AG, "SELECT * FROM \"billing\".\"card_tokens\"", Deny("tables-deny")),
        case(AG, "SELECT * FROM BILLING.CARD_TOKENS", Deny("tables-deny")),
        case(AG, "SELECT * FROM \"BILLING\".\"CARD_TOKENS\"", Deny("tables-deny")),
        case(AG, "SELECT * FROM billing . /* between */ card_tokens", Deny("tables-deny")),
        case(AG, "SELECT * FROM billing.U&\"!0063ard_tokens\" UESCAPE '!'", Deny("tables-deny")),
        case(AG, "TABLE billing.card_tokens", Deny("tables-deny")),
        case(AG, "SELECT * FROM ONLY billing.card_tokens", Deny("tables-deny")),
        case(AG, "SELECT (SELECT token FROM billing.card_tokens LIMIT 1)", Deny("tables-deny")),
        case(AG, "SELECT c.name FROM customers c, LATERAL (SELECT token FROM billing.card_tokens) t", Deny("tables-deny")),
        case(AG, "VALUES ((SELECT token FROM billing.card_tokens LIMIT 1))", Deny("tables-deny")),
        case(AG, "COPY billing.card_tokens TO STDOUT", Deny("tables-deny")),
        case(AG, "COPY (SELECT token FROM billing.card_tokens) TO STDOUT", Deny("tables-deny")),
        case(AG, "DECLARE c CURSOR WITH HOLD FOR SELECT * FROM billing.card_tokens", Deny("tables-deny")),
        case(AG, "CREATE VIEW tokens AS SELECT * FROM billing.card_tokens", Deny("tables-deny")),
        // ---- built-ins that read what a text argument names, out of the analysis' sight
        case(AG, "SELECT word FROM ts_stat('SELECT to_tsvector(''simple'', token) FROM billing.card_tokens')", Deny("dynamic-sql")),
        case(AG, "SELECT ts_rewrite('a & b'::tsquery, 'SELECT to_tsquery(''simple'', ''a''), to_tsquery(''simple'', token) FROM billing.card_tokens')", Deny("dynamic-sql")),
        case(AG, "SELECT schema_to_xml_and_xmlschema('billing', true, false, '')", Deny("dynamic-sql")),
        case(AG, "SELECT database_to_xml_and_xmlschema(true, false, '')", Deny("dynamic-sql")),
        case(AG, "SELECT table_to_xmlschema('billing.card_tokens', true, false, '')", Deny("dynamic-sql")),
        case(AG, "CREATE TABLE tokens_copy (LIKE billing.card_tokens)", Deny("tables-deny")),
        case(AG, "SELECT * FROM billing.U&\"card\\005ftokens\"", Deny("tables-deny")),
        case(AG, "WITH t AS (SELECT * FROM billing.card_tokens) SELECT count(*) FROM t", Deny("tables-deny")),
        case(AG, "CREATE TABLE stolen AS SELECT * FROM billing.card_tokens", Deny("tables-deny")),
        case(AG, "INSERT INTO scratch SELECT id, token FROM billing.card_tokens", Deny("tables-deny")),
        case(AG, "DELETE FROM billing.invoices WHERE id = 1", Approval("billing-delete")),
        case(AG, "WITH x AS (DELETE FROM billing.invoices WHERE id = 2 RETURNING id) SELECT * FROM x", Approval("billing-delete")),
        case(AG, "MERGE INTO billing.invoices i USING (VALUES (3)) v(id) ON i.id = v.id WHEN MATCHED THEN DELETE", Approval("billing-delete")),
        case(AG, "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$", Deny("dynamic-sql")),
        case(AG, "CREATE RULE r AS ON INSERT TO scratch DO INSTEAD DELETE FROM customers", Deny("dynamic-sql")),
        case(AG, "CREATE TRIGGER tr BEFORE INSERT ON scratch FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger()", Deny("dynamic-sql")),
        // ---- analysts: only allow-listed tables
        case(AN, "SELECT * FROM reporting.daily", Allow),
        case(AN, "SELECT count(*) FROM customers", Allow),
        case(AN, "SELECT * FROM billing.invoices", Deny("tables-allow")),
        case(AN, "SELECT c.name FROM customers c JOIN billing.invoices i ON i.customer = c.id", Deny("tables-allow")),
        case(AN, "SELECT * FROM customers WHERE id IN (SELECT customer FROM billing.invoices)", Deny("tables-allow")),
        case(AN, "SELECT * FROM pg_authid", Deny("tables-allow")),
        case(AN, "SELECT * FROM \"Reporting\".daily", Deny("tables-allow")),
        case(AN, "SELECT * FROM reporting.daily, billing.invoices", Deny("tables-allow")),
        case(AN, "SELECT * FROM information_schema.tables", Deny("tables-allow")),
        // ---- dba: migrations
        case(DBA, "DO $$ BEGIN PERFORM 1; END $$", AllowInert),
        case(DBA, "CREATE TABLE IF NOT EXISTS dba_scratch (id int)", Allow),
        // ---- statements the gateway's parser refuses are never forwarded
        case(R, "SELEC 1", Unparsed),
        case(AG, "DR/**/OP TABLE customers", Unparsed),
        multi(AG, "SELECT 1; DELETE FRM customers", Unparsed),
        case(AG, "SELECT $$unterminated; DROP TABLE customers", Unparsed),
    ]
}
