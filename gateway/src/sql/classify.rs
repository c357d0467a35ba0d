//! What a top-level statement is: node name, kind, command tag, flags, and the
//! parts of the summary that only the statement's own syntax says (SET
//! targets, prepared names, dropped objects).

use pg_query::NodeEnum;
use pg_query::protobuf::{self, ObjectType, TransactionStmtKind, VariableSetKind, VariableSetStmt};
use serde_json::Value;

use super::tag;
use super::walk;
use crate::plugins::bindings::types::{
    Setting, StatementFlags, StatementKind, TableRef, TableWrite, WriteAction,
};

/// The statement-level half of a summary; `mod.rs` merges it with the walk.
pub(crate) struct Class {
    pub node: String,
    pub kind: StatementKind,
    pub command_tag: String,
    pub flags: StatementFlags,
    pub has_where: bool,
    pub setting: Option<Setting>,
    pub prepared_name: Option<String>,
    /// Writes the generic walk cannot see: objects named by string lists.
    pub extra_writes: Vec<TableWrite>,
    /// Plain EXPLAIN: nothing below is executed.
    pub not_executed: bool,
}

impl Class {
    fn new(node: &str, kind: StatementKind, tag: impl Into<String>) -> Self {
        // Conservative default: anything not proven read-only changes state.
        Class {
            node: node.to_owned(),
            kind,
            command_tag: tag.into(),
            flags: StatementFlags::MODIFIES_STATE,
            has_where: false,
            setting: None,
            prepared_name: None,
            extra_writes: Vec::new(),
            not_executed: false,
        }
    }

    fn read_only(mut self) -> Self {
        self.flags &= !StatementFlags::MODIFIES_STATE;
        self
    }

    fn with(mut self, flags: StatementFlags) -> Self {
        self.flags |= flags;
        self
    }
}

/// Settings whose change alters what later statements may do or whom they act
/// as, so a SET of them keeps `modifies-state`: `search_path` redirects
/// unqualified table and function names away from what a guardrail approved,
/// `session_replication_role = replica` disables triggers and foreign keys,
/// the read-only settings (and `SET TRANSACTION`/`SET SESSION
/// CHARACTERISTICS`, which carry them) undo a read-only session.
/// `standard_conforming_strings` and `client_encoding` change how the server
/// reads the text of later statements (backslashes in strings; multibyte
/// characters that swallow a `\`), so this analysis would no longer describe
/// what the server runs; see `sync.rs`.
const SENSITIVE_SETTINGS: &[&str] = &[
    "role",
    "standard_conforming_strings",
    "client_encoding",
    "session_authorization",
    "search_path",
    "session_replication_role",
    "default_transaction_read_only",
    "transaction_read_only",
    "transaction",
    "session characteristics",
    "row_security",
];

pub(crate) fn classify(node: &NodeEnum, name: &str) -> Class {
    use StatementKind as K;
    let name = name.to_owned();
    match node {
        NodeEnum::SelectStmt(s) => {
            let mut c = Class::new(&name, K::Query, "SELECT");
            c.has_where = s.where_clause.is_some();
            if s.into_clause.is_some() {
                c.kind = K::Dml;
                c.flags |= StatementFlags::SELECT_INTO;
            } else if s.locking_clause.is_empty() {
                // FOR UPDATE/SHARE takes row locks: not a pure read.
                c = c.read_only();
            }
            c
        }
        NodeEnum::InsertStmt(_) => Class::new(&name, K::Dml, "INSERT"),
        NodeEnum::UpdateStmt(s) => {
            let mut c = Class::new(&name, K::Dml, "UPDATE");
            c.has_where = s.where_clause.is_some();
            c
        }
        NodeEnum::DeleteStmt(s) => {
            let mut c = Class::new(&name, K::Dml, "DELETE");
            c.has_where = s.where_clause.is_some();
            c
        }
        NodeEnum::MergeStmt(_) => Class::new(&name, K::Dml, "MERGE"),
        NodeEnum::ExplainStmt(s) => explain(&name, s),
        NodeEnum::PrepareStmt(s) => {
            let mut c = inner(s.query.as_deref())
                .unwrap_or_else(|| Class::new(&name, K::Utility, "PREPARE"));
            c.node = name;
            c.command_tag = "PREPARE".into();
            c.prepared_name = Some(s.name.clone());
            c
        }
        NodeEnum::ExecuteStmt(s) => {
            let mut c =
                Class::new(&name, K::Procedural, "EXECUTE").with(StatementFlags::DYNAMIC_SQL);
            c.prepared_name = Some(s.name.clone());
            c
        }
        NodeEnum::DeallocateStmt(s) => {
            let mut c = Class::new(
                &name,
                K::Utility,
                if s.isall {
                    "DEALLOCATE ALL"
                } else {
                    "DEALLOCATE"
                },
            );
            c.prepared_name = (!s.isall).then(|| s.name.clone());
            c
        }
        NodeEnum::DoStmt(_) => {
            Class::new(&name, K::Procedural, "DO").with(StatementFlags::DYNAMIC_SQL)
        }
        NodeEnum::CallStmt(_) => {
            Class::new(&name, K::Procedural, "CALL").with(StatementFlags::DYNAMIC_SQL)
        }
        NodeEnum::CopyStmt(s) => copy(&name, s),
        NodeEnum::CreateTableAsStmt(s) => {
            let tag = match ObjectType::try_from(s.objtype) {
                Ok(ObjectType::ObjectMatview) => "CREATE MATERIALIZED VIEW",
                _ if s.is_select_into => "SELECT",
                _ => "CREATE TABLE AS",
            };
            Class::new(&name, K::Dml, tag).with(StatementFlags::SELECT_INTO)
        }
        NodeEnum::DeclareCursorStmt(s) => {
            let mut c =
                inner(s.query.as_deref()).unwrap_or_else(|| Class::new(&name, K::Utility, ""));
            c.node = name;
            c.command_tag = "DECLARE CURSOR".into();
            c
        }
        NodeEnum::FetchStmt(s) => {
            Class::new(&name, K::Query, if s.ismove { "MOVE" } else { "FETCH" }).read_only()
        }
        NodeEnum::VariableShowStmt(_) => Class::new(&name, K::Query, "SHOW").read_only(),
        NodeEnum::VariableSetStmt(s) => set(&name, s),
        NodeEnum::DiscardStmt(_) => Class::new(&name, K::Session, tag::command_tag(node, &name)),
        NodeEnum::TransactionStmt(s) => {
            let c = Class::new(&name, K::Transaction, tag::command_tag(node, &name));
            match TransactionStmtKind::try_from(s.kind) {
                // Two-phase commit outlives the session and acts on transactions
                // other sessions prepared.
                Ok(
                    TransactionStmtKind::TransStmtPrepare
                    | TransactionStmtKind::TransStmtCommitPrepared
                    | TransactionStmtKind::TransStmtRollbackPrepared,
                ) => c,
                _ => c.read_only(),
            }
        }
        NodeEnum::DropStmt(s) => {
            let mut c = Class::new(&name, K::Ddl, tag::command_tag(node, &name));
            if let Some(action_objects) = dropped_relations(s) {
                c.extra_writes = action_objects;
            }
            c
        }
        NodeEnum::CommentStmt(s) => described(node, &name, s.objtype, s.object.as_deref()),
        NodeEnum::SecLabelStmt(s) => described(node, &name, s.objtype, s.object.as_deref()),
        NodeEnum::CreateFunctionStmt(_)
        | NodeEnum::CreateTrigStmt(_)
        | NodeEnum::RuleStmt(_)
        | NodeEnum::CreateEventTrigStmt(_) => {
            // Their bodies run later, out of this analysis' sight.
            Class::new(&name, K::Ddl, tag::command_tag(node, &name))
                .with(StatementFlags::DYNAMIC_SQL)
        }
        // LISTEN registers the session for other sessions' messages and NOTIFY
        // delivers one to them: both have effects beyond this statement, so
        // they keep `modifies-state` (the conservative default).
        _ => Class::new(
            &name,
            tag::kind_of(node, &name),
            tag::command_tag(node, &name),
        ),
    }
}

fn inner(node: Option<&protobuf::Node>) -> Option<Class> {
    let node = node?;
    let value = serde_json::to_value(node).ok()?;
    let name = node_name(&value)?;
    Some(classify(node.node.as_ref()?, name))
}

/// The type name of a serialised `Node`: its single key.
pub(crate) fn node_name(node: &Value) -> Option<&str> {
    node.get("node")?
        .as_object()?
        .keys()
        .next()
        .map(String::as_str)
}

fn explain(name: &str, s: &protobuf::ExplainStmt) -> Class {
    let analyze = s.options.iter().any(|opt| {
        let Some(NodeEnum::DefElem(d)) = &opt.node else {
            return false;
        };
        d.defname.eq_ignore_ascii_case("analyze") && option_enabled(d.arg.as_deref())
    });
    let inner = inner(s.query.as_deref());
    match inner {
        Some(mut c) if analyze => {
            // The explained statement runs: it is what the summary describes.
            c.node = name.to_owned();
            c.command_tag = "EXPLAIN".into();
            c.flags |= StatementFlags::EXPLAIN_ANALYZE;
            c
        }
        inner => {
            let mut c = Class::new(name, StatementKind::Query, "EXPLAIN").read_only();
            c.has_where = inner.as_ref().is_some_and(|i| i.has_where);
            c.not_executed = true;
            c
        }
    }
}

/// PostgreSQL's boolean option syntax: no value, or true/on/1/yes…; anything
/// that is not clearly false counts as enabled.
fn option_enabled(arg: Option<&protobuf::Node>) -> bool {
    let Some(arg) = arg else { return true };
    let Ok(v) = serde_json::to_value(arg) else {
        return true;
    };
    match walk::literal(&v) {
        Some(text) => !matches!(
            text.to_ascii_lowercase().as_str(),
            "false" | "off" | "0" | "no"
        ),
        None => true,
    }
}

fn copy(name: &str, s: &protobuf::CopyStmt) -> Class {
    let mut c = Class::new(name, StatementKind::Copy, "COPY");
    if s.is_program {
        c.flags |= StatementFlags::COPY_PROGRAM;
    } else if !s.filename.is_empty() {
        c.flags |= StatementFlags::COPY_SERVER_FILE;
    } else if s.is_from {
        c.flags |= StatementFlags::COPY_FROM_CLIENT;
    } else {
        // COPY … TO STDOUT only reads; a write hidden in `COPY (DELETE …
        // RETURNING …) TO STDOUT` is put back by the walk's writes.
        c.flags |= StatementFlags::COPY_TO_CLIENT;
        c = c.read_only();
    }
    c
}

fn set(name: &str, s: &VariableSetStmt) -> Class {
    let kind = VariableSetKind::try_from(s.kind).unwrap_or(VariableSetKind::Undefined);
    let setting_name = match kind {
        VariableSetKind::VarResetAll => "all".to_owned(),
        _ => s.name.to_ascii_lowercase(),
    };
    let value = match kind {
        VariableSetKind::VarSetValue | VariableSetKind::VarSetMulti => Some(render_args(&s.args)),
        VariableSetKind::VarSetCurrent => Some("FROM CURRENT".to_owned()),
        _ => None,
    };
    let reset = matches!(
        kind,
        VariableSetKind::VarReset | VariableSetKind::VarResetAll
    );
    let role_change = matches!(
        setting_name.as_str(),
        "role" | "session_authorization" | "all"
    );
    let mut c = Class::new(
        name,
        StatementKind::Session,
        if reset { "RESET" } else { "SET" },
    );
    if role_change {
        c.flags |= StatementFlags::ROLE_CHANGE;
    } else if !SENSITIVE_SETTINGS.contains(&setting_name.as_str()) {
        // An ordinary setting changes how this session behaves, not data.
        c = c.read_only();
    }
    c.setting = Some(Setting {
        name: setting_name,
        value,
    });
    c
}

fn render_args(args: &[protobuf::Node]) -> String {
    args.iter()
        .map(|arg| {
            let v = serde_json::to_value(arg).unwrap_or(Value::Null);
            if let Some(text) = walk::literal(&v) {
                return text;
            }
            // SET TRANSACTION ISOLATION LEVEL …: DefElems of name and value.
            walk::tagged(&v, "DefElem")
                .map(|d| {
                    let name = d.get("defname").and_then(Value::as_str).unwrap_or("");
                    match d.get("arg").and_then(walk::literal) {
                        Some(val) => format!("{name} {val}"),
                        None => name.to_owned(),
                    }
                })
                .unwrap_or_else(|| "?".to_owned())
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// COMMENT and SECURITY LABEL: they change what a table (or its column,
/// constraint, trigger, rule or policy) says of itself, named by a string
/// list as DROP names it, so table rules see them as altering that table.
fn described(node: &NodeEnum, name: &str, objtype: i32, object: Option<&protobuf::Node>) -> Class {
    let mut c = Class::new(name, tag::kind_of(node, name), tag::command_tag(node, name));
    let Ok(kind) = ObjectType::try_from(objtype) else {
        return c;
    };
    // How many trailing names are not the table's (`COMMENT ON COLUMN t.c`,
    // `COMMENT ON TRIGGER tr ON t` is the list `t, tr`).
    let trailing = match kind {
        ObjectType::ObjectTable
        | ObjectType::ObjectView
        | ObjectType::ObjectMatview
        | ObjectType::ObjectSequence
        | ObjectType::ObjectForeignTable
        | ObjectType::ObjectIndex => 0,
        ObjectType::ObjectColumn
        | ObjectType::ObjectTabconstraint
        | ObjectType::ObjectTrigger
        | ObjectType::ObjectRule
        | ObjectType::ObjectPolicy => 1,
        _ => return c,
    };
    let Some(v) = object.and_then(|o| serde_json::to_value(o).ok()) else {
        return c;
    };
    let mut parts = walk::name_list(walk::tagged(&v, "List").and_then(|l| l.get("items")));
    parts.truncate(parts.len().saturating_sub(trailing));
    if let Some(table) = parts.pop() {
        c.extra_writes = vec![TableWrite {
            table: TableRef {
                schema: parts.pop(),
                name: table,
            },
            action: WriteAction::Alter,
            has_where: false,
        }];
    }
    c
}

/// Tables, views, sequences… named by a DROP: their names are string lists,
/// not RangeVars, so the generic walk does not report them.
fn dropped_relations(s: &protobuf::DropStmt) -> Option<Vec<TableWrite>> {
    let relation_like = matches!(
        ObjectType::try_from(s.remove_type).ok()?,
        ObjectType::ObjectTable
            | ObjectType::ObjectView
            | ObjectType::ObjectMatview
            | ObjectType::ObjectSequence
            | ObjectType::ObjectForeignTable
            | ObjectType::ObjectIndex
    );
    if !relation_like {
        return None;
    }
    let writes = s
        .objects
        .iter()
        .filter_map(|o| serde_json::to_value(o).ok())
        .filter_map(|v| {
            let mut parts = walk::name_list(walk::tagged(&v, "List")?.get("items"));
            let name = parts.pop()?;
            Some(TableWrite {
                table: TableRef {
                    schema: parts.pop(),
                    name,
                },
                action: WriteAction::Drop,
                has_where: false,
            })
        })
        .collect();
    Some(writes)
}
