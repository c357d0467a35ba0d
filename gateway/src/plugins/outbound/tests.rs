use super::*;

fn grants(urls: &[&str]) -> Vec<HttpDestination> {
    urls.iter().map(|u| u.parse().unwrap()).collect()
}

#[test]
fn malformed_grants_are_refused() {
    for (url, reason) in [
        ("hooks.example.com/sluice", "not a URL"),
        ("ftp://hooks.example.com/", "scheme"),
        ("https://user:pw@hooks.example.com/", "credentials"),
        ("https://hooks.example.com/x?token=1", "no query"),
        ("https://hooks.example.com/x#f", "no query or fragment"),
        ("https://hooks.example.com/a%2fb", "encoded"),
        ("https://hooks.example.com/a/../b", "dot segments"),
        ("https://hooks.example.com/a/%2e%2e/b", "dot segments"),
        ("https://hooks.example.com/a;b", "`;`"),
        ("https://*.example.com/", "wildcards"),
    ] {
        let err = url.parse::<HttpDestination>().unwrap_err().to_string();
        assert!(err.contains(reason), "{url}: {err}");
    }
}

/// (request, allowed) under the grants below.
const CASES: &[(&str, bool)] = &[
    ("https://hooks.example.com/sluice", true),
    ("https://hooks.example.com/sluice/", true),
    ("https://hooks.example.com/sluice/batch?x=1", true),
    ("https://HOOKS.example.com:443/sluice", true),
    ("https://hooks.example.com/sluice-admin", false),
    ("https://hooks.example.com/", false),
    ("https://hooks.example.com/other", false),
    ("http://hooks.example.com/sluice", false),
    ("https://hooks.example.com:8443/sluice", false),
    ("https://evil.example.com/sluice", false),
    ("https://hooks.example.com.evil.net/sluice", false),
    ("https://hooks.example.com/sluice/../admin", false),
    ("https://hooks.example.com/sluice/%2e%2E/admin", false),
    ("https://hooks.example.com/sluice/.%2e/admin", false),
    ("https://hooks.example.com/sluice%2f..%2fadmin", false),
    ("https://hooks.example.com/sluice/a%5c..%5cb", false),
    ("https://user@hooks.example.com/sluice", false),
    ("https://hooks.example.com/sluice/..;/admin", false),
    ("https://hooks.example.com/sluice;x=1/batch", false),
    ("https://hooks.example.com/sluice/..%3B/admin", false),
    ("https://hooks.example.com/sluice/%252e%252e/admin", false),
    ("https://hooks.example.com/sluice/%25", true),
    ("https://hooks.example.com/sluice/100%25zz", true),
    // The whole of a host granted without a path.
    ("http://127.0.0.1:9000/", true),
    ("http://127.0.0.1:9000/any/thing", true),
    ("http://127.0.0.1:9001/", false),
    ("http://localhost:9000/", false),
    ("http://[::1]:9000/x", true),
];

#[test]
fn requests_are_checked_against_scheme_host_port_and_path() {
    let granted = grants(&[
        "https://hooks.example.com/sluice/",
        "http://127.0.0.1:9000",
        "http://[::1]:9000/",
    ]);
    for (url, allowed) in CASES {
        let uri: Uri = url.parse().unwrap();
        let outcome = check(&granted, &uri);
        assert_eq!(outcome.is_ok(), *allowed, "{url}: {outcome:?}");
    }
}

#[test]
fn nothing_is_granted_by_default() {
    let uri: Uri = "https://hooks.example.com/".parse().unwrap();
    assert_eq!(check(&[], &uri), Err(HttpRequestDenied::NothingGranted));
}

#[test]
fn config_check_refuses_a_malformed_grant() {
    let parse = |grant: &str| {
        crate::config::Config::parse(
            &format!("[plugins.grants.audit-webhook]\nhttp = [{grant:?}]\n"),
            std::path::Path::new("/"),
        )
    };
    let ok = parse("https://hooks.example.com/sluice").unwrap();
    assert_eq!(ok.plugins.grants["audit-webhook"].http.len(), 1);
    let err = parse("hooks.example.com/sluice").unwrap_err().to_string();
    assert!(
        err.contains("HTTP grant \"hooks.example.com/sluice\": not a URL"),
        "{err}"
    );
}
