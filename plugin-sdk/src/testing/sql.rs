//! Builders for SQL requests. They only set fields: deciding what a statement
//! is, which the gateway's parser does in production, is up to the test.

use crate::types::{
    FunctionCall, Request, Setting, SqlPhase, SqlRequest, SqlStatement, StatementFlags,
    StatementKind, TableRef, TableWrite, WriteAction,
};

/// An SQL request under construction; see [`super::sql`].
#[derive(Debug, Clone)]
pub struct SqlBuilder {
    request: SqlRequest,
}

impl SqlBuilder {
    pub(super) fn new(text: &str) -> Self {
        let request = SqlRequest {
            text: text.into(),
            phase: SqlPhase::SimpleQuery,
            statements: Vec::new(),
            parameters: Vec::new(),
            statement_name: None,
        };
        SqlBuilder { request }
    }

    /// Adds a statement, described by `describe` from a default of: this
    /// request's text, a `query` with no tables, functions or flags. Without
    /// any call the request gets that default statement alone, because the
    /// gateway never hands a plugin a request without statements.
    pub fn statement(
        mut self,
        describe: impl FnOnce(StatementBuilder) -> StatementBuilder,
    ) -> Self {
        let statement = describe(StatementBuilder::new(&self.request.text)).statement;
        self.request.statements.push(statement);
        self
    }

    pub fn phase(mut self, phase: SqlPhase) -> Self {
        self.request.phase = phase;
        self
    }

    /// Bound parameters in text form (`None` for NULL), as in a Bind.
    pub fn parameters(mut self, parameters: &[Option<&str>]) -> Self {
        self.request.parameters = parameters.iter().map(|p| p.map(str::to_string)).collect();
        self
    }

    /// The prepared statement name of a Parse/Bind (`""` is the unnamed one).
    pub fn statement_name(mut self, name: &str) -> Self {
        self.request.statement_name = Some(name.into());
        self
    }

    pub fn build(self) -> Request {
        let mut request = self.request;
        if request.statements.is_empty() {
            request
                .statements
                .push(StatementBuilder::new(&request.text).statement);
        }
        Request::Sql(request)
    }
}

impl From<SqlBuilder> for Request {
    fn from(builder: SqlBuilder) -> Self {
        builder.build()
    }
}

/// One statement's analysis, as the gateway would report it.
#[derive(Debug, Clone)]
pub struct StatementBuilder {
    statement: SqlStatement,
}

impl StatementBuilder {
    fn new(text: &str) -> Self {
        StatementBuilder {
            statement: SqlStatement {
                text: text.into(),
                node: "SelectStmt".into(),
                kind: StatementKind::Query,
                command_tag: "SELECT".into(),
                tables_read: Vec::new(),
                tables_written: Vec::new(),
                functions: Vec::new(),
                has_where: false,
                flags: StatementFlags::empty(),
                setting: None,
                prepared_name: None,
            },
        }
    }

    /// This statement's own text, when the request holds several.
    pub fn text(mut self, text: &str) -> Self {
        self.statement.text = text.into();
        self
    }

    pub fn kind(mut self, kind: StatementKind) -> Self {
        self.statement.kind = kind;
        self
    }

    /// The parser node name, e.g. `DeleteStmt`.
    pub fn node(mut self, node: &str) -> Self {
        self.statement.node = node.into();
        self
    }

    /// The command tag, e.g. `DROP TABLE`.
    pub fn tag(mut self, command_tag: &str) -> Self {
        self.statement.command_tag = command_tag.into();
        self
    }

    /// Reads `table` (`name` or `schema.name`).
    pub fn reads(mut self, table: &str) -> Self {
        self.statement.tables_read.push(table_ref(table));
        self
    }

    /// Writes `table` without a WHERE restricting the write.
    pub fn writes(self, table: &str, action: WriteAction) -> Self {
        self.writes_where(table, action, false)
    }

    /// Writes `table`; `has_where` tells whether a WHERE/ON restricts it.
    pub fn writes_where(mut self, table: &str, action: WriteAction, has_where: bool) -> Self {
        let write = TableWrite {
            table: table_ref(table),
            action,
            has_where,
        };
        self.statement.tables_written.push(write);
        self
    }

    /// Calls function `name` (or `schema.name`) with these literal arguments
    /// (`None` for a non-literal argument).
    pub fn calls(mut self, name: &str, literal_args: &[Option<&str>]) -> Self {
        let TableRef { schema, name } = table_ref(name);
        let literal_args = literal_args.iter().map(|a| a.map(str::to_string)).collect();
        self.statement.functions.push(FunctionCall {
            schema,
            name,
            literal_args,
        });
        self
    }

    /// The top-level statement has a WHERE clause.
    pub fn has_where(mut self, has_where: bool) -> Self {
        self.statement.has_where = has_where;
        self
    }

    /// Adds `flags` to those already set.
    pub fn flags(mut self, flags: StatementFlags) -> Self {
        self.statement.flags |= flags;
        self
    }

    /// A SET (`Some(value)`) or RESET (`None`) of `name`.
    pub fn setting(mut self, name: &str, value: Option<&str>) -> Self {
        self.statement.setting = Some(Setting {
            name: name.into(),
            value: value.map(str::to_string),
        });
        self
    }

    /// The prepared statement a PREPARE / EXECUTE / DEALLOCATE names.
    pub fn prepared_name(mut self, name: &str) -> Self {
        self.statement.prepared_name = Some(name.into());
        self
    }
}

fn table_ref(qualified: &str) -> TableRef {
    match qualified.split_once('.') {
        Some((schema, name)) => TableRef {
            schema: Some(schema.into()),
            name: name.into(),
        },
        None => TableRef {
            schema: None,
            name: qualified.into(),
        },
    }
}
