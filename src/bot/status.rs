//! What `health` reports, gathered from the running bot (rendered by `render::health`).

use std::time::Duration;

use crate::bot::{BotState, render};

/// The bot's state now: versions, integrations, queue, disk and memory.
pub async fn collect(state: &BotState, gateway_latency: Duration) -> render::Health {
    let scanner = &state.scanner;
    let sherlock = match scanner.sherlock() {
        Some(runner) => {
            let version = scanner
                .sherlock_version()
                .await
                .unwrap_or_else(|| "version unknown".into());
            let control = if state.config.sherlock.control_check {
                "control probe on"
            } else {
                "control probe off"
            };
            format!(
                "{version} ({}) · sites: {} · {control}",
                runner.install.origin.describe(),
                state.config.sherlock.sites
            )
        }
        None => "not installed (run `account-scanner setup` on the server)".into(),
    };
    render::Health {
        version: env!("CARGO_PKG_VERSION").into(),
        uptime: state.started.elapsed(),
        gateway_latency: Some(gateway_latency),
        sherlock,
        reddit: match &state.config.reddit {
            Some(r) => format!(
                "configured · up to {} comments and {} posts · {} requests/min",
                r.max_comments, r.max_posts, r.rate_per_min
            ),
            None => "not configured".into(),
        },
        toxicity: {
            let info = state.scanner.scorer_info();
            if info.configured {
                format!(
                    "{} ({}){} · threshold {:.2}",
                    info.name,
                    info.model,
                    if info.heuristic { ", heuristic" } else { "" },
                    state.scanner.toxicity_threshold()
                )
            } else {
                "unavailable (its HTTP client could not be set up: Reddit items are left unscored)"
                    .into()
            }
        },
        running: state.queue.running(),
        queued: state.queue.waiting(),
        max_concurrent: state.config.discord.max_concurrent_scans,
        accepting: !state.queue.is_closed(),
        scans_dir: state.store.dir().display().to_string(),
        free_bytes: crate::ops::host::free_space(state.store.dir()),
        rss_bytes: crate::ops::host::process_rss(),
        database: database(&state.db).await,
        machine: machine(state),
        workers: workers(state).await,
    }
}

/// "3 live, 6 slots · 4 waiting in the shared line · vm-a (bot, shards 0-0 of 2) 2/2 busy · …";
/// `None` without the shared queue (SQLite).
async fn workers(state: &BotState) -> Option<String> {
    let shared = state.shared.as_ref()?;
    let seen = tokio::time::timeout(crate::db::ANSWER_WITHIN, async {
        Ok::<_, crate::db::DbError>((shared.live_workers().await?, shared.jobs_waiting().await?))
    })
    .await;
    let (workers, waiting) = match seen {
        Ok(Ok(seen)) => seen,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "health: the workers could not be listed");
            return Some("unknown (the database does not answer)".into());
        }
        Err(_) => return Some("unknown (the database does not answer)".into()),
    };
    let slots: u32 = workers.iter().map(|w| w.slots).sum();
    let each: Vec<String> = workers
        .iter()
        .map(|w| {
            let what = if w.kind == "bot" {
                format!("bot, {}", w.shards)
            } else {
                w.kind.clone()
            };
            format!("{} ({what}) {}/{} busy", w.machine, w.running, w.slots)
        })
        .collect();
    Some(format!(
        "{} live, {slots} slots · {waiting} waiting in the shared line{}{}",
        workers.len(),
        if each.is_empty() { "" } else { " · " },
        each.join(" · ")
    ))
}

/// "3d8d9e1f · shards 0-1 of 4 · API quotas shared through PostgreSQL · join screen on".
/// The shards this process runs, in words.
pub fn shards(config: &crate::config::Config) -> String {
    use crate::config::ShardCount;
    match (config.ops.shards, config.ops.shard_range) {
        (ShardCount::Fixed(n), Some((first, last))) => format!("shards {first}-{last} of {n}"),
        (ShardCount::Fixed(1), None) => "one shard".into(),
        (ShardCount::Fixed(n), None) => format!("all {n} shards"),
        (ShardCount::Auto, _) => "shards as Discord recommends".into(),
    }
}

fn machine(state: &BotState) -> String {
    let name = crate::ops::host::hostname().unwrap_or_else(|| "unknown".into());
    let shards = shards(&state.config);
    let quotas = if state.shared.is_some() {
        "API quotas, cooldowns and the scan queue shared through PostgreSQL"
    } else {
        "API quotas, cooldowns and the scan queue in this process"
    };
    let joins = if state.config.discord.members_intent {
        "join screen available (Server Members intent)"
    } else {
        "join screen off (no Server Members intent)"
    };
    format!("{name} · {shards} · {quotas} · {joins}")
}

/// "SQLite · ok", or why history is not being saved.
pub async fn database(db: &crate::db::Db) -> String {
    let engine = db.engine().name();
    match (db.answers().await, db.last_failure()) {
        (Ok(()), None) => format!("{engine} · ok"),
        (Ok(()), Some(f)) => format!(
            "{engine} · ⚠️ the last write failed at {} (reference `{}`): history may be missing scans",
            f.at.format("%H:%M:%S UTC"),
            f.reference
        ),
        (Err(_), _) if db.engine() == crate::db::Engine::Postgres => format!(
            "{engine} · ⚠️ not reachable: new scans are paused until it is back (running scans finish and post)"
        ),
        (Err(_), _) => format!(
            "{engine} · ⚠️ not reachable: scans still run and post, but history is not saved"
        ),
    }
}
