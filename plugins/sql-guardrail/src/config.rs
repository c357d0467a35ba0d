//! The plugin's table in the gateway config, and its checked, compiled form.
//!
//! ```toml
//! [plugins.config.sql-guardrail]
//! search_path = ["public"]          # where unqualified table names resolve
//! [plugins.config.sql-guardrail.default]       # identities in no listed group
//! read_only = true
//! [plugins.config.sql-guardrail.groups.agents] # members of `agents`
//! tables_deny = ["billing.secrets"]
//! ```
//!
//! Every policy is complete on its own: a group's policy does not inherit
//! from `default`, and keys it leaves out take the built-in defaults.

use std::collections::BTreeMap;

use serde::Deserialize;
use sluice_plugin_sdk::types::{StatementKind, WriteAction};

use crate::builtin;
use crate::pattern::NamePattern;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default = "default_search_path")]
    search_path: Vec<String>,
    #[serde(default)]
    default: PolicyConfig,
    #[serde(default)]
    groups: BTreeMap<String, PolicyConfig>,
}

fn default_search_path() -> Vec<String> {
    vec!["public".into()]
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct PolicyConfig {
    read_only: bool,
    write_without_where: bool,
    deny_kinds: Vec<String>,
    deny_commands: Vec<String>,
    tables_allow: Option<Vec<String>>,
    tables_deny: Vec<String>,
    deny_functions: Vec<String>,
    allow_functions: Vec<String>,
    allow_rules: Vec<String>,
    require_approval: Vec<ApprovalConfig>,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            read_only: false,
            // On unless turned off: a forgotten WHERE is the classic mistake.
            write_without_where: true,
            deny_kinds: Vec::new(),
            deny_commands: Vec::new(),
            tables_allow: None,
            tables_deny: Vec::new(),
            deny_functions: Vec::new(),
            allow_functions: Vec::new(),
            allow_rules: Vec::new(),
            require_approval: Vec::new(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ApprovalConfig {
    #[serde(default = "default_approval_name")]
    name: String,
    #[serde(default)]
    commands: Vec<String>,
    #[serde(default)]
    kinds: Vec<String>,
    #[serde(default)]
    tables: Vec<String>,
    #[serde(default)]
    include_reads: bool,
    #[serde(default)]
    approver_groups: Vec<String>,
    #[serde(default = "default_ttl")]
    ttl_seconds: u32,
    reason: Option<String>,
}

fn default_approval_name() -> String {
    "require-approval".into()
}

fn default_ttl() -> u32 {
    sluice_plugin_sdk::types::DEFAULT_APPROVAL_TTL_SECONDS
}

/// The longest an approval may be waited for: a week.
const MAX_TTL_SECONDS: u32 = 7 * 24 * 3600;

/// A command name such as `DROP` or `ALTER TABLE`, as upper-case words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Command {
    pub(crate) words: Vec<String>,
    pub(crate) text: String,
}

impl Command {
    fn parse(source: &str) -> Result<Self, String> {
        let words: Vec<String> = source
            .split_whitespace()
            .map(str::to_ascii_uppercase)
            .collect();
        if words.is_empty() {
            return Err("an empty command".into());
        }
        if let Some(w) = words
            .iter()
            .find(|w| !w.bytes().all(|b| b.is_ascii_uppercase()))
        {
            return Err(format!(
                "`{w}` is not a command word (letters only, e.g. `DROP`, `ALTER TABLE`)"
            ));
        }
        Ok(Command {
            text: words.join(" "),
            words,
        })
    }

    /// The command tag starts with these words: `DROP` covers `DROP TABLE`
    /// and `DROP ROLE`, `ALTER TABLE` covers only itself.
    pub(crate) fn prefixes(&self, tag: &str) -> bool {
        let mut tag_words = tag.split_whitespace();
        self.words
            .iter()
            .all(|w| tag_words.next().is_some_and(|t| t.eq_ignore_ascii_case(w)))
    }

    /// A write done inside another statement (a writable CTE, EXPLAIN
    /// ANALYZE, PREPARE) counts as the command that does it alone. MERGE may
    /// insert, update and delete.
    pub(crate) fn covers_action(&self, action: WriteAction) -> bool {
        let tags: &[&str] = match action {
            WriteAction::Insert => &["INSERT"],
            WriteAction::Update => &["UPDATE"],
            WriteAction::Delete => &["DELETE"],
            WriteAction::Merge => &["MERGE", "INSERT", "UPDATE", "DELETE"],
            WriteAction::Truncate => &["TRUNCATE TABLE"],
            WriteAction::CopyFrom => &["COPY"],
            WriteAction::SelectInto => &["SELECT INTO", "CREATE TABLE AS"],
            WriteAction::Create => &["CREATE"],
            WriteAction::Alter => &["ALTER"],
            WriteAction::Drop => &["DROP"],
            WriteAction::Other => &[],
        };
        tags.iter().any(|t| self.prefixes(t))
    }
}

/// A `require_approval` entry, compiled.
#[derive(Debug)]
pub(crate) struct ApprovalRule {
    pub(crate) name: String,
    pub(crate) commands: Vec<Command>,
    pub(crate) kinds: Vec<StatementKind>,
    pub(crate) tables: Vec<NamePattern>,
    pub(crate) include_reads: bool,
    pub(crate) approver_groups: Vec<String>,
    pub(crate) ttl_seconds: u32,
    pub(crate) reason: Option<String>,
}

/// One policy, ready to check statements against.
#[derive(Debug)]
pub(crate) struct Policy {
    /// `default` or `group NAME`, for messages.
    pub(crate) label: String,
    pub(crate) read_only: bool,
    pub(crate) write_without_where: bool,
    pub(crate) deny_kinds: Vec<StatementKind>,
    pub(crate) deny_commands: Vec<Command>,
    /// `None`: no allow list. Unqualified entries are already qualified with
    /// every schema of the search path.
    pub(crate) tables_allow: Option<Vec<NamePattern>>,
    pub(crate) tables_deny: Vec<NamePattern>,
    pub(crate) deny_functions: Vec<NamePattern>,
    pub(crate) allow_functions: Vec<NamePattern>,
    /// Built-in rules this policy lifts (names from `builtin::LIFTABLE_RULES`).
    pub(crate) allow_rules: Vec<&'static str>,
    pub(crate) approvals: Vec<ApprovalRule>,
}

impl Policy {
    pub(crate) fn enforces(&self, rule: &str) -> bool {
        !self.allow_rules.contains(&rule)
    }

    /// Whether any rule looks at table names.
    pub(crate) fn has_table_rules(&self) -> bool {
        self.tables_allow.is_some()
            || !self.tables_deny.is_empty()
            || self.approvals.iter().any(|a| !a.tables.is_empty())
    }
}

/// What every policy's rules consult.
#[derive(Debug)]
pub(crate) struct Env {
    pub(crate) search_path: Vec<String>,
    /// `builtin::DENIED_FUNCTIONS`, parsed once.
    pub(crate) denied_functions: Vec<(NamePattern, &'static str)>,
}

/// The whole config, compiled.
#[derive(Debug)]
pub(crate) struct Compiled {
    pub(crate) env: Env,
    pub(crate) default: Policy,
    pub(crate) groups: BTreeMap<String, Policy>,
}

impl Config {
    pub(crate) fn compile(self) -> Result<Compiled, String> {
        if self.search_path.is_empty() {
            return Err("search_path: list at least one schema".into());
        }
        if let Some(bad) = self.search_path.iter().find(|s| s.is_empty()) {
            return Err(format!("search_path: {bad:?} is not a schema name"));
        }
        let search_path = self.search_path;
        let default = self.default.compile("default".into(), &search_path)?;
        let mut groups = BTreeMap::new();
        for (group, policy) in self.groups {
            if group.is_empty() {
                return Err("groups: a group name is empty".into());
            }
            let policy = policy.compile(format!("group {group}"), &search_path)?;
            groups.insert(group, policy);
        }
        let denied_functions = builtin::DENIED_FUNCTIONS
            .iter()
            .map(|(pattern, why)| {
                NamePattern::parse(pattern)
                    .map(|p| (p, *why))
                    .map_err(|e| format!("built-in function pattern `{pattern}`: {e}"))
            })
            .collect::<Result<_, _>>()?;
        Ok(Compiled {
            env: Env {
                search_path,
                denied_functions,
            },
            default,
            groups,
        })
    }
}

fn at(label: &str, key: &str, i: usize, message: impl std::fmt::Display) -> String {
    let table = match label.strip_prefix("group ") {
        Some(group) => format!("groups.{group}"),
        None => label.to_owned(),
    };
    format!("{table}.{key}[{i}]: {message}")
}

fn patterns(label: &str, key: &str, sources: &[String]) -> Result<Vec<NamePattern>, String> {
    sources
        .iter()
        .enumerate()
        .map(|(i, s)| NamePattern::parse(s).map_err(|e| at(label, key, i, format!("`{s}`: {e}"))))
        .collect()
}

fn kinds(label: &str, key: &str, sources: &[String]) -> Result<Vec<StatementKind>, String> {
    sources
        .iter()
        .enumerate()
        .map(|(i, s)| parse_kind(s).ok_or_else(|| at(label, key, i, format!("`{s}` is not a statement kind (query, dml, ddl, dcl, transaction, session, procedural, copy, utility)"))))
        .collect()
}

fn commands(label: &str, key: &str, sources: &[String]) -> Result<Vec<Command>, String> {
    sources
        .iter()
        .enumerate()
        .map(|(i, s)| Command::parse(s).map_err(|e| at(label, key, i, e)))
        .collect()
}

pub(crate) fn parse_kind(s: &str) -> Option<StatementKind> {
    use StatementKind as K;
    Some(match s.to_ascii_lowercase().as_str() {
        "query" => K::Query,
        "dml" => K::Dml,
        "ddl" => K::Ddl,
        "dcl" => K::Dcl,
        "transaction" => K::Transaction,
        "session" => K::Session,
        "procedural" => K::Procedural,
        "copy" => K::Copy,
        "utility" => K::Utility,
        _ => return None,
    })
}

impl PolicyConfig {
    fn compile(self, label: String, search_path: &[String]) -> Result<Policy, String> {
        let l = label.as_str();
        let tables_allow = match &self.tables_allow {
            None => None,
            Some(sources) => Some(
                patterns(l, "tables_allow", sources)?
                    .iter()
                    .flat_map(|p| match p.schema {
                        Some(_) => vec![p.clone()],
                        None => search_path.iter().map(|s| p.qualified_with(s)).collect(),
                    })
                    .collect(),
            ),
        };
        let allow_functions = patterns(l, "allow_functions", &self.allow_functions)?;
        for (i, exemption) in allow_functions.iter().enumerate() {
            if !builtin::DENIED_FUNCTIONS
                .iter()
                .any(|(builtin, _)| exemption.covers_text(builtin))
            {
                return Err(at(
                    l,
                    "allow_functions",
                    i,
                    format!(
                        "`{}` exempts none of the built-in denied functions (deny_functions of this policy are not exemptible: remove them instead)",
                        exemption.source
                    ),
                ));
            }
        }
        let mut allow_rules = Vec::new();
        for (i, rule) in self.allow_rules.iter().enumerate() {
            let Some(known) = builtin::LIFTABLE_RULES
                .iter()
                .find(|r| **r == rule.as_str())
            else {
                return Err(at(
                    l,
                    "allow_rules",
                    i,
                    format!(
                        "`{rule}` is not a built-in rule; these can be lifted: {}",
                        builtin::LIFTABLE_RULES.join(", ")
                    ),
                ));
            };
            allow_rules.push(*known);
        }
        let approvals = self
            .require_approval
            .into_iter()
            .enumerate()
            .map(|(i, a)| a.compile(l, i))
            .collect::<Result<_, _>>()?;
        Ok(Policy {
            read_only: self.read_only,
            write_without_where: self.write_without_where,
            deny_kinds: kinds(l, "deny_kinds", &self.deny_kinds)?,
            deny_commands: commands(l, "deny_commands", &self.deny_commands)?,
            tables_allow,
            tables_deny: patterns(l, "tables_deny", &self.tables_deny)?,
            deny_functions: patterns(l, "deny_functions", &self.deny_functions)?,
            allow_functions,
            allow_rules,
            approvals,
            label,
        })
    }
}

impl ApprovalConfig {
    fn compile(self, label: &str, i: usize) -> Result<ApprovalRule, String> {
        let key = "require_approval";
        let err = |m: String| at(label, key, i, m);
        if self.name.is_empty()
            || !self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(err(format!(
                "name `{}`: use letters, digits, `-` and `_`",
                self.name
            )));
        }
        if self.commands.is_empty() && self.kinds.is_empty() && self.tables.is_empty() {
            return Err(err(
                "give `commands`, `kinds` or `tables`: a rule without any would hold every statement"
                    .into(),
            ));
        }
        if self.ttl_seconds == 0 || self.ttl_seconds > MAX_TTL_SECONDS {
            return Err(err(format!(
                "ttl_seconds must be between 1 and {MAX_TTL_SECONDS}"
            )));
        }
        if self.approver_groups.iter().any(String::is_empty) {
            return Err(err("approver_groups: a group name is empty".into()));
        }
        Ok(ApprovalRule {
            commands: commands(label, &format!("{key}[{i}].commands"), &self.commands)?,
            kinds: kinds(label, &format!("{key}[{i}].kinds"), &self.kinds)?,
            tables: patterns(label, &format!("{key}[{i}].tables"), &self.tables)?,
            include_reads: self.include_reads,
            approver_groups: self.approver_groups,
            ttl_seconds: self.ttl_seconds,
            reason: self.reason,
            name: self.name,
        })
    }
}
