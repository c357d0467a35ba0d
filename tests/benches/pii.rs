//! pii-mask throughput through the real plugin host: 100,000 rows × 5 text
//! columns (names, addresses, cities, notes, comments), masked in batches
//! of 256 rows as the PostgreSQL relay sends them. In the `mixed` case about
//! 10% of the values carry personal data or a secret of one of the kinds
//! the plugin detects; the rest is ordinary text full of digits (order
//! numbers, dates, amounts, house numbers) that must stay as it is. The
//! `clean` case has no personal data at all: the cost of looking.
//! Run with `just bench-pii`; throughput is reported in rows per second.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use sluice::plugins::bindings::types::Column;
use sluice_tests::{PluginDir, session, text_column};

const ROWS: usize = 100_000;
/// Rows per masker call, as the PostgreSQL relay batches them.
const BATCH: usize = 256;

type Row = Vec<Option<Vec<u8>>>;

/// A small deterministic generator (xorshift), so every run masks the same data.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[(self.next() % from.len() as u64) as usize]
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const FIRST: &[&str] = &[
    "Ann", "Bo", "Chidi", "Dana", "Emil", "Fatima", "Goran", "Hana", "Ivo", "Jun",
];
const LAST: &[&str] = &[
    "Lee", "Okafor", "Novak", "Schmidt", "Tanaka", "Garcia", "Jansen", "Rossi",
];
const STREETS: &[&str] = &[
    "Baker Street",
    "Rue de Rivoli",
    "Hauptstraße",
    "Keizersgracht",
    "Via Roma",
];
const CITIES: &[&str] = &[
    "London",
    "Paris",
    "Berlin",
    "Amsterdam",
    "Rome",
    "Osaka",
    "Lagos",
    "Zagreb",
];
const NOTES: &[&str] = &[
    "customer asked about the delivery window",
    "refund approved after review",
    "prefers contact in the afternoon",
    "account upgraded to the business plan",
    "no issues reported",
];

/// One value of personal data or a secret, of kind `k`.
fn pii(g: &mut Gen, k: u64) -> String {
    let n = g.below(9000) + 1000;
    match k {
        0 => format!(
            "reach me at {}.{}{n}@example.com",
            g.pick(FIRST),
            g.pick(LAST)
        )
        .to_lowercase(),
        1 => format!("call +44 20 7946 {n}"),
        2 => "paid with 4242 4242 4242 4242".to_string(),
        3 => format!("phone (415) 555-{n}"),
        4 => "IBAN DE89 3704 0044 0532 0130 00 for the refund".to_string(),
        5 => format!("login from 203.0.113.{}", n % 250),
        6 => "ssn 536-90-4399 verified".to_string(),
        7 => {
            "token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJlLXNpZ25hdHVyZQ".to_string()
        }
        _ => "key AKIAIOSFODNN7EXAMPLE rotated".to_string(),
    }
}

/// Five columns of ordinary text; with `pii`, one value in ten holds personal data.
fn rows(with_pii: bool) -> Vec<Row> {
    let mut g = Gen(0x5eed_1234_abcd_ef01);
    (0..ROWS)
        .map(|i| {
            let mut values = [
                format!("{} {}", g.pick(FIRST), g.pick(LAST)),
                format!(
                    "{} {}, {} {}",
                    g.below(300) + 1,
                    g.pick(STREETS),
                    g.below(90000) + 10000,
                    g.pick(CITIES)
                ),
                g.pick(CITIES).to_string(),
                format!(
                    "order #{} of 2024-{:02}-{:02}: {}, total {}.{:02} EUR",
                    1_000_000 + i,
                    g.below(12) + 1,
                    g.below(28) + 1,
                    g.pick(NOTES),
                    g.below(2000),
                    g.below(100)
                ),
                format!(
                    "ticket {} updated at 10:{:02}:{:02} by agent {}",
                    g.below(99999),
                    g.below(60),
                    g.below(60),
                    g.below(40)
                ),
            ];
            if with_pii {
                for v in &mut values {
                    if g.below(10) == 0 {
                        let kind = g.below(9);
                        *v = pii(&mut g, kind);
                    }
                }
            }
            values.into_iter().map(|v| Some(v.into_bytes())).collect()
        })
        .collect()
}

fn columns() -> Vec<Column> {
    ["name", "address", "city", "note", "comment"]
        .into_iter()
        .map(text_column)
        .collect()
}

fn masking(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = PluginDir::new();
    dir.install("pii-mask", "pii-mask");
    // A generous call deadline: the deadline counts wall-clock epochs, and on
    // a busy benchmark machine a descheduled call would fail the run.
    let config = dir.config(
        "call_deadline_ms = 2000\n\
         [plugins.config.pii-mask]\n\
         entities = { email = \"partial\", card = \"partial\" }\n",
    );
    let host = rt.block_on(async {
        let host = sluice::plugins::PluginHost::new(config).unwrap();
        host.rescan().await;
        host
    });
    let chain = host.chain(&["pii-mask".into()]).unwrap();
    let who = session("agent-1", &["agents"]);
    let columns = columns();

    let mut group = c.benchmark_group("pii_mask");
    group.throughput(Throughput::Elements(ROWS as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    for (label, with_pii) in [("mixed_100k_rows_x5", true), ("clean_100k_rows_x5", false)] {
        let data = rows(with_pii);
        let selection = rt.block_on(chain.select_columns(&who, &columns)).unwrap();
        // What the bench masks: about one value in ten, none in the clean set.
        let changed = rt.block_on(async {
            let mut all = data.clone();
            let mut changed = 0;
            for batch in all.chunks_mut(BATCH) {
                changed += chain
                    .mask_rows(&who, &columns, &selection, batch)
                    .await
                    .unwrap()
                    .cells_changed;
            }
            changed
        });
        let share = changed as f64 / (ROWS * columns.len()) as f64;
        println!("{label}: {changed} values masked ({:.1}%)", share * 100.0);
        assert!(if with_pii {
            (0.08..0.12).contains(&share)
        } else {
            changed == 0
        });

        group.bench_function(label, |b| {
            b.to_async(&rt).iter_batched(
                || data.clone(),
                |mut all| {
                    let chain = &chain;
                    let (who, columns, selection) = (&who, &columns, &selection);
                    async move {
                        for batch in all.chunks_mut(BATCH) {
                            chain
                                .mask_rows(who, columns, selection, batch)
                                .await
                                .unwrap_or_else(|r| panic!("{r}"));
                        }
                        black_box(all)
                    }
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, masking);
criterion_main!(benches);
