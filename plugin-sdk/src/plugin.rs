//! The traits a plugin implements, one per world of the contract.

use serde::de::DeserializeOwned;

use crate::types::{
    AuditEvent, Column, HttpBody, MaskedBody, MaskedRows, Request, Row, Session, SqlPhase, Verdict,
};

// Every trait is `Send + Sync + 'static` because the export glue keeps the one
// instance in a `static OnceLock`, which demands it, even though a component
// instance is single-threaded.

/// Decides whether a request may proceed. Export with
/// [`export_guardrail!`](crate::export_guardrail).
pub trait Guardrail: Sized + Send + Sync + 'static {
    /// Deserialized from the plugin's table in the gateway config (`{}` when
    /// absent, so give every field a default if the plugin can run without).
    type Config: DeserializeOwned;

    /// Called once, at `init`. An error keeps the gateway from activating the
    /// plugin, so validate the config here rather than on every request.
    fn new(config: Self::Config) -> Result<Self, String>;

    /// `Err` means "could not decide": the gateway then denies the request and
    /// names the plugin. Use [`Verdict::deny`] for a decision to refuse.
    fn check(&self, session: &Session, request: &Request) -> Result<Verdict, String>;

    /// Whether this guardrail judges SQL requests of `phase` in `session`,
    /// asked once per session: the gateway does not call [`check`](Self::check)
    /// for the phases answered `false` (HTTP requests are always checked).
    /// Defaults to every phase. A guardrail that judges statements and not
    /// the values bound to them answers `false` for [`SqlPhase::Bind`]: it
    /// has seen the statement when it was prepared, and then costs nothing
    /// per execution.
    fn judges_phase(&self, session: &Session, phase: SqlPhase) -> bool {
        let _ = (session, phase);
        true
    }
}

/// Rewrites result rows and HTTP bodies before the agent sees them. Export
/// with [`export_masker!`](crate::export_masker).
pub trait Masker: Sized + Send + Sync + 'static {
    /// As for [`Guardrail::Config`].
    type Config: DeserializeOwned;

    /// Called once, at `init`; an error keeps the plugin from being activated.
    fn new(config: Self::Config) -> Result<Self, String>;

    /// Whether this masker may change cells of `column`, asked once per
    /// result shape (the gateway remembers the answer for the session): a
    /// result with no such column is never passed to [`Masker::mask_rows`],
    /// and an edit of a column answered `false` is a failure. Defaults to
    /// every column; answer narrowly (e.g. [`Column::is_text_like`]) so
    /// that results the masker would leave alone cost nothing.
    fn masks_column(&self, session: &Session, column: &Column) -> bool {
        let _ = (session, column);
        true
    }

    /// Called with one batch of a result set (possibly several per result).
    /// Return only the cells that change; an error withholds the result.
    fn mask_rows(
        &self,
        session: &Session,
        columns: &[Column],
        rows: &[Row],
    ) -> Result<MaskedRows, String>;

    /// Called with an HTTP response body; an error withholds the response.
    /// Defaults to "unchanged" for maskers that only deal with rows.
    fn mask_body(&self, session: &Session, body: &HttpBody) -> Result<MaskedBody, String> {
        let _ = (session, body);
        Ok(MaskedBody::unchanged())
    }
}

/// Receives audit events from the gateway's durable spool. Export with
/// [`export_audit_sink!`](crate::export_audit_sink).
pub trait AuditSink: Sized + Send + Sync + 'static {
    /// As for [`Guardrail::Config`].
    type Config: DeserializeOwned;

    /// Called once, at `init`; an error keeps the plugin from being activated.
    fn new(config: Self::Config) -> Result<Self, String>;

    /// Delivery is at least once: use [`AuditEvent::id`] to drop repeats. An
    /// error leaves the whole batch in the spool for a later retry.
    fn deliver(&self, events: &[AuditEvent]) -> Result<(), String>;
}
