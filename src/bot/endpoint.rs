//! The operator's endpoint on `HEALTH_PORT`: `GET /healthz` (200 when the gateway is connected
//! (a worker has none) and the scans directory is writable, else 503 with the reason) and `GET /metrics`
//! (Prometheus text format; the gauges of the present are sampled at each scrape, see
//! [`crate::ops::telemetry::sample`]).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use poise::serenity_prelude as serenity;
use serde::Serialize;

use crate::store::ReportStore;

#[derive(Clone)]
pub struct HealthState {
    /// The gateway's shards; `None` for a worker (it holds no gateway connection).
    pub shards: Option<Arc<serenity::ShardManager>>,
    pub store: ReportStore,
    pub metrics: Option<PrometheusHandle>,
    /// `MIN_FREE_SPACE_MB` in bytes, exported as `scans_dir_min_free_bytes`.
    pub min_free_bytes: u64,
    /// For the database's state.
    pub bot: Arc<crate::bot::BotState>,
}

#[derive(Debug, Serialize)]
pub struct Healthz {
    pub status: &'static str,
    /// `null` for a worker (no gateway).
    pub gateway_connected: Option<bool>,
    pub scans_dir_writable: bool,
    pub free_bytes: Option<u64>,
    /// The history database in words ("SQLite · ok"). A database that fails does not make the
    /// process unhealthy (restarting it would not help; with SQLite scans still run and post,
    /// with PostgreSQL new scans pause until it is back): it is reported here and in `warnings`.
    pub database: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// Binds `0.0.0.0:port` and serves until the process ends.
pub async fn serve(port: u16, state: HealthState) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([0, 0, 0, 0], port))).await?;
    tracing::info!(port, "health endpoint listening");
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(Arc::new(state));
    axum::serve(listener, app).await
}

async fn healthz(State(state): State<Arc<HealthState>>) -> Response {
    let gateway_connected = match &state.shards {
        Some(shards) => {
            let runners = shards.runners.lock().await;
            Some(
                !runners.is_empty()
                    && runners
                        .values()
                        .all(|r| r.stage == serenity::ConnectionStage::Connected),
            )
        }
        None => None,
    };
    let writable = state.store.check_writable();
    let mut reasons = Vec::new();
    if gateway_connected == Some(false) {
        reasons.push("the Discord gateway is not connected".to_string());
    }
    if let Err(e) = &writable {
        reasons.push(e.to_string());
    }
    let database = crate::bot::status::database(&state.bot.db).await;
    let warnings = if database.contains("⚠️") {
        vec![format!("history database: {database}")]
    } else {
        Vec::new()
    };
    let body = Healthz {
        status: if reasons.is_empty() {
            "ok"
        } else {
            "unhealthy"
        },
        gateway_connected,
        scans_dir_writable: writable.is_ok(),
        free_bytes: crate::ops::host::free_space(state.store.dir()),
        database,
        reasons,
        warnings,
    };
    let code = if body.reasons.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, axum::Json(body)).into_response()
}

async fn metrics(State(state): State<Arc<HealthState>>) -> Response {
    match &state.metrics {
        Some(handle) => {
            crate::ops::telemetry::sample(
                state.shards.as_deref(),
                state.store.dir(),
                state.min_free_bytes,
            )
            .await;
            (
                [("content-type", "text/plain; version=0.0.4")],
                handle.render(),
            )
                .into_response()
        }
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics recorder not installed",
        )
            .into_response(),
    }
}
