//! The plugin's configuration (its table in the gateway's TOML, as JSON),
//! validated once at `init` into the settings every call uses.

use std::collections::BTreeMap;

use serde::Deserialize;
use sluice_plugin_sdk::types::{Column, Session};

use crate::entity::{Entity, Labels};
use crate::mask::{Masking, Pseudonyms, Strategy};

/// The label of a column rule that names no `entity`.
pub const DEFAULT_RULE_LABEL: &str = "column";

/// Shortest accepted hash key: a pseudonym is only as unguessable as its key.
const MIN_KEY_BYTES: usize = 16;

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Strategy of every entity without its own (default `redact`).
    strategy: Option<Strategy>,
    /// Per entity: a strategy, or `off` to not look for it.
    entities: BTreeMap<String, EntitySetting>,
    /// Column rules, first match wins.
    columns: Vec<ColumnRuleConfig>,
    /// Groups that see some or all values in clear.
    exempt: Vec<ExemptConfig>,
    /// The key of `hash` pseudonyms, inline ...
    hash_key: Option<String>,
    /// ... or the name of an environment variable granted to the plugin.
    hash_key_env: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum EntitySetting {
    Off,
    Redact,
    Partial,
    Hash,
    Null,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ColumnRuleConfig {
    #[serde(rename = "match")]
    pattern: String,
    strategy: Option<RuleSetting>,
    entity: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum RuleSetting {
    Keep,
    Redact,
    Partial,
    Hash,
    Null,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExemptConfig {
    groups: Vec<String>,
    entities: Option<Vec<String>>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("unknown entity `{0}` (known: email, phone, card, ssn, iban, ip, jwt, secret)")]
    UnknownEntity(String),
    #[error("exemption names `{0}`, which is neither an entity nor the `entity` of a column rule")]
    UnknownExemptLabel(String),
    #[error("an exemption must list at least one group")]
    ExemptWithoutGroups,
    #[error("column rule `{0}`: expected `column`, `table.column` or `schema.table.column`")]
    BadPattern(String),
    #[error("column rule `{0}`: `entity` must be 1-32 characters of a-z, 0-9 and _")]
    BadLabel(String),
    #[error("too many distinct column rule entities (at most {0})")]
    TooManyLabels(usize),
    #[error(
        "strategy `hash` ({0}) needs a key: set `hash_key`, or `hash_key_env` to a variable granted to the plugin"
    )]
    HashWithoutKey(String),
    #[error("set either `hash_key` or `hash_key_env`, not both")]
    TwoKeys,
    #[error(
        "`hash_key_env`: `{0}` is not set in the plugin's environment (grant it with `[plugins.grants.<name>] env = [\"{0}\"]`)"
    )]
    KeyEnvMissing(String),
    #[error("the hash key must be at least {MIN_KEY_BYTES} bytes")]
    WeakKey,
    #[error("the hash key was refused by HMAC-SHA256")]
    BadKey,
}

/// What a column rule does with a matching column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleAction {
    /// Leave the column alone: no rule masks it and nothing is scanned.
    Keep,
    /// Mask the whole value, counted under the rule's label.
    Mask(Strategy),
}

pub struct Rule {
    pattern: Pattern,
    pub action: RuleAction,
    /// Label id of the rule's `entity`.
    pub label: usize,
}

impl Rule {
    /// Whether the rule's column part matches `name`, whatever table it
    /// names: a server message names a column without its table.
    pub fn matches_column_name(&self, name: &str) -> bool {
        self.pattern
            .parts
            .last()
            .is_some_and(|column| glob(column, name))
    }
}

struct Exemption {
    groups: Vec<String>,
    labels: u64,
}

/// The validated configuration.
pub struct Settings {
    pub masking: Masking,
    /// Bits of the built-in entities that are looked for.
    pub detect: u64,
    pub rules: Vec<Rule>,
    exemptions: Vec<Exemption>,
}

impl Settings {
    pub fn new(config: Config) -> Result<Self, ConfigError> {
        let default = config.strategy.unwrap_or(Strategy::Redact);
        let mut strategies = [default; Entity::ALL.len()];
        let mut detect = 0u64;
        for e in Entity::ALL {
            detect |= e.bit();
        }
        for (name, setting) in &config.entities {
            let e =
                Entity::from_name(name).ok_or_else(|| ConfigError::UnknownEntity(name.clone()))?;
            match setting.strategy() {
                Some(s) => strategies[e.id()] = s,
                None => detect &= !e.bit(),
            }
        }
        let mut hashed: Vec<String> = Entity::ALL
            .iter()
            .filter(|e| detect & e.bit() != 0 && strategies[e.id()] == Strategy::Hash)
            .map(|e| e.name().to_string())
            .collect();

        let mut labels = Labels::default();
        let mut rules = Vec::with_capacity(config.columns.len());
        for rule in &config.columns {
            let pattern = Pattern::parse(&rule.pattern)?;
            let name = rule.entity.as_deref().unwrap_or(DEFAULT_RULE_LABEL);
            if !valid_label(name) {
                return Err(ConfigError::BadLabel(rule.pattern.clone()));
            }
            let label = labels
                .intern(name)
                .ok_or(ConfigError::TooManyLabels(crate::entity::MAX_LABELS))?;
            let action = match rule.strategy {
                Some(RuleSetting::Keep) => RuleAction::Keep,
                Some(s) => RuleAction::Mask(s.strategy()),
                None => {
                    RuleAction::Mask(Labels::entity(label).map_or(default, |e| strategies[e.id()]))
                }
            };
            if action == RuleAction::Mask(Strategy::Hash) {
                hashed.push(format!("column rule `{}`", rule.pattern));
            }
            rules.push(Rule {
                pattern,
                action,
                label,
            });
        }

        let mut exemptions = Vec::with_capacity(config.exempt.len());
        for ex in &config.exempt {
            if ex.groups.is_empty() {
                return Err(ConfigError::ExemptWithoutGroups);
            }
            let labels = match &ex.entities {
                None => u64::MAX,
                Some(names) => names.iter().try_fold(0u64, |bits, n| {
                    labels
                        .id(n)
                        .map(|id| bits | 1 << id)
                        .ok_or_else(|| ConfigError::UnknownExemptLabel(n.clone()))
                })?,
            };
            exemptions.push(Exemption {
                groups: ex.groups.clone(),
                labels,
            });
        }

        let pseudonyms = match hash_key(&config)? {
            Some(key) => Some(Pseudonyms::new(&key).ok_or(ConfigError::BadKey)?),
            None => match hashed.first() {
                Some(what) => return Err(ConfigError::HashWithoutKey(what.clone())),
                None => None,
            },
        };
        Ok(Settings {
            masking: Masking {
                strategies,
                pseudonyms,
                labels,
            },
            detect,
            rules,
            exemptions,
        })
    }

    /// Bits of the labels the session's groups are exempt from.
    pub fn exempt_labels(&self, session: &Session) -> u64 {
        self.exemptions
            .iter()
            .filter(|ex| {
                ex.groups
                    .iter()
                    .any(|g| session.identity.groups.contains(g))
            })
            .fold(0, |bits, ex| bits | ex.labels)
    }

    /// The first column rule for `column` whose label is not exempt.
    pub fn rule_for(&self, column: &Column, exempt: u64) -> Option<&Rule> {
        let keepable = keepable(column);
        self.rules.iter().find(|r| {
            exempt & (1 << r.label) == 0
                && match r.action {
                    RuleAction::Keep => keepable && r.pattern.matches(column, false),
                    RuleAction::Mask(_) => r.pattern.matches(column, true),
                }
        })
    }
}

/// Whether a `keep` rule may apply to `column`: only to a column the gateway
/// traced to a table that outlives the session. Any agent may create a
/// temporary table or view (PostgreSQL grants TEMP to PUBLIC) and fill it
/// with whatever it can read, and an expression takes the name the agent
/// gives it: `create temp table t(sku text)` and `insert … select email …
/// returning sku`, a temporary view, or `email || '' as sku` would
/// otherwise be read in clear under a rule for `sku`. Such columns are
/// scanned by content.
fn keepable(column: &Column) -> bool {
    let Some(table) = column.table.as_deref() else {
        return false;
    };
    let schema = table.rsplit_once('.').map_or("", |(schema, _)| schema);
    // `pg_temp_N` holds a session's temporary tables, `pg_toast_temp_N`
    // their TOAST tables; `pg_temp` is the alias that names the current
    // one. PostgreSQL reserves the `pg_` prefix, so no other schema
    // looks like them.
    !["pg_temp", "pg_toast_temp"].iter().any(|prefix| {
        schema
            .get(..prefix.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
    })
}

fn hash_key(config: &Config) -> Result<Option<Vec<u8>>, ConfigError> {
    let key = match (&config.hash_key, &config.hash_key_env) {
        (Some(_), Some(_)) => return Err(ConfigError::TwoKeys),
        (Some(key), None) => key.clone(),
        (None, Some(var)) => {
            std::env::var(var).map_err(|_| ConfigError::KeyEnvMissing(var.clone()))?
        }
        (None, None) => return Ok(None),
    };
    if key.len() < MIN_KEY_BYTES {
        return Err(ConfigError::WeakKey);
    }
    Ok(Some(key.into_bytes()))
}

fn valid_label(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

impl EntitySetting {
    fn strategy(self) -> Option<Strategy> {
        match self {
            EntitySetting::Off => None,
            EntitySetting::Redact => Some(Strategy::Redact),
            EntitySetting::Partial => Some(Strategy::Partial),
            EntitySetting::Hash => Some(Strategy::Hash),
            EntitySetting::Null => Some(Strategy::Null),
        }
    }
}

impl RuleSetting {
    fn strategy(self) -> Strategy {
        match self {
            RuleSetting::Redact | RuleSetting::Keep => Strategy::Redact,
            RuleSetting::Partial => Strategy::Partial,
            RuleSetting::Hash => Strategy::Hash,
            RuleSetting::Null => Strategy::Null,
        }
    }
}

/// `column`, `table.column` or `schema.table.column`, each part a
/// case-insensitive glob where `*` matches any run of characters.
struct Pattern {
    /// Lower-cased parts, the column last.
    parts: Vec<String>,
}

impl Pattern {
    fn parse(text: &str) -> Result<Self, ConfigError> {
        let parts: Vec<String> = text.split('.').map(str::to_ascii_lowercase).collect();
        if parts.len() > 3 || parts.iter().any(String::is_empty) {
            return Err(ConfigError::BadPattern(text.to_string()));
        }
        Ok(Pattern { parts })
    }

    /// Whether the rule applies to `column`. When the gateway could not tell
    /// which table a column comes from, a table-qualified rule applies on
    /// the column name alone if `conservative` (a masking rule: better to
    /// mask too much), and not at all otherwise (a `keep` rule must never
    /// switch scanning off by guess; see also [`keepable`]).
    fn matches(&self, column: &Column, conservative: bool) -> bool {
        let Some((column_part, qualifiers)) = self.parts.split_last() else {
            return false;
        };
        if !glob(column_part, &column.name) {
            return false;
        }
        let Some((table_part, schema_part)) = qualifiers.split_last() else {
            return true;
        };
        let Some(table) = column.table.as_deref() else {
            return conservative;
        };
        let (schema, table) = match table.rsplit_once('.') {
            Some((schema, table)) => (Some(schema), table),
            None => (None, table),
        };
        if !glob(table_part, table) {
            return false;
        }
        match (schema_part.first(), schema) {
            (None, _) => true,
            (Some(want), Some(schema)) => glob(want, schema),
            (Some(_), None) => conservative,
        }
    }
}

/// Case-insensitive glob with `*`; `pattern` is lower-case already.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    // Where the last `*` was and how much of `text` it has taken.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti].to_ascii_lowercase() {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|b| *b == b'*')
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn globs() {
        assert!(glob("*ssn*", "customer_SSN"));
        assert!(glob("email", "Email"));
        assert!(!glob("email", "emails"));
        assert!(glob("e*l", "email"));
        assert!(glob("*", ""));
        assert!(!glob("a*b", "acbx"));
        assert!(glob("a*b*c", "aXbYbZc"));
    }
}
