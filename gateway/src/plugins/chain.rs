//! Runs a connection's plugins for one request or result.
//!
//! Order of the rules, in one place:
//! 1. every configured plugin must be active, or the request is refused
//!    naming the missing one (a chain never runs with a part silently gone);
//! 2. guardrails run in configured order; the first deny wins and stops the
//!    chain; a require-approval is remembered and the rest still run, so a
//!    later deny beats it; a selective guardrail is asked once per session
//!    which SQL phases it judges and is skipped for the others (an error
//!    there means every phase);
//! 3. a guardrail that fails (trap, deadline, memory, error) denies: guardrails
//!    and maskers fail closed;
//! 4. maskers run in configured order, each on the previous one's output; a
//!    failing masker withholds the result; a column masker is asked first
//!    which columns it may change, is skipped for results with none of
//!    them, and fails if it edits another column;
//! 5. audit sinks are not called here: events reach them through the audit
//!    dispatcher, so a slow or broken sink never blocks the data path.
//!
//! What maskers report finding is counted in
//! `sluice_masked_values_total{connection,entity}`.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use super::bindings::types::{Column, Detection, HttpBody, Request, Session, SqlPhase, Verdict};
use super::error::{
    CallFailure, MAX_APPROVER_GROUPS, MAX_REASON_BYTES, MAX_RULE_BYTES, guest_text,
};
use super::phases::{PhaseSelections, PhaseSet};
use super::plugin::{Plugin, PluginKind};
use super::registry::PluginHost;

/// Why a request or result was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefusalCause {
    /// A guardrail's deny verdict.
    Policy,
    /// A plugin trapped, timed out, ran out of memory or returned an error.
    PluginFailure,
    /// A configured plugin is not loaded.
    MissingPlugin,
}

#[derive(Debug, Clone)]
pub struct Refusal {
    pub plugin: String,
    pub rule: String,
    pub reason: String,
    pub cause: RefusalCause,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.cause {
            RefusalCause::Policy => write!(
                f,
                "denied by plugin `{}` (rule {}): {}",
                self.plugin, self.rule, self.reason
            ),
            RefusalCause::PluginFailure => write!(
                f,
                "refused: plugin `{}` {}; failing closed",
                self.plugin, self.reason
            ),
            RefusalCause::MissingPlugin => write!(
                f,
                "refused: plugin `{}` is not available ({})",
                self.plugin, self.reason
            ),
        }
    }
}

impl Refusal {
    fn failure(plugin: &Plugin, failure: &CallFailure) -> Self {
        Self {
            plugin: plugin.name().to_string(),
            rule: "plugin-failure".into(),
            reason: guest_text(&failure.to_string(), MAX_REASON_BYTES),
            cause: RefusalCause::PluginFailure,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ApprovalNeeded {
    pub plugin: String,
    pub rule: String,
    pub reason: String,
    pub approver_groups: Vec<String>,
    pub ttl_seconds: u32,
}

/// The combined verdict of a connection's guardrails.
#[derive(Debug, Clone)]
pub enum Decision {
    Allow,
    Deny(Refusal),
    RequireApproval(ApprovalNeeded),
}

/// The outcome of masking one batch.
#[derive(Debug, Default, Clone)]
pub struct MaskReport {
    pub cells_changed: u64,
    /// (row, column) of every cell a masker replaced, in edit order.
    pub changed: Vec<(u32, u32)>,
    pub detections: Vec<Detection>,
}

/// Which columns of one result each masker of a chain may change, in the
/// chain's masker order: `None` for every column (a plain masker).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    maskers: Vec<(Arc<str>, u64)>,
    columns: Vec<Option<Vec<u32>>>,
}

impl Selection {
    /// No masker wants any column: the result's rows need no masking.
    pub fn is_empty(&self) -> bool {
        self.columns
            .iter()
            .all(|c| c.as_ref().is_some_and(Vec::is_empty))
    }

    /// Whether some masker may change column `column`.
    pub fn selects(&self, column: u32) -> bool {
        self.columns
            .iter()
            .any(|c| c.as_ref().is_none_or(|c| c.binary_search(&column).is_ok()))
    }

    /// Whether it was made by the same plugin generations as `chain` has.
    pub fn made_by(&self, chain: &Chain) -> bool {
        let now = chain
            .of_kind(PluginKind::Masker)
            .map(|p| (p.name(), p.generation()));
        self.maskers.iter().map(|(n, g)| (&**n, *g)).eq(now)
    }
}

/// A connection's plugins, resolved to the generations active when the
/// request started; it finishes on them whatever reloads happen meanwhile.
#[derive(Clone)]
pub struct Chain {
    plugins: Vec<Arc<Plugin>>,
}

impl PluginHost {
    /// Resolves a connection's plugin list, or names the first missing plugin.
    pub fn chain(&self, names: &[String]) -> Result<Chain, Refusal> {
        let mut plugins = Vec::with_capacity(names.len());
        for name in names {
            match self.get(name) {
                Some(p) => plugins.push(p),
                None => {
                    return Err(Refusal {
                        plugin: name.clone(),
                        rule: "missing-plugin".into(),
                        reason: self.why_missing(name),
                        cause: RefusalCause::MissingPlugin,
                    });
                }
            }
        }
        Ok(Chain { plugins })
    }
}

impl Chain {
    pub fn plugins(&self) -> &[Arc<Plugin>] {
        &self.plugins
    }

    fn of_kind(&self, kind: PluginKind) -> impl Iterator<Item = &Arc<Plugin>> {
        self.plugins.iter().filter(move |p| p.kind() == kind)
    }

    /// Changes whenever a guardrail of the chain is reloaded: the newest of
    /// their generations, which are numbered across all plugins, so a new
    /// one is above every other. 0 without guardrails.
    pub fn guardrail_epoch(&self) -> u64 {
        self.of_kind(PluginKind::Guardrail)
            .map(|p| p.generation())
            .max()
            .unwrap_or(0)
    }

    /// [`Chain::guardrail_epoch`] for the chain's maskers.
    pub fn masker_epoch(&self) -> u64 {
        self.of_kind(PluginKind::Masker)
            .map(|p| p.generation())
            .max()
            .unwrap_or(0)
    }

    pub fn has_guardrails(&self) -> bool {
        self.of_kind(PluginKind::Guardrail).next().is_some()
    }

    pub fn has_maskers(&self) -> bool {
        self.of_kind(PluginKind::Masker).next().is_some()
    }

    pub fn has_column_maskers(&self) -> bool {
        self.of_kind(PluginKind::Masker)
            .any(|p| p.selects_columns())
    }

    fn masker_ids(&self) -> Vec<(Arc<str>, u64)> {
        self.of_kind(PluginKind::Masker)
            .map(|p| (p.name_arc(), p.generation()))
            .collect()
    }

    /// Asks every column masker which of `columns` it may change.
    pub async fn select_columns(
        &self,
        session: &Session,
        columns: &[Column],
    ) -> Result<Selection, Refusal> {
        let mut selected = Vec::new();
        for plugin in self.of_kind(PluginKind::Masker) {
            let mut chosen = plugin
                .select_columns(session, columns)
                .await
                .map_err(|f| Refusal::failure(plugin, &f))?;
            if let Some(chosen) = &mut chosen {
                if let Some(bad) = chosen.iter().find(|&&c| c as usize >= columns.len()) {
                    return Err(Refusal::failure(
                        plugin,
                        &CallFailure::Returned(format!(
                            "selected column {bad} of a result with {}",
                            columns.len()
                        )),
                    ));
                }
                chosen.sort_unstable();
                chosen.dedup();
            }
            selected.push(chosen);
        }
        Ok(Selection {
            maskers: self.masker_ids(),
            columns: selected,
        })
    }

    pub fn audit_sinks(&self) -> impl Iterator<Item = &Arc<Plugin>> {
        self.of_kind(PluginKind::AuditSink)
    }

    /// Whether `plugin` judges SQL requests of `phase` in this session,
    /// asking a selective guardrail the first time. A failure to answer
    /// means every phase: the checks themselves still decide.
    async fn judges(
        plugin: &Plugin,
        session: &Session,
        phase: SqlPhase,
        selections: &PhaseSelections,
    ) -> bool {
        if !plugin.selects_phases() {
            return true;
        }
        let phases = match selections.get(plugin) {
            Some(known) => known,
            None => {
                let asked = match plugin.select_phases(session).await {
                    Ok(Some(phases)) => PhaseSet::of(&phases),
                    Ok(None) => PhaseSet::EVERY,
                    Err(f) => {
                        tracing::warn!(
                            plugin = plugin.name(),
                            "select-phases failed, judging every phase: {f}"
                        );
                        PhaseSet::EVERY
                    }
                };
                selections.put(plugin, asked);
                asked
            }
        };
        phases.has(phase)
    }

    /// Whether any guardrail of the chain judges SQL requests of `phase` in
    /// this session: when none does, the request need not be built.
    pub async fn judges_phase(
        &self,
        session: &Session,
        phase: SqlPhase,
        selections: &PhaseSelections,
    ) -> bool {
        for plugin in self.of_kind(PluginKind::Guardrail) {
            if Self::judges(plugin, session, phase, selections).await {
                return true;
            }
        }
        false
    }

    /// [`Chain::check`] for a SQL request of `phase`, skipping the
    /// guardrails that do not judge that phase in this session.
    pub async fn check_sql(
        &self,
        session: &Session,
        request: &Request,
        phase: SqlPhase,
        selections: &PhaseSelections,
    ) -> Decision {
        self.check_some(session, request, Some((phase, selections, None)))
            .await
    }

    /// A bind of a statement that the chain's guardrails, as they now
    /// stand, have not all judged (one was reloaded since it was prepared):
    /// every guardrail judges it, those that judge binds as `bind`, the
    /// others as `prepared`, the request its Parse would have made (they
    /// were told they would not see a bind).
    pub async fn recheck_bind(
        &self,
        session: &Session,
        bind: &Request,
        prepared: &Request,
        selections: &PhaseSelections,
    ) -> Decision {
        self.check_some(
            session,
            bind,
            Some((SqlPhase::Bind, selections, Some(prepared))),
        )
        .await
    }

    pub async fn check(&self, session: &Session, request: &Request) -> Decision {
        self.check_some(session, request, None).await
    }

    /// With `sql`, a guardrail that does not judge the phase gets the
    /// request given for it, or is skipped.
    async fn check_some(
        &self,
        session: &Session,
        request: &Request,
        sql: Option<(SqlPhase, &PhaseSelections, Option<&Request>)>,
    ) -> Decision {
        let mut approval: Option<ApprovalNeeded> = None;
        for plugin in self.of_kind(PluginKind::Guardrail) {
            let mut asked = request;
            if let Some((phase, selections, instead)) = sql
                && !Self::judges(plugin, session, phase, selections).await
            {
                match instead {
                    Some(r) => asked = r,
                    None => continue,
                }
            }
            match plugin.check(session, asked).await {
                Ok(Verdict::Allow) => {}
                Ok(Verdict::Deny(d)) => {
                    return Decision::Deny(Refusal {
                        plugin: plugin.name().to_string(),
                        rule: guest_text(&d.rule, MAX_RULE_BYTES),
                        reason: guest_text(&d.reason, MAX_REASON_BYTES),
                        cause: RefusalCause::Policy,
                    });
                }
                Ok(Verdict::RequireApproval(a)) => {
                    approval.get_or_insert(ApprovalNeeded {
                        plugin: plugin.name().to_string(),
                        rule: guest_text(&a.rule, MAX_RULE_BYTES),
                        reason: guest_text(&a.reason, MAX_REASON_BYTES),
                        approver_groups: a
                            .approver_groups
                            .iter()
                            .take(MAX_APPROVER_GROUPS)
                            .map(|g| guest_text(g, MAX_RULE_BYTES))
                            .collect(),
                        ttl_seconds: a.ttl_seconds,
                    });
                }
                Err(failure) => return Decision::Deny(Refusal::failure(plugin, &failure)),
            }
        }
        match approval {
            Some(a) => Decision::RequireApproval(a),
            None => Decision::Allow,
        }
    }

    /// Masks a batch of rows in place, calling each masker that selected a
    /// column (`selection` comes from [`Chain::select_columns`] on this
    /// chain). On error nothing of the batch may be sent: the caller
    /// withholds the result.
    pub async fn mask_rows(
        &self,
        session: &Session,
        columns: &[Column],
        selection: &Selection,
        rows: &mut [Vec<Option<Vec<u8>>>],
    ) -> Result<MaskReport, Refusal> {
        let mut report = MaskReport::default();
        let maskers = self.of_kind(PluginKind::Masker);
        for (plugin, selected) in maskers.zip(selection.columns.iter()) {
            if selected.as_ref().is_some_and(Vec::is_empty) {
                continue;
            }
            let masked = plugin
                .mask_rows(session, columns, rows)
                .await
                .map_err(|f| Refusal::failure(plugin, &f))?;
            for edit in masked.edits {
                if let Some(selected) = selected
                    && selected.binary_search(&edit.column).is_err()
                {
                    return Err(Refusal::failure(
                        plugin,
                        &CallFailure::Returned(format!(
                            "edited column {}, which it did not select",
                            edit.column
                        )),
                    ));
                }
                let cell = rows
                    .get_mut(edit.row as usize)
                    .and_then(|r| r.get_mut(edit.column as usize));
                match cell {
                    Some(cell) => {
                        *cell = edit.value;
                        report.changed.push((edit.row, edit.column));
                    }
                    None => {
                        // An edit outside the batch is a broken masker; the
                        // batch cannot be trusted as masked.
                        return Err(Refusal::failure(
                            plugin,
                            &CallFailure::Returned(format!(
                                "edited cell ({}, {}) outside the batch",
                                edit.row, edit.column
                            )),
                        ));
                    }
                }
                report.cells_changed += 1;
            }
            merge_detections(&mut report.detections, masked.detections);
        }
        count_masked(session, &report.detections);
        Ok(report)
    }

    /// Masks an HTTP body; returns the body to send.
    pub async fn mask_body(
        &self,
        session: &Session,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<(Vec<u8>, MaskReport), Refusal> {
        let mut report = MaskReport::default();
        let mut current = HttpBody {
            content_type: content_type.to_string(),
            body,
        };
        for plugin in self.of_kind(PluginKind::Masker) {
            let masked = plugin
                .mask_body(session, &current)
                .await
                .map_err(|f| Refusal::failure(plugin, &f))?;
            if let Some(body) = masked.body {
                report.cells_changed += 1;
                current.body = body;
            }
            merge_detections(&mut report.detections, masked.detections);
        }
        count_masked(session, &report.detections);
        Ok((current.body, report))
    }

    /// Masks the short texts of one message together (an event's `id` and
    /// `event`, a response's header values, an error's fields): shown as
    /// one JSON array of strings, so that a text may hold line breaks, and
    /// read back as one. The caller checks what its protocol cannot carry.
    pub async fn mask_texts(
        &self,
        session: &Session,
        texts: &[&str],
    ) -> Result<(Vec<String>, MaskReport), TextsError> {
        let shape = || TextsError::Shape {
            maskers: self
                .of_kind(PluginKind::Masker)
                .map(|p| format!("`{}`", p.name()))
                .collect::<Vec<_>>()
                .join(", "),
        };
        let json = serde_json::to_vec(texts).map_err(|_| shape())?;
        let (masked, report) = self
            .mask_body(session, "application/json", json)
            .await
            .map_err(TextsError::Masker)?;
        match serde_json::from_slice::<Vec<String>>(&masked) {
            Ok(masked) if masked.len() == texts.len() => Ok((masked, report)),
            _ => Err(shape()),
        }
    }
}

/// Why [`Chain::mask_texts`] failed.
#[derive(Debug, thiserror::Error)]
pub enum TextsError {
    #[error("{0}")]
    Masker(Refusal),
    /// The chain's output is no longer one JSON text per input text; which
    /// of its maskers broke it is not known.
    #[error("the maskers ({maskers}) did not return one text for each they were given")]
    Shape { maskers: String },
}

/// Adds a masker's detections to a report. Entity names come from the
/// plugin and go to the audit log, the recording and the metrics: a name
/// that is not a short `[a-z0-9_-]` word, or one past the first
/// [`MAX_ENTITY_LABELS`] of a report, is counted as `other`.
fn merge_detections(into: &mut Vec<Detection>, from: Vec<Detection>) {
    for mut d in from {
        if !valid_entity(&d.entity)
            || (into.len() >= MAX_ENTITY_LABELS && !into.iter().any(|x| x.entity == d.entity))
        {
            d.entity = "other".into();
        }
        match into.iter_mut().find(|x| x.entity == d.entity) {
            Some(x) => x.count = x.count.saturating_add(d.count),
            None => into.push(d),
        }
    }
}

fn valid_entity(entity: &str) -> bool {
    (1..=32).contains(&entity.len())
        && entity
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// Distinct `entity` values `sluice_masked_values_total` accepts. Entity
/// names come from plugins; past this many, new ones are counted as `other`
/// so that a plugin cannot grow the metric without bound.
pub(crate) const MAX_ENTITY_LABELS: usize = 64;

static ENTITY_LABELS: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

fn entity_label(entity: &str) -> String {
    if !valid_entity(entity) {
        return "other".into();
    }
    // A poisoned lock only means another thread panicked while inserting;
    // the set itself is intact.
    let mut seen = ENTITY_LABELS.lock().unwrap_or_else(|e| e.into_inner());
    if seen.contains(entity) || (seen.len() < MAX_ENTITY_LABELS && seen.insert(entity.to_string()))
    {
        entity.to_string()
    } else {
        "other".into()
    }
}

fn count_masked(session: &Session, detections: &[Detection]) {
    for d in detections.iter().filter(|d| d.count > 0) {
        metrics::counter!(
            "sluice_masked_values_total",
            "connection" => session.connection.clone(),
            "entity" => entity_label(&d.entity)
        )
        .increment(u64::from(d.count));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_labels_are_sanitised() {
        assert_eq!(entity_label("email"), "email");
        assert_eq!(entity_label("credit card"), "other");
        assert_eq!(entity_label("Email"), "other");
        assert_eq!(entity_label(""), "other");
        assert_eq!(entity_label(&"x".repeat(33)), "other");
    }

    #[test]
    fn detections_are_named_as_the_metrics_name_them() {
        let d = |entity: &str, count| Detection {
            entity: entity.into(),
            count,
        };
        let mut report = Vec::new();
        merge_detections(
            &mut report,
            vec![
                d("email", 2),
                d("Email", 1),
                d("a\n\"}", 1),
                d(&"x".repeat(100_000), 1),
                d("email", 1),
            ],
        );
        assert_eq!(report.len(), 2);
        assert_eq!((report[0].entity.as_str(), report[0].count), ("email", 3));
        assert_eq!((report[1].entity.as_str(), report[1].count), ("other", 3));
        let many = (0..1000).map(|i| d(&format!("e{i}"), 1)).collect();
        let mut report = Vec::new();
        merge_detections(&mut report, many);
        assert_eq!(report.len(), MAX_ENTITY_LABELS + 1);
        assert_eq!(
            report.last().map(|x| x.count),
            Some(1000 - MAX_ENTITY_LABELS as u32)
        );
    }
}
