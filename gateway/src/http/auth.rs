//! The agent's bearer token, and the identity it proves.
//!
//! A client connection remembers the last token it verified: agents send the
//! same token on every request of a keep-alive or HTTP/2 connection, and a
//! signature check per request would cost more than the rest of the proxy.
//! The remembered identity is used only for the identical token, only until
//! the token expires, and at most for [`REVERIFY_AFTER`], so that a key the
//! issuer withdrew stops working on long-lived connections too.

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use hyper::HeaderMap;
use hyper::header::AUTHORIZATION;

use crate::identity::{Identity, Verifier};

use super::problem::Problem;
use super::secrets::Needles;

pub const REVERIFY_AFTER: Duration = Duration::from_secs(60);

/// The token of `Authorization: Bearer <token>`.
pub fn bearer(headers: &HeaderMap) -> Result<&str, Problem> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Err(Problem::unauthorized(
            "token_missing",
            "send the agent token as `Authorization: Bearer <token>`",
        ));
    };
    if values.next().is_some() {
        return Err(Problem::unauthorized(
            "token_malformed",
            "more than one Authorization header",
        ));
    }
    bearer_value(value)
}

/// The token of one `Authorization: Bearer` value.
pub fn bearer_value(value: &hyper::header::HeaderValue) -> Result<&str, Problem> {
    let text = value.to_str().map_err(|_| {
        Problem::unauthorized("token_malformed", "the Authorization header is not ASCII")
    })?;
    let (scheme, token) = text.trim().split_once(' ').unwrap_or((text, ""));
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(Problem::unauthorized(
            "token_malformed",
            "the Authorization header is not a Bearer token",
        ));
    }
    let token = token.trim();
    // token68 has no comma or space: `Bearer a, Bearer b` is two credentials.
    if token.contains([',', ' ', '\t']) {
        return Err(Problem::unauthorized(
            "token_malformed",
            "the Authorization header holds more than one credential",
        ));
    }
    Ok(token)
}

/// Real tokens are signed JWTs, hundreds of bytes; a shorter string could
/// be anywhere by chance, so it is not searched for.
pub const MIN_TOKEN: usize = 16;

/// The refusal of a request that carries the agent's token in `place` as
/// well as in its `Authorization` header.
pub fn misplaced(place: &str) -> Problem {
    Problem::bad_request(
        "token_misplaced",
        format!(
            "the agent token is also in {place}; it travels only as `Authorization: Bearer`, \
             which never reaches the upstream"
        ),
    )
}

/// Refuses a request whose head carries the agent's token outside its
/// `Authorization` header (a cookie, an API-key header, the path, the query
/// string, the request's authority): those go upstream and into the
/// recording, and the token is a credential of the agent's that no upstream
/// may see. (The body is searched where it is read, see
/// [`super::inspect`], or as it streams.) Cookies are also read together:
/// a server that joins the values of several cookies (chunked session
/// cookies) would get a token split across them. `path` is the
/// normalised path the upstream gets (escapes of unreserved characters
/// decoded); the query, the authority and header values are searched as
/// sent and percent-decoded, as upstreams read them (`?t=%65yJ…` is the
/// token to a framework). `authority` is the request URI's: HTTP/2's
/// `:authority`, which is no header (HTTP/1.1's `Host` is), or an absolute
/// request target's; it goes upstream in `X-Forwarded-Host` and
/// `Forwarded`.
pub fn only_in_authorization(
    token: &str,
    headers: &HeaderMap,
    authority: Option<&str>,
    path: &str,
    query: Option<&str>,
) -> Result<(), Problem> {
    if token.len() < MIN_TOKEN {
        return Ok(());
    }
    let search = TokenSearch::new(token);
    let holds = |text: &[u8]| search.holds(text);
    let elsewhere = headers
        .iter()
        .filter(|(name, _)| *name != AUTHORIZATION)
        .find(|(_, value)| holds(value.as_bytes()))
        .map(|(name, _)| format!("the {name} header"))
        .or_else(|| {
            authority
                .is_some_and(|a| holds(a.as_bytes()))
                .then(|| "the request's authority (`:authority` or the request target)".to_string())
        })
        .or_else(|| {
            (holds(path.as_bytes()) || query.is_some_and(|q| holds(q.as_bytes())))
                .then(|| "the path or query string".to_string())
        })
        .or_else(|| {
            split_across_cookies(&search, headers)
                .then(|| "the cookies, split across their values".to_string())
        });
    match elsewhere {
        None => Ok(()),
        Some(place) => Err(misplaced(&place)),
    }
}

/// Whether the cookies carry the token in pieces: one value a piece of it
/// long enough not to be there by chance, or the values, joined in the
/// order sent (over every `Cookie` line, and HTTP/2's crumbs, which are
/// lines of their own), holding it. Servers that split a large session
/// cookie (ASP.NET's chunked cookies) join them so.
fn split_across_cookies(search: &TokenSearch<'_>, headers: &HeaderMap) -> bool {
    let mut cookies = headers.get_all(hyper::header::COOKIE).iter().peekable();
    if cookies.peek().is_none() {
        return false;
    }
    let token = search.token.as_bytes();
    let mut joined = Vec::new();
    for pair in cookies.flat_map(|v| v.as_bytes().split(|&b| b == b';')) {
        let value = pair
            .iter()
            .position(|&b| b == b'=')
            .map_or(pair, |i| &pair[i + 1..])
            .trim_ascii();
        let value = value
            .strip_prefix(b"\"")
            .and_then(|v| v.strip_suffix(b"\""))
            .unwrap_or(value);
        let piece = if value.contains(&b'%') {
            std::borrow::Cow::Owned(percent_decoded(value))
        } else {
            std::borrow::Cow::Borrowed(value)
        };
        if piece.len() >= MIN_TOKEN && memchr::memmem::find(token, &piece).is_some() {
            return true;
        }
        joined.extend_from_slice(value);
    }
    search.holds(&joined)
}

/// Where the token is, as sent or with escapes undone (percent escapes, as
/// upstreams read queries and cookies, some twice, `%uXXXX` as IIS and
/// ASP.NET read them, and JSON's): the search bodies and records use
/// ([`Needles::token`]).
struct TokenSearch<'a> {
    token: &'a str,
    /// The shortest of what names the token ([`super::secrets::token_parts`]).
    shortest: usize,
    // Built only for a text long enough to hold the token, which most
    // header values and paths are not: building it is most of the cost.
    needles: std::cell::OnceCell<Option<Needles>>,
}

impl<'a> TokenSearch<'a> {
    fn new(token: &'a str) -> Self {
        Self {
            token,
            shortest: super::secrets::token_shortest(token),
            needles: std::cell::OnceCell::new(),
        }
    }

    fn holds(&self, text: &[u8]) -> bool {
        text.len() >= self.shortest
            && self
                .needles
                .get_or_init(|| Needles::token(self.token))
                .as_ref()
                .is_some_and(|n| n.holds(text))
    }
}

/// `text` without the agent's token, for the record of a refused request:
/// the token replaced where it is written out, the whole value where it
/// is (also) escaped.
/// `None`: `text` holds no token (the common case, on every exchange:
/// nothing is copied).
pub fn without_token(token: &str, text: &str) -> Option<String> {
    let search = TokenSearch::new(token);
    // As in `only_in_authorization`: a short string is anywhere by chance.
    if token.len() < MIN_TOKEN || !search.holds(text.as_bytes()) {
        return None;
    }
    let replaced = text.replace(token, "[agent token]");
    Some(if search.holds(replaced.as_bytes()) {
        "[holds the agent token]".to_string()
    } else {
        replaced
    })
}

/// `%XX` and `%uXXXX` escapes decoded (the latter as UTF-8, as IIS and
/// ASP.NET decode them; a `%u` escape of a lone surrogate is kept, as no
/// token holds one); anything else (a `%` without two hex digits too) kept
/// as it is.
fn percent_decoded(text: &[u8]) -> Vec<u8> {
    use super::route::hex;
    let hex_at = |i: usize| text.get(i).copied().and_then(hex);
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        if text[i] == b'%' {
            if let (Some(hi), Some(lo)) = (hex_at(i + 1), hex_at(i + 2)) {
                out.push(hi << 4 | lo);
                i += 3;
                continue;
            }
            if matches!(text.get(i + 1), Some(b'u' | b'U'))
                && let Some(c) = (2..6)
                    .try_fold(0u32, |n, k| Some(n << 4 | u32::from(hex_at(i + k)?)))
                    .and_then(char::from_u32)
            {
                let mut utf8 = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
                i += 6;
                continue;
            }
        }
        out.push(text[i]);
        i += 1;
    }
    out
}

struct Verified {
    token: Box<str>,
    identity: Identity,
    at: Instant,
}

/// One client connection's last verified token.
#[derive(Default)]
pub struct TokenCache {
    last: Mutex<Option<Verified>>,
}

impl TokenCache {
    pub async fn identity(&self, verifier: &Verifier, token: &str) -> Result<Identity, Problem> {
        if let Some(id) = self.cached(token) {
            return Ok(id);
        }
        match verifier.verify(token).await {
            Ok(identity) => {
                let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
                *last = Some(Verified {
                    token: token.into(),
                    identity: identity.clone(),
                    at: Instant::now(),
                });
                Ok(identity)
            }
            Err(rejected) => Err(
                Problem::unauthorized("token_rejected", rejected.to_string())
                    .with("token_reason", rejected.reason()),
            ),
        }
    }

    fn cached(&self, token: &str) -> Option<Identity> {
        let last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let v = last.as_ref()?;
        let fresh = v.at.elapsed() < REVERIFY_AFTER && SystemTime::now() < v.identity.expires_at;
        (fresh && constant_time_eq(v.token.as_bytes(), token.as_bytes()))
            .then(|| v.identity.clone())
    }
}

/// Equality whose time does not depend on where the inputs differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {

    #[test]
    fn the_token_may_travel_only_in_authorization() {
        let token = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl";
        let mut h = HeaderMap::new();
        h.insert(
            AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
        );
        h.insert("x-kept", HeaderValue::from_static("yes"));
        assert!(only_in_authorization(token, &h, None, "/items", Some("a=1")).is_ok());
        let escaped: String = token.bytes().map(|b| format!("%{b:02X}")).collect();
        let twice = escaped.replace('%', "%25");
        for (path, query) in [
            ("/items".to_string(), Some(format!("access_token={token}"))),
            (
                "/items".to_string(),
                Some(format!("access_token={escaped}")),
            ),
            ("/items".to_string(), Some(format!("access_token={twice}"))),
            (format!("/tokens/{token}"), None),
        ] {
            let problem =
                only_in_authorization(token, &h, None, &path, query.as_deref()).unwrap_err();
            assert_eq!(problem.reason, "token_misplaced");
        }
        assert_eq!(
            without_token(token, &format!("a={token}&b=1")).as_deref(),
            Some("a=[agent token]&b=1")
        );
        for both in [format!("a={token}&b={escaped}"), format!("b={escaped}")] {
            assert_eq!(
                without_token(token, &both).as_deref(),
                Some("[holds the agent token]")
            );
        }
        assert_eq!(without_token(token, "a=1"), None);
        assert!(
            only_in_authorization(token, &h, Some("gateway.example:8443"), "/items", None).is_ok()
        );
        let problem = only_in_authorization(token, &h, Some(token), "/items", None).unwrap_err();
        assert!(problem.detail.contains("authority"), "{}", problem.detail);
        for value in [format!("session={token}"), format!("session={escaped}")] {
            h.insert("cookie", HeaderValue::from_str(&value).unwrap());
            let problem = only_in_authorization(token, &h, None, "/items", None).unwrap_err();
            assert!(problem.detail.contains("cookie"), "{}", problem.detail);
        }
    }

    use super::*;
    use hyper::header::HeaderValue;

    /// Cookie values joined in order, over every `Cookie` line (HTTP/2
    /// crumbs), or a long piece of the token in one value, are the token
    /// to a server that joins chunked cookies.
    #[test]
    fn tokens_split_across_cookies_are_found() {
        let token = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl";
        let (head, tail) = token.split_at(20);
        // Pieces too short to be found alone.
        let quarters: Vec<&str> = [0..12, 12..24, 24..36, 36..token.len()]
            .into_iter()
            .map(|r| &token[r])
            .collect();
        let escape = |s: &str| s.bytes().map(|b| format!("%{b:02X}")).collect::<String>();
        let refused = |lines: &[String]| {
            let mut h = with(&format!("Bearer {token}"));
            for line in lines {
                h.append("cookie", HeaderValue::from_str(line).unwrap());
            }
            only_in_authorization(token, &h, None, "/items", None)
        };
        for lines in [
            vec![format!("a={head}; b={tail}")],
            vec![format!("a={head}"), format!("b={tail}")],
            vec![format!("b={tail}; theme=dark"), format!("a={head}")],
            vec![format!("a=\"{head}\"; b=\"{tail}\"")],
            vec![format!("x={}; y={}", &token[..3], &token[3..])],
            vec![format!("a={}; b={}", quarters[0], quarters[1..].concat())],
            vec![
                format!("a={}; b={}", quarters[0], quarters[1]),
                format!("c={}", quarters[2]),
                format!("d={}", escape(quarters[3])),
            ],
            vec![format!("a={}; b={}", head, escape(tail))],
            vec![format!(
                "a={}; b={}",
                escape(quarters[0]),
                quarters[1..].concat()
            )],
        ] {
            let problem = refused(&lines).unwrap_err();
            assert_eq!(problem.reason, "token_misplaced", "{lines:?}");
            assert!(problem.detail.contains("cookie"), "{}", problem.detail);
        }
        // Short pieces apart from each other, or other cookies, are not it.
        assert!(refused(&[format!("a={}; n=1; b={}", &token[..10], &token[10..12])]).is_ok());
        assert!(refused(&["theme=dark; lang=en".to_string()]).is_ok());
    }

    /// IIS and ASP.NET decode `%uXXXX` as well as `%XX`: a token spelled
    /// with either, in any mix, once or escaped again, is the token.
    #[test]
    fn tokens_escaped_as_iis_reads_them_are_found() {
        let token = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl";
        let mut h = HeaderMap::new();
        h.insert(
            AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
        );
        let wide: String = token.bytes().map(|b| format!("%u{b:04x}")).collect();
        let mixed: String = token
            .bytes()
            .enumerate()
            .map(|(i, b)| match i % 3 {
                0 => format!("%u{b:04X}"),
                1 => format!("%{b:02x}"),
                _ => (b as char).to_string(),
            })
            .collect();
        let upper_u = wide.replace("%u", "%U");
        let twice = mixed.replace('%', "%25");
        for escaped in [&wide, &mixed, &upper_u, &twice] {
            assert!(!escaped.contains(token));
            let query = format!("access_token={escaped}&b=1");
            let problem =
                only_in_authorization(token, &h, None, "/items", Some(&query)).unwrap_err();
            assert_eq!(problem.reason, "token_misplaced", "{escaped}");
            let problem =
                only_in_authorization(token, &h, Some(escaped), "/items", None).unwrap_err();
            assert_eq!(problem.reason, "token_misplaced", "{escaped}");
            assert_eq!(
                without_token(token, &format!("/items/{escaped}")).as_deref(),
                Some("[holds the agent token]"),
                "{escaped}"
            );
        }
        // Escapes that decode to nothing, or to another text, are not it.
        let near: String = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhIn1.c2lnbmF0dXJm"
            .bytes()
            .map(|b| format!("%u{b:04x}"))
            .collect();
        assert!(only_in_authorization(token, &h, None, "/items", Some(&near)).is_ok());
        assert_eq!(without_token(token, &format!("a={near}")), None);
        assert_eq!(
            percent_decoded(b"%u0065%uD800%u12%uzzzz%u00e9%41"),
            "e%uD800%u12%uzzzz\u{e9}A".as_bytes()
        );
    }

    /// A JWT's header is every token's from the same issuer and key: its
    /// payload or its signature alone is the token, wherever it is.
    #[test]
    fn the_segments_after_a_jwts_header_are_the_token() {
        let token = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl";
        let h = with(&format!("Bearer {token}"));
        let (payload, signature) = ("eyJzdWIiOiJhIn0", "c2lnbmF0dXJl");
        for query in [
            format!("t={payload}.{signature}"),
            format!("s={signature}"),
            format!("p={payload}"),
        ] {
            let problem = only_in_authorization(token, &h, None, "/x", Some(&query)).unwrap_err();
            assert_eq!(problem.reason, "token_misplaced", "{query}");
        }
        let path = format!("/items/{payload}/{signature}");
        assert_eq!(
            only_in_authorization(token, &h, None, &path, None)
                .unwrap_err()
                .reason,
            "token_misplaced"
        );
        assert_eq!(
            without_token(token, &format!("/a/{signature}")).as_deref(),
            Some("[holds the agent token]")
        );
        // The header segment alone is any token's.
        assert!(
            only_in_authorization(token, &h, None, "/x", Some("h=eyJhbGciOiJFUzI1NiJ9")).is_ok()
        );
    }

    fn with(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn bearer_tokens() {
        assert_eq!(bearer(&with("Bearer abc")).unwrap(), "abc");
        assert_eq!(bearer(&with("bearer  abc ")).unwrap(), "abc");
        assert_eq!(
            bearer(&HeaderMap::new()).unwrap_err().reason,
            "token_missing"
        );
        assert_eq!(
            bearer(&with("Basic abc")).unwrap_err().reason,
            "token_malformed"
        );
        assert_eq!(
            bearer(&with("Bearer")).unwrap_err().reason,
            "token_malformed"
        );
        let mut two = with("Bearer a");
        two.append(AUTHORIZATION, HeaderValue::from_static("Bearer b"));
        assert_eq!(bearer(&two).unwrap_err().reason, "token_malformed");
        for listed in ["Bearer a, Bearer b", "Bearer a b", "Bearer a,b"] {
            assert_eq!(
                bearer(&with(listed)).unwrap_err().reason,
                "token_malformed",
                "{listed}"
            );
        }
        assert!(constant_time_eq(b"abc", b"abc") && !constant_time_eq(b"abc", b"abd"));
    }
}
