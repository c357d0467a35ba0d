//! First-party guardrail for HTTP connections and MCP endpoints.
//!
//! Rules match on who is calling (groups, connection), the method and path
//! (wildcards), and optionally on headers and on JSON-pointer conditions
//! into the body; MCP `tools/call` requests are matched by tool name (and
//! optionally argument conditions). The first matching rule decides:
//! allow, deny, or require approval. Tool rules are consulted before HTTP
//! rules; when nothing matches, `default` decides.
//!
//! A condition that cannot be judged (the body was cut at the gateway's
//! inspection limit, or is not JSON; an empty body is JSON without
//! fields) counts as met for deny and
//! require-approval rules and as not met for allow rules: an unreadable
//! body never slips past a deny, nor earns an allow.
//!
//! Requests of other protocols (SQL, shell) are not this plugin's business
//! and are allowed.

use serde::Deserialize;
use serde_json::Value;
use sluice_plugin_sdk::types::{Approval, HttpRequest, Request, Session, Verdict};
use sluice_plugin_sdk::{Guardrail, export_guardrail};

mod cond;
mod decimal;
mod glob;

use cond::{Answer, Condition};
use decimal::Doc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Allow,
    Deny,
    #[serde(alias = "require_approval")]
    RequireApproval,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// What happens when no rule matches. Required: an empty policy must
    /// say whether it means "allow" or "deny".
    default: Action,
    #[serde(default)]
    rules: Vec<Rule>,
    /// Rules for MCP `tools/call` requests.
    #[serde(default)]
    tools: Vec<ToolRule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Rule {
    name: String,
    action: Action,
    reason: Option<String>,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    connections: Vec<String>,
    /// Any of these methods (case-insensitive); empty: any method.
    #[serde(default)]
    methods: Vec<String>,
    /// Any of these path patterns; empty: any path.
    #[serde(default)]
    paths: Vec<String>,
    path: Option<String>,
    #[serde(default)]
    headers: Vec<Condition>,
    #[serde(default)]
    body: Vec<Condition>,
    #[serde(default)]
    approver_groups: Vec<String>,
    ttl_seconds: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ToolRule {
    name: String,
    action: Action,
    reason: Option<String>,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    connections: Vec<String>,
    /// Tool name patterns; at least one.
    tools: Vec<String>,
    #[serde(default)]
    arguments: Vec<Condition>,
    #[serde(default)]
    approver_groups: Vec<String>,
    ttl_seconds: Option<u32>,
}

pub struct HttpGuardrail {
    config: Config,
}

impl Guardrail for HttpGuardrail {
    type Config = Config;

    fn new(mut config: Config) -> Result<Self, String> {
        for rule in &mut config.rules {
            let at = format!("http-guardrail: rule {:?}", rule.name);
            if rule.name.is_empty() {
                return Err("http-guardrail: every rule needs a name".into());
            }
            rule.paths.extend(rule.path.take());
            if rule.paths.iter().any(|p| !p.starts_with('/') && p != "*") {
                return Err(format!("{at}: paths start with `/`"));
            }
            for m in &mut rule.methods {
                if m.is_empty() || !m.bytes().all(|b| b.is_ascii_alphabetic()) {
                    return Err(format!("{at}: {m:?} is not a method"));
                }
                m.make_ascii_uppercase();
            }
            // Frameworks answer HEAD with their GET handler, side effects
            // and all: what a rule says of GET it says of HEAD.
            if rule.methods.iter().any(|m| m == "GET") && !rule.methods.iter().any(|m| m == "HEAD")
            {
                rule.methods.push("HEAD".into());
            }
            for c in &rule.headers {
                c.validate("headers").map_err(|e| format!("{at}: {e}"))?;
            }
            for c in &rule.body {
                c.validate("body").map_err(|e| format!("{at}: {e}"))?;
            }
            check_approval(&at, rule.action, &rule.approver_groups, rule.ttl_seconds)?;
        }
        for rule in &config.tools {
            let at = format!("http-guardrail: tool rule {:?}", rule.name);
            if rule.name.is_empty() {
                return Err("http-guardrail: every tool rule needs a name".into());
            }
            if rule.tools.is_empty() {
                return Err(format!("{at}: `tools` must list at least one tool pattern"));
            }
            for c in &rule.arguments {
                c.validate("arguments").map_err(|e| format!("{at}: {e}"))?;
            }
            check_approval(&at, rule.action, &rule.approver_groups, rule.ttl_seconds)?;
        }
        Ok(Self { config })
    }

    fn check(&self, session: &Session, request: &Request) -> Result<Verdict, String> {
        let Some(http) = request.http() else {
            return Ok(Verdict::allow());
        };
        if let Some(tool) = http.mcp.as_ref().and_then(|m| m.tool.as_deref()) {
            let args = http.mcp.as_ref().and_then(|m| m.arguments_json.as_deref());
            // `null` when the call has no arguments: pointers find nothing.
            // Arguments are an object. Anything else (a string holding
            // JSON, say) cannot be looked into: conditions on it are
            // unknown, which deny rules take as met.
            let args: Option<Doc> = match args {
                Some(text) => {
                    Doc::parse(text.as_bytes()).filter(|d| d.value.is_object() || d.value.is_null())
                }
                None => Some(Doc::of(Value::Null)),
            };
            for rule in &self.config.tools {
                if in_scope(session, &rule.groups, &rule.connections)
                    && rule.tools.iter().any(|p| glob::matches(p, tool))
                    && all_met(
                        rule.action,
                        rule.arguments
                            .iter()
                            .map(|c| c.test_json(args.as_ref(), rule.action == Action::Allow)),
                    )
                {
                    let what = format!("MCP tool `{tool}`");
                    return Ok(verdict(
                        rule.action,
                        &rule.name,
                        rule.reason.as_deref(),
                        &what,
                        &rule.approver_groups,
                        rule.ttl_seconds,
                    ));
                }
            }
        }
        // Parsed once, and only for a rule with body conditions whose
        // method and path match: most requests meet none.
        let body = std::cell::OnceCell::new();
        for rule in &self.config.rules {
            if in_scope(session, &rule.groups, &rule.connections)
                && self.http_matches(rule, http, &body)
            {
                let what = format!("{} {}", http.method, http.path);
                return Ok(verdict(
                    rule.action,
                    &rule.name,
                    rule.reason.as_deref(),
                    &what,
                    &rule.approver_groups,
                    rule.ttl_seconds,
                ));
            }
        }
        Ok(verdict(
            self.config.default,
            "default",
            None,
            &format!("{} {}", http.method, http.path),
            &[],
            None,
        ))
    }
}

impl HttpGuardrail {
    fn http_matches(
        &self,
        rule: &Rule,
        http: &HttpRequest,
        body: &std::cell::OnceCell<Option<Doc>>,
    ) -> bool {
        if !rule.methods.is_empty()
            && !rule
                .methods
                .iter()
                .any(|m| m.eq_ignore_ascii_case(&http.method))
        {
            return false;
        }
        if !rule.paths.is_empty() && !rule.paths.iter().any(|p| glob::matches_path(p, &http.path)) {
            return false;
        }
        let headers = rule.headers.iter().map(|c| {
            let name = c.name.as_deref().unwrap_or_default();
            let values: Vec<&str> = http
                .headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
                .collect();
            c.test_header(&values, rule.action == Action::Allow)
        });
        let body_answers = rule.body.iter().map(|c| {
            let body = body.get_or_init(|| parse_body(http)).as_ref();
            c.test_json(body, rule.action == Action::Allow)
        });
        all_met(rule.action, headers.chain(body_answers))
    }
}

/// The body as JSON, when it is complete, parses, and is sent as JSON (or
/// with no Content-Type): a form body that happens to parse as JSON is not
/// what a form parser upstream reads (`{"x":"&amount=5000&"}`). No body at
/// all holds no field, whatever its Content-Type: every pointer is absent
/// (a deny rule on `/amount` does not deny a GET).
fn parse_body(http: &HttpRequest) -> Option<Doc> {
    if !http.body_complete {
        return None;
    }
    if http.body.trim_ascii().is_empty() {
        return Some(Doc::of(Value::Null));
    }
    let content_type = http
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    if let Some(ct) = content_type
        && !(ct == "application/json" || ct.ends_with("+json"))
    {
        return None;
    }
    // As the gateway's own checks do (and Express's body-parser): a UTF-8
    // byte-order mark is not part of the document.
    Doc::parse(
        http.body
            .strip_prefix(b"\xEF\xBB\xBF")
            .unwrap_or(&http.body),
    )
}

fn in_scope(session: &Session, groups: &[String], connections: &[String]) -> bool {
    (groups.is_empty() || groups.iter().any(|g| session.in_group(g)))
        && (connections.is_empty() || connections.contains(&session.connection))
}

/// Every condition holds; unknown answers count against allow rules only.
fn all_met(action: Action, mut answers: impl Iterator<Item = Answer>) -> bool {
    answers.all(|a| match a {
        Answer::Yes => true,
        Answer::No => false,
        Answer::Unknown => action != Action::Allow,
    })
}

fn verdict(
    action: Action,
    rule: &str,
    reason: Option<&str>,
    what: &str,
    approvers: &[String],
    ttl: Option<u32>,
) -> Verdict {
    match action {
        Action::Allow => Verdict::allow(),
        Action::Deny => Verdict::deny(
            rule,
            reason.map_or_else(|| format!("{what} is denied"), str::to_string),
        ),
        Action::RequireApproval => {
            let reason = reason.map_or_else(|| format!("{what} needs approval"), str::to_string);
            let mut a = Approval::new(rule, reason).with_approver_groups(approvers.iter().cloned());
            if let Some(ttl) = ttl {
                a = a.with_ttl_seconds(ttl);
            }
            a.into()
        }
    }
}

fn check_approval(
    at: &str,
    action: Action,
    approvers: &[String],
    ttl: Option<u32>,
) -> Result<(), String> {
    if action != Action::RequireApproval && (!approvers.is_empty() || ttl.is_some()) {
        return Err(format!(
            "{at}: approver_groups and ttl_seconds only apply to require-approval"
        ));
    }
    if ttl == Some(0) {
        return Err(format!("{at}: ttl_seconds must be positive"));
    }
    Ok(())
}

export_guardrail!(HttpGuardrail);

// `testing` is native-only: these tests need the host target.
#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests;
