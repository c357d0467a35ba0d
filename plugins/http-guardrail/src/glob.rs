//! Wildcards for paths and tool names: `*` matches any run of characters
//! (including `/`: `/admin/*` covers everything below `/admin/`, which is
//! what a deny rule means), `?` matches one character. Everything else is
//! literal: case-sensitive for tool names, ASCII case-insensitive for paths
//! ([`matches_path`]), since many upstreams (Express, ASP.NET, IIS) route
//! `/ADMIN/x` as `/admin/x`, and a deny rule must cover what they run.

pub fn matches(pattern: &str, text: &str) -> bool {
    matches_with(pattern, text, false)
}

/// A path against a pattern, ignoring ASCII case and a trailing slash on
/// either (Express, Spring and Rails route `/v1/refunds/` as `/v1/refunds`).
pub fn matches_path(pattern: &str, path: &str) -> bool {
    matches_with(pattern, path, true)
        || ((pattern.len() > 1 && pattern.ends_with('/'))
            || (path.len() > 1 && path.ends_with('/')))
            && matches_with(
                pattern.strip_suffix('/').unwrap_or(pattern),
                path.strip_suffix('/').unwrap_or(path),
                true,
            )
}

fn matches_with(pattern: &str, text: &str, fold: bool) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    // Iterative matcher with backtracking to the last `*`: linear in
    // practice, never exponential.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some(b'*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(b'?') => {
                pi += 1;
                ti += 1;
            }
            Some(&c) if c == t[ti] || (fold && c.eq_ignore_ascii_case(&t[ti])) => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::{matches, matches_path};

    #[test]
    fn wildcards() {
        assert!(matches("/admin/*", "/admin/users"));
        assert!(matches("/admin/*", "/admin/users/42"));
        assert!(matches("/admin/*", "/admin/"));
        assert!(!matches("/admin/*", "/admin"));
        assert!(!matches("/admin/*", "/administrator/x"));
        assert!(matches("/repos/*/issues", "/repos/a/b/issues"));
        assert!(matches("/v?/items", "/v2/items"));
        assert!(matches("*", ""));
        assert!(matches("delete_*", "delete_repo"));
        assert!(!matches("delete_*", "undelete_repo"));
        assert!(matches("a*b*c", "aXXbYYbZc"));
        assert!(!matches("a*b*c", "aXXbYYbZ"));
        assert!(matches("exact", "exact") && !matches("exact", "Exact"));
    }

    #[test]
    fn paths_ignore_case_and_a_trailing_slash() {
        assert!(matches_path("/v1/refunds", "/V1/Refunds"));
        assert!(matches_path("/v1/refunds", "/v1/refunds/"));
        assert!(matches_path("/v1/refunds/", "/v1/refunds"));
        assert!(!matches_path("/v1/refunds", "/v1/refunds//"));
        assert!(!matches_path("/v1/refunds", "/v1/refunds/x"));
        assert!(!matches_path("/admin/*", "/admin"));
        assert!(matches_path("/", "/"));
        assert!(!matches_path("/", "/x"));
    }
}
