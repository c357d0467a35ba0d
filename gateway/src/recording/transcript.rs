//! `sluice sessions replay`: a recording as a readable transcript, in the
//! order the agent sent its requests.

use std::fmt::Write as _;
use std::time::{Duration, UNIX_EPOCH};

use serde_json::Value;

use super::entry::{Entry, Exchange, Header, Statement};

pub fn time(ms: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// The whole transcript. Requests are ordered by when they arrived
/// (entries are written as they complete, which pipelining can reorder).
pub fn render(entries: &[Entry]) -> String {
    let mut sorted: Vec<&Entry> = entries.iter().collect();
    // Stable: header first, end last, requests by their number.
    sorted.sort_by_key(|e| match e {
        Entry::Session(_) => (0, 0),
        Entry::Statement(s) => (1, s.n),
        Entry::Http(x) => (1, x.n),
        Entry::Truncated(_) => (2, 0),
        Entry::End(_) => (3, 0),
    });
    let started = entries.iter().find_map(|e| match e {
        Entry::Session(h) => Some(h.started_ms),
        _ => None,
    });
    let mut out = String::new();
    for e in sorted {
        out.push_str(&line(e, started.unwrap_or(0)));
        out.push('\n');
    }
    out
}

/// One entry as one or more lines (no trailing newline); `started` is the
/// session's start, for relative times.
pub fn line(entry: &Entry, started: u64) -> String {
    let at = |ms: u64| format!("[+{:.3}s]", ms.saturating_sub(started) as f64 / 1000.0);
    match entry {
        Entry::Session(h) => header(h),
        Entry::Statement(s) => format!("{} {}", at(s.time_ms), statement(s)),
        Entry::Http(x) => format!("{} {}", at(x.time_ms), exchange(x)),
        Entry::Truncated(t) => format!(
            "{} recording truncated at {} bytes (max_session_bytes); later entries were counted, not kept",
            at(t.time_ms),
            t.limit_bytes
        ),
        Entry::End(e) => {
            let mut s = format!(
                "{} session ended ({}) after {:.3}s: {} statement(s) allowed, {} refused, {} HTTP exchange(s)",
                at(e.time_ms),
                e.ending,
                e.duration_ms as f64 / 1000.0,
                e.statements_allowed,
                e.statements_refused,
                e.exchanges
            );
            if let Some(err) = &e.error {
                let _ = write!(s, "; {err}");
            }
            if e.dropped > 0 {
                let _ = write!(s, "; {} entries past the size limit not kept", e.dropped);
            }
            s
        }
    }
}

fn header(h: &Header) -> String {
    format!(
        "session {} · {} connection \"{}\" · subject {} ({}) groups [{}] · from {} · started {}",
        h.id,
        h.protocol,
        h.connection,
        h.subject,
        h.issuer,
        h.groups.join(", "),
        h.client_addr,
        time(h.started_ms)
    )
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Object(o) => format!(
            "{}… ({} bytes, sha256 {})",
            o.get("prefix").and_then(Value::as_str).unwrap_or(""),
            o.get("bytes").and_then(Value::as_u64).unwrap_or(0),
            o.get("sha256").and_then(Value::as_str).unwrap_or("")
        ),
        other => other.to_string(),
    }
}

fn statement(s: &Statement) -> String {
    let verdict = match s.verdict.as_str() {
        "allow" => "ALLOWED",
        "deny" => "DENIED",
        "require_approval" => "HELD",
        "skip" => "SKIPPED",
        other => other,
    };
    let mut out = format!("#{} {verdict}", s.n);
    for sql in &s.sql {
        let name = sql
            .statement_name
            .as_deref()
            .filter(|n| !n.is_empty())
            .map(|n| format!(" [{n}]"))
            .unwrap_or_default();
        let _ = write!(
            out,
            "\n    {}{name}: {}",
            sql.phase,
            text_of(&sql.text).trim()
        );
        if !sql.parameters.is_empty() {
            let params: Vec<String> = sql
                .parameters
                .iter()
                .map(|p| p.as_deref().map_or("NULL".into(), |v| format!("'{v}'")))
                .collect();
            let _ = write!(out, "\n      parameters: {}", params.join(", "));
        }
    }
    if s.verdict == "skip" {
        let _ = write!(out, "\n    not run: {}", s.reason.as_deref().unwrap_or(""));
        return out;
    }
    if s.verdict != "allow" {
        let by = match (&s.plugin, &s.rule) {
            (Some(p), Some(r)) => format!("{p}/{r}"),
            (None, Some(r)) => r.clone(),
            (Some(p), None) => p.clone(),
            (None, None) => "gateway".into(),
        };
        let _ = write!(
            out,
            "\n    refused by {by}: {}",
            s.reason.as_deref().unwrap_or("")
        );
        return out;
    }
    let mut result = format!("\n    → {}", s.commands.join(", "));
    if s.commands.is_empty() {
        result = "\n    → (no command completed)".into();
    }
    let _ = write!(result, "; {} row(s)", s.rows);
    if !s.masked.is_empty() {
        let masked: Vec<String> = s.masked.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = write!(result, "; masked {}", masked.join(" "));
    }
    if let Some(d) = s.duration_ms {
        let _ = write!(result, "; {d:.1} ms");
    }
    if let Some(e) = &s.error {
        let _ = write!(result, "\n    error {}: {}", e.code, e.message);
    }
    if let Some(rows) = &s.result {
        let _ = write!(result, "\n      {}", rows.columns.join(" | "));
        for row in &rows.rows {
            let cells: Vec<&str> = row.iter().map(|c| c.as_deref().unwrap_or("NULL")).collect();
            let _ = write!(result, "\n      {}", cells.join(" | "));
        }
        if rows.truncated {
            result.push_str("\n      …");
        }
    }
    out + &result
}

fn exchange(x: &Exchange) -> String {
    let mut out = format!(
        "#{} {} {} → {} {} ({} B up, {} B down, {:.1} ms)",
        x.n, x.method, x.url, x.status, x.outcome, x.request_bytes, x.response_bytes, x.duration_ms
    );
    if let Some(subject) = &x.subject {
        let _ = write!(out, " as {subject}");
    }
    for (method, tool) in &x.mcp {
        let _ = write!(out, "\n    mcp {method}");
        if let Some(t) = tool {
            let _ = write!(out, " tool {t}");
        }
    }
    if let Some(reason) = &x.reason {
        let by = [x.plugin.as_deref(), x.rule.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join("/");
        let _ = write!(out, "\n    refused by {by}: {reason}");
    }
    if !x.masked.is_empty() {
        let masked: Vec<String> = x.masked.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = write!(out, "\n    masked {}", masked.join(" "));
    }
    if !x.completed {
        out.push_str("\n    (the response did not complete)");
    }
    out
}
