//! Questions a guardrail asks of sessions and requests.

use super::{
    FunctionCall, HttpRequest, Request, Session, ShellRequest, SqlRequest, SqlStatement,
    StatementFlags, StatementKind, TableRef,
};

impl Request {
    /// The SQL request, when the session speaks PostgreSQL.
    pub fn sql(&self) -> Option<&SqlRequest> {
        match self {
            Request::Sql(sql) => Some(sql),
            _ => None,
        }
    }

    /// The HTTP request, when the session speaks HTTP (including MCP).
    pub fn http(&self) -> Option<&HttpRequest> {
        match self {
            Request::Http(http) => Some(http),
            _ => None,
        }
    }

    /// The shell request, when the session is an SSH channel.
    pub fn shell(&self) -> Option<&ShellRequest> {
        match self {
            Request::Shell(shell) => Some(shell),
            _ => None,
        }
    }
}

impl Session {
    /// Whether the verified identity is in Sluice group `group` (exact match).
    pub fn in_group(&self, group: &str) -> bool {
        self.identity.groups.iter().any(|g| g == group)
    }
}

impl SqlRequest {
    /// Every statement only reads (see [`SqlStatement::is_read_only`]).
    /// False for a request without statements, which the gateway never parses
    /// successfully, so that "nothing to judge" is not mistaken for "safe".
    pub fn is_read_only(&self) -> bool {
        !self.statements.is_empty() && self.statements.iter().all(SqlStatement::is_read_only)
    }

    /// Some statement calls `name` (see [`SqlStatement::calls_function`]).
    pub fn calls_function(&self, name: &str) -> bool {
        self.statements.iter().any(|s| s.calls_function(name))
    }
}

impl SqlStatement {
    /// A query that cannot change state. Relies on the gateway's conservative
    /// classification: `EXPLAIN ANALYZE DELETE` or a writable CTE is not a
    /// `query`, and anything with side effects carries `modifies-state`.
    pub fn is_read_only(&self) -> bool {
        self.kind == StatementKind::Query && !self.flags.contains(StatementFlags::MODIFIES_STATE)
    }

    /// Changes rows, schema, privileges or other state: a DML/DDL/DCL
    /// statement, one that writes a relation, or one flagged
    /// `modifies-state`. Transaction control and plain `SET` are not writes.
    pub fn writes(&self) -> bool {
        matches!(
            self.kind,
            StatementKind::Dml | StatementKind::Ddl | StatementKind::Dcl
        ) || !self.tables_written.is_empty()
            || self.flags.contains(StatementFlags::MODIFIES_STATE)
    }

    /// Calls function `name`, compared case-insensitively. A bare name
    /// matches in any schema; `schema.name` matches calls qualified with that
    /// schema and also unqualified calls, since the search path may resolve
    /// those to it (a guardrail should rather over- than under-match).
    pub fn calls_function(&self, name: &str) -> bool {
        let (schema, name) = match name.rsplit_once('.') {
            Some((schema, name)) => (Some(schema), name),
            None => (None, name),
        };
        self.functions
            .iter()
            .any(|f| function_matches(f, schema, name))
    }
}

fn function_matches(call: &FunctionCall, schema: Option<&str>, name: &str) -> bool {
    if !call.name.eq_ignore_ascii_case(name) {
        return false;
    }
    match (schema, &call.schema) {
        (Some(wanted), Some(called)) => called.eq_ignore_ascii_case(wanted),
        _ => true,
    }
}

impl TableRef {
    /// `schema.name`, or just `name` when the statement did not qualify it.
    pub fn qualified(&self) -> String {
        match &self.schema {
            Some(schema) => format!("{schema}.{}", self.name),
            None => self.name.clone(),
        }
    }
}

// `testing` is native-only: these tests need the host target.
#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use crate::testing;
    use crate::types::WriteAction;

    fn statement(request: &Request) -> &SqlStatement {
        &request.sql().unwrap().statements[0]
    }

    #[test]
    fn read_only_needs_query_kind_without_modifies_state() {
        let select = testing::sql("SELECT 1").build();
        assert!(statement(&select).is_read_only() && !statement(&select).writes());
        let nextval = testing::sql("SELECT nextval('s')")
            .statement(|s| {
                s.flags(StatementFlags::MODIFIES_STATE)
                    .calls("nextval", &[Some("s")])
            })
            .build();
        assert!(!statement(&nextval).is_read_only() && statement(&nextval).writes());
        let drop = testing::sql("DROP TABLE t")
            .statement(|s| s.kind(StatementKind::Ddl).writes("t", WriteAction::Drop))
            .build();
        assert!(!drop.sql().unwrap().is_read_only() && statement(&drop).writes());
        let begin = testing::sql("BEGIN")
            .statement(|s| s.kind(StatementKind::Transaction))
            .build();
        assert!(!statement(&begin).is_read_only() && !statement(&begin).writes());
    }

    #[test]
    fn function_names_match_case_insensitively_and_by_schema() {
        let req = testing::sql("SELECT pg_catalog.PG_SLEEP(1), lower('x')")
            .statement(|s| {
                s.calls("pg_catalog.PG_SLEEP", &[Some("1")])
                    .calls("lower", &[Some("x")])
            })
            .build();
        let sql = req.sql().unwrap();
        assert!(sql.calls_function("pg_sleep") && sql.calls_function("PG_CATALOG.pg_sleep"));
        assert!(!sql.calls_function("public.pg_sleep"));
        assert!(
            sql.calls_function("public.lower"),
            "unqualified calls match any schema"
        );
        assert!(!sql.calls_function("upper"));
    }

    #[test]
    fn qualified_names_and_groups() {
        let t = TableRef {
            schema: Some("s".into()),
            name: "t".into(),
        };
        assert_eq!(t.qualified(), "s.t");
        assert_eq!(
            TableRef {
                schema: None,
                name: "t".into()
            }
            .qualified(),
            "t"
        );
        let session = testing::session("agent", &["dba"]);
        assert!(session.in_group("dba") && !session.in_group("DBA"));
        assert!(testing::http("GET", "/").build().http().is_some());
        assert!(testing::shell("ls").shell().is_some() && testing::shell("ls").sql().is_none());
    }
}
