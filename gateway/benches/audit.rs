//! The audit log's writer: what one write-ahead record costs a statement
//! (an awaited append, alone, per fsync policy), the records per second a
//! stream of queued events reaches, and awaited appends from 64 sessions at
//! once (group commit). The log is written in a temporary directory under
//! `target/` (a real file system, not tmpfs).
//!
//! cargo bench -p sluice --bench audit

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sluice::audit::{Audit, AuditConfig, Event, FsyncPolicy};

fn event(i: u64) -> Event {
    Event::new("statement.allowed")
        .connection("appdb")
        .with("phase", "simple_query")
        .with(
            "text",
            format!("insert into orders values ({i}, 'agent-1', now())"),
        )
        .with("verdict", "allow")
}

fn open(policy: FsyncPolicy) -> (tempfile::TempDir, Audit) {
    let base = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target");
    let dir = tempfile::tempdir_in(base).unwrap();
    let config = AuditConfig {
        fsync: policy,
        ..AuditConfig::default()
    };
    let audit = Audit::open(dir.path(), &config).unwrap();
    (dir, audit)
}

fn bench_audit(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    let mut group = c.benchmark_group("write_ahead_append");
    group.measurement_time(Duration::from_secs(5));
    for (name, policy) in [
        ("never", FsyncPolicy::Never),
        ("interval", FsyncPolicy::Interval),
        ("always", FsyncPolicy::Always),
    ] {
        let (_dir, audit) = open(policy);
        let mut i = 0;
        group.bench_function(name, |b| {
            b.to_async(&runtime).iter(|| {
                i += 1;
                let audit = audit.clone();
                async move { black_box(audit.append(event(i)).await.unwrap()) }
            })
        });
        runtime.block_on(audit.shutdown());
    }
    group.finish();

    let mut group = c.benchmark_group("queued_events");
    const N: u64 = 10_000;
    group.throughput(Throughput::Elements(N));
    group.sample_size(20);
    let (_dir, audit) = open(FsyncPolicy::Interval);
    group.bench_function("emit_10000_then_flush", |b| {
        b.to_async(&runtime).iter(|| {
            let audit = audit.clone();
            async move {
                for i in 0..N - 1 {
                    audit.emit(event(i));
                }
                black_box(audit.append(event(N)).await.unwrap())
            }
        })
    });
    runtime.block_on(audit.shutdown());
    group.finish();

    let mut group = c.benchmark_group("concurrent_write_ahead_64_sessions");
    group.throughput(Throughput::Elements(64 * 100));
    group.sample_size(10);
    for (name, policy) in [
        ("interval", FsyncPolicy::Interval),
        ("always", FsyncPolicy::Always),
    ] {
        let (_dir, audit) = open(policy);
        group.bench_function(name, |b| {
            b.to_async(&runtime).iter_custom(|iters| {
                let audit = audit.clone();
                async move {
                    let start = Instant::now();
                    for _ in 0..iters {
                        let tasks: Vec<_> = (0..64u64)
                            .map(|s| {
                                let audit = audit.clone();
                                tokio::spawn(async move {
                                    for i in 0..100 {
                                        audit.append(event(s * 1000 + i)).await.unwrap();
                                    }
                                })
                            })
                            .collect();
                        for t in tasks {
                            t.await.unwrap();
                        }
                    }
                    start.elapsed()
                }
            })
        });
        runtime.block_on(audit.shutdown());
    }
    group.finish();
}

criterion_group!(benches, bench_audit);
criterion_main!(benches);
