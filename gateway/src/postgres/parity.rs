//! Keeps the server reading SQL text the way the gateway's parser does.
//!
//! The gateway analyses statements with PostgreSQL's own parser, but under
//! fixed lexing rules: `standard_conforming_strings = on` (a backslash in
//! `'…'` is an ordinary character) and UTF-8 text. A session that switched
//! the server to `standard_conforming_strings = off`, or to a client-only
//! encoding such as GBK or SJIS (whose multibyte characters can swallow a
//! backslash), would make the server split a string literal where the
//! gateway did not: text the guardrails approved as one harmless statement
//! could run as another. So the upstream session starts with both settings
//! pinned, statements that would change them are refused, and a server that
//! reports a change anyway (from a function or DO block the analysis cannot
//! see into) ends the session.
//!
//! That report comes after the fact: a statement pipelined behind the one
//! that made the change would already be on its way. Only text with a
//! backslash or a non-ASCII byte can lex differently, so such text waits
//! (the [`Fence`]) until the server has finished every earlier statement
//! that ran code out of the analysis' sight.

use tokio::sync::watch;

use crate::plugins::bindings::types::{SqlStatement, StatementFlags, StatementKind};

const SCS: &str = "standard_conforming_strings";
const CLIENT_ENCODING: &str = "client_encoding";

/// The startup parameters for the upstream session, from the client's
/// (already limited to presentation settings): the client's encoding if it
/// is one the gateway reads the same way, plus the pinned settings.
pub fn upstream_params(client: &[(String, String)]) -> Result<Vec<(String, String)>, String> {
    let mut params = Vec::with_capacity(client.len() + 2);
    let mut encoding = false;
    for (k, v) in client {
        if k.eq_ignore_ascii_case(CLIENT_ENCODING) {
            if !encoding_ok(v) {
                return Err(encoding_refusal(v));
            }
            encoding = true;
        }
        params.push((k.clone(), v.clone()));
    }
    if !encoding {
        params.push((CLIENT_ENCODING.to_string(), "UTF8".to_string()));
    }
    params.push((SCS.to_string(), "on".to_string()));
    Ok(params)
}

/// Why a statement may not run, when it would change how the server lexes.
pub fn statement_refusal(s: &SqlStatement) -> Option<String> {
    if let Some(setting) = &s.setting
        && let Some(value) = &setting.value
        && let Some(why) = setting_refusal(&setting.name, value)
    {
        return Some(why);
    }
    for call in &s.functions {
        let builtin = call.schema.as_deref().is_none_or(|s| s == "pg_catalog");
        if !(builtin && call.name == "set_config") {
            continue;
        }
        let name = call.literal_args.first().cloned().flatten();
        let value = call.literal_args.get(1).cloned().flatten();
        // A computed setting name is the guardrails' call (it could be
        // `role`); if it changes a lexing setting, the server's report ends
        // the session, and the fence holds what was pipelined behind it.
        if let Some(name) = name {
            let name = name.to_ascii_lowercase();
            if name == SCS || name == CLIENT_ENCODING {
                let why = match value {
                    Some(v) => setting_refusal(&name, &v),
                    None => Some(format!(
                        "set_config of {name} with a computed value is refused"
                    )),
                };
                if why.is_some() {
                    return why;
                }
            }
        }
    }
    // UPDATE pg_settings is set_config by another name.
    if s.tables_written.iter().any(|w| {
        w.table.name == "pg_settings" && w.table.schema.as_deref().is_none_or(|s| s == "pg_catalog")
    }) {
        return Some("writes to pg_settings are refused through the gateway".into());
    }
    None
}

/// Why the session must end, when the server reports a lexing setting the
/// gateway cannot follow.
pub fn parameter_status_refusal(name: &str, value: &str) -> Option<String> {
    let name = name.to_ascii_lowercase();
    setting_refusal(&name, value).map(|why| format!("the server reports {name} = {value}: {why}"))
}

fn setting_refusal(name: &str, value: &str) -> Option<String> {
    match name {
        SCS if !is_on(value) => Some(format!(
            "{SCS} must stay on through the gateway (its SQL analysis reads backslashes as PostgreSQL does with it on)"
        )),
        CLIENT_ENCODING if !encoding_ok(value) => Some(encoding_refusal(value)),
        _ => None,
    }
}

fn is_on(value: &str) -> bool {
    let v = value.trim().trim_matches('\'').to_ascii_lowercase();
    matches!(v.as_str(), "on" | "true" | "yes" | "1")
}

/// Encodings in which every byte below 0x80 is that ASCII character, as in
/// the UTF-8 the gateway parses.
fn encoding_ok(value: &str) -> bool {
    let v: String = value
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_lowercase();
    matches!(v.as_str(), "utf8" | "unicode" | "sqlascii")
}

fn encoding_refusal(value: &str) -> String {
    format!(
        "client_encoding {value:?} is not supported through the gateway; use UTF8 (multibyte client encodings can hide quotes and backslashes from its SQL analysis)"
    )
}

/// Whether the server could read `text` differently under other lexing
/// settings: only backslashes and non-ASCII bytes are read differently.
pub fn lexing_sensitive(text: &str) -> bool {
    text.bytes().any(|b| b == b'\\' || b >= 0x80)
}

/// Whether a statement runs code the analysis cannot see, which could
/// change the lexing settings (DO, CALL, EXECUTE, dynamic SQL, any
/// function that is not a known side-effect-free builtin).
pub fn runs_unseen_code(s: &SqlStatement) -> bool {
    s.flags.contains(StatementFlags::DYNAMIC_SQL)
        || s.kind == StatementKind::Procedural
        || s.functions.iter().any(|f| {
            !crate::sql::is_pure_builtin(f)
                // set_config of a setting the analysis cannot name.
                || (f.name == "set_config" && f.literal_args.first().is_none_or(Option::is_none))
        })
}

/// Holds lexing-sensitive statements behind statements that ran unseen code
/// until the server has answered those (its ReadyForQuery, counted by the
/// server-to-client direction), so that a change of settings they made is
/// seen first.
pub struct Fence {
    /// Query and Sync messages forwarded: each is answered by one ReadyForQuery.
    cycles: u64,
    state: FenceState,
    ready: watch::Receiver<u64>,
}

enum FenceState {
    Clear,
    /// Unseen code was parsed in an extended-protocol batch not yet synced.
    AwaitingSync,
    /// Clear once this many ReadyForQuery messages have been relayed.
    Until(u64),
}

impl Fence {
    /// The sender counts ReadyForQuery messages relayed to the client.
    pub fn new() -> (watch::Sender<u64>, Fence) {
        let (tx, ready) = watch::channel(0);
        let fence = Fence {
            cycles: 0,
            state: FenceState::Clear,
            ready,
        };
        (tx, fence)
    }

    /// Called for every message forwarded to the server; `ends_batch` for
    /// a Query, and a Sync the server answers (not one it ignores while it
    /// reads COPY data).
    pub fn forwarded(&mut self, tag: u8, ends_batch: bool, runs_unseen_code: bool) {
        if ends_batch {
            self.cycles += 1;
        }
        if runs_unseen_code {
            self.state = if tag == b'Q' {
                FenceState::Until(self.cycles)
            } else {
                FenceState::AwaitingSync
            };
        } else if tag == b'S' && ends_batch && matches!(self.state, FenceState::AwaitingSync) {
            self.state = FenceState::Until(self.cycles);
        }
    }

    /// Waits, before `text` is analysed, until the server has finished the
    /// unseen code sent before it, if `text` could be read differently. An
    /// error when that cannot be known (the unseen code's batch has no Sync yet).
    pub async fn before(&mut self, text: &str) -> Result<(), &'static str> {
        if !lexing_sensitive(text) {
            return Ok(());
        }
        match self.state {
            FenceState::Clear => Ok(()),
            FenceState::AwaitingSync => Err(
                "text with backslashes or non-ASCII characters cannot follow, in the same extended-protocol batch, a statement that runs code the gateway cannot inspect; send Sync first",
            ),
            FenceState::Until(n) => {
                // A closed channel means the session is ending anyway.
                let _ = self.ready.wait_for(|seen| *seen >= n).await;
                self.state = FenceState::Clear;
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings() {
        assert!(setting_refusal(SCS, "off").is_some());
        assert!(setting_refusal(SCS, "'off'").is_some());
        assert!(setting_refusal(SCS, "false").is_some());
        assert!(setting_refusal(SCS, "on").is_none());
        assert!(setting_refusal(SCS, "'ON'").is_none());
        assert!(setting_refusal(CLIENT_ENCODING, "GBK").is_some());
        assert!(setting_refusal(CLIENT_ENCODING, "SJIS").is_some());
        assert!(setting_refusal(CLIENT_ENCODING, "UTF-8").is_none());
        assert!(setting_refusal(CLIENT_ENCODING, "sql_ascii").is_none());
        assert!(setting_refusal("search_path", "x").is_none());
    }

    #[test]
    fn startup() {
        let p = upstream_params(&[("application_name".into(), "x".into())]).unwrap();
        assert!(p.contains(&(CLIENT_ENCODING.into(), "UTF8".into())));
        assert!(p.contains(&(SCS.into(), "on".into())));
        assert!(upstream_params(&[("client_encoding".into(), "BIG5".into())]).is_err());
        let p = upstream_params(&[("client_encoding".into(), "SQL_ASCII".into())]).unwrap();
        assert_eq!(p.iter().filter(|(k, _)| k == CLIENT_ENCODING).count(), 1);
    }

    #[tokio::test]
    async fn the_fence_holds_sensitive_text_behind_unseen_code() {
        use std::time::Duration;
        let (ready, mut fence) = Fence::new();
        // Nothing unseen yet: no wait.
        fence.before(r"select 'a\'").await.unwrap();
        // A DO block in a Query: plain text passes, sensitive text waits
        // for that Query's ReadyForQuery.
        fence.forwarded(b'Q', true, true);
        fence.before("select 1").await.unwrap();
        let held =
            tokio::time::timeout(Duration::from_millis(50), fence.before("select 'é'")).await;
        assert!(
            held.is_err(),
            "sensitive text passed before the server answered"
        );
        ready.send_modify(|n| *n += 1);
        fence.before("select 'é'").await.unwrap();
        // Extended protocol: unseen code parsed, no Sync yet: refused.
        fence.forwarded(b'P', false, true);
        fence.forwarded(b'B', false, false);
        fence.forwarded(b'E', false, false);
        assert!(fence.before(r"select '\'").await.is_err());
        fence.forwarded(b'S', true, false);
        let held =
            tokio::time::timeout(Duration::from_millis(50), fence.before(r"select '\'")).await;
        assert!(held.is_err());
        ready.send_modify(|n| *n += 1);
        fence.before(r"select '\'").await.unwrap();
    }
}
