//! Settings a client asks for at startup: parameters beyond those that only
//! shape how results are presented, and `-c name=value` (or
//! `--name=value`) in `options`, as libpq's `PGOPTIONS`, node-postgres'
//! `statement_timeout` and pgjdbc's `currentSchema` send them.
//!
//! A setting made at startup acts like the `SET` that makes it at run
//! time, so it is checked as that `SET` (see [`super::checks`]) before the
//! upstream connection opens: allowed, it is passed to the server as a
//! startup parameter; refused, the session is. None is dropped silently:
//! a client that asked for `statement_timeout` gets it or is told why not.

use super::checks;
use super::errors::sqlstate;
use super::frame;
use super::relay::RelayContext;
use super::upstream::UpstreamError;

/// Startup parameters passed to the server as they are: those that shape
/// how results are presented. Any other setting (`options` too, which
/// could set `role`) is checked first.
const PRESENTATION: &[&str] = &[
    "application_name",
    "client_encoding",
    "datestyle",
    "timezone",
    "extra_float_digits",
    "intervalstyle",
];

/// What the upstream session starts with.
pub struct Startup {
    /// The settings checked and passed, for the session's start event.
    pub settings: Vec<Setting>,
    /// Every parameter for the upstream's startup packet.
    pub params: Vec<(String, String)>,
    /// Whether any of `params` is the client's (a setting or a
    /// presentation parameter), not only the gateway's own.
    pub from_client: bool,
}

/// One setting requested at startup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// As PostgreSQL names it: lower case, `-` read as `_` in options.
    pub name: String,
    pub value: String,
}

/// A startup request the gateway cannot follow; the session is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SettingsError {
    pub sqlstate: String,
    pub message: String,
}

impl SettingsError {
    fn unsupported(message: String) -> Self {
        Self {
            sqlstate: sqlstate::FEATURE_NOT_SUPPORTED.into(),
            message,
        }
    }

    fn invalid(message: String) -> Self {
        Self {
            sqlstate: sqlstate::INVALID_PARAMETER_VALUE.into(),
            message,
        }
    }
}

/// The upstream's startup parameters for a client's: the presentation
/// ones as sent, each other setting once the checks a `SET` of it would
/// meet allowed it, and the gateway's own; or why the session is refused.
pub async fn startup(
    ctx: &RelayContext,
    client: &[(String, String)],
) -> Result<Startup, SettingsError> {
    let settings = checked(ctx, client).await?;
    let params = in_server_order(client, &settings);
    within_startup_limit(&params)?;
    let from_client = !params.is_empty();
    let params = super::parity::upstream_params(&params).map_err(SettingsError::invalid)?;
    Ok(Startup {
        settings,
        params,
        from_client,
    })
}

/// The startup parameters that carry `settings` (those from `options`
/// first, see [`requested`]) and the presentation ones as the client sent
/// them, last: the server takes the last of a name, and a parameter of the
/// startup packet wins over the same setting in `options`
/// (`PGOPTIONS='-c application_name=x'` does not replace libpq's
/// `application_name`).
fn in_server_order(client: &[(String, String)], settings: &[Setting]) -> Vec<(String, String)> {
    settings
        .iter()
        .map(|s| (s.name.clone(), s.value.clone()))
        .chain(
            client
                .iter()
                .filter(|(k, _)| PRESENTATION.contains(&k.to_ascii_lowercase().as_str()))
                .cloned(),
        )
        .collect()
}

/// The settings requested in `params`, each allowed by the checks a `SET`
/// of it would meet, or why the session is refused.
async fn checked(
    ctx: &RelayContext,
    params: &[(String, String)],
) -> Result<Vec<Setting>, SettingsError> {
    let settings = requested(params)?;
    for s in &settings {
        if let Err(refusal) = checks::startup_setting(ctx, &set_statement(s)?).await {
            let why = frame::error_field(&refusal.body, b'M');
            return Err(SettingsError {
                sqlstate: frame::error_field(&refusal.body, b'C'),
                message: format!(
                    "startup parameter {}={:?} refused (checked as SET {} TO ...): {why}",
                    s.name, s.value, s.name
                ),
            });
        }
    }
    Ok(settings)
}

/// The settings among `params` (those in `options` first, then the others
/// in order) that the gateway checks, leaving out the presentation ones,
/// which are passed as they are.
fn requested(params: &[(String, String)]) -> Result<Vec<Setting>, SettingsError> {
    // The server applies `options` before the other parameters, which
    // win where both name a setting: so do the checks and the upstream.
    let mut from_options = Vec::new();
    let mut out = Vec::new();
    for (key, value) in params {
        let name = key.to_ascii_lowercase();
        if ["user", "database"].contains(&name.as_str())
            || name.starts_with("_pq_.")
            || PRESENTATION.contains(&name.as_str())
        {
            continue;
        }
        match name.as_str() {
            "replication" => replication(value)?,
            "options" => from_options.extend(options(value)?),
            _ => out.push(setting(name, value.clone())?),
        }
    }
    from_options.extend(out);
    Ok(from_options)
}

/// A `replication` parameter that leaves the connection an ordinary one
/// (`off`, `false`, `0`, `no`…: the server reads it as a boolean) is
/// dropped, not passed on; one that asks for a walsender is refused.
fn replication(value: &str) -> Result<(), SettingsError> {
    match (value, pg_bool(value)) {
        (_, Some(false)) => Ok(()),
        ("database", _) | (_, Some(true)) => Err(SettingsError::unsupported(
            "replication connections are not supported through the gateway".into(),
        )),
        (_, None) => Err(SettingsError::invalid(format!(
            "invalid value for parameter \"replication\": \"{value}\""
        ))),
    }
}

/// `parse_bool`: any prefix of `true`, `false`, `yes`, `no`, at least two
/// letters of `on` and `off`, `1` or `0`, in any case.
fn pg_bool(value: &str) -> Option<bool> {
    let v = value.to_ascii_lowercase();
    let prefix_of = |word: &str, min: usize| v.len() >= min && word.starts_with(v.as_str());
    if prefix_of("true", 1) || prefix_of("yes", 1) || prefix_of("on", 2) || v == "1" {
        Some(true)
    } else if prefix_of("false", 1) || prefix_of("no", 1) || prefix_of("off", 2) || v == "0" {
        Some(false)
    } else {
        None
    }
}

/// The settings in an `options` value, read as the server reads it:
/// words split at whitespace (a backslash keeps the next character), each
/// `-c name=value`, `-cname=value` or `--name=value`.
fn options(value: &str) -> Result<Vec<Setting>, SettingsError> {
    let words = split_words(value);
    let mut out = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let word = &words[i];
        let assignment = if word == "-c" {
            i += 1;
            match words.get(i) {
                Some(next) => next.as_str(),
                None => {
                    return Err(SettingsError::invalid(
                        "startup option -c needs name=value".into(),
                    ));
                }
            }
        } else if let Some(rest) = word.strip_prefix("-c").or_else(|| word.strip_prefix("--")) {
            rest
        } else {
            return Err(SettingsError::unsupported(format!(
                "startup option {word:?} is not supported through the gateway; set parameters with -c name=value"
            )));
        };
        let Some((name, value)) = assignment.split_once('=') else {
            return Err(SettingsError::invalid(format!(
                "startup option {assignment:?} needs a value: -c {assignment}=value"
            )));
        };
        out.push(setting(
            name.replace('-', "_").to_ascii_lowercase(),
            value.to_string(),
        )?);
        i += 1;
    }
    Ok(out)
}

/// `pg_split_opts`: whitespace separates words, a backslash makes the next
/// character part of the word.
fn split_words(value: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut chars = value.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_ascii_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return words;
        }
        let mut word = String::new();
        while let Some(c) = chars.next_if(|c| !c.is_ascii_whitespace()) {
            if c == '\\' {
                if let Some(escaped) = chars.next() {
                    word.push(escaped);
                }
            } else {
                word.push(c);
            }
        }
        words.push(word);
    }
}

/// A setting name as the server accepts it: identifier parts joined by
/// dots (`work_mem`, `myapp.tenant`).
fn setting(name: String, value: String) -> Result<Setting, SettingsError> {
    let valid_part = |p: &str| {
        p.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
    };
    if !name.split('.').all(valid_part) {
        return Err(SettingsError::invalid(format!(
            "startup parameter {name:?} is not a setting name"
        )));
    }
    if value.contains('\0') {
        return Err(SettingsError::invalid(format!(
            "startup parameter {name} has a NUL in its value"
        )));
    }
    // Inside `options` too: `-c options=…` would carry settings past the
    // checks, `-c replication=…` open a walsender.
    if super::startup::is_reserved_key(&name) {
        return Err(SettingsError::unsupported(format!(
            "startup parameter {name} cannot be set through the gateway"
        )));
    }
    if BACKEND_START.contains(&name.as_str()) {
        return Err(SettingsError::unsupported(format!(
            "startup parameter {name} acts only when a session starts, where a SET of it \
             would do nothing; it cannot be set through the gateway"
        )));
    }
    Ok(Setting { name, value })
}

/// Settings that act only as a backend starts (PostgreSQL's `BACKEND` and
/// `SU_BACKEND` contexts, and the preload lists): a `SET` of them fails or
/// does nothing, so checking one as its `SET` would not judge what it does
/// (`post_auth_delay` holds an upstream backend for minutes,
/// `*_preload_libraries` load code).
const BACKEND_START: &[&str] = &[
    "post_auth_delay",
    "local_preload_libraries",
    "session_preload_libraries",
    "ignore_system_indexes",
    "log_connections",
    "log_disconnections",
    "jit_debugging_support",
    "jit_profiling_support",
];

/// Settings whose value is a list of identifiers (`GUC_LIST_QUOTE`): given
/// as text at startup, `s2,public` names two schemas, where `SET … TO
/// 's2,public'` would name one.
const IDENTIFIER_LISTS: &[&str] = &["search_path", "temp_tablespaces"];

/// `SplitIdentifierString`: comma-separated identifiers, each double-quoted
/// (`""` a quote) or bare (lower-cased), whitespace around them ignored.
fn identifiers(value: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut chars = value.chars().peekable();
    let space = |c: &char| c.is_ascii_whitespace();
    while chars.next_if(space).is_some() {}
    if chars.peek().is_none() {
        return Some(out);
    }
    loop {
        let mut name = String::new();
        if chars.next_if_eq(&'"').is_some() {
            loop {
                match chars.next()? {
                    '"' if chars.next_if_eq(&'"').is_some() => name.push('"'),
                    '"' => break,
                    c => name.push(c),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_ascii_whitespace() && *c != ',') {
                name.push(c.to_ascii_lowercase());
            }
        }
        if name.is_empty() {
            return None;
        }
        out.push(name);
        while chars.next_if(space).is_some() {}
        match chars.next() {
            None => return Some(out),
            Some(',') => while chars.next_if(space).is_some() {},
            Some(_) => return None,
        }
    }
}

/// Most bytes of parameters passed on: PostgreSQL reads a startup packet
/// of at most 10,000 bytes, and the gateway adds its own (user, database,
/// encoding and string settings) to the client's.
const MAX_PASSED_BYTES: usize = 8192;

/// Whether `params`, passed on, leave the upstream's startup packet within
/// what the server reads.
pub fn within_startup_limit(params: &[(String, String)]) -> Result<(), SettingsError> {
    let n: usize = params.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
    if n <= MAX_PASSED_BYTES {
        return Ok(());
    }
    Err(SettingsError {
        sqlstate: sqlstate::PROGRAM_LIMIT_EXCEEDED.into(),
        message: format!(
            "the startup parameters take {n} bytes; at most {MAX_PASSED_BYTES} pass through the \
             gateway (PostgreSQL reads 10,000 with the gateway's own)"
        ),
    })
}

/// The server's refusal of a startup setting, which the client may see
/// (`unrecognized configuration parameter`, an invalid value, one that
/// cannot be set at startup or by this role): errors of classes 22, 42 and
/// 55 about a parameter, when the client's parameters were passed (checked
/// settings, or presentation ones such as an unknown `TimeZone`). Other
/// startup errors (authentication, a missing database, no CONNECT
/// privilege) concern the gateway's credentials and stay hidden; so does a
/// refusal in another language than the server's English (`lc_messages`).
pub fn server_refusal<'a>(
    startup: &Startup,
    error: &'a UpstreamError,
) -> Option<(&'a str, String)> {
    let UpstreamError::Server { code, message } = error else {
        return None;
    };
    let from_a_setting =
        ["22", "42", "55"].iter().any(|c| code.starts_with(c)) && message.contains("parameter");
    (startup.from_client && from_a_setting).then(|| {
        (
            code.as_str(),
            format!("the server refused a startup setting: {message}"),
        )
    })
}

/// The `SET` that makes `setting` at run time, as the guardrails read it:
/// the value as one string, or, for a list of identifiers, as that list.
pub fn set_statement(setting: &Setting) -> Result<String, SettingsError> {
    let quoted = |p: &str, q: char| format!("{q}{}{q}", p.replace(q, &format!("{q}{q}")));
    let name = setting
        .name
        .split('.')
        .map(|p| quoted(p, '"'))
        .collect::<Vec<_>>()
        .join(".");
    if !IDENTIFIER_LISTS.contains(&setting.name.as_str()) {
        return Ok(format!("SET {name} TO {}", quoted(&setting.value, '\'')));
    }
    let list = identifiers(&setting.value).ok_or_else(|| {
        SettingsError::invalid(format!(
            "startup parameter {} is not a list of names: {:?}",
            setting.name, setting.value
        ))
    })?;
    if list.is_empty() {
        return Ok(format!("SET {name} TO ''"));
    }
    let list: Vec<String> = list.iter().map(|n| quoted(n, '"')).collect();
    Ok(format!("SET {name} TO {}", list.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn s(name: &str, value: &str) -> Setting {
        Setting {
            name: name.into(),
            value: value.into(),
        }
    }

    #[test]
    fn a_startup_parameter_wins_over_the_same_setting_in_options() {
        let client = params(&[
            ("application_name", "psql"),
            ("options", "-c application_name=zzz -c datestyle=ISO"),
            ("DateStyle", "German"),
        ]);
        let settings = requested(&client).unwrap();
        let upstream = in_server_order(&client, &settings);
        let last = |name: &str| {
            upstream
                .iter()
                .rev()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(last("application_name"), Some("psql"));
        assert_eq!(last("datestyle"), Some("German"));
    }

    #[test]
    fn settings_are_read_from_parameters_and_options() {
        let got = requested(
            &params(&[
                ("user", "u"),
                ("database", "db"),
                ("application_name", "app"),
                ("Statement_Timeout", "300"),
                ("_pq_.x", "1"),
                (
                    "options",
                    "-c search_path=s2,public  -clock_timeout=5s \t--idle-in-transaction-session-timeout=1min -c myapp.Note=two\\ words\\\\",
                ),
            ]),
        )
        .unwrap();
        assert_eq!(
            got,
            vec![
                s("search_path", "s2,public"),
                s("lock_timeout", "5s"),
                s("idle_in_transaction_session_timeout", "1min"),
                s("myapp.note", "two words\\"),
                s("statement_timeout", "300"),
            ]
        );
        assert_eq!(requested(&params(&[("options", "  ")])), Ok(vec![]));
    }

    #[test]
    fn what_cannot_be_followed_is_refused() {
        let refused = |p: &[(&str, &str)]| requested(&params(p)).unwrap_err();
        let e = refused(&[("replication", "database")]);
        assert_eq!(e.sqlstate, sqlstate::FEATURE_NOT_SUPPORTED);
        assert_eq!(requested(&params(&[("replication", "Off")])), Ok(vec![]));
        let e = refused(&[("replication", "maybe")]);
        assert_eq!(e.sqlstate, sqlstate::INVALID_PARAMETER_VALUE);
        let e = refused(&[("options", "-B 100")]);
        assert_eq!(e.sqlstate, sqlstate::FEATURE_NOT_SUPPORTED);
        assert!(e.message.contains("\"-B\""), "{e}");
        for bad in [
            "-c",
            "-c work_mem",
            "--work_mem",
            "-c bad;name=1",
            "-c =1",
            "-c 1a=2",
        ] {
            let e = refused(&[("options", bad)]);
            assert_eq!(e.sqlstate, sqlstate::INVALID_PARAMETER_VALUE, "{bad}: {e}");
        }
        let e = refused(&[("work mem", "1MB")]);
        assert_eq!(e.sqlstate, sqlstate::INVALID_PARAMETER_VALUE);
        // What would carry settings past the checks, or act only as a
        // backend starts, from `options` as well.
        for smuggled in [
            "-c options=-c\\ role=admin",
            "-c replication=database",
            "-c _pq_.x=1",
            "--user=postgres",
            "-c post_auth_delay=2000",
            "-c session_preload_libraries=auto_explain",
        ] {
            let e = refused(&[("options", smuggled)]);
            assert_eq!(
                e.sqlstate,
                sqlstate::FEATURE_NOT_SUPPORTED,
                "{smuggled}: {e}"
            );
        }
        let e = refused(&[("local_preload_libraries", "x")]);
        assert_eq!(e.sqlstate, sqlstate::FEATURE_NOT_SUPPORTED);
    }

    #[test]
    fn passed_parameters_fit_the_servers_startup_packet() {
        let p = |n: usize| vec![("myapp.x".to_string(), "v".repeat(n))];
        assert!(within_startup_limit(&p(8000)).is_ok());
        let e = within_startup_limit(&p(9000)).unwrap_err();
        assert_eq!(e.sqlstate, sqlstate::PROGRAM_LIMIT_EXCEEDED);
    }

    #[test]
    fn only_the_servers_refusals_of_settings_are_shown() {
        let server = |code: &str, message: &str| UpstreamError::Server {
            code: code.into(),
            message: message.into(),
        };
        let startup = |settings: Vec<Setting>, from_client: bool| Startup {
            settings,
            params: vec![],
            from_client,
        };
        let asked = startup(vec![s("server_version", "1")], true);
        let changed = server("55P02", "parameter \"server_version\" cannot be changed");
        assert_eq!(
            server_refusal(&asked, &changed),
            Some((
                "55P02",
                "the server refused a startup setting: parameter \"server_version\" cannot be changed"
                    .into()
            ))
        );
        let unknown = server("42704", "unrecognized configuration parameter \"x\"");
        assert!(server_refusal(&asked, &unknown).is_some());
        assert!(server_refusal(&startup(vec![], false), &unknown).is_none());
        // A presentation parameter is the client's too.
        let zone = server(
            "22023",
            "invalid value for parameter \"TimeZone\": \"Nowhere/Bad\"",
        );
        let presented = startup(vec![], true);
        assert_eq!(
            server_refusal(&presented, &zone).map(|r| r.0),
            Some("22023")
        );
        for hidden in [
            server("28P01", "password authentication failed for user \"app\""),
            server("3D000", "database \"app\" does not exist"),
            server("42501", "permission denied for database \"app\""),
        ] {
            assert!(server_refusal(&asked, &hidden).is_none(), "{hidden}");
        }
    }

    #[test]
    fn the_set_statement_quotes_name_and_value() {
        let set = |name: &str, value: &str| set_statement(&s(name, value));
        assert_eq!(
            set("myapp.note", "it's").unwrap(),
            "SET \"myapp\".\"note\" TO 'it''s'"
        );
        // A list of names as the server splits it.
        assert_eq!(
            set("search_path", " S2 , \"a\"\"b\",\"$user\",public").unwrap(),
            "SET \"search_path\" TO \"s2\", \"a\"\"b\", \"$user\", \"public\""
        );
        assert_eq!(set("search_path", "").unwrap(), "SET \"search_path\" TO ''");
        for bad in ["a,,b", "a b", "\"open", "a,"] {
            assert!(set("search_path", bad).is_err(), "{bad}");
        }
    }
}
