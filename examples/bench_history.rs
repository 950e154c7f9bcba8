//! `/history` against a database of 10,000 scans: the query's latency (p50, p95), the database's
//! size per 1,000 scans and the memory the database layer adds. Run by `scripts/bench-history`
//! on SQLite and PostgreSQL side by side.
//!
//! cargo run --release --example bench_history -- URL [SCANS]
//! (URL: `sqlite:///tmp/x.db` or `postgres://…`)

use std::time::{Duration, Instant};

use account_scanner::config::parse_database_url;
use account_scanner::db::scans::{Place, Scope, TargetKey};
use account_scanner::db::{Db, Engine};
use account_scanner::model::ScanReport;
use account_scanner::store::SavedReport;

const GUILDS: u64 = 20;
const TARGETS: u64 = 500;
const QUERIES: usize = 500;

/// The golden report, with values in place of the redacted fields.
fn template() -> ScanReport {
    let text = include_str!("../tests/golden/report.json")
        .replace(
            r#""checked_at": "<redacted>""#,
            r#""checked_at": "2026-12-01T00:00:00Z""#,
        )
        .replace(
            r#""control_username": "<redacted>""#,
            r#""control_username": "x""#,
        )
        .replace(r#""duration_ms": "<redacted>""#, r#""duration_ms": 1000"#)
        .replace(
            r#""finished_at": "<redacted>""#,
            r#""finished_at": "2026-12-01T00:00:05Z""#,
        )
        .replace(
            r#""response_time_s": "<redacted>""#,
            r#""response_time_s": 0.1"#,
        )
        .replace(r#""scan_id": "<redacted>""#, r#""scan_id": "x""#)
        .replace(
            r#""started_at": "<redacted>""#,
            r#""started_at": "2026-12-01T00:00:00Z""#,
        );
    serde_json::from_str(&text).expect("the golden report")
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let url = args.next().expect("usage: bench_history URL [SCANS]");
    let scans: u64 = args.next().map_or(10_000, |n| n.parse().expect("a count"));
    let target = parse_database_url(&url, &std::env::current_dir().expect("cwd")).expect("URL");
    let rss_before = rss_kib();
    let db = Db::open(&target).await.expect("open");
    let engine = db.engine();

    let base = template();
    let start = Instant::now();
    for i in 0..scans {
        let mut r = base.clone();
        r.scan_id = format!("{i:08x}");
        r.request.username = format!("user{}", i % TARGETS);
        r.finished_at = chrono::Utc::now() - chrono::Duration::seconds((scans - i) as i64);
        let place = Place {
            guild: Some(1_000 + i % GUILDS),
            channel: Some(7),
            requester: Some(42),
            requester_name: Some("mod.mia".into()),
        };
        let saved = SavedReport {
            json: format!("alice_{i}.json").into(),
            sherlock_csv: Some(format!("alice_{i}_sherlock.csv").into()),
            reddit_csv: None,
        };
        db.record_scan(&place, &r, &saved).await.expect("insert");
    }
    let insert = start.elapsed();

    let mut times = Vec::with_capacity(QUERIES);
    for q in 0..QUERIES as u64 {
        let key = TargetKey::username(&format!("user{}", (q * 7) % TARGETS));
        let guild = 1_000 + (q * 7) % TARGETS % GUILDS;
        let t = Instant::now();
        let page = db
            .history(Scope::Guild(guild), &key, 10, 0)
            .await
            .expect("history");
        times.push(t.elapsed());
        assert!(page.total > 0, "every target has scans in its server");
    }
    times.sort();
    let rss_after = rss_kib();

    let bytes: i64 = match engine {
        Engine::Sqlite => {
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&sqlx::AnyPool::connect(&url).await.expect("pool"))
                .await
                .expect("checkpoint");
            let path = db.sqlite_file().expect("file").to_path_buf();
            std::fs::metadata(&path)
                .map(|m| m.len() as i64)
                .unwrap_or(0)
        }
        Engine::Postgres => {
            use sqlx::Row;
            let pool = sqlx::AnyPool::connect(&url).await.expect("pool");
            sqlx::query("SELECT pg_total_relation_size('scans')")
                .fetch_one(&pool)
                .await
                .expect("size")
                .try_get::<i64, _>(0)
                .expect("bytes")
        }
    };
    println!(
        "| {} | {} | {:.2} | {:.2} | {:.2} | {:.0} | {:.1} |",
        engine.name(),
        scans,
        insert.as_secs_f64() * 1000.0 / scans as f64,
        percentile(&times, 0.5).as_secs_f64() * 1000.0,
        percentile(&times, 0.95).as_secs_f64() * 1000.0,
        bytes as f64 / 1024.0 / (scans as f64 / 1000.0),
        rss_after.saturating_sub(rss_before) as f64 / 1024.0,
    );
    db.close().await;
}
