//! Cost of the SQL analysis every statement goes through before the guardrail
//! plugins see it: a typical OLTP statement uncached (parse, decode, walk) and
//! cached (a lookup by text), plus a multi-statement string and a 1000-item IN
//! list uncached, and a query whose literal changes every time (shape cache).
//!
//! cargo bench -p sluice --bench sql_analysis

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use sluice::sql::Analyzer;

const OLTP: &str = "UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2";
const JOIN: &str = "SELECT o.id, o.total, c.name FROM orders o JOIN customers c ON c.id = o.customer_id \
                    WHERE o.created_at > now() - interval '1 day' AND c.region = $1 ORDER BY o.total DESC LIMIT 50";
const MULTI: &str = "BEGIN; UPDATE accounts SET balance = balance - 10 WHERE id = 1; \
                     INSERT INTO history (aid, delta) VALUES (1, -10); COMMIT";

fn bench_analysis(c: &mut Criterion) {
    let uncached = Analyzer::new(0);
    let cached = Analyzer::new(1024);
    let in_list = format!(
        "SELECT * FROM t WHERE id IN ({})",
        (0..1000)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",")
    );
    for (name, sql) in [
        ("oltp_update", OLTP),
        ("join_select", JOIN),
        ("transaction_4_statements", MULTI),
    ] {
        c.bench_function(&format!("sql/{name}/uncached"), |b| {
            b.iter(|| uncached.analyze(black_box(sql)).map(|s| s.len()))
        });
        cached.analyze(sql).ok();
        c.bench_function(&format!("sql/{name}/cached"), |b| {
            b.iter(|| cached.analyze(black_box(sql)).map(|s| s.len()))
        });
    }
    // For comparison: the parser and protobuf decode alone (pg_query's own API).
    c.bench_function("sql/oltp_update/pg_query_parse_only", |b| {
        b.iter(|| pg_query::parse(black_box(OLTP), 0).map(|r| r.protobuf.stmts.len()))
    });
    c.bench_function("sql/oltp_update/stacker_grow_only", |b| {
        b.iter(|| stacker::grow(64 * 1024 * 1024, || black_box(1)))
    });
    // pgbench -S in simple mode: a new literal every time. The exact-text
    // cache misses; the shape cache (texts differing only in literals) hits.
    let mut aid = 0u32;
    let shaped = Analyzer::new(1024);
    c.bench_function("sql/select_new_literal/shape_cached", |b| {
        b.iter(|| {
            aid = aid.wrapping_add(7919);
            let sql = format!("SELECT abalance FROM pgbench_accounts WHERE aid = {aid};");
            shaped.analyze(black_box(&sql)).map(|s| s.len())
        })
    });
    c.bench_function("sql/select_new_literal/uncached", |b| {
        b.iter(|| {
            aid = aid.wrapping_add(7919);
            let sql = format!("SELECT abalance FROM pgbench_accounts WHERE aid = {aid};");
            uncached.analyze(black_box(&sql)).map(|s| s.len())
        })
    });
    c.bench_function("sql/in_list_1000/uncached", |b| {
        b.iter(|| uncached.analyze(black_box(&in_list)).map(|s| s.len()))
    });
}

criterion_group!(benches, bench_analysis);
criterion_main!(benches);
