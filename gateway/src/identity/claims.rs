//! Claim checks on a token whose signature has been verified: time claims, audience,
//! subject, groups, and the group mapping table.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

use super::config::GroupMapping;
use super::error::{RejectReason, TokenRejected, reject};
use super::strict_json::json_type;

/// The registered claims Sluice needs, after validation.
#[derive(Debug)]
pub(crate) struct Registered {
    pub subject: String,
    pub expires_at: SystemTime,
    pub token_id: Option<String>,
}

/// Seconds since the epoch, now.
pub(crate) fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// A NumericDate claim (RFC 7519 §2): absent, or a JSON number of seconds (fractions are
/// allowed and truncated).
fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>, TokenRejected> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => {
            if let Some(i) = n.as_i64() {
                Ok(Some(i))
            } else if let Some(f) = n.as_f64().filter(|f| f.is_finite()) {
                // `as` saturates at the i64 bounds.
                Ok(Some(f.floor() as i64))
            } else {
                Ok(Some(i64::MAX))
            }
        }
        Some(other) => Err(reject(
            RejectReason::InvalidClaim,
            format!("{name} is {}, not a number", json_type(other)),
        )),
    }
}

/// Checks `exp`, `nbf`, `iat`, `aud` and `sub` at time `now` with `leeway` seconds of skew.
pub(crate) fn validate_registered(
    claims: &Map<String, Value>,
    audiences: &[String],
    leeway: i64,
    now: i64,
) -> Result<Registered, TokenRejected> {
    let exp = numeric_date(claims, "exp")?
        .ok_or_else(|| reject(RejectReason::MissingExp, "no exp claim"))?;
    if now >= exp.saturating_add(leeway) {
        return Err(reject(
            RejectReason::Expired,
            format!("expired at {exp}, now is {now} (leeway {leeway}s)"),
        ));
    }
    if let Some(nbf) = numeric_date(claims, "nbf")?
        && now.saturating_add(leeway) < nbf
    {
        return Err(reject(
            RejectReason::NotYetValid,
            format!("not valid before {nbf}, now is {now} (leeway {leeway}s)"),
        ));
    }
    if let Some(iat) = numeric_date(claims, "iat")?
        && iat > now.saturating_add(leeway)
    {
        return Err(reject(
            RejectReason::IssuedInFuture,
            format!("issued at {iat}, in the future (now is {now}, leeway {leeway}s)"),
        ));
    }

    let aud_ok = match claims.get("aud") {
        None => return Err(reject(RejectReason::AudienceMismatch, "no aud claim")),
        Some(Value::String(aud)) => audiences.contains(aud),
        Some(Value::Array(items)) => {
            let mut any = false;
            for item in items {
                match item {
                    Value::String(aud) => any |= audiences.contains(aud),
                    other => {
                        return Err(reject(
                            RejectReason::InvalidClaim,
                            format!("aud contains {}, not a string", json_type(other)),
                        ));
                    }
                }
            }
            any
        }
        Some(other) => {
            return Err(reject(
                RejectReason::InvalidClaim,
                format!("aud is {}, not a string or array", json_type(other)),
            ));
        }
    };
    if !aud_ok {
        return Err(reject(
            RejectReason::AudienceMismatch,
            format!("aud names none of the accepted audiences {audiences:?}"),
        ));
    }

    let subject = match claims.get("sub") {
        None => return Err(reject(RejectReason::MissingSub, "no sub claim")),
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::String(_)) => return Err(reject(RejectReason::InvalidSub, "sub is empty")),
        Some(other) => {
            return Err(reject(
                RejectReason::InvalidSub,
                format!("sub is {}, not a string", json_type(other)),
            ));
        }
    };

    // Clamped to year 9999 so an absurd exp cannot overflow SystemTime.
    let exp_secs = u64::try_from(exp.clamp(0, 253_402_300_799)).unwrap_or(0);
    let expires_at = UNIX_EPOCH + Duration::from_secs(exp_secs);
    let token_id = claims.get("jti").and_then(Value::as_str).map(str::to_owned);
    Ok(Registered {
        subject,
        expires_at,
        token_id,
    })
}

/// Finds a claim by name or dotted path. A top-level claim whose name is the whole path
/// wins (URL-style claim names such as `https://example.com/groups` contain dots).
pub fn claim_path<'a>(claims: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    if let Some(v) = claims.get(path) {
        return Some(v);
    }
    let mut parts = path.split('.');
    let mut current = claims.get(parts.next()?)?;
    for part in parts {
        current = current.as_object()?.get(part)?;
    }
    Some(current)
}

/// Refuses a token whose `exp` lies more than `max_secs` (plus `leeway`)
/// after `now`: the issuer's own idea of a lifetime is not taken on trust.
pub(crate) fn check_lifetime(
    registered: &Registered,
    max_secs: Option<u64>,
    leeway: i64,
    now: i64,
) -> Result<(), TokenRejected> {
    let Some(max) = max_secs else { return Ok(()) };
    let exp = registered
        .expires_at
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let limit = now
        .saturating_add(i64::try_from(max).unwrap_or(i64::MAX))
        .saturating_add(leeway);
    if exp > limit {
        return Err(reject(
            RejectReason::LifetimeTooLong,
            format!(
                "exp is {}s ahead; this issuer's tokens may live {max}s",
                exp - now
            ),
        ));
    }
    Ok(())
}

/// A dotted path that names both a top-level claim (`"realm_access.roles"`)
/// and a different nested one (`realm_access: {roles: …}`). Which of them the
/// operator meant cannot be known; the nested one is usually what the IdP
/// manages, the literal one may be a user-editable attribute.
pub(crate) fn ambiguous(claims: &Map<String, Value>, path: &str) -> bool {
    let Some(literal) = claims.get(path) else {
        return false;
    };
    let mut parts = path.split('.');
    let Some(first) = parts.next().and_then(|p| claims.get(p)) else {
        return false;
    };
    let nested = parts.try_fold(first, |v, part| v.as_object()?.get(part));
    path.contains('.') && nested.is_some_and(|n| n != literal)
}

/// Reads the groups claim: absent or null → no groups; a string → one group; an array of
/// strings → those groups. Anything else is refused, rather than silently granting nothing
/// (or something) from a claim shaped differently than the operator expects.
pub(crate) fn groups(
    claims: &Map<String, Value>,
    path: &str,
) -> Result<Vec<String>, TokenRejected> {
    let bad = |what: &str| {
        reject(
            RejectReason::InvalidGroups,
            format!("groups claim {path:?} is {what}, not a string or an array of strings"),
        )
    };
    if ambiguous(claims, path) {
        return Err(reject(
            RejectReason::InvalidGroups,
            format!(
                "groups claim {path:?} is both a claim of that name and a different nested claim"
            ),
        ));
    }
    let mut out: Vec<String> = Vec::new();
    match claim_path(claims, path) {
        None | Some(Value::Null) => {}
        Some(Value::String(g)) => {
            if !g.is_empty() {
                out.push(g.clone());
            }
        }
        Some(Value::Array(items)) => {
            for item in items {
                match item {
                    Value::String(g) => {
                        if !g.is_empty() && !out.contains(g) {
                            out.push(g.clone());
                        }
                    }
                    other => return Err(bad(&format!("an array containing {}", json_type(other)))),
                }
            }
        }
        Some(other) => return Err(bad(json_type(other))),
    }
    // An intermediate object that is not an object (e.g. `realm_access` is a string) makes
    // `claim_path` return None; report it instead of treating it as "no groups".
    if out.is_empty()
        && !claims.contains_key(path)
        && let Some((parent, _)) = path.rsplit_once('.')
        && let Some(v) = claim_path(claims, parent)
        && !v.is_object()
    {
        return Err(bad(&format!("under {parent:?}, which is {}", json_type(v))));
    }
    Ok(out)
}

/// Applies the mapping table. Conditions are checked against the token's own groups (not
/// against groups added by other mappings), so the order of mappings does not matter.
pub(crate) fn apply_mappings(
    mappings: &[GroupMapping],
    issuer: &str,
    subject: &str,
    claims: &Map<String, Value>,
    groups: &mut Vec<String>,
) {
    let token_groups = groups.clone();
    for m in mappings {
        let matches = m.issuer.as_deref().is_none_or(|i| i == issuer)
            && m.subject.as_deref().is_none_or(|s| s == subject)
            && m.group.as_ref().is_none_or(|g| token_groups.contains(g))
            && match (&m.claim, &m.value) {
                (Some(path), Some(value)) => match claim_path(claims, path) {
                    Some(Value::String(s)) => s == value,
                    Some(Value::Array(items)) => items.iter().any(|i| i.as_str() == Some(value)),
                    Some(Value::Bool(b)) => b.to_string() == *value,
                    Some(Value::Number(n)) => n.to_string() == *value,
                    _ => false,
                },
                _ => true,
            };
        if matches {
            for g in &m.groups {
                if !groups.contains(g) {
                    groups.push(g.clone());
                }
            }
        }
    }
}

/// Copies the configured claims (by name or dotted path) that the token has.
pub(crate) fn exposed(claims: &Map<String, Value>, names: &[String]) -> Map<String, Value> {
    names
        .iter()
        .filter_map(|name| claim_path(claims, name).map(|v| (name.clone(), v.clone())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    fn check(v: Value) -> Result<Registered, &'static str> {
        validate_registered(&obj(v), &["sluice".into()], 30, 1000).map_err(|e| e.reason())
    }

    #[test]
    fn time_claims_with_leeway() {
        let base = json!({"sub": "a", "aud": "sluice", "exp": 1100});
        assert!(check(base.clone()).is_ok());
        assert!(
            check(json!({"sub": "a", "aud": "sluice", "exp": 1000})).is_ok(),
            "within leeway"
        );
        assert_eq!(
            check(json!({"sub": "a", "aud": "sluice", "exp": 970})).err(),
            Some("expired")
        );
        assert_eq!(
            check(json!({"sub": "a", "aud": "sluice", "exp": 970.5})).err(),
            Some("expired")
        );
        assert_eq!(
            check(json!({"sub": "a", "aud": "sluice"})).err(),
            Some("missing_exp")
        );
        assert_eq!(
            check(json!({"sub": "a", "aud": "sluice", "exp": "1100"})).err(),
            Some("invalid_claim")
        );
        assert_eq!(
            check(json!({"sub": "a", "aud": "sluice", "exp": 1100, "nbf": 1031})).err(),
            Some("not_yet_valid")
        );
        assert!(check(json!({"sub": "a", "aud": "sluice", "exp": 1100, "nbf": 1030})).is_ok());
        assert_eq!(
            check(json!({"sub": "a", "aud": "sluice", "exp": 1100, "iat": 1031})).err(),
            Some("iat_in_future")
        );
        assert_eq!(
            check(json!({"sub": "a", "aud": "sluice", "exp": 1e300}))
                .map(|r| r.subject)
                .ok(),
            Some("a".into())
        );
    }

    #[test]
    fn audience_and_subject() {
        assert!(check(json!({"sub": "a", "aud": ["x", "sluice"], "exp": 1100})).is_ok());
        assert_eq!(
            check(json!({"sub": "a", "aud": ["x"], "exp": 1100})).err(),
            Some("audience_mismatch")
        );
        assert_eq!(
            check(json!({"sub": "a", "exp": 1100})).err(),
            Some("audience_mismatch")
        );
        assert_eq!(
            check(json!({"sub": "a", "aud": 5, "exp": 1100})).err(),
            Some("invalid_claim")
        );
        assert_eq!(
            check(json!({"sub": "a", "aud": ["sluice", 5], "exp": 1100})).err(),
            Some("invalid_claim")
        );
        assert_eq!(
            check(json!({"aud": "sluice", "exp": 1100})).err(),
            Some("missing_sub")
        );
        assert_eq!(
            check(json!({"sub": 42, "aud": "sluice", "exp": 1100})).err(),
            Some("invalid_sub")
        );
        assert_eq!(
            check(json!({"sub": "", "aud": "sluice", "exp": 1100})).err(),
            Some("invalid_sub")
        );
    }

    #[test]
    fn lifetimes_beyond_the_issuers_limit_are_refused() {
        let r = |exp: i64| check(json!({"sub": "a", "aud": "sluice", "exp": exp})).unwrap();
        let lifetime = |exp, max| check_lifetime(&r(exp), max, 30, 1000).map_err(|e| e.reason());
        assert_eq!(lifetime(1000 + 3600, Some(3600)), Ok(()));
        assert_eq!(lifetime(1000 + 3630, Some(3600)), Ok(()), "within leeway");
        assert_eq!(lifetime(1000 + 3631, Some(3600)), Err("lifetime_too_long"));
        assert_eq!(lifetime(i64::MAX, Some(3600)), Err("lifetime_too_long"));
        assert_eq!(lifetime(i64::MAX, None), Ok(()));
    }

    #[test]
    fn a_path_that_names_two_claims_is_refused() {
        let both = obj(json!({
            "realm_access": {"roles": ["banned"]},
            "realm_access.roles": ["agents"],
        }));
        assert!(ambiguous(&both, "realm_access.roles"));
        assert_eq!(
            groups(&both, "realm_access.roles").map_err(|e| e.reason()),
            Err("invalid_groups")
        );
        // The same value both ways, or only one of them, is not ambiguous.
        let same = obj(json!({
            "realm_access": {"roles": ["agents"]},
            "realm_access.roles": ["agents"],
        }));
        assert!(!ambiguous(&same, "realm_access.roles"));
        let url = obj(json!({"https://example.com/groups": ["a"]}));
        assert!(!ambiguous(&url, "https://example.com/groups"));
        assert_eq!(groups(&url, "https://example.com/groups").unwrap(), ["a"]);
    }

    #[test]
    fn groups_from_strings_arrays_and_paths() {
        let c = obj(json!({
            "groups": ["a", "b", "a"],
            "role": "admin",
            "realm_access": {"roles": ["r1"]},
            "https://example.com/groups": ["url"],
            "flat": "x",
            "bad": 3,
            "mixed": ["a", 1],
        }));
        assert_eq!(groups(&c, "groups").unwrap(), ["a", "b"]);
        assert_eq!(groups(&c, "role").unwrap(), ["admin"]);
        assert_eq!(groups(&c, "realm_access.roles").unwrap(), ["r1"]);
        assert_eq!(groups(&c, "https://example.com/groups").unwrap(), ["url"]);
        assert!(groups(&c, "missing").unwrap().is_empty());
        assert!(groups(&c, "realm_access.missing").unwrap().is_empty());
        assert_eq!(groups(&c, "bad").unwrap_err().reason(), "invalid_groups");
        assert_eq!(groups(&c, "mixed").unwrap_err().reason(), "invalid_groups");
        assert_eq!(
            groups(&c, "flat.roles").unwrap_err().reason(),
            "invalid_groups"
        );
    }

    #[test]
    fn mappings_add_groups_when_all_conditions_match() {
        let claims = obj(json!({"client_id": "billing", "scopes": ["read", "write"]}));
        let mappings = vec![
            GroupMapping {
                claim: Some("client_id".into()),
                value: Some("billing".into()),
                groups: vec!["agents".into()],
                ..Default::default()
            },
            GroupMapping {
                issuer: Some("other".into()),
                groups: vec!["never".into()],
                ..Default::default()
            },
            GroupMapping {
                group: Some("idp-admins".into()),
                groups: vec!["admins".into()],
                ..Default::default()
            },
            GroupMapping {
                claim: Some("scopes".into()),
                value: Some("write".into()),
                subject: Some("s".into()),
                groups: vec!["writers".into()],
                ..Default::default()
            },
            // conditions see the token's groups, not the ones added above
            GroupMapping {
                group: Some("agents".into()),
                groups: vec!["chained".into()],
                ..Default::default()
            },
        ];
        let mut groups = vec!["idp-admins".to_owned()];
        apply_mappings(&mappings, "iss", "s", &claims, &mut groups);
        assert_eq!(groups, ["idp-admins", "agents", "admins", "writers"]);
    }

    #[test]
    fn exposed_claims_by_path() {
        let claims = obj(json!({"client_id": "c", "realm_access": {"roles": ["r"]}}));
        let out = exposed(
            &claims,
            &[
                "client_id".into(),
                "realm_access.roles".into(),
                "nope".into(),
            ],
        );
        assert_eq!(
            Value::Object(out),
            json!({"client_id": "c", "realm_access.roles": ["r"]})
        );
    }
}
