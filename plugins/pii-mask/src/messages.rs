//! Column values in PostgreSQL's server messages, which the gateway hands
//! [`crate::body`] as a JSON array of the message's fields. Column rules
//! mask cells by column name, and a message quotes cells too, where no
//! column name comes with them: a bare `536221847` in a rule's column is
//! nothing the detectors recognise. Two forms are handled, in any text:
//!
//! - `Key (col1, col2)=(val1, val2)`, of unique, exclusion and foreign key
//!   violations (`… already exists.`, `… is not present in table …`,
//!   `… conflicts with existing key (…)=(…).`, `… is still referenced from
//!   table …`, `… is duplicated.`): the value of a column a masking rule
//!   matches is masked as the rule masks a text cell, `null` writing the
//!   redact form (there is no null in a message). A rule matches on its
//!   column part alone (the message does not name the table): masking errs
//!   towards masking; `keep` rules do not apply. Values are not quoted and
//!   may hold `, `: a list of several is split only where it splits into
//!   exactly as many values as there are columns, otherwise it is masked
//!   whole. An expression in the column list (`lower(ssn)`) is matched by
//!   every name in it.
//! - `Failing row contains (…)` (a NOT NULL or CHECK violation) lists a
//!   whole row without column names: with any masking rule in force, the
//!   list is withheld (`Failing row contains (withheld by pii-mask).`).
//!
//! The `(…)=(…)` form is found by its shape, so translated messages keep
//! it; the failing row only in English.

use crate::config::{Rule, RuleAction};
use crate::detect::find;
use crate::mask::{Engine, Strategy};

/// The masking column rules in force for a session.
#[derive(Clone, Copy)]
pub struct Rules<'a> {
    rules: &'a [Rule],
    exempt: u64,
}

impl<'a> Rules<'a> {
    /// `None` when no masking rule is in force (all `keep` or exempt).
    pub fn new(rules: &'a [Rule], exempt: u64) -> Option<Self> {
        let rules = Rules { rules, exempt };
        rules.masking().next().is_some().then_some(rules)
    }

    fn masking(&self) -> impl Iterator<Item = (usize, Strategy, &'a Rule)> + '_ {
        self.rules.iter().filter_map(|r| match r.action {
            RuleAction::Mask(s) if self.exempt & (1 << r.label) == 0 => Some((r.label, s, r)),
            _ => None,
        })
    }

    /// The label and strategy of the first masking rule for the column
    /// list entry `entry`.
    fn for_column(&self, entry: &[u8]) -> Option<(usize, Strategy)> {
        let names = names(entry);
        self.masking()
            .find(|(_, _, r)| names.iter().any(|n| r.matches_column_name(n)))
            .map(|(label, strategy, _)| (label, strategy))
    }
}

const FAILING_ROW: &[u8] = b"Failing row contains (";

/// How far from a `)=(` its lists are looked for: a message's are short,
/// and a long line with many `)=(` must not cost a pass over the line for
/// each.
const REACH: usize = 4096;
const WITHHELD: &[u8] = b"withheld by pii-mask";

/// What follows the value list of the `Key (…)=(…)` messages: where it
/// ends, whatever parentheses the values hold.
const AFTER_KEY: [&[u8]; 5] = [
    b") already exists",
    b") is not present in table",
    b") conflicts with existing key",
    b") is still referenced from table",
    b") is duplicated",
];

/// `text` with the column values it names masked, or `None` if it names
/// none a rule masks.
pub fn rewrite(engine: &mut Engine<'_>, rules: Rules<'_>, text: &[u8]) -> Option<Vec<u8>> {
    let keyed = keys(engine, rules, text);
    let text = keyed.as_deref().unwrap_or(text);
    failing_rows(engine, rules, text).or(keyed)
}

fn keys(engine: &mut Engine<'_>, rules: Rules<'_>, text: &[u8]) -> Option<Vec<u8>> {
    let (mut out, mut copied, mut from) = (Vec::new(), 0, 0);
    while let Some(eq) = find(text, from, b")=(") {
        from = eq + 3;
        let reach = eq.saturating_sub(REACH);
        let line = text[reach..eq]
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(reach, |k| reach + k + 1);
        let Some(open) = opening(text, line, eq) else {
            continue;
        };
        let columns = split(&text[open + 1..eq]);
        let matched: Vec<_> = columns.iter().map(|c| rules.for_column(c)).collect();
        let Some(first) = matched.iter().flatten().next().copied() else {
            continue;
        };
        let (start, end) = (eq + 3, values_end(text, eq + 3));
        let values: Vec<&[u8]> = split_values(&text[start..end]);
        out.extend_from_slice(&text[copied..start]);
        if columns.len() == 1 || values.len() != columns.len() {
            engine.whole(first.0, first.1, &text[start..end], false, &mut out);
        } else {
            for (k, (value, rule)) in values.iter().zip(&matched).enumerate() {
                if k > 0 {
                    out.extend_from_slice(b", ");
                }
                match rule {
                    Some((label, strategy)) => {
                        engine.whole(*label, *strategy, value, false, &mut out);
                    }
                    None => out.extend_from_slice(value),
                }
            }
        }
        copied = end;
        from = end.max(from);
    }
    (copied > 0).then(|| {
        out.extend_from_slice(&text[copied..]);
        out
    })
}

fn failing_rows(engine: &mut Engine<'_>, rules: Rules<'_>, text: &[u8]) -> Option<Vec<u8>> {
    let label = rules.masking().next()?.0;
    let (mut out, mut copied, mut from) = (Vec::new(), 0, 0);
    while let Some(at) = find(text, from, FAILING_ROW) {
        let start = at + FAILING_ROW.len();
        let line_end = line_end(text, start);
        // The last `)` of the line: values may hold any other.
        let end = text[start..line_end]
            .iter()
            .rposition(|b| *b == b')')
            .map_or(line_end, |k| start + k);
        out.extend_from_slice(&text[copied..start]);
        out.extend_from_slice(WITHHELD);
        engine.counts.add(label);
        copied = end;
        from = end.max(start);
    }
    (copied > 0).then(|| {
        out.extend_from_slice(&text[copied..]);
        out
    })
}

/// The `(` opening the column list that the `)` at `close` ends, on the
/// same line (from `line`).
fn opening(text: &[u8], line: usize, close: usize) -> Option<usize> {
    let mut depth = 0usize;
    for k in (line..close).rev() {
        match text[k] {
            b')' => depth += 1,
            b'(' if depth == 0 => return Some(k),
            b'(' => depth -= 1,
            _ => {}
        }
    }
    None
}

/// The end of the value list starting at `start`: before the text a
/// message puts after it, else at the line's last `)`, else at the line's
/// end (masking errs towards masking).
fn values_end(text: &[u8], start: usize) -> usize {
    let line_end = line_end(text, start);
    let line = &text[start..line_end];
    let near = &line[..line.len().min(REACH)];
    AFTER_KEY
        .iter()
        .filter_map(|after| find(near, 0, after))
        .min()
        .or_else(|| line.iter().rposition(|b| *b == b')'))
        .map_or(line_end, |k| start + k)
}

fn line_end(text: &[u8], from: usize) -> usize {
    text[from..]
        .iter()
        .position(|b| *b == b'\n')
        .map_or(text.len(), |k| from + k)
}

/// The items of a list PostgreSQL joins with `, `; for a column list
/// outside parentheses and double quotes only (`lower(a, b)`, `"a, b"`).
fn split(list: &[u8]) -> Vec<&[u8]> {
    let (mut items, mut start, mut depth, mut quoted) = (Vec::new(), 0, 0usize, false);
    for (k, &b) in list.iter().enumerate() {
        match b {
            b'"' => quoted = !quoted,
            b'(' if !quoted => depth += 1,
            b')' if !quoted => depth = depth.saturating_sub(1),
            b',' if !quoted && depth == 0 && list.get(k + 1) == Some(&b' ') => {
                items.push(&list[start..k]);
                start = k + 2;
            }
            _ => {}
        }
    }
    items.push(&list[start..]);
    items
}

/// The values of a value list: split at every `, `, which values may hold
/// too; only a split into as many values as columns is used, and then no
/// value held one.
fn split_values(list: &[u8]) -> Vec<&[u8]> {
    let mut items = Vec::new();
    let mut start = 0;
    while let Some(k) = find(list, start, b", ") {
        items.push(&list[start..k]);
        start = k + 2;
    }
    items.push(&list[start..]);
    items
}

/// The column names in a column list entry: a quoted identifier unquoted,
/// or every identifier in an expression (`lower((ssn)::text)`).
fn names(entry: &[u8]) -> Vec<String> {
    if let [b'"', inner @ .., b'"'] = entry {
        let inner = String::from_utf8_lossy(inner);
        return vec![inner.replace("\"\"", "\"")];
    }
    entry
        .split(|b| !(b.is_ascii_alphanumeric() || matches!(b, b'_' | b'$') || *b >= 0x80))
        .filter(|n| !n.is_empty())
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .collect()
}
