//! Nanoseconds per fingerprint, uncached and through the `Analyzer` cache.
//!
//! ```text
//! cargo run --release -p tidepool-sql --example fingerprint_bench
//! ```

use std::hint::black_box;
use std::time::Instant;

use tidepool_sql::{analyze, fingerprint, Analyzer, Dialect};

fn per_call(iterations: u32, mut f: impl FnMut()) -> f64 {
    // Warm up, then take the best of five rounds (the machine is shared).
    for _ in 0..iterations / 10 {
        f();
    }
    (0..5)
        .map(|_| {
            let started = Instant::now();
            for _ in 0..iterations {
                f();
            }
            started.elapsed().as_nanos() as f64 / f64::from(iterations)
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    let long =
        format!(
        "SELECT o.id, o.amount, u.name, u.email FROM orders o JOIN users u ON u.id = o.user_id \
         WHERE o.status IN ({}) AND o.created_at > now() - interval '7 days' AND u.id = $1 \
         /* report */ ORDER BY o.created_at DESC LIMIT 50",
        (0..100).map(|i| format!("'s{i}'")).collect::<Vec<_>>().join(", ")
    );
    let statements: Vec<(&str, String)> = vec![
        (
            "point select (CLI bench)",
            "SELECT id, name, email, balance FROM t_users WHERE id = $1".into(),
        ),
        (
            "pgbench update, literals inlined",
            "UPDATE pgbench_accounts SET abalance = abalance + -4321 WHERE aid = 817263;".into(),
        ),
        (
            "insert, 4 parameters",
            "INSERT INTO t_events (user_id, kind, payload, created_at) VALUES ($1, $2, $3, $4)"
                .into(),
        ),
        ("join with a 100-item IN list (~1.2 KB)", long),
    ];
    println!(
        "{:<42} {:>8} {:>12} {:>12} {:>12} {:>12}",
        "statement", "bytes", "fingerprint", "analyze", "cached", "session"
    );
    for (name, sql) in &statements {
        let analyzer = Analyzer::new(Dialect::Postgres);
        let n = if sql.len() > 500 { 20_000 } else { 200_000 };
        let fp = per_call(n, || {
            black_box(fingerprint(black_box(sql), Dialect::Postgres));
        });
        let full = per_call(n, || {
            black_box(analyze(black_box(sql), Dialect::Postgres));
        });
        let cached = per_call(n * 5, || {
            black_box(analyzer.analyze(black_box(sql)));
        });
        // What the drivers' session-state dirty bits pay per statement sent
        // outside the statement cache (`Analyzer::session`, a text seen
        // before).
        let session = per_call(n * 5, || {
            black_box(analyzer.session(black_box(sql)));
        });
        println!(
            "{:<42} {:>8} {:>9.0} ns {:>9.0} ns {:>9.0} ns {:>9.0} ns",
            name,
            sql.len(),
            fp,
            full,
            cached,
            session
        );
    }
}
