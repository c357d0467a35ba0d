//! Metric names and recording helpers (the `metrics` facade; the gateway installs the
//! Prometheus exporter).
//!
//! * `sluice_identity_validations_total{outcome="accepted"|"rejected", reason, issuer}`:
//!   `reason` is `ok` or a [`RejectReason`](super::RejectReason) code; `issuer` is a
//!   configured issuer or `unknown` (never a value copied from an unverified token).
//! * `sluice_identity_jwks_refresh_total{issuer, outcome="success"|"failure"|"rate_limited",
//!   trigger="startup"|"schedule"|"unknown_kid"}`.
//! * `sluice_identity_jwks_keys{issuer}`: keys in the current set.
//! * `sluice_identity_access_decisions_total{outcome="allowed"|"denied", reason}`.

pub const VALIDATIONS_TOTAL: &str = "sluice_identity_validations_total";
pub const JWKS_REFRESH_TOTAL: &str = "sluice_identity_jwks_refresh_total";
pub const JWKS_KEYS: &str = "sluice_identity_jwks_keys";
pub const ACCESS_DECISIONS_TOTAL: &str = "sluice_identity_access_decisions_total";

/// Registers descriptions with the installed recorder; call once after installing it.
pub fn describe() {
    metrics::describe_counter!(
        VALIDATIONS_TOTAL,
        "Token validations by outcome, reason and issuer"
    );
    metrics::describe_counter!(
        JWKS_REFRESH_TOTAL,
        "JWKS loads by issuer, outcome and trigger"
    );
    metrics::describe_gauge!(JWKS_KEYS, "Signature keys currently cached per issuer");
    metrics::describe_counter!(
        ACCESS_DECISIONS_TOTAL,
        "Connection access decisions by outcome and reason"
    );
}

pub(crate) fn validation(reason: Option<&'static str>, issuer: &str) {
    let (outcome, reason) = match reason {
        None => ("accepted", "ok"),
        Some(r) => ("rejected", r),
    };
    metrics::counter!(VALIDATIONS_TOTAL, "outcome" => outcome, "reason" => reason, "issuer" => issuer.to_owned())
        .increment(1);
}

pub(crate) fn jwks_refresh(issuer: &str, outcome: &'static str, trigger: &'static str) {
    metrics::counter!(JWKS_REFRESH_TOTAL, "issuer" => issuer.to_owned(), "outcome" => outcome, "trigger" => trigger)
        .increment(1);
}

pub(crate) fn jwks_keys(issuer: &str, count: usize) {
    metrics::gauge!(JWKS_KEYS, "issuer" => issuer.to_owned()).set(count as f64);
}

pub(crate) fn access_decision(denied: Option<&'static str>) {
    let (outcome, reason) = match denied {
        None => ("allowed", "ok"),
        Some(r) => ("denied", r),
    };
    metrics::counter!(ACCESS_DECISIONS_TOTAL, "outcome" => outcome, "reason" => reason)
        .increment(1);
}
