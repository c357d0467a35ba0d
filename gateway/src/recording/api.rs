//! The admin API's view of recordings: `/api/v1/sessions[...]`.
//! Blocking (it reads files); the admin listener runs it off the runtime.

use std::path::Path;

use hyper::StatusCode;
use serde_json::{Value, json};

use super::read::{self, Filter};
use super::{RecordingError, har};

/// `path` below `/api/v1/sessions`, e.g. `""`, `"/ID"`, `"/ID/events"`.
pub fn route(dir: &Path, rest: &str, query: Option<&str>) -> (StatusCode, Value) {
    match respond(dir, rest, query) {
        Ok(v) => (StatusCode::OK, v),
        Err(ApiError::BadRequest(detail)) => (
            StatusCode::BAD_REQUEST,
            json!({"error": "bad_request", "detail": detail}),
        ),
        Err(ApiError::Recording(e @ RecordingError::NotFound(_))) => (
            StatusCode::NOT_FOUND,
            json!({"error": "not_found", "detail": e.to_string()}),
        ),
        Err(ApiError::Recording(e @ (RecordingError::Ambiguous(_) | RecordingError::BadId(_)))) => {
            (
                StatusCode::BAD_REQUEST,
                json!({"error": "bad_request", "detail": e.to_string()}),
            )
        }
        Err(ApiError::Recording(e)) => {
            tracing::error!("admin sessions API: {e}");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"error": "internal", "detail": "cannot read the recordings (see the gateway's log)"}),
            )
        }
    }
}

enum ApiError {
    BadRequest(String),
    Recording(RecordingError),
}

impl From<RecordingError> for ApiError {
    fn from(e: RecordingError) -> Self {
        ApiError::Recording(e)
    }
}

fn respond(dir: &Path, rest: &str, query: Option<&str>) -> Result<Value, ApiError> {
    let parts: Vec<&str> = rest.trim_matches('/').split('/').collect();
    match parts.as_slice() {
        [""] => {
            let filter = filter(query)?;
            Ok(json!({ "sessions": read::list(dir, &filter)? }))
        }
        [id] => {
            let path = read::resolve(dir, id)?;
            let summary =
                read::summary(&path)?.ok_or_else(|| RecordingError::NotFound(id.to_string()))?;
            Ok(json!(summary))
        }
        [id, "events"] => {
            let path = read::resolve(dir, id)?;
            let recorded = read::entries(&path)?;
            Ok(json!({ "events": recorded.entries, "torn_tail": recorded.torn }))
        }
        [id, "har"] => {
            let path = read::resolve(dir, id)?;
            Ok(har::export(&read::entries(&path)?.entries))
        }
        _ => Err(ApiError::Recording(RecordingError::NotFound(
            rest.trim_matches('/').to_string(),
        ))),
    }
}

fn filter(query: Option<&str>) -> Result<Filter, ApiError> {
    let mut f = Filter::default();
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "subject" => f.subject = Some(v.into_owned()),
            "connection" => f.connection = Some(v.into_owned()),
            "since" => f.since_ms = Some(read::parse_since(&v).map_err(ApiError::BadRequest)?),
            other => {
                return Err(ApiError::BadRequest(format!(
                    "unknown parameter \"{other}\" (subject, connection, since)"
                )));
            }
        }
    }
    Ok(f)
}
