//! Example guardrail: denies any SQL text or bound parameter, HTTP path or
//! shell command that contains one of the configured words.
//!
//! Config: `{"words": ["drop", "truncate"], "case_sensitive": false}`;
//! `words` is required and must not be empty, matching is case-insensitive
//! unless `case_sensitive` is true.

use serde::Deserialize;
use sluice_plugin_sdk::types::{Request, Session, Verdict};
use sluice_plugin_sdk::{Guardrail, export_guardrail, log};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    words: Vec<String>,
    #[serde(default)]
    case_sensitive: bool,
}

pub struct DenyWord {
    // Lower-cased up front unless matching is case-sensitive.
    words: Vec<String>,
    case_sensitive: bool,
}

impl DenyWord {
    fn fold(&self, text: &str) -> String {
        if self.case_sensitive {
            text.to_string()
        } else {
            text.to_lowercase()
        }
    }
}

impl Guardrail for DenyWord {
    type Config = Config;

    fn new(config: Config) -> Result<Self, String> {
        if config.words.is_empty() {
            return Err("deny-word: `words` must list at least one word".into());
        }
        if config.words.iter().any(String::is_empty) {
            return Err("deny-word: `words` must not contain an empty word".into());
        }
        let mut plugin = DenyWord {
            words: Vec::new(),
            case_sensitive: config.case_sensitive,
        };
        plugin.words = config.words.iter().map(|w| plugin.fold(w)).collect();
        Ok(plugin)
    }

    fn check(&self, _session: &Session, request: &Request) -> Result<Verdict, String> {
        let mut texts: Vec<(&str, &str)> = match request {
            Request::Sql(sql) => vec![("SQL", &sql.text)],
            Request::Http(http) => vec![("path", &http.path)],
            Request::Shell(shell) => vec![("command", &shell.command)],
        };
        if let Request::Sql(sql) = request {
            texts.extend(
                sql.parameters
                    .iter()
                    .flatten()
                    .map(|p| ("a bound parameter", p.as_str())),
            );
        }
        let found = texts.iter().find_map(|(what, text)| {
            let text = self.fold(text);
            let word = self.words.iter().find(|w| text.contains(w.as_str()))?;
            Some((*what, word))
        });
        let Some((what, word)) = found else {
            return Ok(Verdict::allow());
        };
        let reason = format!("{what} contains the denied word `{word}`");
        log::debug(&reason);
        Ok(Verdict::deny("deny-word", reason))
    }
}

export_guardrail!(DenyWord);

// `testing` is native-only: these tests need the host target.
#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests;
