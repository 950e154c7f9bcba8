//! Prometheus metrics (the `metrics` facade; the exporter renders `/metrics`). Without an
//! installed recorder (the CLI) every call here is a no-op.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

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

fn describe() {
    describe_counter!("scans_total", "Scans finished, by mode and outcome");
    describe_histogram!("scan_duration_seconds", "Wall time of a scan");
    describe_gauge!("scan_queue_depth", "Scans waiting for a slot");
    describe_gauge!("scans_running", "Scans running now");
    describe_counter!(
        "outbound_requests_total",
        "Requests to external APIs, by API and HTTP status (or `error`)"
    );
    describe_histogram!(
        "rate_limiter_wait_seconds",
        "Time a request waited for its API's rate limiter"
    );
    describe_counter!("sherlock_runs_total", "Sherlock runs, by outcome");
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
