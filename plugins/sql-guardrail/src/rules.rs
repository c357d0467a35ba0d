//! The rules, applied to one statement summary under one policy.
//!
//! Order matters only for which rule an agent is told about when several
//! would fire: the built-in protections first (they name the most specific
//! problem), then the policy's own rules from the broadest (read-only) to the
//! narrowest (a missing WHERE).

use sluice_plugin_sdk::types::{
    FunctionCall, SqlStatement, StatementFlags as F, StatementKind as K, TableRef, WriteAction,
};

use crate::builtin::{self, *};
use crate::config::{Env, Policy};
use crate::pattern::{Folded, NamePattern, Schemas};

/// A refusal: the rule's name and what the agent can do about it.
pub(crate) type Finding = (&'static str, String);

type Check = fn(&Policy, &Env, &SqlStatement) -> Option<Finding>;

/// The first rule of `policy` that refuses `s`.
pub(crate) fn deny(policy: &Policy, env: &Env, s: &SqlStatement) -> Option<Finding> {
    let checks: [Check; 12] = [
        copy,
        role_change,
        protected_setting,
        functions,
        server_admin,
        privilege_change,
        dynamic_sql,
        read_only,
        deny_kinds,
        deny_commands,
        tables,
        write_without_where,
    ];
    checks.iter().find_map(|check| check(policy, env, s))
}

fn copy(policy: &Policy, _: &Env, s: &SqlStatement) -> Option<Finding> {
    if s.flags.contains(F::COPY_PROGRAM) && policy.enforces(COPY_PROGRAM) {
        return Some((
            COPY_PROGRAM,
            "COPY … PROGRAM runs a shell command on the database server; use COPY … TO STDOUT or FROM STDIN instead".into(),
        ));
    }
    if s.flags.contains(F::COPY_SERVER_FILE) && policy.enforces(COPY_FILE) {
        return Some((
            COPY_FILE,
            "COPY to or from a file on the database server is not allowed; use COPY … TO STDOUT or FROM STDIN (psql's \\copy) instead".into(),
        ));
    }
    None
}

fn role_change(policy: &Policy, _: &Env, s: &SqlStatement) -> Option<Finding> {
    if !s.flags.contains(F::ROLE_CHANGE) || !policy.enforces(ROLE_CHANGE) {
        return None;
    }
    let what = match &s.setting {
        Some(setting) if setting.name == "all" => "RESET ALL resets the session's role".to_owned(),
        Some(setting) => format!("{} {} changes the role the session acts as", s.command_tag, setting.name),
        None => match set_config_calls(s).next() {
            Some(call) if call.literal_args.first().is_some_and(Option::is_some) => {
                "set_config of the role changes the role the session acts as".to_owned()
            }
            Some(_) => "set_config with a setting name that is not a literal could change the role the session acts as".to_owned(),
            None => format!("{} changes the role the session acts as", s.command_tag),
        },
    };
    Some((
        ROLE_CHANGE,
        format!("{what}; the gateway chooses the database role, so role changes are not allowed"),
    ))
}

fn set_config_calls(s: &SqlStatement) -> impl Iterator<Item = &FunctionCall> {
    s.functions.iter().filter(|f| {
        f.name.eq_ignore_ascii_case("set_config")
            && f.schema
                .as_deref()
                .is_none_or(|schema| schema.eq_ignore_ascii_case("pg_catalog"))
    })
}

fn protected_setting(policy: &Policy, _: &Env, s: &SqlStatement) -> Option<Finding> {
    if !policy.enforces(PROTECTED_SETTING) {
        return None;
    }
    let from_set = s
        .setting
        .as_ref()
        .filter(|_| s.node == "VariableSetStmt")
        .and_then(|set| builtin::protected_setting(&set.name, set.value.as_deref(), false));
    let from_call = || {
        set_config_calls(s).find_map(|call| {
            let name = call.literal_args.first().cloned().flatten()?;
            let value = call.literal_args.get(1).cloned().flatten();
            builtin::protected_setting(&name, value.as_deref(), true)
        })
    };
    from_set
        .or_else(from_call)
        .map(|why| (PROTECTED_SETTING, why))
}

fn functions(policy: &Policy, env: &Env, s: &SqlStatement) -> Option<Finding> {
    for call in &s.functions {
        let schemas = function_schemas(policy, env, call);
        let folded = Folded::new(&call.name);
        if let Some(p) = policy
            .deny_functions
            .iter()
            .find(|p| p.may_name(&schemas, &folded))
        {
            return Some((
                DENY_FUNCTIONS,
                format!(
                    "calling {} is not allowed for this identity (deny_functions: {})",
                    qualified_call(call),
                    p.source
                ),
            ));
        }
        let builtin = env
            .denied_functions
            .iter()
            .find(|(pattern, _)| pattern.may_name(&schemas, &folded));
        if let Some((_, why)) = builtin
            && !policy
                .allow_functions
                .iter()
                .any(|p| p.may_name(&schemas, &folded))
        {
            return Some((
                DENY_FUNCTIONS,
                format!("calling {} is not allowed: {why}", qualified_call(call)),
            ));
        }
    }
    None
}

fn qualified_call(call: &FunctionCall) -> String {
    match &call.schema {
        Some(schema) => format!("{schema}.{}", call.name),
        None => call.name.clone(),
    }
}

fn server_admin(policy: &Policy, _: &Env, s: &SqlStatement) -> Option<Finding> {
    let why = builtin::server_admin(&s.node)?;
    policy.enforces(SERVER_ADMIN).then(|| {
        (
            SERVER_ADMIN,
            format!("{} is not allowed: {why}", s.command_tag),
        )
    })
}

fn privilege_change(policy: &Policy, _: &Env, s: &SqlStatement) -> Option<Finding> {
    (s.kind == K::Dcl && policy.enforces(PRIVILEGE_CHANGE)).then(|| {
        (
            PRIVILEGE_CHANGE,
            format!(
                "{} changes roles or privileges, which is not allowed",
                s.command_tag
            ),
        )
    })
}

fn dynamic_sql(policy: &Policy, _: &Env, s: &SqlStatement) -> Option<Finding> {
    if !s.flags.contains(F::DYNAMIC_SQL) || !policy.enforces(DYNAMIC_SQL) {
        return None;
    }
    let what = match s.node.as_str() {
        "DoStmt" => "DO runs a code block the gateway cannot inspect; send its statements as plain SQL".to_owned(),
        "ExecuteStmt" => "EXECUTE runs a statement prepared earlier, which this check cannot see; send the statement itself, or prepare it with the extended protocol, where it is checked when prepared".to_owned(),
        "CallStmt" => "CALL runs a procedure whose body the gateway cannot inspect".to_owned(),
        _ => match s.functions.iter().find(|f| runs_sql_text(&f.name)) {
            Some(f) => format!("{} runs SQL given to it as text, which the gateway cannot inspect", qualified_call(f)),
            None => format!("{} stores or runs code the gateway cannot inspect (function bodies, triggers, rules run later, out of its sight)", s.command_tag),
        },
    };
    Some((DYNAMIC_SQL, what))
}

/// dblink, the `…_to_xml…` family, `ts_stat`, `ts_rewrite`, tablefunc and
/// pg_background take SQL (or a cursor, table or schema) as text.
fn runs_sql_text(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name.starts_with("dblink")
        || name.starts_with("crosstab")
        || name.contains("_to_xml")
        || matches!(
            name.as_str(),
            "ts_stat" | "ts_rewrite" | "connectby" | "pg_background_launch"
        )
}

fn read_only(policy: &Policy, _: &Env, s: &SqlStatement) -> Option<Finding> {
    if !policy.read_only || reads_only(s) {
        return None;
    }
    Some((
        READ_ONLY,
        format!(
            "{} is not read-only: {}; this identity may only read",
            s.command_tag,
            why_not_read_only(s)
        ),
    ))
}

/// Statements that change nothing beyond this session's own bookkeeping.
fn reads_only(s: &SqlStatement) -> bool {
    // Forgetting a prepared statement or closing a cursor touches no data.
    if matches!(s.node.as_str(), "DeallocateStmt" | "ClosePortalStmt") {
        return true;
    }
    if !s.tables_written.is_empty() || s.flags.contains(F::DYNAMIC_SQL) {
        return false;
    }
    // SET TRANSACTION ISOLATION LEVEL …: the host keeps modifies-state on
    // every transaction setting; the protected-setting rule has already
    // refused those that turn read-only off.
    let transaction_setting = s.node == "VariableSetStmt"
        && s.functions.is_empty()
        && s.setting.as_ref().is_some_and(|set| {
            matches!(set.name.as_str(), "transaction" | "session characteristics")
                && builtin::protected_setting(&set.name, set.value.as_deref(), false).is_none()
        });
    if transaction_setting {
        return true;
    }
    if s.flags.contains(F::MODIFIES_STATE) {
        return false;
    }
    match s.kind {
        K::Query | K::Transaction | K::Session => true,
        K::Copy => {
            s.flags.contains(F::COPY_TO_CLIENT)
                && !s
                    .flags
                    .intersects(F::COPY_PROGRAM | F::COPY_SERVER_FILE | F::COPY_FROM_CLIENT)
        }
        _ => false,
    }
}

fn why_not_read_only(s: &SqlStatement) -> String {
    if let Some(w) = s.tables_written.first() {
        return format!(
            "it {} {}{}",
            verb(w.action),
            w.table.qualified(),
            context(s)
        );
    }
    if s.flags.contains(F::DYNAMIC_SQL) {
        return "it runs SQL the gateway cannot inspect".into();
    }
    match s.kind {
        K::Ddl => "it changes the schema".into(),
        K::Dcl => "it changes roles or privileges".into(),
        K::Procedural => "it runs code the gateway cannot inspect".into(),
        K::Copy => "it copies data into the database or through the server".into(),
        K::Session => "it changes a setting that alters later statements".into(),
        K::Transaction => "it acts on prepared (two-phase) transactions".into(),
        K::Utility => "it changes the database or other sessions".into(),
        K::Query | K::Dml if !s.functions.is_empty() => {
            let mut names: Vec<String> = s.functions.iter().map(qualified_call).collect();
            names.dedup();
            names.truncate(5);
            format!(
                "it calls functions not known to be free of side effects (one of: {})",
                names.join(", ")
            )
        }
        _ => "it locks rows or has other side effects".into(),
    }
}

fn deny_kinds(policy: &Policy, _: &Env, s: &SqlStatement) -> Option<Finding> {
    policy.deny_kinds.contains(&s.kind).then(|| {
        (
            DENY_KINDS,
            format!(
                "{} statements are not allowed for this identity (deny_kinds): {}",
                kind_name(s.kind),
                s.command_tag
            ),
        )
    })
}

fn deny_commands(policy: &Policy, _: &Env, s: &SqlStatement) -> Option<Finding> {
    for c in &policy.deny_commands {
        if c.prefixes(&s.command_tag) {
            return Some((
                DENY_COMMANDS,
                format!(
                    "{} is not allowed for this identity (deny_commands: {})",
                    s.command_tag, c.text
                ),
            ));
        }
        if let Some(w) = s.tables_written.iter().find(|w| c.covers_action(w.action)) {
            return Some((
                DENY_COMMANDS,
                format!(
                    "{} {} {}{}, and {} is not allowed for this identity (deny_commands)",
                    s.command_tag,
                    verb(w.action),
                    w.table.qualified(),
                    context(s),
                    c.text
                ),
            ));
        }
    }
    None
}

fn tables(policy: &Policy, env: &Env, s: &SqlStatement) -> Option<Finding> {
    let used = || {
        s.tables_read
            .iter()
            .chain(s.tables_written.iter().map(|w| &w.table))
    };
    for t in used() {
        let schemas = table_schemas(policy, env, t);
        let folded = Folded::new(&t.name);
        if let Some(p) = policy
            .tables_deny
            .iter()
            .find(|p| p.may_name(&schemas, &folded))
        {
            return Some((
                TABLES_DENY,
                format!(
                    "{} is not allowed for this identity (tables_deny: {})",
                    t.qualified(),
                    p.source
                ),
            ));
        }
    }
    if let Some(allowed) = &policy.tables_allow {
        for t in used() {
            let schemas = table_schemas(policy, env, t);
            if !surely_allowed(allowed, schemas, &t.name) {
                let hint = match (&t.schema, schemas.list()) {
                    (Some(_), _) => String::new(),
                    (None, Some(list)) => format!(
                        "; an unqualified name is checked in every schema it could resolve to ({})",
                        list.join(", ")
                    ),
                    (None, None) => {
                        "; qualify it with its schema: this policy lets the search path change"
                            .into()
                    }
                };
                return Some((
                    TABLES_ALLOW,
                    format!(
                        "{} is not among the tables this identity may use (tables_allow){hint}",
                        t.qualified()
                    ),
                ));
            }
        }
    }
    // Whole-schema changes name no table, so no table rule can vouch for them.
    let schema_level = s.tables_written.is_empty()
        && ((s.node == "DropStmt" && s.command_tag == "DROP SCHEMA")
            || (s.node == "RenameStmt" && s.command_tag == "ALTER SCHEMA")
            || s.node == "AlterOwnerStmt");
    if schema_level && policy.has_table_rules() {
        let rule = if policy.tables_allow.is_some() {
            TABLES_ALLOW
        } else {
            TABLES_DENY
        };
        return Some((
            rule,
            format!(
                "{} acts on a whole schema or object the table rules cannot check, so it is not allowed for this identity",
                s.command_tag
            ),
        ));
    }
    None
}

/// The schemas a table name may refer to. An unqualified name resolves
/// through the search path, `pg_catalog` first (which holds only `pg_…`
/// relations); that path is the configured one only while the policy keeps
/// `protected-setting`, which refuses changing it.
pub(crate) fn table_schemas<'a>(policy: &Policy, env: &'a Env, t: &'a TableRef) -> Schemas<'a> {
    match &t.schema {
        Some(schema) => Schemas::One(schema),
        None if !policy.enforces(PROTECTED_SETTING) => Schemas::Any,
        None => Schemas::Path {
            catalog: t.name.starts_with("pg_"),
            path: &env.search_path,
        },
    }
}

/// As for tables; every unqualified function may be a `pg_catalog` one.
fn function_schemas<'a>(policy: &Policy, env: &'a Env, call: &'a FunctionCall) -> Schemas<'a> {
    match &call.schema {
        Some(schema) => Schemas::One(schema),
        None if !policy.enforces(PROTECTED_SETTING) => Schemas::Any,
        None => Schemas::Path {
            catalog: true,
            path: &env.search_path,
        },
    }
}

fn surely_allowed(allowed: &[NamePattern], schemas: Schemas, name: &str) -> bool {
    schemas.all(|schema| allowed.iter().any(|p| p.surely_names(schema, name)))
}

fn write_without_where(policy: &Policy, _: &Env, s: &SqlStatement) -> Option<Finding> {
    if !policy.write_without_where {
        return None;
    }
    let w = s
        .tables_written
        .iter()
        .find(|w| matches!(w.action, WriteAction::Update | WriteAction::Delete) && !w.has_where)?;
    let what = match w.action {
        WriteAction::Update => "UPDATE of",
        _ => "DELETE from",
    };
    Some((
        WRITE_WITHOUT_WHERE,
        format!(
            "{what} {} has no WHERE clause{}, so it would change every row; add a WHERE clause that selects the rows to change",
            w.table.qualified(),
            context(s)
        ),
    ))
}

fn verb(action: WriteAction) -> &'static str {
    match action {
        WriteAction::Insert => "inserts into",
        WriteAction::Update => "updates",
        WriteAction::Delete => "deletes from",
        WriteAction::Merge => "merges into",
        WriteAction::Truncate => "truncates",
        WriteAction::CopyFrom => "copies into",
        WriteAction::SelectInto | WriteAction::Create => "creates",
        WriteAction::Alter => "alters",
        WriteAction::Drop => "drops",
        WriteAction::Other => "changes",
    }
}

/// Where a write hides, when the command tag does not say so.
pub(crate) fn context(s: &SqlStatement) -> &'static str {
    if s.flags.contains(F::WRITABLE_CTE) {
        " (in a WITH clause)"
    } else if s.flags.contains(F::EXPLAIN_ANALYZE) {
        " (EXPLAIN ANALYZE runs the statement)"
    } else if s.command_tag == "PREPARE" {
        " (in the prepared statement)"
    } else {
        ""
    }
}

fn kind_name(kind: K) -> &'static str {
    match kind {
        K::Query => "query",
        K::Dml => "dml",
        K::Ddl => "ddl",
        K::Dcl => "dcl",
        K::Transaction => "transaction",
        K::Session => "session",
        K::Procedural => "procedural",
        K::Copy => "copy",
        K::Utility => "utility",
    }
}
