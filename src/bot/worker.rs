//! `account-scanner worker`: runs scans from the queue every machine shares (PostgreSQL) and
//! posts their results over Discord's REST API. No gateway connection, so Sherlock's CPU can be
//! scaled apart from the shards. It stops like the bot (SIGTERM or SIGINT: no new job, running
//! scans finish within the grace period).

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;

use crate::bot::BotState;
use crate::bot::rest::{BotHost, start_worker};
use crate::config::{Config, DatabaseTarget};
use crate::sources::sherlock::SherlockInstall;

pub async fn run(config: Config, install: Option<SherlockInstall>) -> anyhow::Result<()> {
    let process_start = Instant::now();
    let token = config
        .discord
        .token
        .clone()
        .context("DISCORD_BOT_TOKEN is required: the worker posts results as the bot")?;
    if !matches!(config.database, DatabaseTarget::Postgres(_)) {
        anyhow::bail!(
            "a worker takes scans from the queue the machines share in PostgreSQL: set DATABASE_URL=postgres://… (the bots' database)"
        );
    }
    if config.discord.max_concurrent_scans == 0 {
        anyhow::bail!("a worker with MAX_CONCURRENT_SCANS=0 would run no scan: give it 1 or more");
    }
    let http = Arc::new(crate::bot::discord_http(token.expose(), &config)?);
    let me = http
        .get_current_user()
        .await
        .map_err(|e| anyhow::anyhow!(crate::bot::commands::describe(&e)))
        .context("asking Discord who the bot is (is DISCORD_BOT_TOKEN right?)")?
        .id;
    // Interaction webhooks are addressed by the application; the gateway's READY tells a bot
    // its id, a worker asks.
    let application = http
        .get_current_application_info()
        .await
        .map_err(|e| anyhow::anyhow!(crate::bot::commands::describe(&e)))
        .context("asking Discord for the bot's application")?
        .id;
    http.set_application_id(application);
    let state = BotState::open(config, install, process_start).await?;
    let shared = state
        .shared
        .clone()
        .context("the database does not hold a shared queue")?;
    let _ = state.http.set(http.clone());
    let metrics = crate::ops::telemetry::install();
    crate::bot::serve_health(&state, None, metrics);
    let warm = state.clone();
    tokio::spawn(async move { warm.scanner.sherlock_version().await });
    tokio::spawn(crate::bot::watch_signals(state.clone()));
    start_worker(
        Arc::new(BotHost {
            state: state.clone(),
            http,
            me,
        }),
        shared,
        "worker",
    );
    tracing::info!(
        since_start_ms = process_start.elapsed().as_millis() as u64,
        "worker ready"
    );
    crate::bot::finish_running_scans(&state).await;
    tracing::info!("stopped");
    Ok(())
}
