//! The request side of a connection with guardrails (or an MCP endpoint):
//! the body is read up to the connection's limit, shown to the guardrails
//! with the method, path, query and headers, and forwarded only if they
//! allow it.

use std::sync::atomic::Ordering;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::header::{self, HeaderValue};
use hyper::http::request::Parts;
use hyper::{Method, Response, StatusCode};
use serde_json::{Value, json};

use crate::plugins::bindings::types::{HttpRequest, Request, Session};
use crate::plugins::{Chain, Decision, RefusalCause};

use super::body::{self, AgentBody, Body, BoxError, CollectError, Prefixed};
use super::decode::{self, Coding, Decoder};
use super::mcp;
use super::problem::Problem;
use super::proxy::HttpConnection;
use super::record::{self, Counted, ExchangeRecord, Outcome, RecordedVerdict};
use super::secrets::Needles;
use super::upload::UploadWatch;

/// What to do with an inspected request.
pub enum Inspected {
    /// Forward it with this body; `upload`: only its first part was read
    /// (`stream_large_requests`), the rest follows unread, at this pace.
    Forward {
        body: Body,
        upload: Option<UploadWatch>,
    },
    /// Answer the agent with this, upstream untouched (an MCP refusal is a
    /// JSON-RPC error, not a problem document).
    Answer(Response<Body>),
}

pub struct Inspection<'a> {
    pub conn: &'a HttpConnection,
    pub chain: &'a Chain,
    pub session: &'a Session,
    pub parts: &'a Parts,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub body_timeout: std::time::Duration,
    /// The agent's token, when long enough to search for.
    pub token: Option<&'a str>,
}

fn too_large(limit: usize) -> Problem {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        format!("the request body is larger than the {limit} bytes this connection inspects"),
    )
}

pub async fn request(
    i: Inspection<'_>,
    body: AgentBody,
    rec: &mut ExchangeRecord,
) -> Result<Inspected, Problem> {
    let limit = i.conn.max_request_body;
    // An MCP message is judged whole or not at all.
    let may_stream = i.conn.stream_large_requests && !i.conn.mcp;
    let declared = i
        .parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) && !may_stream {
        return Err(too_large(limit));
    }
    let collected = body::collect(body, limit, i.body_timeout)
        .await
        .map_err(|e| match e {
            CollectError::Timeout(_) => {
                Problem::new(StatusCode::REQUEST_TIMEOUT, "body_timeout", e.to_string())
            }
            CollectError::Read(_) => Problem::bad_request("bad_body", e.to_string()),
        })?;
    if !collected.complete && !may_stream {
        return Err(too_large(limit));
    }
    rec.request_bytes
        .store(collected.bytes.len() as u64, Ordering::Relaxed);

    let shown = shown_body(&i, &collected.bytes, collected.complete, limit)?;
    rec.request_body = Some(record::capture(&shown));
    // Before the guardrails: a plugin is no more to see the token than the
    // upstream. As sent, JSON-escaped or percent-encoded (a form); the
    // record keeps the body with it replaced.
    if let Some(token) = i.token
        && shown.len() >= super::secrets::token_shortest(token)
        && Needles::token(token).is_some_and(|n| n.holds(&shown))
    {
        return Err(super::auth::misplaced("the request body"));
    }
    let base = HttpRequest {
        method: i.parts.method.as_str().to_string(),
        path: i.path.to_string(),
        query: i.query.unwrap_or_default().to_string(),
        headers: super::headers::for_plugins(&i.parts.headers),
        body: shown.to_vec(),
        body_complete: collected.complete,
        mcp: None,
    };

    // Messages travel in POSTs; a body in another method is judged as one
    // too, for a server that reads it whatever the method.
    let mcp = i.conn.mcp && (i.parts.method == Method::POST || !shown.is_empty());
    if !mcp {
        let content_type = i
            .parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        super::ambiguity::check_body(content_type, &shown)?;
    }
    if mcp {
        if let Some(answer) = check_mcp(&i, base, rec).await {
            return Ok(Inspected::Answer(answer));
        }
    } else {
        let decision = i.chain.check(i.session, &Request::Http(base)).await;
        if let Some(problem) = refusal(decision, rec) {
            return Err(problem);
        }
    }

    let (body, upload) = match collected.rest {
        None => (body::full(collected.bytes), None),
        Some(rest) => {
            let (rest, upload) = Counted::watched(rest, rec.request_bytes.clone());
            let body = Prefixed::new(collected.bytes, rest)
                .map_err(BoxError::from)
                .boxed_unsync();
            (body, Some(upload))
        }
    };
    Ok(Inspected::Forward { body, upload })
}

/// The body as guardrails see it: decoded when the agent compressed it.
fn shown_body(
    i: &Inspection<'_>,
    raw: &Bytes,
    complete: bool,
    limit: usize,
) -> Result<Bytes, Problem> {
    let coding = decode::coding(&i.parts.headers).map_err(|e| {
        Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_encoding",
            format!("{e}: the body could not be inspected"),
        )
    })?;
    if coding == Coding::Identity {
        return Ok(raw.slice(..raw.len().min(limit)));
    }
    if !complete {
        return Err(too_large(limit));
    }
    let mut d = Decoder::new(coding, limit);
    let decoded = d
        .feed(raw)
        .and_then(|mut out| {
            let tail = d.finish()?;
            if !tail.is_empty() {
                let mut v = out.to_vec();
                v.extend_from_slice(&tail);
                out = Bytes::from(v);
            }
            Ok(out)
        })
        .map_err(|e| match e {
            decode::DecodeError::TooLarge(_) => too_large(limit),
            other => Problem::bad_request("bad_body", other.to_string()),
        })?;
    Ok(decoded)
}

/// The problem a non-allow decision becomes, recorded.
fn refusal(decision: Decision, rec: &mut ExchangeRecord) -> Option<Problem> {
    match decision {
        Decision::Allow => None,
        Decision::Deny(r) => {
            rec.verdict = Some(RecordedVerdict {
                plugin: r.plugin.clone(),
                rule: r.rule.clone(),
                reason: r.reason.clone(),
            });
            let reason = if r.cause == RefusalCause::Policy {
                "denied"
            } else {
                "guardrail_failed"
            };
            Some(
                Problem::forbidden(reason, r.to_string())
                    .with("plugin", r.plugin)
                    .with("rule", r.rule)
                    .outcome(Outcome::Denied),
            )
        }
        Decision::RequireApproval(a) => {
            rec.verdict = Some(RecordedVerdict {
                plugin: a.plugin.clone(),
                rule: a.rule.clone(),
                reason: a.reason.clone(),
            });
            // HOOK(approvals): this is where the approvals layer will hold
            // the exchange (approver groups and wait in `a`) and resume or
            // refuse it. Until it lands, the request is refused.
            Some(
                Problem::forbidden(
                    "approval_required",
                    format!(
                        "approval required by plugin `{}` (rule {}): {}; approvals are not available on this gateway yet, so the request is refused",
                        a.plugin, a.rule, a.reason
                    ),
                )
                .with("plugin", a.plugin)
                .with("rule", a.rule)
                .outcome(Outcome::ApprovalRequired),
            )
        }
    }
}

/// Checks every JSON-RPC request of an MCP body; `Some` is the answer
/// that refuses it.
async fn check_mcp(
    i: &Inspection<'_>,
    base: HttpRequest,
    rec: &mut ExchangeRecord,
) -> Option<Response<Body>> {
    let parsed = match mcp::parse(&base.body) {
        Ok(p) => p,
        Err(e) => {
            rec.outcome = Outcome::Refused;
            let err = mcp::error_object(
                e.id.as_ref(),
                e.code,
                &e.message,
                json!({"reason": "invalid_mcp"}),
            );
            return Some(rpc_answer(StatusCode::BAD_REQUEST, err));
        }
    };
    rec.mcp = parsed
        .messages
        .iter()
        .filter_map(|m| m.request.as_ref())
        .map(|r| (r.method.clone(), r.tool.clone()))
        .collect();
    let requests: Vec<_> = parsed
        .messages
        .iter()
        .filter_map(|m| m.request.as_ref())
        .collect();
    let mut verdict: Option<Decision> = None;
    if requests.is_empty() {
        // Only responses to the server: judged as a plain HTTP request.
        let decision = i.chain.check(i.session, &Request::Http(base.clone())).await;
        if !matches!(decision, Decision::Allow) {
            verdict = Some(decision);
        }
    }
    for request in requests {
        let mut one = base.clone();
        one.mcp = Some(request.clone());
        match i.chain.check(i.session, &Request::Http(one)).await {
            Decision::Allow => {}
            // The first deny decides the batch; a deny beats an earlier
            // require-approval, as within a chain.
            deny @ Decision::Deny(_) => {
                verdict = Some(deny);
                break;
            }
            approval => {
                verdict.get_or_insert(approval);
            }
        }
    }
    let decision = verdict?;
    let code = match &decision {
        Decision::RequireApproval(_) => mcp::APPROVAL_REQUIRED,
        _ => mcp::DENIED,
    };
    let problem = refusal(decision, rec)?;
    rec.outcome = problem.outcome;
    let data = json!({
        "reason": problem.reason,
        "plugin": problem.extra.get("plugin"),
        "rule": problem.extra.get("rule"),
    });
    let ids: Vec<&Value> = parsed
        .messages
        .iter()
        .filter(|m| m.request.is_some())
        .filter_map(|m| m.id.as_ref())
        .collect();
    if ids.is_empty() {
        // Only notifications: there is no JSON-RPC response to carry it.
        return Some(problem.into_response());
    }
    let errors: Vec<Value> = ids
        .iter()
        .map(|id| mcp::error_object(Some(id), code, &problem.detail, data.clone()))
        .collect();
    let body = if parsed.batch {
        Value::Array(errors)
    } else {
        errors.into_iter().next().unwrap_or(Value::Null)
    };
    // A JSON-RPC error travels in a successful HTTP response: that is how
    // MCP clients hand it to the model as the call's outcome.
    Some(rpc_answer(StatusCode::OK, body))
}

fn rpc_answer(status: StatusCode, value: Value) -> Response<Body> {
    let mut resp = Response::new(body::full(value.to_string()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}
