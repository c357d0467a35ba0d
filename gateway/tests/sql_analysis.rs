//! The SQL analysis corpus: evasion techniques as data, one row per case.
//!
//! Each row states what the summaries of its text must say. Kinds are checked
//! per statement; flags, writes, reads and functions over all statements.
//! Writes are compared exactly (a missing or an extra write both fail).

mod sql_cases;

use std::sync::Arc;

use sluice::plugins::bindings::types::{SqlStatement, StatementFlags as F, StatementKind as K};
use sluice::sql::Analyzer;
use sql_cases::{Case, cases, show};

fn check(analyzer: &Analyzer, case: &Case) -> Result<(), String> {
    let stmts = analyzer
        .analyze(case.sql)
        .map_err(|e| format!("analysis failed: {e}"))?;
    let kinds: Vec<_> = stmts.iter().map(|s| s.kind).collect();
    if let Some(expected) = &case.kinds
        && &kinds != expected
    {
        return Err(format!("kinds {kinds:?}, expected {expected:?}"));
    }
    let first = stmts.first().ok_or("no statements")?;
    if let Some(tag) = case.tag
        && first.command_tag != tag
    {
        return Err(format!("tag {:?}, expected {tag:?}", first.command_tag));
    }
    if let Some(node) = case.node
        && first.node != node
    {
        return Err(format!("node {:?}, expected {node:?}", first.node));
    }
    let flags = stmts.iter().fold(F::empty(), |acc, s| acc | s.flags);
    if !flags.contains(case.has) {
        return Err(format!("flags {flags:?} lack {:?}", case.has));
    }
    if flags & case.lacks != F::empty() {
        return Err(format!("flags {flags:?} must not contain {:?}", case.lacks));
    }
    if let Some(expected) = &case.writes {
        let mut got: Vec<String> = stmts
            .iter()
            .flat_map(|s| s.tables_written.iter())
            .map(|w| format!("{} {:?} {}", show(&w.table), w.action, w.has_where))
            .collect();
        let mut want: Vec<String> = expected
            .iter()
            .map(|(t, a, w)| format!("{t} {a:?} {w}"))
            .collect();
        got.sort();
        want.sort();
        if got != want {
            return Err(format!("writes {got:?}, expected {want:?}"));
        }
    }
    let reads: Vec<String> = stmts
        .iter()
        .flat_map(|s| s.tables_read.iter())
        .map(show)
        .collect();
    for r in case.reads {
        if !reads.iter().any(|x| x == r) {
            return Err(format!("reads {reads:?} lack {r:?}"));
        }
    }
    for r in case.not_reads {
        if reads.iter().any(|x| x == r) {
            return Err(format!("reads {reads:?} must not contain {r:?}"));
        }
    }
    let calls: Vec<String> = stmts
        .iter()
        .flat_map(|s| s.functions.iter())
        .map(|f| match &f.schema {
            Some(s) => format!("{s}.{}", f.name),
            None => f.name.clone(),
        })
        .collect();
    for f in case.calls {
        if !calls.iter().any(|x| x == f) {
            return Err(format!("functions {calls:?} lack {f:?}"));
        }
    }
    if let Some(w) = case.has_where
        && first.has_where != w
    {
        return Err(format!("has_where {}, expected {w}", first.has_where));
    }
    if let Some((name, value)) = &case.setting {
        let got = first
            .setting
            .as_ref()
            .map(|s| (s.name.as_str(), s.value.as_deref()));
        if got != Some((*name, *value)) {
            return Err(format!("setting {got:?}, expected {:?}", (name, value)));
        }
    }
    if let Some(p) = case.prepared
        && first.prepared_name.as_deref() != Some(p)
    {
        return Err(format!(
            "prepared_name {:?}, expected {p:?}",
            first.prepared_name
        ));
    }
    Ok(())
}

#[test]
fn corpus() {
    let analyzer = Analyzer::new(0);
    let all = cases();
    assert!(all.len() >= 60, "the corpus shrank to {}", all.len());
    let failures: Vec<String> = all
        .iter()
        .filter_map(|case| {
            check(&analyzer, case)
                .err()
                .map(|e| format!("{:?}\n    {e}", case.sql))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        all.len(),
        failures.join("\n")
    );
}

/// Texts that differ only in literal values share one analysis (the shape
/// cache); a variant must get exactly what a cold analysis would give it.
#[test]
fn texts_of_one_shape_are_analysed_as_themselves() {
    let cold = Analyzer::new(0);
    let show = |r: Result<Arc<[SqlStatement]>, sluice::sql::AnalysisError>| format!("{r:?}");
    let mut pairs: Vec<(String, String)> = cases()
        .iter()
        .map(|case| {
            let bumped: String = case
                .sql
                .chars()
                .map(|c| match c.to_digit(10) {
                    Some(d) => char::from_digit((d + 7) % 10, 10).unwrap_or(c),
                    None => c,
                })
                .collect();
            (case.sql.to_string(), bumped)
        })
        .collect();
    for (seen, next) in [
        (
            "SELECT * FROM t WHERE a = 'x'",
            "SELECT * FROM t WHERE a = 'y''; DROP TABLE t; --'",
        ),
        (
            "SELECT * FROM t WHERE a = 'x'",
            "SELECT * FROM t WHERE a = E'\\'; DROP TABLE t; --'",
        ),
        (
            "SELECT set_config('work_mem', '1MB', false)",
            "SELECT set_config('role', 'x', false)",
        ),
        (
            "EXPLAIN (ANALYZE 0) DELETE FROM t",
            "EXPLAIN (ANALYZE 1) DELETE FROM t",
        ),
        ("SELECT 0x1", "SELECT 1x1"),
        (
            "SELECT $1 FROM t WHERE id = 1",
            "SELECT $1 FROM t WHERE id = 2; DELETE FROM t",
        ),
        ("  SELECT 1 ; ", "  SELECT 12345 ; "),
        ("/* 1 */ SELECT 'a' -- 2\n", "/* 1 */ SELECT 'bbbb' -- 2\n"),
        (
            "SELECT * FROM t WHERE d > now() - interval '1 day'",
            "SELECT * FROM t WHERE d > now() - interval '30 days'",
        ),
    ] {
        pairs.push((seen.to_string(), next.to_string()));
    }
    for (seen, next) in &pairs {
        let warm = Analyzer::new(16);
        let _ = warm.analyze(seen);
        assert_eq!(
            show(warm.analyze(next)),
            show(cold.analyze(next)),
            "after {seen:?}, {next:?} was analysed differently"
        );
    }
}

#[test]
fn refused_texts_are_errors_with_positions() {
    let analyzer = Analyzer::new(16);
    for (sql, position) in [
        ("SELEC 1", Some(1)),
        ("SELECT * FROM t WHERE", Some(22)),
        ("SELECT 1; DELETE FRM t", Some(18)),
        ("SELECT $$unterminated", Some(8)),
        ("SELECT $a$ ; DELETE FROM t", Some(8)),
        ("SELECT 1;\0 DELETE FROM t", Some(10)),
        ("SELECT 'é';\0", Some(12)),
        ("SELECT 'abc", Some(8)),
        ("/* unterminated comment", Some(1)),
    ] {
        let err = analyzer.analyze(sql).expect_err(sql);
        assert_eq!(err.cursor_position, position, "{sql:?}: {err:?}");
        assert!(!err.message.is_empty());
    }
}

#[test]
fn the_analyzer_is_shared_between_tasks() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Analyzer>();
    assert_send_sync::<sluice::sql::AnalysisError>();
}

#[test]
fn empty_and_comment_only_queries_have_no_statements() {
    let analyzer = Analyzer::new(16);
    for sql in [
        "",
        "   \n\t",
        ";",
        " ; ; ",
        "-- nothing",
        "/* a /* nested */ comment */",
        "--x\n/*y*/;",
    ] {
        let stmts = analyzer.analyze(sql).expect(sql);
        assert!(stmts.is_empty(), "{sql:?}: {}", stmts.len());
    }
}

/// Ordinary deep SQL works; nesting beyond the parser's limit is an
/// AnalysisError, never a stack overflow (this runs on a 2 MiB test thread).
#[test]
fn deep_nesting_is_refused_not_a_crash() {
    let analyzer = Analyzer::new(0);
    let ok = [
        format!("SELECT {}1{}", "(SELECT ".repeat(40), ")".repeat(40)),
        format!("SELECT 1{}", "+1".repeat(200)),
        format!("SELECT {}1{}", "(".repeat(1_000), ")".repeat(1_000)),
    ];
    for sql in &ok {
        assert_eq!(
            analyzer.analyze(sql).map(|s| s.len()),
            Ok(1),
            "{}",
            &sql[..60]
        );
    }
    for depth in [500, 1_000, 2_000, 5_000, 10_000, 100_000] {
        for sql in [
            format!(
                "SELECT {}1{}",
                "(".repeat(depth * 10),
                ")".repeat(depth * 10)
            ),
            format!("SELECT {}1{}", "-(a".repeat(depth), ")".repeat(depth)),
            format!("SELECT 1{}", "+1".repeat(depth)),
            format!("SELECT {}1{}", "(SELECT ".repeat(depth), ")".repeat(depth)),
            format!(
                "SELECT * FROM t WHERE id IN {}SELECT 1{}",
                "(".repeat(depth),
                ")".repeat(depth)
            ),
        ] {
            // Either outcome is fine up to the parser's limit; what matters is
            // that the process is still here.
            if let Err(e) = analyzer.analyze(&sql) {
                assert!(!e.message.is_empty());
            }
        }
    }
    let err = analyzer
        .analyze(&format!("SELECT 1{}", "+1".repeat(100_000)))
        .expect_err("100,000 levels");
    assert!(
        err.message.contains("stack depth") || err.message.contains("memory exhausted"),
        "{err}"
    );
}

/// The stack check's arithmetic holds on a small thread stack too: whatever
/// the parser accepts is analysed there, or on a grown stack, without overflow.
#[test]
fn small_thread_stacks_do_not_overflow() {
    let worker = std::thread::Builder::new()
        .stack_size(384 * 1024)
        .spawn(|| {
            let analyzer = Analyzer::new(0);
            let mut accepted = 0;
            for depth in [5, 10, 20, 40, 80, 160, 320, 640] {
                for sql in [
                    format!("SELECT 1{}", "+1".repeat(depth)),
                    format!("SELECT {}1{}", "(SELECT ".repeat(depth), ")".repeat(depth)),
                    format!(
                        "SELECT * FROM t WHERE a IN {}SELECT 1{}",
                        "(".repeat(depth),
                        ")".repeat(depth)
                    ),
                ] {
                    accepted += usize::from(analyzer.analyze(&sql).is_ok());
                }
            }
            accepted
        })
        .expect("spawn");
    assert!(worker.join().expect("no overflow") >= 6);
}

#[test]
fn a_megabyte_query_is_handled_in_linear_time() {
    let analyzer = Analyzer::new(16);
    let items: Vec<String> = (0..100_000).map(|i| i.to_string()).collect();
    let sql = format!("DELETE FROM t WHERE id IN ({})", items.join(","));
    assert!(sql.len() > 500_000);
    let start = std::time::Instant::now();
    let stmts = analyzer.analyze(&sql).expect("big IN list");
    assert_eq!(stmts[0].kind, K::Dml);
    let many = "SELECT 1 FROM t;".repeat(60_000);
    let stmts = analyzer.analyze(&many).expect("many statements");
    assert_eq!(stmts.len(), 60_000);
    // Debug build on a busy machine: generous, but far below a quadratic blowup.
    assert!(
        start.elapsed() < std::time::Duration::from_secs(60),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn the_cache_returns_the_same_analysis() {
    let analyzer = Analyzer::new(4);
    let sql = "SELECT * FROM accounts WHERE id = $1";
    let a = analyzer.analyze(sql).expect("parses");
    let b = analyzer.analyze(sql).expect("parses");
    assert!(Arc::ptr_eq(&a, &b), "second analysis was not a cache hit");
    // Eviction: after four other texts the first one is analysed again.
    for i in 0..4 {
        analyzer
            .analyze(&format!("SELECT * FROM t{i}"))
            .expect("parses");
    }
    let c = analyzer.analyze(sql).expect("parses");
    assert!(!Arc::ptr_eq(&a, &c));
    // Long texts are not cached.
    let long = format!("SELECT 1 /* {} */", "x".repeat(70 * 1024));
    let d = analyzer.analyze(&long).expect("parses");
    let e = analyzer.analyze(&long).expect("parses");
    assert!(!Arc::ptr_eq(&d, &e));
    // No cache at all.
    let none = Analyzer::new(0);
    assert!(!Arc::ptr_eq(
        &none.analyze(sql).expect("p"),
        &none.analyze(sql).expect("p")
    ));
}

#[test]
fn statement_texts_literals_and_settings() {
    let analyzer = Analyzer::new(0);
    let stmts = analyzer
        .analyze("/* lead */ SELECT 1;\n  dElEtE FROM t -- tail\n; SELECT 'a;b'")
        .expect("parses");
    let texts: Vec<&str> = stmts.iter().map(|s| s.text.as_str()).collect();
    assert_eq!(texts, ["SELECT 1", "dElEtE FROM t -- tail", "SELECT 'a;b'"]);

    let s = one(
        &analyzer,
        "SELECT set_config('role', 'admin', false), lower(name), f(1.5, NULL, x) FROM t",
    );
    let args: Vec<Vec<Option<&str>>> = s
        .functions
        .iter()
        .map(|f| f.literal_args.iter().map(|a| a.as_deref()).collect())
        .collect();
    assert_eq!(
        args,
        [
            vec![Some("role"), Some("admin"), Some("false")],
            vec![None],
            vec![Some("1.5"), None, None],
        ]
    );
    assert!(s.flags.contains(F::ROLE_CHANGE | F::MODIFIES_STATE));

    let s = one(&analyzer, "SET search_path TO app, \"Public\"");
    let setting = s.setting.as_ref().expect("setting");
    assert_eq!(
        (setting.name.as_str(), setting.value.as_deref()),
        ("search_path", Some("app, Public"))
    );
}

/// Statements that would make the server read later texts differently from
/// this parser are recognised whichever way they set it.
#[test]
fn settings_that_desynchronise_the_parser() {
    let analyzer = Analyzer::new(0);
    for (sql, hazard) in [
        ("SET standard_conforming_strings = off", true),
        ("SET LOCAL standard_conforming_strings TO false", true),
        ("SET NAMES 'SJIS'", true),
        ("SET client_encoding = 'BIG5'", true),
        ("SELECT set_config('client_encoding', 'GBK', false)", true),
        (
            "SELECT pg_catalog.set_config('standard_conforming_strings', v, false) FROM t",
            true,
        ),
        ("SET standard_conforming_strings = on", false),
        ("SET client_encoding = 'UTF8'", false),
        ("SET NAMES 'utf-8'", false),
        ("RESET client_encoding", false),
        ("SELECT set_config('application_name', 'x', false)", false),
        ("SELECT app.set_config('client_encoding', 'SJIS')", false),
    ] {
        let found = one(&analyzer, sql);
        assert_eq!(
            sluice::postgres::parity::statement_refusal(&found).is_some(),
            hazard,
            "{sql}"
        );
    }
    assert!(
        sluice::postgres::parity::parameter_status_refusal("client_encoding", "SQL_ASCII")
            .is_none()
    );
    assert!(
        sluice::postgres::parity::parameter_status_refusal("standard_conforming_strings", "off")
            .is_some()
    );
}

fn one(analyzer: &Analyzer, sql: &str) -> SqlStatement {
    let stmts = analyzer.analyze(sql).expect(sql);
    assert_eq!(stmts.len(), 1, "{sql}");
    stmts[0].clone()
}

/// `SQL='…' cargo test -p sluice --test sql_analysis dump -- --ignored --nocapture`
#[test]
#[ignore = "a debugging aid"]
fn dump() {
    let analyzer = Analyzer::new(0);
    let sql = std::env::var("SQL").unwrap_or_default();
    match analyzer.analyze(&sql) {
        Ok(stmts) => stmts.iter().for_each(|s| println!("{s:#?}")),
        Err(e) => println!("{e:?}"),
    }
}

#[test]
#[ignore = "a debugging aid"]
fn probe_depth() {
    let analyzer = Analyzer::new(0);
    for depth in [10, 20, 30, 50, 100, 1_000, 10_000, 100_000] {
        let parens = format!("SELECT {}1{}", "(".repeat(depth), ")".repeat(depth));
        let neg = format!("SELECT {}1{}", "-(".repeat(depth), ")".repeat(depth));
        let plus = format!("SELECT 1{}", "+1".repeat(depth));
        let sub = format!("SELECT {}1{}", "(SELECT ".repeat(depth), ")".repeat(depth));
        for (what, sql) in [
            ("parens", parens),
            ("neg", neg),
            ("plus", plus),
            ("sub", sub),
        ] {
            let r = analyzer.analyze(&sql);
            println!(
                "{what} {depth}: {:?}",
                r.map(|s| s.len())
                    .map_err(|e| e.message.chars().take(100).collect::<String>())
            );
        }
    }
}

#[test]
#[ignore = "a debugging aid"]
fn probe_memory() {
    fn rss_kb() -> u64 {
        let s = std::fs::read_to_string("/proc/self/status").unwrap();
        s.lines()
            .find(|l| l.starts_with("VmHWM"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }
    let analyzer = Analyzer::new(0);
    let n: usize = std::env::var("TERMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let kind = std::env::var("KIND").unwrap_or_default();
    let sql = match kind.as_str() {
        "values" => format!(
            "INSERT INTO t VALUES {}",
            vec!["(1, 'abc', 2.5, true)"; n].join(",")
        ),
        "in" => format!("SELECT 1 WHERE 1 IN ({})", vec!["1"; n].join(",")),
        _ => format!("SELECT 1 WHERE true{}", " AND true".repeat(n)),
    };
    let before = rss_kb();
    let t = std::time::Instant::now();
    let r = analyzer
        .analyze(&sql)
        .map(|s| s.len())
        .map_err(|e| e.message);
    println!(
        "{kind} terms={n} bytes={} peak_rss_kb before={before} after={} took={:?} {:?}",
        sql.len(),
        rss_kb(),
        t.elapsed(),
        r.map_err(|m| m.chars().take(80).collect::<String>())
    );
}
