//! Run a plugin's logic natively, in its own `cargo test` (native targets only).
//!
//! In production the gateway fills in requests from its protocol parsers; the
//! builders here just set fields, with plausible defaults for the rest, so a
//! test states only what its plugin looks at.
//!
//! ```
//! use sluice_plugin_sdk::testing;
//! use sluice_plugin_sdk::types::{StatementKind, WriteAction};
//!
//! let session = testing::session("agent-7", &["analysts"]);
//! let request = testing::sql("DROP TABLE t")
//!     .statement(|s| s.kind(StatementKind::Ddl).tag("DROP TABLE").writes("t", WriteAction::Drop))
//!     .build();
//! assert!(session.in_group("analysts"));
//! assert!(!request.sql().unwrap().is_read_only());
//! ```

use crate::config;
use crate::types::{AuditEvent, Identity, Protocol, Request, Session, ShellChannel, ShellRequest};
use crate::{AuditSink, Guardrail, Masker};

mod http;
mod masking;
mod sql;

pub use crate::host::metrics::recorded::{Kind as MetricKind, Metric};
pub use http::HttpBuilder;
pub use masking::{apply_edits, column, http_body, rows, text_column};
pub use sql::{SqlBuilder, StatementBuilder};

/// A PostgreSQL session of a verified identity `subject` in `groups`.
/// Change `protocol`, `connection`, … on the result if the plugin cares.
pub fn session(subject: &str, groups: &[&str]) -> Session {
    Session {
        id: "test-session-1".into(),
        connection: "test".into(),
        protocol: Protocol::Postgres,
        identity: Identity {
            subject: subject.into(),
            issuer: "https://issuer.test".into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            claims_json: "{}".into(),
        },
        client_addr: "127.0.0.1:40000".into(),
    }
}

/// An SQL request for `text`; add statement details with
/// [`SqlBuilder::statement`].
pub fn sql(text: &str) -> SqlBuilder {
    SqlBuilder::new(text)
}

/// An HTTP request; add headers and a body with the builder's methods.
pub fn http(method: &str, path: &str) -> HttpBuilder {
    HttpBuilder::new(method, path)
}

/// An `ssh host command` request as remote user `test`.
pub fn shell(command: &str) -> Request {
    Request::Shell(ShellRequest {
        channel: ShellChannel::Exec,
        command: command.into(),
        remote_user: "test".into(),
        pty: false,
    })
}

/// An audit event of `kind` (e.g. `statement.denied`) with `detail` as its
/// detail JSON; the id is derived from `sequence` so repeats can be made.
pub fn audit_event(kind: &str, sequence: u64, detail: serde_json::Value) -> AuditEvent {
    AuditEvent {
        id: format!("test-event-{sequence}"),
        sequence,
        time_unix_ms: 1_764_000_000_000 + sequence,
        kind: kind.into(),
        session_id: Some("test-session-1".into()),
        connection: Some("test".into()),
        identity: Some(session("agent", &[]).identity),
        detail_json: detail.to_string(),
    }
}

/// Builds guardrail `T` from `config` exactly as the component's `init` does:
/// an `Err` here is the error the gateway would report.
pub fn guardrail<T: Guardrail>(config: serde_json::Value) -> Result<T, String> {
    T::new(config::parse(&config.to_string())?)
}

/// Builds masker `T` from `config` as the component's `init` does.
pub fn masker<T: Masker>(config: serde_json::Value) -> Result<T, String> {
    T::new(config::parse(&config.to_string())?)
}

/// Builds audit sink `T` from `config` as the component's `init` does.
pub fn audit_sink<T: AuditSink>(config: serde_json::Value) -> Result<T, String> {
    T::new(config::parse(&config.to_string())?)
}

/// The metrics recorded on this thread since the last call (tests run on
/// separate threads, so they do not see each other's).
pub fn take_metrics() -> Vec<Metric> {
    crate::host::metrics::recorded::take()
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use super::*;
    use crate::types::Verdict;
    use crate::{NoConfig, clock, log, metrics};

    struct Counting;

    impl Guardrail for Counting {
        type Config = NoConfig;

        fn new(_: NoConfig) -> Result<Self, String> {
            Ok(Counting)
        }

        fn check(&self, _: &Session, _: &Request) -> Result<Verdict, String> {
            metrics::counter_add("checks", 1, &[("result", "allow")]);
            log::debug("checked");
            Ok(Verdict::allow())
        }
    }

    #[test]
    fn host_functions_work_natively() {
        let plugin = guardrail::<Counting>(serde_json::json!({})).unwrap();
        plugin.check(&session("a", &[]), &shell("ls")).unwrap();
        metrics::histogram_record("latency_ms", 1.5, &[]);
        let recorded = take_metrics();
        assert_eq!(recorded.len(), 2);
        assert_eq!(
            (
                recorded[0].kind,
                recorded[0].name.as_str(),
                recorded[0].value
            ),
            (MetricKind::Counter, "checks", 1.0)
        );
        assert_eq!(
            recorded[0].labels,
            vec![("result".to_string(), "allow".to_string())]
        );
        assert!(take_metrics().is_empty());
        assert!(clock::now_unix_ms() > 1_600_000_000_000);
    }

    #[test]
    fn export_glue_initialises_once() {
        let slot = OnceLock::new();
        let s = session("a", &[]);
        assert!(
            crate::__export::check::<Counting>(&slot, &s, &shell("ls")).is_err(),
            "check before init"
        );
        crate::__export::init(&slot, "", Counting::new).unwrap();
        let err = crate::__export::init(&slot, "{}", Counting::new).unwrap_err();
        assert!(err.contains("twice"), "{err}");
        assert_eq!(
            crate::__export::check(&slot, &s, &shell("ls")),
            Ok(Verdict::allow())
        );
    }

    #[test]
    fn bad_config_fails_like_init() {
        let err = guardrail::<Counting>(serde_json::json!({"unexpected": true}))
            .err()
            .unwrap();
        assert!(err.contains("unknown field"), "{err}");
        let slot = OnceLock::new();
        assert_eq!(
            crate::__export::init(&slot, r#"{"unexpected": true}"#, Counting::new),
            Err(err)
        );
        assert!(slot.get().is_none());
    }
}
