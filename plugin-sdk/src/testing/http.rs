//! Builder for HTTP requests.

use crate::types::{HttpRequest, McpRequest, Request};

/// An HTTP request under construction; see [`super::http`].
#[derive(Debug, Clone)]
pub struct HttpBuilder {
    request: HttpRequest,
}

impl HttpBuilder {
    pub(super) fn new(method: &str, path: &str) -> Self {
        let request = HttpRequest {
            method: method.to_ascii_uppercase(),
            path: path.into(),
            query: String::new(),
            headers: Vec::new(),
            body: Vec::new(),
            body_complete: true,
            mcp: None,
        };
        HttpBuilder { request }
    }

    /// The raw query string, without `?`.
    pub fn query(mut self, query: &str) -> Self {
        self.request.query = query.into();
        self
    }

    /// Adds a header; the name is lower-cased as the gateway does.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.request
            .headers
            .push((name.to_ascii_lowercase(), value.into()));
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.request.body = body.into();
        self
    }

    /// Marks the body as a truncated prefix of a longer one.
    pub fn body_incomplete(mut self) -> Self {
        self.request.body_complete = false;
        self
    }

    /// An MCP `tools/call` of `tool` with `arguments`, also as the JSON-RPC body.
    pub fn mcp_tool_call(mut self, tool: &str, arguments: serde_json::Value) -> Self {
        let params = serde_json::json!({ "name": tool, "arguments": arguments });
        let body = serde_json::json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params });
        self.request.body = body.to_string().into_bytes();
        self.request
            .headers
            .push(("content-type".into(), "application/json".into()));
        self.request.mcp = Some(McpRequest {
            method: "tools/call".into(),
            tool: Some(tool.into()),
            arguments_json: Some(arguments.to_string()),
            params_json: params.to_string(),
        });
        self
    }

    pub fn build(self) -> Request {
        Request::Http(self.request)
    }
}

impl From<HttpBuilder> for Request {
    fn from(builder: HttpBuilder) -> Self {
        builder.build()
    }
}
