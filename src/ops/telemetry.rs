//! Prometheus metrics (the `metrics` facade; the exporter renders `/metrics`). Without an
//! installed recorder (the CLI) every call here is a no-op.
//!
//! Everything is described and given a value when the recorder is installed, so a bot that
//! has not scanned yet already shows every series an alert rule reads
//! (`deploy/prometheus/alerts.yml`). The gauges that describe the present — the gateway per
//! shard, the scans directory's free space, the process (RSS, CPU, open file descriptors, from
//! the `metrics-process` crate) and the memory limit — are sampled when `/metrics` is scraped
//! ([`sample`]), so they are exact at every scrape and cost nothing in between.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use metrics::{
    Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use poise::serenity_prelude as serenity;

/// Every metric this crate exports (the process metrics of [`metrics_process`] included), for
/// docs/operations.md and the alert-rules test. Histograms add `_bucket`, `_sum` and `_count`.
pub const METRICS: &[&str] = &[
    "build_info",
    "scans_total",
    "scan_duration_seconds",
    "scan_queue_depth",
    "scans_running",
    "outbound_requests_total",
    "rate_limiter_wait_seconds",
    "sherlock_runs_total",
    "gateway_connected",
    "gateway_latency_seconds",
    "scans_dir_free_bytes",
    "scans_dir_min_free_bytes",
    "memory_limit_bytes",
    "process_cpu_seconds_total",
    "process_open_fds",
    "process_max_fds",
    "process_virtual_memory_bytes",
    "process_virtual_memory_max_bytes",
    "process_resident_memory_bytes",
    "process_start_time_seconds",
    "process_threads",
];

/// The histograms among [`METRICS`] (rendered as `_bucket`, `_sum` and `_count`).
pub const HISTOGRAMS: &[&str] = &["scan_duration_seconds", "rate_limiter_wait_seconds"];

/// The `mode` and `outcome` labels `scans_total` can take (its series exist from the start).
const SCAN_MODES: [&str; 3] = ["all", "sherlock", "reddit"];
const SCAN_OUTCOMES: [&str; 3] = ["completed", "partial", "failed"];
const SHERLOCK_OUTCOMES: [&str; 3] = ["completed", "stopped", "failed"];

/// Installs the process-wide recorder once and returns the handle that renders it.
pub fn install() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    metrics_exporter_prometheus::Matcher::Full("scan_duration_seconds".into()),
                    &[1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0],
                )
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        metrics_exporter_prometheus::Matcher::Full(
                            "rate_limiter_wait_seconds".into(),
                        ),
                        &[0.01, 0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0],
                    )
                })
                .and_then(|b| b.install_recorder());
            match handle {
                Ok(h) => {
                    describe();
                    set_initial_values();
                    Some(h)
                }
                Err(e) => {
                    tracing::error!(error = %e, "metrics recorder not installed");
                    None
                }
            }
        })
        .clone()
}

fn process_collector() -> &'static metrics_process::Collector {
    static COLLECTOR: OnceLock<metrics_process::Collector> = OnceLock::new();
    COLLECTOR.get_or_init(metrics_process::Collector::default)
}

fn describe() {
    describe_gauge!(
        "build_info",
        "Always 1; the `version` label is the running account-scanner's version"
    );
    describe_counter!("scans_total", "Scans finished, by mode and outcome");
    describe_histogram!(
        "scan_duration_seconds",
        Unit::Seconds,
        "Wall time of a scan"
    );
    describe_gauge!("scan_queue_depth", "Scans waiting for a slot");
    describe_gauge!("scans_running", "Scans running now");
    describe_counter!(
        "outbound_requests_total",
        "Requests to external APIs, by API and HTTP status (or `error`)"
    );
    describe_histogram!(
        "rate_limiter_wait_seconds",
        Unit::Seconds,
        "Time a request waited for its API's rate limiter"
    );
    describe_counter!("sherlock_runs_total", "Sherlock runs, by outcome");
    describe_gauge!(
        "gateway_connected",
        "1 when this shard's Discord gateway connection is up, else 0, by shard"
    );
    describe_gauge!(
        "gateway_latency_seconds",
        Unit::Seconds,
        "Round trip of the shard's last gateway heartbeat, by shard (absent before the first)"
    );
    describe_gauge!(
        "scans_dir_free_bytes",
        Unit::Bytes,
        "Free space for the bot on the file system holding SCANS_DIR"
    );
    describe_gauge!(
        "scans_dir_min_free_bytes",
        Unit::Bytes,
        "MIN_FREE_SPACE_MB in bytes: scans are refused below it"
    );
    describe_gauge!(
        "memory_limit_bytes",
        Unit::Bytes,
        "The memory the bot's machine or cgroup may use (the lower of memory.max and MemTotal)"
    );
    process_collector().describe();
}

/// The values every series has before anything happened.
fn set_initial_values() {
    gauge!("build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    queue(0, 0);
    for mode in SCAN_MODES {
        for outcome in SCAN_OUTCOMES {
            counter!("scans_total", "mode" => mode, "outcome" => outcome).increment(0);
        }
    }
    for outcome in SHERLOCK_OUTCOMES {
        counter!("sherlock_runs_total", "outcome" => outcome).increment(0);
    }
    // Registered, so the histogram renders (all buckets 0) before the first scan.
    let _ = histogram!("scan_duration_seconds");
    if let Some(limit) = crate::ops::host::memory_limit() {
        gauge!("memory_limit_bytes").set(limit as f64);
    }
    process_collector().collect();
}

/// Refreshes the gauges that describe the present; `/metrics` calls it before rendering.
/// `scans_dir` and `min_free_bytes` are the bot's `SCANS_DIR` and `MIN_FREE_SPACE_MB`.
pub async fn sample(
    shards: Option<&serenity::ShardManager>,
    scans_dir: &Path,
    min_free_bytes: u64,
) {
    if let Some(shards) = shards {
        sample_gateway(shards).await;
    }
    sample_host(scans_dir, min_free_bytes);
}

/// The scans directory's space, the memory limit and the process metrics.
fn sample_host(scans_dir: &Path, min_free_bytes: u64) {
    if let Some(free) = crate::ops::host::free_space(scans_dir) {
        gauge!("scans_dir_free_bytes").set(free as f64);
    }
    gauge!("scans_dir_min_free_bytes").set(min_free_bytes as f64);
    if let Some(limit) = crate::ops::host::memory_limit() {
        gauge!("memory_limit_bytes").set(limit as f64);
    }
    process_collector().collect();
}

/// `gateway_connected` and `gateway_latency_seconds` for every shard this process runs. A
/// shard serenity dropped from its runners (it is being restarted) reads as disconnected.
async fn sample_gateway(shards: &serenity::ShardManager) {
    static SEEN: Mutex<BTreeSet<u32>> = Mutex::new(BTreeSet::new());
    let now: Vec<(u32, bool, Option<Duration>)> = shards
        .runners
        .lock()
        .await
        .iter()
        .map(|(id, info)| {
            (
                id.0,
                info.stage == serenity::ConnectionStage::Connected,
                info.latency,
            )
        })
        .collect();
    let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    for shard in seen.iter() {
        if !now.iter().any(|(id, ..)| id == shard) {
            gauge!("gateway_connected", "shard" => shard.to_string()).set(0.0);
        }
    }
    for (shard, connected, latency) in now {
        seen.insert(shard);
        let label = shard.to_string();
        gauge!("gateway_connected", "shard" => label.clone()).set(if connected {
            1.0
        } else {
            0.0
        });
        if let Some(latency) = latency {
            gauge!("gateway_latency_seconds", "shard" => label).set(latency.as_secs_f64());
        }
    }
}

/// `outcome`: completed, partial or failed.
pub fn scan_finished(mode: &str, outcome: &'static str, duration: Duration) {
    counter!("scans_total", "mode" => mode.to_string(), "outcome" => outcome).increment(1);
    histogram!("scan_duration_seconds").record(duration.as_secs_f64());
}

pub fn queue(waiting: usize, running: usize) {
    gauge!("scan_queue_depth").set(waiting as f64);
    gauge!("scans_running").set(running as f64);
}

/// `status`: the HTTP status code, or `error` when no answer came.
pub fn outbound_request(api: &'static str, status: String) {
    counter!("outbound_requests_total", "api" => api, "status" => status).increment(1);
}

pub fn limiter_wait(api: &'static str, waited: Duration) {
    histogram!("rate_limiter_wait_seconds", "api" => api).record(waited.as_secs_f64());
}

/// `outcome`: completed, stopped or failed.
pub fn sherlock_run(outcome: &'static str) {
    counter!("sherlock_runs_total", "outcome" => outcome).increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `METRICS` is exactly what the recorder renders once everything has happened once (the
    /// gateway's two need a running shard: `tests/ops.rs` checks them on a live bot).
    #[test]
    fn metrics_lists_exactly_what_is_rendered() {
        let handle = install().expect("recorder");
        scan_finished("all", "completed", Duration::from_secs(1));
        outbound_request("Reddit", "200".to_string());
        limiter_wait("Reddit", Duration::from_millis(5));
        sherlock_run("completed");
        sample_host(Path::new("."), 1);
        let text = handle.render();
        let rendered: BTreeSet<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split_whitespace().next())
            .collect();
        let listed: BTreeSet<&str> = METRICS
            .iter()
            .copied()
            .filter(|m| !m.starts_with("gateway_"))
            .collect();
        assert_eq!(rendered, listed, "{text}");
        let histograms: BTreeSet<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" histogram"))
            .collect();
        assert_eq!(histograms, HISTOGRAMS.iter().copied().collect(), "{text}");
        // Described too: every one has its HELP line.
        for m in &listed {
            assert!(text.contains(&format!("# HELP {m} ")), "no HELP for {m}");
        }
    }

    #[test]
    fn the_initial_scan_labels_are_the_real_modes() {
        for mode in SCAN_MODES {
            let parsed: crate::model::ScanMode = mode.parse().expect("a scan mode");
            assert_eq!(parsed.as_str(), mode);
        }
    }
}
