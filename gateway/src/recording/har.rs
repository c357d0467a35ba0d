//! `sluice sessions export ID --format har`: an HTTP session as HAR 1.2.
//!
//! Bodies appear as the recording kept them: the request as the
//! guardrails saw it, the response as the agent received it (masked), cut
//! to `http_body_bytes`. Gateway-specific facts (outcome, verdict, masked
//! counts) go in `_sluice` fields, which HAR reserves for extensions.

use serde_json::{Value, json};

use super::entry::{BodyCapture, Entry, Exchange, Header};
use super::transcript::time;

pub fn export(entries: &[Entry]) -> Value {
    let header = entries.iter().find_map(|e| match e {
        Entry::Session(h) => Some(h),
        _ => None,
    });
    let mut exchanges: Vec<&Exchange> = entries
        .iter()
        .filter_map(|e| match e {
            Entry::Http(x) => Some(x),
            _ => None,
        })
        .collect();
    exchanges.sort_by_key(|x| (x.time_ms, x.n));
    json!({
        "log": {
            "version": "1.2",
            "creator": { "name": "sluice", "version": env!("CARGO_PKG_VERSION") },
            "comment": header.map(comment).unwrap_or_default(),
            "entries": exchanges.iter().map(|x| entry(x)).collect::<Vec<_>>(),
        }
    })
}

fn comment(h: &Header) -> String {
    format!(
        "session {} on connection \"{}\", subject {} ({})",
        h.id, h.connection, h.subject, h.issuer
    )
}

fn headers(list: &[(String, String)]) -> Vec<Value> {
    list.iter()
        .map(|(name, value)| json!({ "name": name, "value": value }))
        .collect()
}

fn header_value<'a>(list: &'a [(String, String)], name: &str) -> Option<&'a str> {
    list.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn query_string(url: &str) -> Vec<Value> {
    let Some((_, query)) = url.split_once('?') else {
        return Vec::new();
    };
    url::form_urlencoded::parse(query.as_bytes())
        .map(|(name, value)| json!({ "name": name, "value": value }))
        .collect()
}

fn body_text(body: &BodyCapture) -> (String, Option<&'static str>) {
    match (&body.text, &body.base64) {
        (Some(t), _) => (t.clone(), None),
        (None, Some(b)) => (b.clone(), Some("base64")),
        (None, None) => (String::new(), None),
    }
}

fn entry(x: &Exchange) -> Value {
    let request_type = header_value(&x.request_headers, "content-type").unwrap_or("");
    let response_type =
        header_value(&x.response_headers, "content-type").unwrap_or("application/octet-stream");
    let mut request = json!({
        "method": x.method,
        "url": x.url,
        "httpVersion": x.http_version,
        "cookies": [],
        "headers": headers(&x.request_headers),
        "queryString": query_string(&x.url),
        "headersSize": -1,
        "bodySize": x.request_bytes,
    });
    if let Some(body) = &x.request_body {
        let (text, encoding) = body_text(body);
        let mut post = json!({ "mimeType": request_type, "text": text });
        if let Some(enc) = encoding {
            post["comment"] = json!(format!("{enc}-encoded"));
        }
        if body.truncated {
            post["_truncated"] = json!(true);
        }
        request["postData"] = post;
    }
    let mut content = json!({ "size": x.response_bytes, "mimeType": response_type });
    if let Some(body) = &x.response_body {
        let (text, encoding) = body_text(body);
        content["text"] = json!(text);
        if let Some(enc) = encoding {
            content["encoding"] = json!(enc);
        }
        if body.truncated {
            content["_truncated"] = json!(true);
        }
    }
    let masked: serde_json::Map<String, Value> = x
        .masked
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    json!({
        "startedDateTime": time(x.time_ms),
        "time": x.duration_ms,
        "request": request,
        "response": {
            "status": x.status,
            "statusText": hyper::StatusCode::from_u16(x.status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or(""),
            "httpVersion": x.http_version,
            "cookies": [],
            "headers": headers(&x.response_headers),
            "content": content,
            "redirectURL": header_value(&x.response_headers, "location").unwrap_or(""),
            "headersSize": -1,
            "bodySize": x.response_bytes,
        },
        "cache": {},
        "timings": { "send": 0, "wait": x.duration_ms, "receive": 0 },
        "_sluice": {
            "n": x.n,
            "subject": x.subject,
            "outcome": x.outcome,
            "plugin": x.plugin,
            "rule": x.rule,
            "reason": x.reason,
            "masked": masked,
            "completed": x.completed,
        },
    })
}
