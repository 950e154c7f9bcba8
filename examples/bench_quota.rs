//! The shared API quota's cost (issue 17): the latency one outbound request gains from taking
//! its slot in PostgreSQL's `api_quotas` row instead of the in-process limiter, p50/p95. Calls
//! are spaced wider than the quota (the limiter's smallest spacing is 5 ms), so no call waits for
//! its turn: each call's time is the limiter's own cost. Run by `scripts/bench-quota`.
//!
//! cargo run --release --example bench_quota -- postgres://… [CALLS]

use std::time::{Duration, Instant};

use account_scanner::config::parse_database_url;
use account_scanner::db::Db;
use account_scanner::net::{ApiLimiter, RateLimit, RetryPolicy};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// `calls` slots taken one after another, 7 ms apart; the time each `acquire` took.
async fn measure(limiter: &ApiLimiter, calls: usize) -> (Duration, Duration) {
    let mut times = Vec::new();
    for _ in 0..calls {
        tokio::time::sleep(Duration::from_millis(7)).await;
        let start = Instant::now();
        limiter.acquire().await.expect("the quota answers");
        times.push(start.elapsed());
    }
    times.sort();
    (percentile(&times, 0.5), percentile(&times, 0.95))
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let url = args
        .get(1)
        .expect("usage: bench_quota postgres://… [CALLS]");
    let calls: usize = args.get(2).and_then(|c| c.parse().ok()).unwrap_or(500);
    let target = parse_database_url(url, std::path::Path::new("/tmp")).expect("a database URL");
    let db = Db::open(&target).await.expect("open");
    let quotas = db.shared().expect("PostgreSQL");
    let rate = RateLimit::per_second(1000.0);
    let local = ApiLimiter::new("Bench", rate, RetryPolicy::default());
    let (lp50, lp95) = measure(&local, calls).await;
    let shared = ApiLimiter::new("Bench", rate, RetryPolicy::default());
    shared.share(quotas, "bench-credential");
    let (sp50, sp95) = measure(&shared, calls).await;
    let rows = [format!(
        "| {calls} | {:.3} ms | {:.3} ms | {:.3} ms | {:.3} ms | {:.3} ms |",
        ms(lp50),
        ms(lp95),
        ms(sp50),
        ms(sp95),
        ms(sp50.saturating_sub(lp50))
    )];
    println!("{}", rows.join("\n"));
}
