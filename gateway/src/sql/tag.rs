//! Command tags and kinds of the statements `classify` has no special rule for.
//!
//! The tag is best effort (PostgreSQL computes some from catalog lookups); the
//! kind is not: an unknown node is DDL when its name says it creates, alters or
//! drops something, and utility otherwise, both with `modifies-state`.

use pg_query::NodeEnum;
use pg_query::protobuf::{ObjectType, RoleStmtType, TransactionStmtKind};

use crate::plugins::bindings::types::StatementKind;

pub(crate) fn kind_of(node: &NodeEnum, name: &str) -> StatementKind {
    match node {
        NodeEnum::GrantStmt(_)
        | NodeEnum::GrantRoleStmt(_)
        | NodeEnum::CreateRoleStmt(_)
        | NodeEnum::AlterRoleStmt(_)
        | NodeEnum::AlterRoleSetStmt(_)
        | NodeEnum::DropRoleStmt(_)
        | NodeEnum::AlterDefaultPrivilegesStmt(_)
        | NodeEnum::ReassignOwnedStmt(_)
        | NodeEnum::DropOwnedStmt(_)
        | NodeEnum::CreateUserMappingStmt(_)
        | NodeEnum::AlterUserMappingStmt(_)
        | NodeEnum::DropUserMappingStmt(_) => StatementKind::Dcl,
        NodeEnum::TruncateStmt(_)
        | NodeEnum::CommentStmt(_)
        | NodeEnum::SecLabelStmt(_)
        | NodeEnum::RenameStmt(_)
        | NodeEnum::IndexStmt(_)
        | NodeEnum::ViewStmt(_)
        | NodeEnum::RuleStmt(_)
        | NodeEnum::CreatedbStmt(_)
        | NodeEnum::DropdbStmt(_)
        | NodeEnum::AlterSystemStmt(_)
        | NodeEnum::DefineStmt(_)
        | NodeEnum::CompositeTypeStmt(_)
        | NodeEnum::ImportForeignSchemaStmt(_) => StatementKind::Ddl,
        NodeEnum::ConstraintsSetStmt(_) => StatementKind::Transaction,
        _ if ["Create", "Alter", "Drop"]
            .iter()
            .any(|p| name.starts_with(p)) =>
        {
            StatementKind::Ddl
        }
        _ => StatementKind::Utility,
    }
}

pub(crate) fn command_tag(node: &NodeEnum, name: &str) -> String {
    let fixed = match node {
        NodeEnum::TransactionStmt(s) => {
            match TransactionStmtKind::try_from(s.kind).unwrap_or(TransactionStmtKind::Undefined) {
                TransactionStmtKind::TransStmtBegin => "BEGIN",
                TransactionStmtKind::TransStmtStart => "START TRANSACTION",
                TransactionStmtKind::TransStmtCommit => "COMMIT",
                TransactionStmtKind::TransStmtRollback
                | TransactionStmtKind::TransStmtRollbackTo => "ROLLBACK",
                TransactionStmtKind::TransStmtSavepoint => "SAVEPOINT",
                TransactionStmtKind::TransStmtRelease => "RELEASE",
                TransactionStmtKind::TransStmtPrepare => "PREPARE TRANSACTION",
                TransactionStmtKind::TransStmtCommitPrepared => "COMMIT PREPARED",
                TransactionStmtKind::TransStmtRollbackPrepared => "ROLLBACK PREPARED",
                TransactionStmtKind::Undefined => "",
            }
        }
        NodeEnum::DropStmt(s) => return format!("DROP {}", object_word(s.remove_type)),
        NodeEnum::AlterTableStmt(s) => return format!("ALTER {}", object_word(s.objtype)),
        NodeEnum::RenameStmt(s) => return format!("ALTER {}", object_word(s.rename_type)),
        NodeEnum::GrantStmt(s) => {
            if s.is_grant {
                "GRANT"
            } else {
                "REVOKE"
            }
        }
        NodeEnum::GrantRoleStmt(s) => {
            if s.is_grant {
                "GRANT ROLE"
            } else {
                "REVOKE ROLE"
            }
        }
        NodeEnum::CreateRoleStmt(s) => match RoleStmtType::try_from(s.stmt_type) {
            Ok(RoleStmtType::RolestmtUser) => "CREATE USER",
            Ok(RoleStmtType::RolestmtGroup) => "CREATE GROUP",
            _ => "CREATE ROLE",
        },
        NodeEnum::AlterRoleStmt(_) | NodeEnum::AlterRoleSetStmt(_) => "ALTER ROLE",
        NodeEnum::DropRoleStmt(_) => "DROP ROLE",
        NodeEnum::CreateStmt(_) => "CREATE TABLE",
        NodeEnum::CreateForeignTableStmt(_) => "CREATE FOREIGN TABLE",
        NodeEnum::ViewStmt(_) => "CREATE VIEW",
        NodeEnum::IndexStmt(_) => "CREATE INDEX",
        NodeEnum::CreateSeqStmt(_) => "CREATE SEQUENCE",
        NodeEnum::AlterSeqStmt(_) => "ALTER SEQUENCE",
        NodeEnum::CreateFunctionStmt(s) => {
            if s.is_procedure {
                "CREATE PROCEDURE"
            } else {
                "CREATE FUNCTION"
            }
        }
        NodeEnum::CreateTrigStmt(_) => "CREATE TRIGGER",
        NodeEnum::DefineStmt(s) => return format!("CREATE {}", object_word(s.kind)),
        NodeEnum::CreatePlangStmt(_) => "CREATE LANGUAGE",
        NodeEnum::CreateTableSpaceStmt(_) => "CREATE TABLESPACE",
        NodeEnum::CreateEventTrigStmt(_) => "CREATE EVENT TRIGGER",
        NodeEnum::RuleStmt(_) => "CREATE RULE",
        NodeEnum::CreatedbStmt(_) => "CREATE DATABASE",
        NodeEnum::DropdbStmt(_) => "DROP DATABASE",
        NodeEnum::TruncateStmt(_) => "TRUNCATE TABLE",
        NodeEnum::CommentStmt(_) => "COMMENT",
        NodeEnum::SecLabelStmt(_) => "SECURITY LABEL",
        NodeEnum::ListenStmt(_) => "LISTEN",
        NodeEnum::UnlistenStmt(_) => "UNLISTEN",
        NodeEnum::NotifyStmt(_) => "NOTIFY",
        NodeEnum::VacuumStmt(s) => {
            if s.is_vacuumcmd {
                "VACUUM"
            } else {
                "ANALYZE"
            }
        }
        NodeEnum::LockStmt(_) => "LOCK TABLE",
        NodeEnum::CheckPointStmt(_) => "CHECKPOINT",
        NodeEnum::LoadStmt(_) => "LOAD",
        NodeEnum::ClusterStmt(_) => "CLUSTER",
        NodeEnum::ReindexStmt(_) => "REINDEX",
        NodeEnum::RefreshMatViewStmt(_) => "REFRESH MATERIALIZED VIEW",
        NodeEnum::ClosePortalStmt(_) => "CLOSE CURSOR",
        NodeEnum::ConstraintsSetStmt(_) => "SET CONSTRAINTS",
        NodeEnum::AlterSystemStmt(_) => "ALTER SYSTEM",
        NodeEnum::AlterDefaultPrivilegesStmt(_) => "ALTER DEFAULT PRIVILEGES",
        NodeEnum::ReassignOwnedStmt(_) => "REASSIGN OWNED",
        NodeEnum::DropOwnedStmt(_) => "DROP OWNED",
        NodeEnum::CreateSchemaStmt(_) => "CREATE SCHEMA",
        NodeEnum::CreateExtensionStmt(_) => "CREATE EXTENSION",
        NodeEnum::DiscardStmt(s) => match s.target {
            2 => "DISCARD PLANS",
            3 => "DISCARD SEQUENCES",
            4 => "DISCARD TEMP",
            _ => "DISCARD ALL",
        },
        _ => "",
    };
    if fixed.is_empty() {
        from_node_name(name)
    } else {
        fixed.to_owned()
    }
}

/// `CreateForeignServerStmt` → `CREATE FOREIGN SERVER`: right for most of the
/// rarer statements, and never empty.
fn from_node_name(name: &str) -> String {
    let base = name.strip_suffix("Stmt").unwrap_or(name);
    let mut out = String::with_capacity(base.len() + 4);
    for (i, ch) in base.char_indices() {
        if i > 0 && ch.is_ascii_uppercase() {
            out.push(' ');
        }
        out.push(ch.to_ascii_uppercase());
    }
    out
}

fn object_word(objtype: i32) -> &'static str {
    match ObjectType::try_from(objtype).unwrap_or(ObjectType::Undefined) {
        ObjectType::ObjectTable => "TABLE",
        ObjectType::ObjectView => "VIEW",
        ObjectType::ObjectMatview => "MATERIALIZED VIEW",
        ObjectType::ObjectIndex => "INDEX",
        ObjectType::ObjectSequence => "SEQUENCE",
        ObjectType::ObjectForeignTable => "FOREIGN TABLE",
        ObjectType::ObjectFunction => "FUNCTION",
        ObjectType::ObjectProcedure => "PROCEDURE",
        ObjectType::ObjectRoutine => "ROUTINE",
        ObjectType::ObjectSchema => "SCHEMA",
        ObjectType::ObjectType => "TYPE",
        ObjectType::ObjectDomain => "DOMAIN",
        ObjectType::ObjectTrigger => "TRIGGER",
        ObjectType::ObjectRule => "RULE",
        ObjectType::ObjectPolicy => "POLICY",
        ObjectType::ObjectExtension => "EXTENSION",
        ObjectType::ObjectDatabase => "DATABASE",
        ObjectType::ObjectRole => "ROLE",
        ObjectType::ObjectColumn => "TABLE",
        ObjectType::ObjectTablespace => "TABLESPACE",
        ObjectType::ObjectAggregate => "AGGREGATE",
        ObjectType::ObjectOperator => "OPERATOR",
        ObjectType::ObjectCollation => "COLLATION",
        ObjectType::ObjectEventTrigger => "EVENT TRIGGER",
        ObjectType::ObjectPublication => "PUBLICATION",
        ObjectType::ObjectSubscription => "SUBSCRIPTION",
        ObjectType::ObjectForeignServer => "SERVER",
        ObjectType::ObjectTsparser => "TEXT SEARCH PARSER",
        ObjectType::ObjectTstemplate => "TEXT SEARCH TEMPLATE",
        ObjectType::ObjectTsdictionary => "TEXT SEARCH DICTIONARY",
        ObjectType::ObjectTsconfiguration => "TEXT SEARCH CONFIGURATION",
        _ => "OBJECT",
    }
}
