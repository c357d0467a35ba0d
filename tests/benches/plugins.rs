//! Plugin call overhead through the real host: a guardrail call with a
//! realistic SQL request (warm instance vs. instantiate-per-call from the
//! cached `InstancePre`; sql-guardrail with the example policy), and masking
//! throughput on 1,000 rows × 4 text columns. Run with `just bench-plugins`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sluice::plugins::bindings::types::{
    FunctionCall, Request, SqlPhase, SqlRequest, SqlStatement, StatementFlags, StatementKind,
    TableRef,
};
use sluice::plugins::{Decision, PluginHost};
use sluice_tests::{PluginDir, session, text_column};

fn realistic_sql() -> Request {
    let text = "SELECT c.id, c.name, c.email, sum(o.total) AS spent FROM public.customers c \
                JOIN public.orders o ON o.customer_id = c.id WHERE c.region = $1 AND o.created_at > now() - interval '30 days' \
                GROUP BY c.id ORDER BY spent DESC LIMIT 50";
    let table = |name: &str| TableRef {
        schema: Some("public".into()),
        name: name.into(),
    };
    Request::Sql(SqlRequest {
        text: text.into(),
        phase: SqlPhase::Parse,
        statements: vec![SqlStatement {
            text: text.into(),
            node: "SelectStmt".into(),
            kind: StatementKind::Query,
            command_tag: "SELECT".into(),
            tables_read: vec![table("customers"), table("orders")],
            tables_written: vec![],
            functions: vec![
                FunctionCall {
                    schema: None,
                    name: "sum".into(),
                    literal_args: vec![None],
                },
                FunctionCall {
                    schema: None,
                    name: "now".into(),
                    literal_args: vec![],
                },
            ],
            has_where: true,
            flags: StatementFlags::empty(),
            setting: None,
            prepared_name: None,
        }],
        parameters: vec![Some("emea".into())],
        statement_name: Some("".into()),
    })
}

fn host(rt: &tokio::runtime::Runtime, dir: &PluginDir, reuse: bool) -> std::sync::Arc<PluginHost> {
    let mut config = dir
        .config("[plugins.config.deny-word]\nwords = [\"drop\", \"truncate\", \"pg_read_file\"]\n");
    config.reuse_instances = reuse;
    rt.block_on(async {
        let host = PluginHost::new(config).unwrap();
        host.rescan().await;
        host
    })
}

fn guardrail_call(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = PluginDir::new();
    dir.install("deny-word", "deny-word");
    let request = realistic_sql();
    let who = session("agent-1", &["agents"]);

    let mut group = c.benchmark_group("guardrail_call");
    for (label, reuse) in [("warm_instance", true), ("instantiate_per_call", false)] {
        let host = host(&rt, &dir, reuse);
        let chain = host.chain(&["deny-word".into()]).unwrap();
        group.bench_function(label, |b| {
            b.to_async(&rt).iter(|| async {
                let d = chain.check(&who, black_box(&request)).await;
                assert!(matches!(d, Decision::Allow));
            })
        });
    }
    group.finish();
}

/// sql-guardrail with the example policy (examples/sql-guardrail.toml) on
/// the same request, for an identity whose policy has a table list and an
/// approval rule to go through.
fn sql_guardrail_call(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = PluginDir::new();
    dir.install("sql-guardrail", "sql-guardrail");
    let example = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/sql-guardrail.toml"),
    )
    .unwrap();
    let start = example.find("[plugins.config.sql-guardrail]").unwrap();
    let end = example.find("[[connections]]").unwrap();
    let host = rt.block_on(async {
        let host = PluginHost::new(dir.config(&example[start..end])).unwrap();
        host.rescan().await;
        host
    });
    let chain = host.chain(&["sql-guardrail".into()]).unwrap();
    let request = realistic_sql();
    let mut group = c.benchmark_group("guardrail_call");
    for group_name in ["agents", "analysts"] {
        let who = session("agent-1", &[group_name]);
        group.bench_function(format!("sql_guardrail_{group_name}"), |b| {
            b.to_async(&rt).iter(|| async {
                let d = chain.check(&who, black_box(&request)).await;
                assert!(matches!(d, Decision::Allow), "{d:?}");
            })
        });
    }
    group.finish();
}

fn masking(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = PluginDir::new();
    dir.install("mask-email", "mask-email");
    let host = host(&rt, &dir, true);
    let chain = host.chain(&["mask-email".into()]).unwrap();
    let who = session("agent-1", &["agents"]);
    let columns = vec![
        text_column("name"),
        text_column("email"),
        text_column("city"),
        text_column("note"),
    ];
    // 10% of the values (two rows in five, one column of four) carry an email address.
    let rows: Vec<Vec<Option<Vec<u8>>>> = (0..1000)
        .map(|i| {
            let email = if i % 5 < 2 {
                format!("customer{i}@example.com")
            } else {
                format!("customer {i}")
            };
            vec![
                Some(format!("Customer Number {i}").into_bytes()),
                Some(email.into_bytes()),
                Some("Amsterdam".as_bytes().to_vec()),
                Some(format!("order #{i} shipped; tracking ZX{:08}", i * 7919).into_bytes()),
            ]
        })
        .collect();

    let mut group = c.benchmark_group("masking");
    group.throughput(Throughput::Elements(rows.len() as u64));
    let selection = rt.block_on(chain.select_columns(&who, &columns)).unwrap();
    group.bench_function("rows_1000x4_text", |b| {
        b.to_async(&rt).iter(|| async {
            let mut batch = rows.clone();
            let report = chain
                .mask_rows(&who, &columns, &selection, &mut batch)
                .await
                .unwrap();
            assert_eq!(report.cells_changed, 400);
            black_box(batch);
        })
    });
    group.finish();
}

criterion_group!(benches, guardrail_call, sql_guardrail_call, masking);
criterion_main!(benches);
