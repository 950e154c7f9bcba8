//! The Discord bot: poise 0.7 on serenity 0.12. Commands are thin (see `commands/`); the
//! queue, rendering and audit are plain code in their own modules.

pub mod audit;
pub mod buttons;
pub mod commands;
pub mod endpoint;
pub mod joins;
pub mod render;
pub mod rest;
pub mod status;
pub mod worker;

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use poise::serenity_prelude as serenity;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, DatabaseTarget, ShardCount};
use crate::db::Db;
use crate::db::backup::DatabaseLock;
use crate::jobs::cooldown::Cooldowns;
use crate::jobs::joins::JoinScreen;
use crate::jobs::queue::ScanQueue;
use crate::jobs::scan::{JobError, Services};
use crate::jobs::shutdown::{CLOSE_RESERVE, ShutdownPlan, shutdown_plan};
use crate::scanner::Scanner;
use crate::sources::sherlock::SherlockInstall;
use crate::store::ReportStore;

pub type Context<'a> = poise::Context<'a, Arc<BotState>, BotError>;

/// A command's failure: the user's own mistake (shown as is) or ours (shown as a reference id).
#[derive(Debug, thiserror::Error)]
pub enum BotError {
    #[error("{0}")]
    User(String),
    #[error(transparent)]
    Discord(Box<serenity::Error>),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<serenity::Error> for BotError {
    fn from(e: serenity::Error) -> Self {
        BotError::Discord(Box::new(e))
    }
}

impl From<JobError> for BotError {
    fn from(e: JobError) -> Self {
        match e {
            JobError::Refused(message) => BotError::User(message),
            JobError::Post(e) => BotError::Internal(anyhow::anyhow!(e.detail)),
            JobError::Internal(e) => BotError::Internal(e),
        }
    }
}

impl BotError {
    pub fn user(message: impl Into<String>) -> Self {
        BotError::User(message.into())
    }
}

/// Everything the commands share, for the life of the process.
pub struct BotState {
    pub config: Config,
    pub scanner: Scanner,
    pub db: Db,
    /// Held for the life of the process (SQLite): a second bot or a restore sees it.
    pub db_lock: Option<DatabaseLock>,
    pub store: ReportStore,
    pub queue: ScanQueue,
    pub started: Instant,
    /// Fired when shutdown is requested: no new scans.
    pub stop_accepting: CancellationToken,
    /// Fired when the grace period is over: running scans stop and post what they have.
    pub interrupt: CancellationToken,
    pub http: OnceLock<Arc<serenity::Http>>,
    /// Set when shutdown starts: the deadlines every part of it keeps.
    pub shutdown: OnceLock<ShutdownPlan>,
    /// Scans between the end of their scan and their result post: shutdown waits for them.
    pub posting: std::sync::atomic::AtomicUsize,
    pub cooldowns: Cooldowns,
    /// The join screen's per-server bookkeeping (bursts, automatic scans per hour).
    pub joins: JoinScreen,
    /// With PostgreSQL: the queue every machine shares (scans are handed to it and run by any
    /// machine's worker); `None` with SQLite (scans run in this process).
    pub shared: Option<crate::db::shared::SharedState>,
}

impl BotState {
    /// Opens what a bot or a worker holds for its life: the reports directory, the database
    /// (with PostgreSQL, the quotas, cooldowns and queue every machine shares), the scanner.
    pub async fn open(
        config: Config,
        install: Option<SherlockInstall>,
        process_start: Instant,
    ) -> anyhow::Result<Arc<BotState>> {
        let store = ReportStore::open(&config.scans_dir)?;
        let (db, db_lock) = open_database(&config.database).await?;
        crate::jobs::history::reconcile_and_log(&db, &store).await;
        let shared = db.shared();
        let state = Arc::new(BotState {
            db,
            db_lock,
            queue: ScanQueue::new(config.discord.max_concurrent_scans),
            scanner: Scanner::new(config.clone(), install),
            store,
            started: process_start,
            stop_accepting: CancellationToken::new(),
            interrupt: CancellationToken::new(),
            http: OnceLock::new(),
            shutdown: OnceLock::new(),
            posting: std::sync::atomic::AtomicUsize::new(0),
            cooldowns: Cooldowns::new(),
            joins: JoinScreen::new(
                config.discord.join_batch_delay,
                config.discord.raid_joins,
                config.discord.raid_window,
            ),
            shared,
            config,
        });
        if let Some(shared) = &state.shared {
            state.scanner.share(shared);
            state.cooldowns.share(shared.clone());
            tracing::info!(
                "API quotas, cooldowns and the scan queue are shared with every machine through PostgreSQL"
            );
        }
        Ok(state)
    }

    /// What a scan job needs from the process.
    pub fn services(&self) -> Services<'_> {
        Services {
            scanner: &self.scanner,
            db: Some(&self.db),
            store: &self.store,
            queue: &self.queue,
            shared: self.shared.as_ref(),
            cooldowns: &self.cooldowns,
            min_free_bytes: self.config.ops.min_free_bytes,
            stop_accepting: &self.stop_accepting,
            interrupt: &self.interrupt,
            shutdown: &self.shutdown,
            posting: &self.posting,
        }
    }

    pub fn is_admin(&self, user: serenity::UserId) -> bool {
        self.config.discord.admin_user_ids.contains(&user.get())
    }

    /// Starts shutdown once; later requests are no-ops.
    pub fn request_shutdown(&self, by: &str) {
        if !self.stop_accepting.is_cancelled() {
            self.shutdown.get_or_init(|| {
                shutdown_plan(
                    tokio::time::Instant::now(),
                    self.config.discord.shutdown_grace,
                )
            });
            tracing::warn!(by, "shutdown requested");
            self.queue.close();
            self.stop_accepting.cancel();
        }
    }
}

/// Runs the bot until it is shut down (`!shutdown`, SIGINT or SIGTERM). Returns after running
/// scans have posted their results or the grace period has passed.
pub async fn run(config: Config, install: Option<SherlockInstall>) -> anyhow::Result<()> {
    let process_start = Instant::now();
    let token = config
        .discord
        .token
        .clone()
        .context("DISCORD_BOT_TOKEN is required to run the bot")?;
    let state = BotState::open(config, install, process_start).await?;
    let metrics = crate::ops::telemetry::install();
    apply_retention(&state).await;
    // Learn Sherlock's version now, so `health` never waits for it.
    let warm = state.clone();
    tokio::spawn(async move { warm.scanner.sherlock_version().await });

    let setup_state = state.clone();
    let framework = poise::Framework::builder()
        .options(commands::framework_options(&state.config))
        .setup(move |ctx, ready, framework| {
            Box::pin(async move {
                poise::builtins::register_globally(ctx, &framework.options().commands).await?;
                let _ = setup_state.http.set(ctx.http.clone());
                if let Some(shared) = setup_state.shared.clone() {
                    let host = rest::BotHost {
                        state: setup_state.clone(),
                        http: ctx.http.clone(),
                        me: ready.user.id,
                    };
                    rest::start_worker(Arc::new(host), shared, "bot");
                }
                tracing::info!(
                    user = %ready.user.name,
                    guilds = ready.guilds.len(),
                    since_start_ms = process_start.elapsed().as_millis() as u64,
                    "ready; slash commands registered"
                );
                Ok(setup_state)
            })
        })
        .build();

    let http = discord_http(token.expose(), &state.config)?;
    let mut intents = serenity::GatewayIntents::GUILDS
        | serenity::GatewayIntents::GUILD_MESSAGES
        | serenity::GatewayIntents::DIRECT_MESSAGES
        | serenity::GatewayIntents::MESSAGE_CONTENT;
    // Privileged: Discord refuses the connection unless it is enabled in the developer portal.
    if state.config.discord.members_intent {
        intents |= serenity::GatewayIntents::GUILD_MEMBERS;
    }
    let mut client = serenity::ClientBuilder::new_with_http(http, intents)
        .framework(framework)
        .await
        .context("building the Discord client")?;

    tokio::spawn(watch_signals(state.clone()));
    tokio::spawn(shut_down_when_asked(
        state.clone(),
        client.shard_manager.clone(),
    ));
    if state.config.ops.retention_days > 0 {
        let daily = state.clone();
        tokio::spawn(async move {
            let mut every_day = tokio::time::interval(Duration::from_secs(86_400));
            every_day.tick().await;
            loop {
                every_day.tick().await;
                apply_retention(&daily).await;
            }
        });
    }
    serve_health(&state, Some(client.shard_manager.clone()), metrics);
    let started = match (state.config.ops.shards, state.config.ops.shard_range) {
        // serenity reads the range's end as inclusive ("up to and including"): shards
        // `first..=last` are `first..last`.
        (ShardCount::Fixed(n), Some((first, last))) => {
            client.start_shard_range(first..last, n).await
        }
        (ShardCount::Auto, _) => client.start_autosharded().await,
        (ShardCount::Fixed(1), None) => client.start().await,
        (ShardCount::Fixed(n), None) => client.start_shards(n).await,
    };
    if let Err(serenity::Error::Gateway(serenity::GatewayError::DisallowedGatewayIntents)) = started
    {
        anyhow::bail!(
            "Discord refused the connection: the bot asks for privileged intents that are not enabled for the application (close code 4014). In the Discord developer portal (Bot → Privileged Gateway Intents) enable Message Content Intent{}, or {}",
            if state.config.discord.members_intent {
                " and Server Members Intent"
            } else {
                ""
            },
            if state.config.discord.members_intent {
                "unset DISCORD_MEMBERS_INTENT to run without the join screen"
            } else {
                "check the bot's token belongs to this application"
            }
        );
    }
    started.context("the Discord connection failed")?;
    tracing::info!("stopped");
    Ok(())
}

/// Serves `/healthz` and `/metrics` on `HEALTH_PORT` when it is set (`shards`: `None` for a
/// worker).
pub(crate) fn serve_health(
    state: &Arc<BotState>,
    shards: Option<Arc<serenity::ShardManager>>,
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
) {
    let Some(port) = state.config.ops.health_port else {
        return;
    };
    let health = crate::bot::endpoint::HealthState {
        shards,
        store: state.store.clone(),
        metrics,
        min_free_bytes: state.config.ops.min_free_bytes,
        bot: state.clone(),
    };
    tokio::spawn(async move {
        if let Err(e) = crate::bot::endpoint::serve(port, health).await {
            tracing::error!(error = %e, port, "the health endpoint could not start");
        }
    });
}

/// Connecting to Discord gives up after this (or the request timeout, if shorter).
const DISCORD_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// serenity's REST client with timeouts: its default client has none, so one request Discord
/// never answers (a half-open connection) would block its caller forever.
pub(crate) fn discord_http(token: &str, config: &Config) -> anyhow::Result<serenity::Http> {
    let timeout = config.discord.http_timeout;
    let client = reqwest_012::Client::builder()
        .use_rustls_tls()
        .connect_timeout(DISCORD_CONNECT_TIMEOUT.min(timeout))
        .timeout(timeout)
        .build()
        .context("building the Discord HTTP client")?;
    let builder = serenity::HttpBuilder::new(token).client(client);
    Ok(match &config.discord.api_base {
        // serenity's ratelimiter ignores the proxy and would call the real Discord.
        Some(base) => builder
            .proxy(base.clone())
            .ratelimiter_disabled(true)
            .build(),
        None => builder.build(),
    })
}

/// Opens the database; for SQLite first takes its lock (one bot per file) and puts a staged
/// restore in place.
async fn open_database(target: &DatabaseTarget) -> anyhow::Result<(Db, Option<DatabaseLock>)> {
    let lock = match target {
        DatabaseTarget::Sqlite(path) => {
            let lock = DatabaseLock::try_take(path)?.with_context(|| {
                format!(
                    "another account-scanner bot is using the database {}: stop it first",
                    path.display()
                )
            })?;
            if crate::db::backup::apply_staged_restore(path)? {
                tracing::warn!(file = %path.display(), "a restored database was put in place");
            }
            Some(lock)
        }
        DatabaseTarget::Postgres(_) => None,
    };
    let db = Db::open(target)
        .await
        .with_context(|| format!("opening the database ({})", target.describe()))?;
    tracing::info!(database = %target.describe(), "database open");
    Ok((db, lock))
}

/// Removes scans older than `SCAN_RETENTION_DAYS` (0 keeps them) with their history rows, and
/// report files no row names by their age, logging each removal.
async fn apply_retention(state: &BotState) {
    let days = state.config.ops.retention_days;
    if days == 0 {
        return;
    }
    let max_age = Duration::from_secs(u64::from(days) * 86_400);
    match crate::jobs::history::apply_retention(&state.db, &state.store, max_age).await {
        Ok(gone) => tracing::info!(
            scans = gone.scans,
            files = gone.files,
            days,
            "retention removed old scans from history"
        ),
        Err(e) => tracing::error!(error = %e, "retention could not remove old scans from history"),
    }
    let removed = state.store.remove_older_than(max_age);
    for file in &removed {
        tracing::info!(file = %file.display(), days, "retention removed an old report");
    }
    tracing::info!(removed = removed.len(), days, "retention pass done");
}

pub(crate) async fn watch_signals(state: Arc<BotState>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot listen for SIGTERM/SIGINT");
        return;
    };
    let name = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    };
    audit::record(
        &state,
        audit::Entry::Shutdown {
            by: name.to_string(),
            guild: None,
        },
    )
    .await;
    state.request_shutdown(name);
}

/// Once shutdown is asked: waits for running scans until `finish_by`, interrupts the rest
/// (they post partial results until `post_by`) and waits for their posts.
pub(crate) async fn finish_running_scans(state: &BotState) -> ShutdownPlan {
    state.stop_accepting.cancelled().await;
    let plan = *state.shutdown.get_or_init(|| {
        shutdown_plan(
            tokio::time::Instant::now(),
            state.config.discord.shutdown_grace,
        )
    });
    while state.queue.running() > 0 && tokio::time::Instant::now() < plan.finish_by {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if state.queue.running() > 0 {
        tracing::warn!(
            running = state.queue.running(),
            "grace period over; interrupting running scans"
        );
        state.interrupt.cancel();
    }
    // Interrupted scans post their partial results; the posts themselves give up at
    // `post_by` (see `commands::send_result`). Scans that are done hold no slot.
    while state.posting.load(std::sync::atomic::Ordering::SeqCst) > 0
        && tokio::time::Instant::now() < plan.post_by
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    plan
}

/// Runs the shutdown plan: waits for running scans until `finish_by`, interrupts the rest
/// (they post partial results until `post_by`), then closes the gateway so `run` returns.
async fn shut_down_when_asked(state: Arc<BotState>, shards: Arc<serenity::ShardManager>) {
    let plan = finish_running_scans(&state).await;
    // Let replies already on their way (the shutdown confirmation itself) reach Discord.
    tokio::time::sleep_until(
        plan.exit_by
            .min(tokio::time::Instant::now() + CLOSE_RESERVE),
    )
    .await;
    shards.shutdown_all().await;
    tracing::info!(
        over_budget_ms = tokio::time::Instant::now()
            .saturating_duration_since(plan.exit_by)
            .as_millis() as u64,
        "gateway closed"
    );
}
