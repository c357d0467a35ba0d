//! The Model Context Protocol over streamable HTTP, as far as policy needs
//! it: a POST body is one JSON-RPC message or a batch of them; requests and
//! notifications reach the guardrails with their method, and a `tools/call`
//! with the tool's name and arguments.
//!
//! Fail closed: on an MCP connection a POST whose body is not JSON-RPC, a
//! `tools/call` without a tool name, a method spelled almost as one of
//! MCP's (`"tools/call "`, `"Tools/Call"`), or a tool name with whitespace
//! at its ends or hidden characters (`" delete_repo"`) is refused here
//! rather than forwarded for the server to interpret in a way the
//! guardrails never saw.

use std::collections::HashMap;

use serde_json::value::RawValue;
use serde_json::{Value, json};

use crate::plugins::bindings::types::McpRequest;

/// One message of the body.
#[derive(Debug, Clone)]
pub struct Message {
    /// The JSON-RPC id; `None` for a notification (or a response).
    pub id: Option<Value>,
    /// `None` for a JSON-RPC response the client sends back to the server.
    pub request: Option<McpRequest>,
}

#[derive(Debug, Clone)]
pub struct Parsed {
    pub messages: Vec<Message>,
    pub batch: bool,
}

/// A JSON-RPC error the gateway answers with.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
    /// The id of the one request it answers; `None` when the body is a
    /// batch or the id could not be read (JSON-RPC answers those with
    /// `"id": null`).
    pub id: Option<Value>,
}

pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const INVALID_PARAMS: i64 = -32602;
/// Server-defined codes (the JSON-RPC range -32000..-32099).
pub const DENIED: i64 = -32010;
pub const APPROVAL_REQUIRED: i64 = -32011;

/// Messages judged in one batch. MCP has sent no batches since its
/// 2025-06-18 revision; each message is one guardrail call over the whole
/// body, so an unbounded batch would cost time quadratic in its size.
pub const MAX_BATCH: usize = 64;

const TOOLS_CALL: &str = "tools/call";

/// The methods an MCP client sends (the specification's requests and
/// notifications): plugins rule on them by name, so a spelling that only
/// some servers read as one of them is refused (see [`near_miss`]).
const METHODS: &[&str] = &[
    "initialize",
    "ping",
    TOOLS_CALL,
    "tools/list",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "resources/subscribe",
    "resources/unsubscribe",
    "prompts/list",
    "prompts/get",
    "completion/complete",
    "logging/setLevel",
    "notifications/initialized",
    "notifications/cancelled",
    "notifications/progress",
    "notifications/roots/list_changed",
];

pub fn parse(body: &[u8]) -> Result<Parsed, RpcError> {
    // A UTF-8 byte-order mark is skipped, as body-parser (the TypeScript
    // SDK's servers) skips it: the message is read as the upstream reads it.
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    // Which of two `method` or `name` keys counts is up to each parser.
    let names_override = super::json_keys::check_json(body).map_err(|why| RpcError {
        code: INVALID_REQUEST,
        message: format!("ambiguous JSON: {why}"),
        id: None,
    })?;
    if names_override {
        // Rails and Laravel read `_method` in a JSON body as the request's
        // method.
        return Err(RpcError {
            code: INVALID_REQUEST,
            message: format!(
                "the message carries `{}`, which some servers read as the HTTP method",
                super::ambiguity::OVERRIDE_PARAMETER
            ),
            id: None,
        });
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| RpcError {
        code: PARSE_ERROR,
        message: format!("the body is not JSON: {e}"),
        id: None,
    })?;
    let (items, batch) = match value {
        Value::Array(items) if items.is_empty() => {
            return Err(RpcError {
                code: INVALID_REQUEST,
                message: "empty batch".into(),
                id: None,
            });
        }
        Value::Array(items) if items.len() > MAX_BATCH => {
            return Err(RpcError {
                code: INVALID_REQUEST,
                message: format!(
                    "a batch of {} messages; the gateway judges at most {MAX_BATCH} at once",
                    items.len()
                ),
                id: None,
            });
        }
        Value::Array(items) => (items, true),
        other => (vec![other], false),
    };
    let mut texts = params_as_sent(body, batch).into_iter();
    // One message the gateway cannot judge refuses the whole batch, which
    // is answered as one: its error names no single request's id.
    let messages = items
        .into_iter()
        .map(|item| message(item, texts.next().unwrap_or_default()))
        .collect::<Result<_, _>>()
        .map_err(|e| if batch { RpcError { id: None, ..e } } else { e })?;
    Ok(Parsed { messages, batch })
}

/// `params` and `params.arguments` of each message as the client wrote
/// them. Printed again from a parsed tree, a number can change:
/// `1000.0000000000001` is read as the `f64` 1000.0, and a guardrail must
/// judge the value the server will read. (Duplicate keys were refused by
/// `check_json`, so the tree and the text name the same values.)
fn params_as_sent(body: &[u8], batch: bool) -> Vec<Sent> {
    type Object<'a> = HashMap<String, &'a RawValue>;
    let Ok(text) = std::str::from_utf8(body) else {
        return Vec::new();
    };
    let items: Vec<&RawValue> = if batch {
        serde_json::from_str(text).unwrap_or_default()
    } else {
        serde_json::from_str(text)
            .map(|one| vec![one])
            .unwrap_or_default()
    };
    items
        .into_iter()
        .map(|item| {
            let params = serde_json::from_str::<Object>(item.get())
                .ok()
                .and_then(|m| folded(&m, "params").copied());
            let arguments = params
                .and_then(|p| serde_json::from_str::<Object>(p.get()).ok())
                .and_then(|m| folded(&m, "arguments").map(|a| a.get().to_string()));
            Sent {
                params: params.map(|p| p.get().to_string()),
                arguments,
            }
        })
        .collect()
}

/// The key of a member by a name read as Go's `encoding/json` reads it
/// (without regard to case, `ſ` as `s`): MCP servers in Go find
/// `"Method"` under `method`. `check_json` refused objects with two such
/// names, so there is at most one besides an exact match, which wins.
fn member<'k>(keys: impl Iterator<Item = &'k String> + Clone, name: &str) -> Option<&'k String> {
    keys.clone()
        .find(|k| *k == name)
        .or_else(|| keys.into_iter().find(|k| super::json_keys::fold(k) == name))
}

fn folded<'m, V>(map: &'m HashMap<String, V>, name: &str) -> Option<&'m V> {
    member(map.keys(), name).and_then(|k| map.get(k))
}

fn folded_value<'m>(map: &'m serde_json::Map<String, Value>, name: &str) -> Option<&'m Value> {
    member(map.keys(), name).and_then(|k| map.get(k))
}

fn take_folded(map: &mut serde_json::Map<String, Value>, name: &str) -> Option<Value> {
    let key = member(map.keys(), name)?.clone();
    map.remove(&key)
}

#[derive(Default)]
struct Sent {
    params: Option<String>,
    arguments: Option<String>,
}

fn message(v: Value, sent: Sent) -> Result<Message, RpcError> {
    let invalid = |m: &str, id: Option<&Value>| RpcError {
        code: INVALID_REQUEST,
        message: m.to_string(),
        id: id.cloned(),
    };
    let Value::Object(mut obj) = v else {
        return Err(invalid("a JSON-RPC message must be an object", None));
    };
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(invalid("not a JSON-RPC 2.0 message", None));
    }
    let id = take_folded(&mut obj, "id");
    let answers = folded_value(&obj, "result").is_some() || folded_value(&obj, "error").is_some();
    let method = match take_folded(&mut obj, "method") {
        None if answers => {
            return Ok(Message { id, request: None });
        }
        None => return Err(invalid("a JSON-RPC request needs a method", id.as_ref())),
        // Which half a server believes decides whether it runs the call.
        Some(_) if answers => {
            return Err(invalid(
                "a message with a method is a request, and cannot carry a result or an error",
                id.as_ref(),
            ));
        }
        Some(Value::String(m)) => m,
        Some(_) => return Err(invalid("the method must be a string", id.as_ref())),
    };
    if let Some(why) = near_miss(&method) {
        return Err(invalid(&why, id.as_ref()));
    }
    let params = take_folded(&mut obj, "params").unwrap_or(Value::Null);
    let (tool, arguments_json) = if method == TOOLS_CALL {
        let params_obj = params.as_object();
        let name = params_obj
            .and_then(|p| folded_value(p, "name"))
            .and_then(Value::as_str)
            .ok_or_else(|| RpcError {
                code: INVALID_PARAMS,
                message: "tools/call needs params.name, a string".into(),
                id: id.clone(),
            })?;
        if let Some(why) = tool_near_miss(name) {
            return Err(invalid(&why, id.as_ref()));
        }
        (
            Some(name.to_string()),
            params_obj
                .and_then(|p| folded_value(p, "arguments"))
                .map(|a| sent.arguments.unwrap_or_else(|| a.to_string())),
        )
    } else {
        (None, None)
    };
    Ok(Message {
        id,
        request: Some(McpRequest {
            method,
            tool,
            arguments_json,
            params_json: sent.params.unwrap_or_else(|| params.to_string()),
        }),
    })
}

/// Why `method` is refused, if it is a near miss: plugins judge a
/// `tools/call` by its exact name, while a server that trims the name
/// (`"tools/call "`, `"tools/call\u0000"`) or compares it without regard
/// to case (Go's `strings.EqualFold`: `"Tools/Call"`, `"Tool\u017f/Call"`)
/// runs it as one. No client of the specification spells a method so, so
/// such a message is refused rather than judged under a name the server
/// may not use. Whitespace or control characters refuse any method, MCP's
/// or not: a plugin could rule on any name.
fn near_miss(method: &str) -> Option<String> {
    let trimmed = method.trim_matches(strippable);
    let folded = super::json_keys::fold(trimmed);
    // Every name in `METHODS` is ASCII, and `fold` maps to lower case.
    if let Some(known) = METHODS.iter().find(|m| m.eq_ignore_ascii_case(&folded)) {
        return (method != *known).then(|| {
            format!(
                "the method {method:?} is not {known:?}, but servers that trim method names or \
                 ignore their case run it as {known:?}; send the method exactly as MCP spells it"
            )
        });
    }
    (trimmed.len() != method.len() || method.chars().any(char::is_control)).then(|| {
        format!(
            "the method {method:?} holds whitespace or control characters, which servers may \
             strip before they read it"
        )
    })
}

/// Why a `tools/call`'s tool name is refused, if it is: guardrails match
/// tool names exactly (`delete_*`), while a server that trims the name it
/// looks up, or drops characters nobody sees, runs `" delete_repo"` or
/// `"delete\u200b_repo"` as `delete_repo`. No client sends a listed tool's
/// name so, so it is refused rather than judged as another tool.
fn tool_near_miss(name: &str) -> Option<String> {
    let trimmed = name.trim_matches(strippable);
    (trimmed.len() != name.len() || name.chars().any(|c| c.is_control() || invisible(c))).then(
        || {
            format!(
                "the tool name {name:?} holds whitespace at its ends, or control or invisible \
                 characters, which servers may strip before they look the tool up; send the \
                 name exactly as the server lists it"
            )
        },
    )
}

/// Characters that show as nothing and that a normalising server may
/// drop: zero-width spaces and joiners, direction marks and embeddings,
/// the soft hyphen, word joiners and invisible operators, the byte-order
/// mark, interlinear annotation marks and tag characters.
fn invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{17B4}'
            | '\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF0}'..='\u{FFFB}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
}

/// What servers strip from the ends of a name: whitespace (Unicode's,
/// as Go's `strings.TrimSpace` and Python's `strip`), control characters
/// (`\0` ends a C string), and the invisible characters JavaScript's
/// `trim` also removes or that vanish in a normalising server.
fn strippable(c: char) -> bool {
    c.is_whitespace()
        || c.is_control()
        || matches!(c, '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}')
}

/// A JSON-RPC error response for `id` (`null` when unknown).
pub fn error_object(id: Option<&Value>, code: i64, message: &str, data: Value) -> Value {
    json!({
        "jsonrpc": "2.0",
        "id": id.cloned().unwrap_or(Value::Null),
        "error": { "code": code, "message": message, "data": data },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_calls_carry_name_and_arguments() {
        let body = br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"delete_repo","arguments":{"repo":"x"}}}"#;
        let p = parse(body).unwrap();
        assert!(!p.batch);
        let m = &p.messages[0];
        assert_eq!(m.id, Some(json!(7)));
        let r = m.request.as_ref().unwrap();
        assert_eq!(r.method, "tools/call");
        assert_eq!(r.tool.as_deref(), Some("delete_repo"));
        assert_eq!(r.arguments_json.as_deref(), Some(r#"{"repo":"x"}"#));
    }

    #[test]
    fn arguments_reach_plugins_as_written() {
        let args = r#"{ "amount": 1000.0000000000001, "id": 123456789012345678901234567890 }"#;
        let one = format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"pay","arguments":{args}}}}}"#
        );
        let batch = format!(r#"[{{"jsonrpc":"2.0","method":"x"}}, {one}]"#);
        for (body, at) in [(one.clone(), 0), (batch, 1)] {
            let p = parse(body.as_bytes()).unwrap();
            let r = p.messages[at].request.as_ref().unwrap();
            assert_eq!(r.arguments_json.as_deref(), Some(args), "{body}");
            assert!(r.params_json.contains("1000.0000000000001"), "{body}");
        }
    }

    /// Go's `encoding/json` finds `"Method"` and `"argument\u017f"` under
    /// `method` and `arguments` (mcp-go, and the go-sdk before
    /// CVE-2026-27896).
    #[test]
    fn member_names_are_read_as_go_servers_read_them() {
        let body = br#"{"jsonrpc":"2.0","ID":1,"Method":"tools/call","Params":{"Name":"deploy","argument\u017f":{"env":"prod"}}}"#;
        let p = parse(body).unwrap();
        let r = p.messages[0].request.as_ref().unwrap();
        assert_eq!(r.method, "tools/call");
        assert_eq!(r.tool.as_deref(), Some("deploy"));
        assert_eq!(r.arguments_json.as_deref(), Some(r#"{"env":"prod"}"#));
        assert_eq!(p.messages[0].id, Some(json!(1)));
        // A request dressed as a response is neither.
        for body in [
            r#"{"jsonrpc":"2.0","id":1,"Method":"tools/call","params":{"name":"x"},"error":null}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x"},"result":null}"#,
        ] {
            assert_eq!(
                parse(body.as_bytes()).unwrap_err().code,
                INVALID_REQUEST,
                "{body}"
            );
        }
    }

    /// A server that trims the method or ignores its case runs these as
    /// the method plugins would have judged under its own name.
    #[test]
    fn near_misses_of_mcp_methods_are_refused() {
        let call = |method: &str, id: Value| {
            json!({"jsonrpc": "2.0", "id": id, "method": method,
                   "params": {"name": "delete_repo"}})
            .to_string()
        };
        for method in [
            "tools/call ",
            " tools/call",
            "\ttools/call\r\n",
            "tools/call\u{0}",
            "\u{feff}tools/call",
            "tools/call\u{200b}",
            "tools/call\u{a0}",
            "Tools/Call",
            "TOOLS/CALL",
            "tool\u{17f}/call",
            " Tools/List ",
            "logging/setlevel",
            "notifications/Initialized",
        ] {
            let e = parse(call(method, json!(7)).as_bytes()).unwrap_err();
            assert_eq!(e.code, INVALID_REQUEST, "{method:?}");
            assert_eq!(e.id, Some(json!(7)), "{method:?}");
            assert!(e.message.contains(&format!("{method:?}")), "{}", e.message);
            assert!(e.message.contains("MCP spells it"), "{}", e.message);
        }
        // Not MCP's, but a plugin may rule on any name, and a server that
        // trims it reads another one.
        for method in ["custom/run ", "custom/\u{0}run", "\u{7f}custom/run"] {
            let e = parse(call(method, json!("a")).as_bytes()).unwrap_err();
            assert_eq!(e.code, INVALID_REQUEST, "{method:?}");
            assert!(e.message.contains("control characters"), "{}", e.message);
        }
        // A notification has no id to answer; in a batch the whole batch is
        // refused, as for any message the gateway cannot judge.
        let note = r#"{"jsonrpc":"2.0","method":"notifications/initialized "}"#;
        assert_eq!(parse(note.as_bytes()).unwrap_err().id, None);
        let batch = format!(
            "[{},{}]",
            call("tools/list", json!(1)),
            call("tools/call ", json!(2))
        );
        let e = parse(batch.as_bytes()).unwrap_err();
        assert_eq!((e.code, e.id), (INVALID_REQUEST, None));
        // Exact spellings, and names no server takes for MCP's, pass.
        for method in [
            "tools/call",
            "logging/setLevel",
            "Custom/Run",
            "tools/call/x",
            "tools/calls",
        ] {
            let p = parse(call(method, json!(1)).as_bytes()).unwrap();
            assert_eq!(p.messages[0].request.as_ref().unwrap().method, method);
        }
    }

    /// A server that trims a tool's name, or drops what does not show,
    /// runs these as `delete_repo`, which a rule on `delete_*` never saw.
    #[test]
    fn tool_names_with_hidden_characters_are_refused() {
        let call = |tool: &str| {
            json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                   "params": {"name": tool, "arguments": {}}})
            .to_string()
        };
        for tool in [
            " delete_repo",
            "delete_repo ",
            "\tdelete_repo\n",
            "delete_repo\u{0}",
            "\u{feff}delete_repo",
            "delete\u{200b}_repo",
            "delete_repo\u{a0}",
            "delete_\u{ad}repo",
            "delete_repo\u{e0041}",
        ] {
            let e = parse(call(tool).as_bytes()).unwrap_err();
            assert_eq!(e.code, INVALID_REQUEST, "{tool:?}");
            assert_eq!(e.id, Some(json!(3)), "{tool:?}");
            assert!(e.message.contains(&format!("{tool:?}")), "{}", e.message);
        }
        // In a batch, the batch is refused whole.
        let batch = format!("[{},{}]", call("search"), call("delete_repo "));
        let e = parse(batch.as_bytes()).unwrap_err();
        assert_eq!((e.code, e.id), (INVALID_REQUEST, None));
        for tool in ["delete_repo", "search code", "café", "数据"] {
            let p = parse(call(tool).as_bytes()).unwrap();
            let r = p.messages[0].request.as_ref().unwrap();
            assert_eq!(r.tool.as_deref(), Some(tool));
        }
    }

    #[test]
    fn batches_and_override_parameters_are_bounded() {
        let one = r#"{"jsonrpc":"2.0","method":"ping"}"#;
        let batch = |n: usize| format!("[{}]", vec![one; n].join(","));
        assert!(parse(batch(MAX_BATCH).as_bytes()).is_ok());
        assert_eq!(
            parse(batch(MAX_BATCH + 1).as_bytes()).unwrap_err().code,
            INVALID_REQUEST
        );
        let body = br#"{"jsonrpc":"2.0","id":1,"method":"tools/list","_method":"DELETE"}"#;
        assert_eq!(parse(body).unwrap_err().code, INVALID_REQUEST);
    }

    #[test]
    fn batches_notifications_and_responses() {
        let body = br#"[{"jsonrpc":"2.0","method":"notifications/initialized"},
                        {"jsonrpc":"2.0","id":"a","result":{}},
                        {"jsonrpc":"2.0","id":1,"method":"tools/list"}]"#;
        let p = parse(body).unwrap();
        assert!(p.batch);
        assert_eq!(p.messages.len(), 3);
        assert!(p.messages[0].id.is_none());
        assert!(p.messages[1].request.is_none());
        assert_eq!(p.messages[2].request.as_ref().unwrap().params_json, "null");
    }

    #[test]
    fn what_cannot_be_judged_is_refused() {
        assert_eq!(parse(b"not json").unwrap_err().code, PARSE_ERROR);
        let bom = b"\xEF\xBB\xBF{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}";
        assert!(parse(bom).is_ok());
        assert_eq!(parse(b"[]").unwrap_err().code, INVALID_REQUEST);
        assert_eq!(
            parse(br#"{"id":1,"method":"x"}"#).unwrap_err().code,
            INVALID_REQUEST
        );
        assert_eq!(
            parse(br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":3}}"#)
                .unwrap_err()
                .code,
            INVALID_PARAMS
        );
    }
}
