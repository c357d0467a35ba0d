//! Every answer the gateway gives in its own name (as opposed to the
//! upstream's): an RFC 9457 `application/problem+json` body naming the reason,
//! with a stable machine-readable `reason` code beside the human `detail`.

use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};
use serde_json::{Map, Value, json};

use super::body::{self, Body};
use super::record::Outcome;

/// A refusal or failure answered by the gateway itself.
#[derive(Debug, Clone)]
pub struct Problem {
    pub status: StatusCode,
    /// Stable code, e.g. `token_rejected`, `denied`, `upstream_timeout`.
    pub reason: &'static str,
    pub detail: String,
    /// Extension members (`plugin`, `rule`, `token_reason`, …).
    pub extra: Map<String, Value>,
    /// How the exchange is recorded.
    pub outcome: Outcome,
    /// Adds `WWW-Authenticate` (401 answers).
    pub challenge: Option<&'static str>,
}

impl Problem {
    pub fn new(status: StatusCode, reason: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            reason,
            detail: detail.into(),
            extra: Map::new(),
            outcome: Outcome::Refused,
            challenge: None,
        }
    }

    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.extra.insert(key.to_string(), value.into());
        self
    }

    pub fn outcome(mut self, outcome: Outcome) -> Self {
        self.outcome = outcome;
        self
    }

    pub fn bad_request(reason: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, reason, detail)
    }

    pub fn unauthorized(reason: &'static str, detail: impl Into<String>) -> Self {
        let mut p = Self::new(StatusCode::UNAUTHORIZED, reason, detail);
        // RFC 6750: a missing token gets a bare challenge, a bad one says so.
        p.challenge = Some(if reason == "token_missing" {
            "Bearer realm=\"sluice\""
        } else {
            "Bearer realm=\"sluice\", error=\"invalid_token\""
        });
        p
    }

    pub fn forbidden(reason: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, reason, detail)
    }

    /// The upstream failed us: never the agent's fault.
    pub fn upstream(status: StatusCode, reason: &'static str, detail: impl Into<String>) -> Self {
        Self::new(status, reason, detail).outcome(Outcome::UpstreamError)
    }

    pub fn title(&self) -> &'static str {
        self.status.canonical_reason().unwrap_or("Error")
    }

    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "type": format!("urn:sluice:problem:{}", self.reason),
            "title": self.title(),
            "status": self.status.as_u16(),
            "detail": self.detail,
            "reason": self.reason,
        });
        if let Value::Object(map) = &mut v {
            for (k, val) in &self.extra {
                map.insert(k.clone(), val.clone());
            }
        }
        v
    }

    pub fn into_response(self) -> Response<Body> {
        let bytes = self.to_json().to_string();
        let mut resp = Response::new(body::full(bytes));
        *resp.status_mut() = self.status;
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(challenge) = self.challenge {
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        resp
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.reason,
            self.detail
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_json_carries_reason_and_extensions() {
        let p = Problem::forbidden("denied", "no deletes").with("rule", "no-admin-delete");
        let v = p.to_json();
        assert_eq!(v["status"], 403);
        assert_eq!(v["reason"], "denied");
        assert_eq!(v["rule"], "no-admin-delete");
        assert_eq!(v["type"], "urn:sluice:problem:denied");
        let resp = Problem::unauthorized("token_rejected", "expired").into_response();
        assert_eq!(resp.status(), 401);
        assert_eq!(
            resp.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        assert!(
            resp.headers()[header::WWW_AUTHENTICATE]
                .to_str()
                .unwrap()
                .contains("invalid_token")
        );
    }
}
