//! Wildcards for paths and tool names: `*` matches any run of characters
//! (including `/`: `/admin/*` covers everything below `/admin/`, which is
//! what a deny rule means), `?` matches one character. Everything else is
//! literal: case-sensitive for tool names, ASCII case-insensitive for paths
//! ([`matches_path`]), since many upstreams (Express, ASP.NET, IIS) route
//! `/ADMIN/x` as `/admin/x`, and a deny rule must cover what they run.

pub fn matches(pattern: &str, text: &str) -> bool {
    matches_with(pattern, text, false)
}

/// A path against a pattern, ignoring ASCII case.
pub fn matches_path(pattern: &str, path: &str) -> bool {
    matches_with(pattern, path, true)
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
    use super::matches;

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
}
