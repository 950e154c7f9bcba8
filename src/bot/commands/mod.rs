//! `scan`, `health` and `shutdown`, each a prefix and a slash command (one poise function).
//! They parse, call plain functions, and render.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use poise::serenity_prelude as serenity;
use poise::{CreateReply, FrameworkError};
use tokio::time::Instant;

use crate::bot::render::{self, Progress};
use crate::bot::{BotError, BotState, Context, audit};
use crate::config::Config;
use crate::model::{DiscordMember, ScanReport, SectionStatus};
use crate::model::{EventSink, ScanEvent, ScanMode, Username};
use crate::store::SavedReport;

/// Progress edits at most this often (Discord rate-limits message edits).
const PROGRESS_EVERY: Duration = Duration::from_secs(2);

pub fn framework_options(config: &Config) -> poise::FrameworkOptions<Arc<BotState>, BotError> {
    poise::FrameworkOptions {
        commands: vec![scan(), health(), shutdown()],
        prefix_options: poise::PrefixFrameworkOptions {
            prefix: Some(config.discord.prefix.clone().into()),
            mention_as_prefix: true,
            ..Default::default()
        },
        // Nothing the bot sends may ping anyone, whatever it echoes.
        allowed_mentions: Some(serenity::CreateAllowedMentions::new()),
        // `scan` runs its own cooldown after validation; poise's would count typos too.
        manual_cooldowns: true,
        on_error: |error| Box::pin(on_error(error)),
        pre_command: |ctx| {
            Box::pin(async move {
                tracing::info!(
                    command = %ctx.command().qualified_name,
                    user = ctx.author().id.get(),
                    channel = ctx.channel_id().get(),
                    guild = ctx.guild_id().map(|g| g.get()),
                    "command"
                );
            })
        },
        ..Default::default()
    }
}

/// What a target argument names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Username(Username),
    Member(u64),
}

/// `<@123>` / `<@!123>` is a member; anything else must be a valid username.
pub fn parse_target(input: &str) -> Result<Target, BotError> {
    let trimmed = input.trim();
    if let Some(id) = trimmed
        .strip_prefix("<@")
        .and_then(|r| r.strip_suffix('>'))
        .map(|r| r.trim_start_matches('!'))
        .and_then(|id| id.parse::<u64>().ok())
        .filter(|id| *id > 0)
    {
        return Ok(Target::Member(id));
    }
    Username::parse(trimmed)
        .map(Target::Username)
        .map_err(|e| BotError::user(e.to_string()))
}

pub fn parse_mode(input: Option<&str>) -> Result<ScanMode, BotError> {
    match input {
        None => Ok(ScanMode::All),
        Some(m) => m
            .parse()
            .map_err(|e: crate::model::UnknownMode| BotError::user(e.to_string())),
    }
}

/// Scan a username (or a server member) with Sherlock and Reddit.
#[poise::command(
    prefix_command,
    slash_command,
    guild_only,
    required_permissions = "MODERATE_MEMBERS",
    default_member_permissions = "MODERATE_MEMBERS",
    category = "Moderation"
)]
pub async fn scan(
    ctx: Context<'_>,
    #[description = "A username, or a mention of a server member"] target: String,
    #[description = "all (default), sherlock or reddit"] mode: Option<String>,
) -> Result<(), BotError> {
    // Discord rejects an interaction's first answer after 3 s: defer before anything that can
    // wait (the member fetch, the storage checks).
    if let poise::Context::Application(_) = ctx {
        ctx.defer().await?;
    }
    let state = ctx.data().clone();
    let mode = parse_mode(mode.as_deref())?;
    let (username, member) = resolve_target(ctx, parse_target(&target)?).await?;
    if let Err(e) = state
        .store
        .check_free_space(state.config.ops.min_free_bytes)
    {
        tracing::error!(error = %e, "scan refused: low disk space");
        return Err(BotError::user(
            "Sorry, the bot's disk is almost full, so no scan can start now. An admin can see the details in the log.",
        ));
    }
    check_storage(&state).await?;
    check_cooldown(ctx, &state)?;
    let ticket = state
        .queue
        .enqueue()
        .map_err(|e| BotError::user(format!("Sorry, {e}.")))?;
    let ack = ctx
        .say(render::ack(&username, mode, ticket.position()))
        .await?;
    let slot = match ticket.start().await {
        Ok(slot) => slot,
        Err(e) => {
            ack.edit(
                ctx,
                CreateReply::default().content(format!(
                    "⏹️ The scan of **{}** did not start: {e}.",
                    render::escape(username.as_str())
                )),
            )
            .await?;
            return Ok(());
        }
    };

    let mut request = state.scanner.request(username.clone(), mode);
    request.requested_by = Some(format!(
        "discord user {} ({}) in guild {}",
        ctx.author().id,
        ctx.author().name,
        ctx.guild_id().map(|g| g.to_string()).unwrap_or_default()
    ));
    request.discord_member = member;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let scan = tracing::Instrument::instrument(
        state.scanner.scan(
            request,
            EventSink::channel(tx),
            state.interrupt.child_token(),
        ),
        tracing::info_span!(
            "discord_scan",
            guild = ctx.guild_id().map(|g| g.get()),
            channel = ctx.channel_id().get(),
            requester = ctx.author().id.get()
        ),
    );
    // Progress never delays the result: when the scan ends, an edit still on its way (Discord
    // slow or not answering) is abandoned.
    let report = {
        tokio::pin!(scan);
        tokio::select! {
            biased;
            report = &mut scan => report,
            () = show_progress(ctx, &ack, &username, mode, rx) => scan.await,
        }
    };
    // The scan is done: its slot goes to the next one while this one saves and posts; shutdown
    // waits for the post (`posting`) within its budget.
    let _posting = Posting::start(&state);
    drop(slot);

    let store = state.store.clone();
    let to_save = report.clone();
    // `save` makes the directory again if it was removed while the scan ran.
    let saved = tokio::task::spawn_blocking(move || store.save(&to_save))
        .await
        .map_err(|e| BotError::Internal(e.into()))?;
    let reply = match &saved {
        Ok(saved) => result_reply(&report, Some(saved)).await,
        Err(e) => {
            let reference = reference_id();
            tracing::error!(error = %e, scan_id = %report.scan_id, reference = %reference, "report not saved");
            result_reply(&report, None).await.content(format!(
                "⚠️ The report files could not be written on the bot's server, so none are attached; the results are below. An admin can find why in the bot's log (reference `{reference}`)."
            ))
        }
    };
    // Best effort, beside the result and never before it: the acknowledgement may be gone
    // (deleted by a moderator) or Discord may fail or not answer the edit.
    let finished = format!(
        "✅ Scan of **{}** finished{}.",
        render::escape(username.as_str()),
        if report.partial { " (partial)" } else { "" }
    );
    let mark_finished = async {
        match tokio::time::timeout(
            ACK_EDIT_BUDGET,
            ack.edit(ctx, CreateReply::default().content(finished)),
        )
        .await
        {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %describe(&e), "could not mark the acknowledgement finished")
            }
            Err(_) => tracing::warn!(
                "Discord did not answer the edit marking the acknowledgement finished; left as is"
            ),
        }
    };
    let (posted, ()) = tokio::join!(
        send_result(ctx, &state, reply, &report.scan_id),
        mark_finished
    );
    audit::record(
        &state,
        audit::Entry::Scan {
            requester: ctx.author().id.get(),
            channel: ctx.channel_id().get(),
            guild: ctx.guild_id().map(|g| g.get()),
            target: username.to_string(),
            mode: mode.to_string(),
            scan_id: report.scan_id.clone(),
            hits: report.sherlock.counts.claimed,
            unverified: report.sherlock.counts.unverified,
            partial: report.partial,
            failed: report.sherlock.status == SectionStatus::Failed,
            duration_ms: report.duration_ms,
        },
    )
    .await;
    posted?;
    Ok(())
}

/// The final edit of the acknowledgement waits at most this long.
const ACK_EDIT_BUDGET: Duration = Duration::from_secs(5);

/// Counts a finished scan whose result is still being saved and posted (see `BotState::posting`).
struct Posting<'a>(&'a BotState);

impl<'a> Posting<'a> {
    fn start(state: &'a BotState) -> Self {
        state.posting.fetch_add(1, Ordering::SeqCst);
        Posting(state)
    }
}

impl Drop for Posting<'_> {
    fn drop(&mut self) {
        self.0.posting.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Attempts at posting a scan's result: a single bad gateway from Discord must not lose it.
const RESULT_POST_ATTEMPTS: u32 = 3;

/// Discord failures worth another try: 5xx, 429 (serenity retries none of them when its
/// ratelimiter is off, as with `DISCORD_API_BASE`), and requests that never got an answer
/// (refused connections and `DISCORD_HTTP_TIMEOUT`).
fn is_transient(e: &serenity::Error) -> bool {
    match e {
        serenity::Error::Http(serenity::HttpError::UnsuccessfulRequest(r)) => {
            r.status_code.is_server_error() || r.status_code.as_u16() == 429
        }
        serenity::Error::Http(serenity::HttpError::Request(_)) => true,
        _ => false,
    }
}

/// A request that may have reached Discord without its answer coming back.
fn got_no_answer(e: &serenity::Error) -> bool {
    matches!(e, serenity::Error::Http(serenity::HttpError::Request(_)))
}

/// The nonce of a scan's result message (at most 25 characters, as Discord allows).
fn result_nonce(scan_id: &str) -> String {
    format!("scan-{scan_id}").chars().take(25).collect()
}

/// Sends the result, again after 1 s and 2 s when Discord fails transiently, and never twice:
/// a prefix result carries a nonce that Discord enforces (a retry of a post that did arrive
/// returns the first message), and a slash follow-up, which has no such key, is only sent
/// again after no answer when the channel does not already show it. During shutdown it gives
/// up at the plan's `post_by`.
async fn send_result(
    ctx: Context<'_>,
    state: &BotState,
    reply: CreateReply,
    scan_id: &str,
) -> Result<(), BotError> {
    let attempts = async {
        let mut delay = Duration::from_secs(1);
        let mut attempt = 1;
        loop {
            let sent = match ctx {
                poise::Context::Prefix(p) => {
                    let message = reply
                        .clone()
                        .allowed_mentions(serenity::CreateAllowedMentions::new())
                        .to_prefix(p.msg.into())
                        .nonce(serenity::Nonce::String(result_nonce(scan_id)))
                        .enforce_nonce(true);
                    p.msg
                        .channel_id
                        .send_message(ctx, message)
                        .await
                        .map(|_| ())
                }
                poise::Context::Application(_) => ctx.send(reply.clone()).await.map(|_| ()),
            };
            match sent {
                Ok(()) => return Ok(()),
                Err(e) if attempt < RESULT_POST_ATTEMPTS && is_transient(&e) => {
                    tracing::warn!(error = %describe(&e), attempt, "posting the result failed; trying again");
                    tokio::time::sleep(delay).await;
                    if got_no_answer(&e)
                        && matches!(ctx, poise::Context::Application(_))
                        && already_posted(ctx, scan_id).await
                    {
                        tracing::info!(scan_id, "the result had arrived after all");
                        return Ok(());
                    }
                    delay *= 2;
                    attempt += 1;
                }
                Err(e) => return Err(BotError::from(e)),
            }
        }
    };
    // Once shutdown has started, a post may take no longer than its plan allows.
    let shutdown_budget = async {
        state.stop_accepting.cancelled().await;
        if let Some(plan) = state.shutdown.get() {
            tokio::time::sleep_until(plan.post_by).await;
        }
    };
    tokio::select! {
        posted = attempts => posted,
        () = shutdown_budget => Err(BotError::Internal(anyhow::anyhow!(
            "the shutdown budget ran out before Discord took the result"
        ))),
    }
}

/// Whether the channel's latest messages already hold this scan's result (its embed footer
/// names the scan id). Unknown (no access) counts as not posted: a duplicate beats a loss.
async fn already_posted(ctx: Context<'_>, scan_id: &str) -> bool {
    let footer = format!("scan {scan_id} ");
    let me = ctx.framework().bot_id();
    match ctx
        .channel_id()
        .messages(ctx, serenity::GetMessages::new().limit(50))
        .await
    {
        Ok(messages) => messages.iter().any(|m| {
            m.author.id == me
                && m.embeds.iter().any(|e| {
                    e.footer
                        .as_ref()
                        .is_some_and(|f| f.text.starts_with(&footer))
                })
        }),
        Err(e) => {
            tracing::info!(error = %describe(&e), "cannot look for the result in the channel");
            false
        }
    }
}

/// A command's internal failure for the log, with its causes, never a token.
fn describe_bot_error(e: &BotError) -> String {
    match e {
        BotError::Discord(e) => describe(e),
        BotError::Internal(e) => crate::redact::interaction_tokens(&format!("{e:#}")),
        BotError::User(m) => m.clone(),
    }
}

/// A Discord error for the log: its `Display` form with interaction tokens taken out of any
/// URL (`Debug` and some `Display`s carry `/webhooks/{app}/{token}`).
pub fn describe(e: &serenity::Error) -> String {
    let text = match e {
        // Which request failed, for the operator: method and URL (its token taken out below).
        serenity::Error::Http(serenity::HttpError::UnsuccessfulRequest(r)) => format!(
            "{e} ({} {} {})",
            r.status_code.as_u16(),
            r.method.as_str(),
            r.url
        ),
        _ => e.to_string(),
    };
    crate::redact::interaction_tokens(&text)
}

/// A short id that ties a message the user sees to the log line with the details.
fn reference_id() -> String {
    format!("{:06x}", rand::random::<u32>() & 0xff_ffff)
}

/// Refuses (before the scan, not after it) when no report could be written: the scans
/// directory is read-only, full, or gone and cannot be made again. A directory removed while
/// the bot runs is made again here, so scans work once the storage is back.
async fn check_storage(state: &Arc<BotState>) -> Result<(), BotError> {
    let store = state.store.clone();
    let checked = tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(store.dir()).map_err(|source| {
            crate::store::StoreError::CreateDir {
                dir: store.dir().to_path_buf(),
                source,
            }
        })?;
        store.check_writable()
    })
    .await
    .map_err(|e| BotError::Internal(e.into()))?;
    checked.map_err(|e| {
        let reference = reference_id();
        tracing::error!(error = %e, reference = %reference, "scan refused: the scans directory is not writable");
        BotError::user(format!(
            "Sorry, the bot cannot save reports right now, so no scan can start. An admin can find why in the bot's log (reference `{reference}`)."
        ))
    })
}

/// The username to scan, and the member's facts when the target was a mention.
async fn resolve_target(
    ctx: Context<'_>,
    target: Target,
) -> Result<(Username, Option<DiscordMember>), BotError> {
    let id = match target {
        Target::Username(u) => return Ok((u, None)),
        Target::Member(id) => serenity::UserId::new(id),
    };
    let guild = ctx
        .guild_id()
        .ok_or_else(|| BotError::user("Mentions can only be scanned in a server."))?;
    let member = guild.member(ctx, id).await.map_err(|e| {
        tracing::info!(error = %describe(&e), user = id.get(), "mentioned member not found");
        BotError::user("That user is not a member of this server, so there is nothing to scan.")
    })?;
    let username = Username::parse(&member.user.name)
        .map_err(|e| BotError::user(format!("That member's username cannot be scanned: {e}")))?;
    let facts = DiscordMember {
        user_id: id.to_string(),
        username: member.user.name.clone(),
        account_created: chrono::DateTime::from_timestamp(id.created_at().unix_timestamp(), 0)
            .unwrap_or_default(),
        joined_server: member
            .joined_at
            .and_then(|t| chrono::DateTime::from_timestamp(t.unix_timestamp(), 0)),
    };
    Ok((username, Some(facts)))
}

/// Per-user cooldown, counted only for scans that pass validation (a typo costs nothing).
fn check_cooldown(ctx: Context<'_>, state: &BotState) -> Result<(), BotError> {
    let cooldown = state.config.discord.scan_cooldown;
    if cooldown.is_zero() {
        return Ok(());
    }
    let config = poise::CooldownConfig {
        user: Some(cooldown),
        ..Default::default()
    };
    let mut tracker = ctx
        .command()
        .cooldowns
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(left) = tracker.remaining_cooldown(ctx.cooldown_context(), &config) {
        return Err(BotError::user(format!(
            "You're too fast. Please wait {} seconds before retrying",
            left.as_secs().max(1)
        )));
    }
    tracker.start_cooldown(ctx.cooldown_context());
    Ok(())
}

/// Edits the acknowledgement with progress, at most every two seconds, until the scan ends.
async fn show_progress(
    ctx: Context<'_>,
    ack: &poise::ReplyHandle<'_>,
    username: &Username,
    mode: ScanMode,
    mut events: tokio::sync::mpsc::UnboundedReceiver<ScanEvent>,
) {
    let mut p = Progress::default();
    let mut dirty = false;
    let mut tick = tokio::time::interval_at(Instant::now() + PROGRESS_EVERY, PROGRESS_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            event = events.recv() => {
                let Some(event) = event else { break };
                match event {
                    ScanEvent::SherlockStarted { sites_total } => p.sites_total = sites_total,
                    ScanEvent::SiteChecked { result, checked, sites_total } => {
                        p.sites_checked = checked;
                        p.sites_total = sites_total;
                        if result.status == crate::model::SiteStatus::Claimed {
                            p.claimed += 1;
                        }
                    }
                    ScanEvent::SherlockFinished { .. } => p.sherlock_done = true,
                    ScanEvent::RedditAccount { status, .. } => p.reddit_account = Some(status.as_str()),
                    ScanEvent::RedditFetched { comments, posts } => p.reddit_fetched = comments + posts,
                    ScanEvent::RedditScored { done, .. } => p.reddit_scored = done,
                    ScanEvent::RedditFinished { .. } => p.reddit_done = true,
                }
                dirty = true;
            }
            _ = tick.tick(), if dirty => {
                dirty = false;
                let text = render::progress(username, mode, &p);
                if let Err(e) = ack.edit(ctx, CreateReply::default().content(text)).await {
                    tracing::warn!(error = %describe(&e), "progress edit failed");
                }
            }
        }
    }
}

/// The final message: embeds, the report files (or where they are when too big), notices.
async fn result_reply(report: &ScanReport, saved: Option<&SavedReport>) -> CreateReply {
    let mut reply = CreateReply::default();
    for e in render::result_embeds(report) {
        let mut embed = serenity::CreateEmbed::new()
            .title(e.title)
            .description(e.description)
            .colour(e.colour)
            .footer(serenity::CreateEmbedFooter::new(e.footer));
        for (name, value) in e.fields {
            embed = embed.field(name, value, false);
        }
        reply = reply.embed(embed);
    }
    let mut notes = Vec::new();
    for path in saved.map(SavedReport::paths).unwrap_or_default() {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let size = tokio::fs::metadata(path).await.map(|m| m.len()).ok();
        match size {
            Some(size) if size <= render::UPLOAD_LIMIT_BYTES => match tokio::fs::read(path).await {
                Ok(bytes) => {
                    reply = reply.attachment(serenity::CreateAttachment::bytes(bytes, name))
                }
                Err(e) => {
                    tracing::error!(error = %e, file = %path.display(), "cannot attach report");
                    notes.push(format!(
                        "{} could not be attached; it is on the bot's server at {}",
                        render::code(&name),
                        render::code(&path.display().to_string())
                    ));
                }
            },
            Some(size) => notes.push(format!(
                "{} is {}, over Discord's {} upload limit; it is on the bot's server at {}",
                render::code(&name),
                render::human_size(size),
                render::human_size(render::UPLOAD_LIMIT_BYTES),
                render::code(&path.display().to_string())
            )),
            None => notes.push(format!(
                "{} is missing on the bot's server",
                render::code(&name)
            )),
        }
    }
    if !notes.is_empty() {
        reply = reply.content(notes.join("\n"));
    }
    reply
}

/// Bot status: version, uptime, latency, integrations, scans, disk and memory.
#[poise::command(prefix_command, slash_command)]
pub async fn health(ctx: Context<'_>) -> Result<(), BotError> {
    let state = ctx.data();
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
    let text = render::health(&render::Health {
        version: env!("CARGO_PKG_VERSION").into(),
        uptime: state.started.elapsed(),
        gateway_latency: Some(ctx.ping().await),
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
    });
    ctx.say(text).await?;
    Ok(())
}

/// Stop the bot after running scans finish (admins only).
#[poise::command(prefix_command, slash_command, hide_in_help)]
pub async fn shutdown(ctx: Context<'_>) -> Result<(), BotError> {
    let state = ctx.data();
    let user = ctx.author().id;
    if !state.is_admin(user) {
        audit::record(
            state,
            audit::Entry::Refused {
                user: user.get(),
                channel: ctx.channel_id().get(),
                command: "shutdown".into(),
                why: "not in ADMIN_USER_IDS".into(),
            },
        )
        .await;
        return Err(BotError::user(
            "Sorry, only the bot's admins can shut it down.",
        ));
    }
    // Stop taking scans before confirming, so no scan can slip in after the confirmation.
    // Scans still running and finished ones still posting: shutdown waits for both.
    let running = state.queue.running() + state.posting.load(Ordering::SeqCst);
    state.request_shutdown(&format!("user {user}"));
    let finish_within = state
        .shutdown
        .get()
        .map(|plan| {
            plan.finish_by
                .saturating_duration_since(tokio::time::Instant::now())
        })
        .unwrap_or(state.config.discord.shutdown_grace);
    ctx.say(format!(
        "⏹️ Shutting down: no new scans; waiting up to {:.0} s for {running} running scan(s) to finish.",
        finish_within.as_secs_f64()
    ))
    .await?;
    audit::record(
        state,
        audit::Entry::Shutdown {
            by: format!("<@{}>", user.get()),
        },
    )
    .await;
    Ok(())
}

async fn on_error(error: FrameworkError<'_, Arc<BotState>, BotError>) {
    match error {
        FrameworkError::Command { error, ctx, .. } => {
            let text = match error {
                BotError::User(message) => message,
                internal => {
                    let reference = reference_id();
                    tracing::error!(
                        reference = %reference,
                        command = %ctx.command().qualified_name,
                        error = %describe_bot_error(&internal),
                        "command failed"
                    );
                    format!(
                        "Sorry, something went wrong on our side (reference `{reference}`). An admin can find the details in the bot's log."
                    )
                }
            };
            if let Err(e) = ctx
                .send(CreateReply::default().content(text).ephemeral(true))
                .await
            {
                tracing::warn!(error = %describe(&e), "could not send the error message");
            }
        }
        FrameworkError::MissingUserPermissions {
            ctx,
            missing_permissions,
            ..
        } => {
            audit::record(
                ctx.data(),
                audit::Entry::Refused {
                    user: ctx.author().id.get(),
                    channel: ctx.channel_id().get(),
                    command: ctx.command().qualified_name.to_string(),
                    why: missing_permissions
                        .map(|p| format!("lacks {p}"))
                        .unwrap_or_else(|| "permissions unknown".into()),
                },
            )
            .await;
            // poise's own wording, which moderators may already know.
            let text = match missing_permissions {
                Some(p) => format!(
                    "You're lacking permissions for `{}{}`: {p}",
                    ctx.prefix(),
                    ctx.command().name
                ),
                None => format!(
                    "You may be lacking permissions for `{}{}`. Not executing for safety",
                    ctx.prefix(),
                    ctx.command().name
                ),
            };
            let _ = ctx
                .send(CreateReply::default().content(text).ephemeral(true))
                .await;
        }
        FrameworkError::GuildOnly { ctx, .. } => {
            let text = format!(
                "`{}` works in a server channel only, not in direct messages.",
                ctx.command().qualified_name
            );
            let _ = ctx.send(CreateReply::default().content(text)).await;
        }
        other => {
            if let Err(e) = poise::builtins::on_error(other).await {
                tracing::warn!(error = %describe(&e), "error handler failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_mentions_or_valid_usernames() {
        assert_eq!(
            parse_target("<@123>").expect("mention"),
            Target::Member(123)
        );
        assert_eq!(
            parse_target("<@!456>").expect("mention"),
            Target::Member(456)
        );
        assert_eq!(
            parse_target(" alice ").expect("name"),
            Target::Username(Username::parse("alice").expect("valid"))
        );
        let err = parse_target("@everyone").expect_err("invalid").to_string();
        assert!(err.contains("'@' cannot appear in a profile URL"), "{err}");
        assert!(parse_target("<@abc>").is_err());
    }

    #[test]
    fn modes_have_a_specific_message() {
        assert_eq!(parse_mode(None).expect("default"), ScanMode::All);
        assert_eq!(
            parse_mode(Some("Sherlock")).expect("valid"),
            ScanMode::Sherlock
        );
        let err = parse_mode(Some("deep")).expect_err("invalid").to_string();
        assert_eq!(
            err,
            "`deep` is not a scan mode: use all, sherlock or reddit"
        );
    }
}
