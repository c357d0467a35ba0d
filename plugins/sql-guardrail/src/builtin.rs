//! What every policy refuses unless it says otherwise: the built-in rules'
//! names, the functions that reach outside the database or into other
//! sessions, the settings that change what later statements mean, and the
//! statements that administer the server.

/// Rules that are on in every policy; `allow_rules` lifts them by name.
pub(crate) const COPY_PROGRAM: &str = "copy-program";
pub(crate) const COPY_FILE: &str = "copy-file";
pub(crate) const ROLE_CHANGE: &str = "role-change";
pub(crate) const PROTECTED_SETTING: &str = "protected-setting";
pub(crate) const PRIVILEGE_CHANGE: &str = "privilege-change";
pub(crate) const DYNAMIC_SQL: &str = "dynamic-sql";
pub(crate) const SERVER_ADMIN: &str = "server-admin";

pub(crate) const LIFTABLE_RULES: &[&str] = &[
    COPY_PROGRAM,
    COPY_FILE,
    ROLE_CHANGE,
    PROTECTED_SETTING,
    PRIVILEGE_CHANGE,
    DYNAMIC_SQL,
    SERVER_ADMIN,
];

/// Rules a policy configures with keys of its own.
pub(crate) const READ_ONLY: &str = "read-only";
pub(crate) const WRITE_WITHOUT_WHERE: &str = "write-without-where";
pub(crate) const DENY_KINDS: &str = "deny-kinds";
pub(crate) const DENY_COMMANDS: &str = "deny-commands";
pub(crate) const TABLES_DENY: &str = "tables-deny";
pub(crate) const TABLES_ALLOW: &str = "tables-allow";
pub(crate) const DENY_FUNCTIONS: &str = "deny-functions";
/// The gateway never sends a request without statements; if one came, there
/// would be nothing to judge, which is no reason to allow it.
pub(crate) const NO_STATEMENTS: &str = "no-statements";

const READS_FILES: &str = "it reads or lists files on the database server";
const WRITES_FILES: &str = "it writes files on the database server";
const OTHER_SERVERS: &str = "it connects to other database servers";
const OTHER_SESSIONS: &str = "it signals or inspects other sessions";
const SERVER_CONTROL: &str = "it controls the server (configuration, logs, WAL, backups)";
const REPLICATION: &str = "it reads or controls replication";

/// Denied in every policy unless `allow_functions` exempts them. Matched in
/// any schema and in any case (see `pattern.rs`).
pub(crate) const DENIED_FUNCTIONS: &[(&str, &str)] = &[
    ("pg_read_file", READS_FILES),
    ("pg_read_binary_file", READS_FILES),
    ("pg_stat_file", READS_FILES),
    ("pg_ls_*dir", READS_FILES),
    ("pg_logdir_ls", READS_FILES),
    ("lo_import", READS_FILES),
    ("lo_export", WRITES_FILES),
    ("pg_file_write", WRITES_FILES),
    ("pg_file_rename", WRITES_FILES),
    ("pg_file_unlink", WRITES_FILES),
    ("pg_file_sync", WRITES_FILES),
    ("dblink*", OTHER_SERVERS),
    ("pg_terminate_backend", OTHER_SESSIONS),
    ("pg_cancel_backend", OTHER_SESSIONS),
    ("pg_log_backend_memory_contexts", OTHER_SESSIONS),
    ("pg_reload_conf", SERVER_CONTROL),
    ("pg_rotate_logfile*", SERVER_CONTROL),
    ("pg_promote", SERVER_CONTROL),
    ("pg_switch_wal", SERVER_CONTROL),
    ("pg_create_restore_point", SERVER_CONTROL),
    ("pg_backup_start", SERVER_CONTROL),
    ("pg_backup_stop", SERVER_CONTROL),
    ("pg_start_backup", SERVER_CONTROL),
    ("pg_stop_backup", SERVER_CONTROL),
    ("pg_wal_replay_*", SERVER_CONTROL),
    ("pg_create_*_replication_slot", REPLICATION),
    ("pg_copy_*_replication_slot", REPLICATION),
    ("pg_drop_replication_slot", REPLICATION),
    ("pg_replication_slot_advance", REPLICATION),
    ("pg_logical_slot_*", REPLICATION),
    ("pg_replication_origin_*", REPLICATION),
];

/// Why a change of this setting is refused, or `None` when the change is
/// harmless. `value` is the new value as text; `None` means a RESET (back to
/// the session's starting value, which the operator chose) for SET, and an
/// unknown value for `set_config`, which the caller says by `unknown`.
pub(crate) fn protected_setting(name: &str, value: Option<&str>, unknown: bool) -> Option<String> {
    let name = name.to_ascii_lowercase();
    if value.is_none() && !unknown {
        return None;
    }
    let value = value.map(|v| v.trim().to_ascii_lowercase());
    let turned_off = || {
        !matches!(
            value.as_deref(),
            Some("on" | "true" | "1" | "yes" | "t" | "y")
        )
    };
    let why = match name.as_str() {
        "search_path" => "it changes which tables and functions unqualified names refer to",
        "session_replication_role" => {
            "it can switch off triggers and foreign-key checks for the session"
        }
        "row_security" => "it changes whether row-level security applies to the session",
        "transaction_read_only" | "default_transaction_read_only" if turned_off() => {
            "it undoes the database's read-only setting"
        }
        // Both change how the server reads the text of later statements, so
        // the gateway's parser would no longer see what the server runs.
        "standard_conforming_strings" if turned_off() => {
            "with it off the server reads backslashes in strings differently from the gateway's parser"
        }
        "client_encoding" if !safe_encoding(value.as_deref()) => {
            "only UTF8 (or SQL_ASCII) keeps the server reading statements the way the gateway's parser does"
        }
        // SET TRANSACTION / SET SESSION CHARACTERISTICS: a list of
        // `name value` items, e.g. `transaction_read_only 0`.
        "transaction" | "session characteristics" => {
            return value.as_deref().and_then(|items| {
                items.split(',').find_map(|item| {
                    let (item, v) = item.trim().split_once(' ')?;
                    protected_setting(item, Some(v), false)
                })
            });
        }
        _ => return None,
    };
    Some(format!("changing `{name}` is not allowed: {why}"))
}

fn safe_encoding(value: Option<&str>) -> bool {
    let Some(value) = value else { return false };
    let cleaned: String = value
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_lowercase();
    matches!(cleaned.as_str(), "utf8" | "unicode" | "sqlascii")
}

/// Statements that administer the server or connect it to others, by parser
/// node, with the reason an agent is shown.
pub(crate) fn server_admin(node: &str) -> Option<&'static str> {
    Some(match node {
        "AlterSystemStmt" => "it rewrites the server's configuration file",
        "LoadStmt" => "it loads a shared library file into the server",
        "CreateExtensionStmt"
        | "AlterExtensionStmt"
        | "AlterExtensionContentsStmt"
        | "CreatePlangStmt" => "it installs code into the server",
        "CreateFdwStmt"
        | "AlterFdwStmt"
        | "CreateForeignServerStmt"
        | "AlterForeignServerStmt"
        | "ImportForeignSchemaStmt"
        | "CreateSubscriptionStmt"
        | "AlterSubscriptionStmt" => "it connects the database to other servers",
        "CreateTableSpaceStmt" | "AlterTableSpaceOptionsStmt" => {
            "it points the server at a directory of its file system"
        }
        "AlterDatabaseSetStmt" => "it changes the settings of every later session of the database",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings() {
        assert!(protected_setting("search_path", Some("evil, public"), false).is_some());
        assert!(
            protected_setting("search_path", None, false).is_none(),
            "RESET"
        );
        assert!(
            protected_setting("search_path", None, true).is_some(),
            "unknown value"
        );
        assert!(protected_setting("Standard_Conforming_Strings", Some("off"), false).is_some());
        assert!(protected_setting("standard_conforming_strings", Some("on"), false).is_none());
        assert!(protected_setting("client_encoding", Some("SJIS"), false).is_some());
        assert!(protected_setting("client_encoding", Some("UTF-8"), false).is_none());
        assert!(protected_setting("default_transaction_read_only", Some("off"), false).is_some());
        assert!(protected_setting("default_transaction_read_only", Some("on"), false).is_none());
        assert!(protected_setting("transaction", Some("transaction_read_only 0"), false).is_some());
        assert!(
            protected_setting(
                "transaction",
                Some("transaction_isolation serializable, transaction_read_only 1"),
                false
            )
            .is_none()
        );
        assert!(protected_setting("work_mem", Some("64MB"), false).is_none());
    }
}
