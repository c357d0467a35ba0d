//! Table and function names as the config writes them: `billing.*`,
//! `"Billing"."Invoices"`, `dblink*`.
//!
//! Parts are read the way PostgreSQL reads identifiers: unquoted parts fold
//! to lower case, double-quoted parts keep their case (`""` is a quote), so a
//! pattern names the same object the SQL would. `*` in an unquoted part
//! matches any run of characters.
//!
//! Matching comes in two strengths, both chosen so that doubt refuses:
//! *may name* (deny lists, approval rules) ignores case and is true if any of
//! the schemas a name may resolve to fits; *surely names* (allow lists)
//! compares exactly, schema by schema (the caller checks every schema an
//! unqualified name may resolve to).

use std::borrow::Cow;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Part {
    text: String,
    /// `text` lower-cased, for the case-blind comparisons.
    folded: String,
    /// Unquoted parts may hold `*`; quoted ones are literal.
    glob: bool,
}

impl Part {
    /// A literal part, as if quoted.
    pub(crate) fn literal(text: &str) -> Self {
        Part {
            text: text.to_owned(),
            folded: text.to_lowercase(),
            glob: false,
        }
    }

    fn matches_exactly(&self, candidate: &str) -> bool {
        if self.glob {
            glob_match(self.text.as_bytes(), candidate.as_bytes())
        } else {
            self.text == candidate
        }
    }

    fn matches_any_case(&self, candidate: &str) -> bool {
        self.matches_folded(&fold(candidate))
    }

    fn matches_folded(&self, candidate: &str) -> bool {
        if self.glob {
            glob_match(self.folded.as_bytes(), candidate.as_bytes())
        } else {
            self.folded == candidate
        }
    }
}

/// A `[schema.]name` pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NamePattern {
    pub(crate) schema: Option<Part>,
    pub(crate) name: Part,
    /// As written in the config, for messages.
    pub(crate) source: String,
}

impl NamePattern {
    pub(crate) fn parse(source: &str) -> Result<Self, String> {
        let mut parts = split(source)?;
        let name = parts.pop().ok_or("an empty name")?;
        let schema = parts.pop();
        if !parts.is_empty() {
            return Err("at most two parts (`schema.name`) are allowed; the gateway reports tables and functions without their database".into());
        }
        Ok(NamePattern {
            schema,
            name,
            source: source.to_owned(),
        })
    }

    /// This pattern with `schema` filled in when it has none.
    pub(crate) fn qualified_with(&self, schema: &str) -> Self {
        let mut qualified = self.clone();
        if qualified.schema.is_none() {
            qualified.schema = Some(Part::literal(schema));
        }
        qualified
    }

    /// Deny strength: whether `name`, in one of `schemas`, could be what
    /// this pattern names.
    pub(crate) fn may_name(&self, schemas: &Schemas, name: &Folded) -> bool {
        if !self.name.matches_folded(&name.0) {
            return false;
        }
        match &self.schema {
            None => true,
            Some(pattern) => schemas.any(|schema| pattern.matches_any_case(schema)),
        }
    }

    /// Allow strength: exact, and only for a qualified pattern.
    pub(crate) fn surely_names(&self, schema: &str, name: &str) -> bool {
        self.schema
            .as_ref()
            .is_some_and(|pattern| pattern.matches_exactly(schema))
            && self.name.matches_exactly(name)
    }

    /// Whether this pattern, read as a glob, covers another pattern's text
    /// (used to check that an exemption names something exemptible).
    pub(crate) fn covers_text(&self, text: &str) -> bool {
        match text.rsplit_once('.') {
            Some((schema, name)) => self.may_name(&Schemas::One(schema), &Folded::new(name)),
            None => self.may_name(&Schemas::Any, &Folded::new(text)),
        }
    }
}

/// The schemas a name in a statement may refer to.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Schemas<'a> {
    /// A qualified name: its own schema.
    One(&'a str),
    /// An unqualified name: `pg_catalog` first when `catalog`, then the
    /// search path.
    Path { catalog: bool, path: &'a [String] },
    /// The search path is not pinned: an unqualified name could be anywhere.
    Any,
}

impl<'a> Schemas<'a> {
    /// The schemas, or `None` for `Any`.
    pub(crate) fn list(self) -> Option<Vec<&'a str>> {
        match self {
            Schemas::One(schema) => Some(vec![schema]),
            Schemas::Path { catalog, path } => Some(
                catalog
                    .then_some("pg_catalog")
                    .into_iter()
                    .chain(path.iter().map(String::as_str))
                    .collect(),
            ),
            Schemas::Any => None,
        }
    }

    /// Whether `f` holds for one of the schemas (always, for `Any`).
    fn any(self, f: impl Fn(&str) -> bool) -> bool {
        match self {
            Schemas::One(schema) => f(schema),
            Schemas::Path { catalog, path } => {
                (catalog && f("pg_catalog")) || path.iter().any(|s| f(s))
            }
            Schemas::Any => true,
        }
    }

    /// Whether `f` holds for every schema (never, for `Any`).
    pub(crate) fn all(self, f: impl Fn(&str) -> bool) -> bool {
        match self {
            Schemas::One(schema) => f(schema),
            Schemas::Path { catalog, path } => {
                (!catalog || f("pg_catalog")) && path.iter().all(|s| f(s))
            }
            Schemas::Any => false,
        }
    }
}

/// A name from a statement, lower-cased once for every pattern it meets.
pub(crate) struct Folded<'a>(Cow<'a, str>);

impl<'a> Folded<'a> {
    pub(crate) fn new(name: &'a str) -> Self {
        Folded(fold(name))
    }
}

/// Lower case, without allocating for the usual already-lower-case name.
fn fold(text: &str) -> Cow<'_, str> {
    if text.chars().any(char::is_uppercase) {
        Cow::Owned(text.to_lowercase())
    } else {
        Cow::Borrowed(text)
    }
}

/// Splits a dotted name into parts, resolving quotes.
fn split(source: &str) -> Result<Vec<Part>, String> {
    let mut parts = Vec::new();
    let mut chars = source.chars().peekable();
    loop {
        let part = if chars.peek() == Some(&'"') {
            chars.next();
            let mut text = String::new();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        text.push('"');
                    }
                    Some('"') => break,
                    Some(c) => text.push(c),
                    None => return Err("a quoted part is not closed".into()),
                }
            }
            if text.is_empty() {
                return Err("a quoted part is empty".into());
            }
            Part::literal(&text)
        } else {
            let mut text = String::new();
            while let Some(&c) = chars.peek() {
                if c == '.' {
                    break;
                }
                if !(c.is_alphanumeric() || c == '_' || c == '$' || c == '*') {
                    return Err(format!(
                        "`{c}` cannot appear in an unquoted name; quote the part (\"…\")"
                    ));
                }
                text.push(c);
                chars.next();
            }
            if text.is_empty() {
                return Err("a part of the name is empty".into());
            }
            // PostgreSQL folds unquoted identifiers' ASCII letters only.
            let text = text.to_ascii_lowercase();
            Part {
                folded: text.to_lowercase(),
                glob: text.contains('*'),
                text,
            }
        };
        parts.push(part);
        match chars.next() {
            None => return Ok(parts),
            Some('.') => {}
            Some(c) => return Err(format!("`{c}` after a quoted part; expected `.`")),
        }
    }
}

/// `*` matches any run of bytes. Literal runs are whole UTF-8 sequences, so
/// matching bytes never splits a character.
fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut resume: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            resume = Some((p + 1, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((after_star, from)) = resume {
            p = after_star;
            t = from + 1;
            resume = Some((after_star, from + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(schemas: &[String]) -> Schemas<'_> {
        Schemas::Path {
            catalog: false,
            path: schemas,
        }
    }

    fn path(schemas: &[&str]) -> Vec<String> {
        schemas.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn globs() {
        for (p, t, want) in [
            ("*", "", true),
            ("*", "anything", true),
            ("dblink*", "dblink_exec", true),
            ("dblink*", "xdblink", false),
            ("pg_*_dir", "pg_ls_dir", true),
            ("a*b*c", "aXbYc", true),
            ("a*b*c", "aXbY", false),
            ("é*", "élan", true),
            ("", "", true),
            ("x", "", false),
        ] {
            assert_eq!(glob_match(p.as_bytes(), t.as_bytes()), want, "{p} ~ {t}");
        }
    }

    #[test]
    fn parts_fold_like_postgresql_identifiers() {
        let p = NamePattern::parse("Billing.Invoices").unwrap();
        assert!(p.surely_names("billing", "invoices"));
        assert!(!p.surely_names("Billing", "Invoices"));
        let q = NamePattern::parse(r#""Billing"."In""voices""#).unwrap();
        assert!(q.surely_names("Billing", "In\"voices"));
        assert!(!q.surely_names("billing", "in\"voices"));
        let dotted = NamePattern::parse(r#""a.b".c"#).unwrap();
        assert!(dotted.surely_names("a.b", "c"));
        let literal_star = NamePattern::parse(r#"s."*""#).unwrap();
        assert!(literal_star.surely_names("s", "*") && !literal_star.surely_names("s", "t"));
    }

    #[test]
    fn deny_strength_ignores_case_and_tries_every_schema() {
        let p = NamePattern::parse("billing.*").unwrap();
        assert!(p.may_name(&Schemas::One("billing"), &Folded::new("invoices")));
        assert!(p.may_name(&Schemas::One("BILLING"), &Folded::new("x")));
        assert!(p.may_name(&known(&path(&["public", "billing"])), &Folded::new("x")));
        assert!(p.may_name(&Schemas::Any, &Folded::new("anything")));
        assert!(!p.may_name(&known(&path(&["public"])), &Folded::new("invoices")));
        let bare = NamePattern::parse("secrets").unwrap();
        assert!(bare.may_name(&Schemas::One("hr"), &Folded::new("Secrets")));
        assert!(!bare.may_name(&Schemas::One("hr"), &Folded::new("secrets2")));
        let catalog = Schemas::Path {
            catalog: true,
            path: &[],
        };
        assert!(
            NamePattern::parse("pg_catalog.pg_sleep")
                .unwrap()
                .may_name(&catalog, &Folded::new("pg_sleep"))
        );
        assert!(
            bare.covers_text("secrets") && p.covers_text("billing.x") && !p.covers_text("public.x")
        );
    }

    #[test]
    fn allow_strength_needs_a_schema() {
        let bare = NamePattern::parse("users").unwrap();
        assert!(!bare.surely_names("public", "users"));
        assert!(
            bare.qualified_with("public")
                .surely_names("public", "users")
        );
        let glob = NamePattern::parse("public.*").unwrap();
        assert!(glob.surely_names("public", "Orders"));
        assert!(!glob.surely_names("Public", "orders"));
    }

    #[test]
    fn bad_names_are_refused() {
        for bad in [
            "",
            ".",
            "a.",
            ".b",
            "a..b",
            "\"unterminated",
            "\"\"",
            "a b",
            "a;b",
            "\"a\"b",
            "db.s.t",
        ] {
            assert!(NamePattern::parse(bad).is_err(), "{bad:?}");
        }
    }
}
