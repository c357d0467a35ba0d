//! Errors of the identity layer, one type per layer:
//!
//! * [`IdentityError`]: setting the layer up (configuration, the dev issuer's key files,
//!   HTTP clients). Returned by [`Verifier::from_config`](super::Verifier::from_config) and
//!   [`DevIssuer`](super::DevIssuer); fatal at startup.
//! * [`TokenRejected`]: a presented token is not accepted. Carries a closed
//!   [`RejectReason`] whose [`as_str`](RejectReason::as_str) is the machine-readable code used
//!   in metrics, audit events and client-facing errors, plus a human message for logs.
//! * [`AccessDenied`]: a valid identity is not allowed on a connection.
//! * [`JwksError`]: fetching or parsing an issuer's keys failed. Never fatal by itself: the
//!   cached keys keep serving and the failure is logged and counted.

use std::fmt;
use std::path::PathBuf;

/// Why a token was rejected. The string codes are stable: dashboards, audit consumers and
/// tests match on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RejectReason {
    /// The token is the empty string.
    Empty,
    /// The token is longer than `identity.max_token_bytes`.
    TooLarge,
    /// Not a compact JWS: wrong number of segments, or a segment is not a JSON object.
    Malformed,
    /// A segment is not strict unpadded base64url.
    BadEncoding,
    /// A JSON object in the header or the payload repeats a member name.
    DuplicateKey,
    /// A JWE (five segments, or `enc`/`zip` in the header): encrypted tokens are not accepted.
    Encrypted,
    /// `alg` is `none`.
    AlgNone,
    /// `alg` is not an asymmetric signature algorithm Sluice supports, or not in the
    /// issuer's `allowed_algs` (HMAC algorithms always land here).
    AlgNotAllowed,
    /// The header has a `crit` parameter: Sluice understands no JWS extension.
    CritUnsupported,
    /// The header names or embeds a key (`jku`, `x5u`, `jwk`, `x5c`). Such keys are never
    /// fetched nor trusted.
    UntrustedKeyHeader,
    /// `cty` says the payload is itself a JWT.
    NestedJwt,
    /// `cty` is present with some other content type.
    UnsupportedContentType,
    /// The header carries a parameter that changes how the token must be processed (`b64`).
    UnsupportedHeader,
    /// `typ` is not accepted for this issuer.
    TypNotAllowed,
    /// `iss` is missing or not a string.
    MissingIssuer,
    /// `iss` names no configured issuer.
    UnknownIssuer,
    /// No key in the issuer's key set has this `kid`, even after a refresh.
    UnknownKid,
    /// The issuer's keys have never been loaded (IdP unreachable since startup).
    KeysUnavailable,
    /// The token has no `kid` and no key of the issuer fits its `alg`.
    NoSuitableKey,
    /// The key named by `kid` does not fit `alg` (key type, curve, or the key's own `alg`).
    AlgKeyMismatch,
    /// The signature does not verify.
    BadSignature,
    /// `exp` is in the past (beyond the leeway).
    Expired,
    /// `nbf` is in the future (beyond the leeway).
    NotYetValid,
    /// `iat` is in the future (beyond the leeway).
    IssuedInFuture,
    /// `exp` is missing.
    MissingExp,
    /// `aud` is missing or names none of the configured audiences.
    AudienceMismatch,
    /// `sub` is missing.
    MissingSub,
    /// `sub` is not a non-empty string.
    InvalidSub,
    /// A registered claim (`exp`, `nbf`, `iat`, `aud`) has the wrong JSON type.
    InvalidClaim,
    /// The groups claim is neither a string nor an array of strings.
    InvalidGroups,
    /// `exp` is further ahead than the issuer's `max_token_lifetime_secs`.
    LifetimeTooLong,
}

impl RejectReason {
    /// The stable, machine-readable code.
    pub fn as_str(self) -> &'static str {
        use RejectReason::*;
        match self {
            Empty => "empty",
            TooLarge => "too_large",
            Malformed => "malformed",
            BadEncoding => "bad_encoding",
            DuplicateKey => "duplicate_key",
            Encrypted => "encrypted",
            AlgNone => "alg_none",
            AlgNotAllowed => "alg_not_allowed",
            CritUnsupported => "crit_unsupported",
            UntrustedKeyHeader => "untrusted_key_header",
            NestedJwt => "nested_jwt",
            UnsupportedContentType => "unsupported_cty",
            UnsupportedHeader => "unsupported_header",
            TypNotAllowed => "typ_not_allowed",
            MissingIssuer => "missing_iss",
            UnknownIssuer => "unknown_issuer",
            UnknownKid => "unknown_kid",
            KeysUnavailable => "keys_unavailable",
            NoSuitableKey => "no_suitable_key",
            AlgKeyMismatch => "alg_key_mismatch",
            BadSignature => "bad_signature",
            Expired => "expired",
            NotYetValid => "not_yet_valid",
            IssuedInFuture => "iat_in_future",
            MissingExp => "missing_exp",
            AudienceMismatch => "audience_mismatch",
            MissingSub => "missing_sub",
            InvalidSub => "invalid_sub",
            InvalidClaim => "invalid_claim",
            InvalidGroups => "invalid_groups",
            LifetimeTooLong => "lifetime_too_long",
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A token was not accepted. `reason()` is for machines, `Display` for people (it never
/// contains the token itself).
#[derive(Debug, Clone, thiserror::Error)]
#[error("token rejected ({reason}): {message}")]
pub struct TokenRejected {
    reason: RejectReason,
    message: String,
}

impl TokenRejected {
    pub fn new(reason: RejectReason, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
        }
    }

    /// The stable machine-readable code, e.g. `"expired"`.
    pub fn reason(&self) -> &'static str {
        self.reason.as_str()
    }

    /// The reason as an enum, for exhaustive matching.
    pub fn kind(&self) -> RejectReason {
        self.reason
    }

    /// The human-readable explanation.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// Shorthand used throughout the verifier.
pub(crate) fn reject(reason: RejectReason, message: impl Into<String>) -> TokenRejected {
    TokenRejected::new(reason, message)
}

/// Why a connection policy refused an identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenyReason {
    /// The subject is in `deny_subjects`.
    DeniedSubject,
    /// One of the identity's groups is in `deny_groups`.
    DeniedGroup,
    /// Neither `allow_subjects` nor `allow_groups` matched (and `allow_all` is off).
    NotAllowed,
}

impl DenyReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DenyReason::DeniedSubject => "denied_subject",
            DenyReason::DeniedGroup => "denied_group",
            DenyReason::NotAllowed => "not_allowed",
        }
    }
}

/// A valid identity may not use a connection.
#[derive(Debug, Clone, thiserror::Error)]
#[error("access denied ({}): {message}", reason.as_str())]
pub struct AccessDenied {
    pub reason: DenyReason,
    pub message: String,
}

impl AccessDenied {
    /// The stable machine-readable code, e.g. `"not_allowed"`.
    pub fn reason(&self) -> &'static str {
        self.reason.as_str()
    }
}

/// Why [`Verifier::authorize`](super::Verifier::authorize) refused a request: the token, or
/// the connection's policy.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AuthError {
    #[error(transparent)]
    Rejected(TokenRejected),
    #[error(transparent)]
    Denied(AccessDenied),
}

impl AuthError {
    /// The machine-readable code of either layer.
    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::Rejected(e) => e.reason(),
            AuthError::Denied(e) => e.reason(),
        }
    }
}

/// Fetching, reading or parsing a key set or discovery document failed.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    #[error("refusing to fetch {url}: {why}")]
    UrlNotAllowed { url: String, why: &'static str },
    #[error("fetching {url}: {source}")]
    Http {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("fetching {url}: HTTP status {status}")]
    Status { url: String, status: u16 },
    #[error("fetching {url}: response larger than {limit} bytes")]
    TooLarge { url: String, limit: usize },
    #[error("OIDC discovery for {issuer}: {message}")]
    Discovery { issuer: String, message: String },
    #[error("reading key file {path}: {source}")]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid key set: {0}")]
    Parse(String),
    #[error("key set has no usable signature key")]
    NoUsableKeys,
}

/// Setting up the identity layer failed.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("identity configuration: {0}")]
    Config(String),
    #[error(
        "the embedded dev issuer is refused because [identity] production = true; \
         configure at least one [[identity.issuers]]"
    )]
    DevIssuerInProduction,
    #[error("dev issuer key {path}: {source}")]
    DevKeyIo {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("dev issuer key {path}: {message}")]
    DevKeyInvalid { path: PathBuf, message: String },
    #[error("issuing a token: {0}")]
    Issue(String),
    #[error("issuer {issuer}: {source}")]
    Keys {
        issuer: String,
        #[source]
        source: JwksError,
    },
    #[error("building the HTTP client for issuer {issuer}: {message}")]
    HttpClient { issuer: String, message: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_carries_code_and_message() {
        let e = TokenRejected::new(RejectReason::Expired, "exp 10 is before now 20");
        assert_eq!(e.reason(), "expired");
        assert_eq!(
            e.to_string(),
            "token rejected (expired): exp 10 is before now 20"
        );
    }
}
