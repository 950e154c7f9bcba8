//! The join screen (opt-in per server with `settings screening #channel`): each member who joins
//! is posted to the screening channel with their account's age, avatar and earlier scans here,
//! and a Scan button; new accounts may be scanned by themselves (`settings auto_scan on`) behind
//! every moderator's scan, capped per hour. A burst of joins is one summary, edited while it
//! lasts, and pauses automatic scans. Needs the Server Members intent (`DISCORD_MEMBERS_INTENT`).

use std::sync::Arc;

use poise::serenity_prelude as serenity;

use crate::bot::buttons::{Action, ButtonId};
use crate::bot::commands::scan::{create_embed, post_error, prepare_result, result_message};
use crate::bot::{BotState, audit, render};
use crate::db::HistoryPage;
use crate::db::scans::{Scope, TargetKey};
use crate::jobs::joins::{Batch, Join};
use crate::jobs::scan::{JobRequest, Outcome, PostError, Priority, Replies, Requester, Status};
use crate::jobs::settings::Effective;
use crate::model::{DiscordMember, ScanMode, Username};

/// Earlier scans shown on a member's post.
const PREVIOUS_SHOWN: u32 = 3;

/// A member joined (GUILD_MEMBER_ADD): noted, and posted after `JOIN_BATCH_DELAY` with whoever
/// joined meanwhile.
pub async fn on_member_add(
    ctx: &serenity::Context,
    state: &Arc<BotState>,
    member: &serenity::Member,
) {
    if member.user.bot {
        return;
    }
    let guild = member.guild_id.get();
    let settings =
        crate::jobs::settings::effective(Some(&state.db), &state.config, Some(guild)).await;
    if settings.screen_channel.is_none() {
        tracing::info!(
            guild,
            user = member.user.id.get(),
            "member joined; the join screen is off in this server"
        );
        return;
    }
    let joined = member
        .joined_at
        .and_then(|t| chrono::DateTime::from_timestamp(t.unix_timestamp(), 0))
        .unwrap_or_else(chrono::Utc::now);
    let join = Join {
        user_id: member.user.id.get(),
        username: member.user.name.clone(),
        created: chrono::DateTime::from_timestamp(member.user.id.created_at().unix_timestamp(), 0)
            .unwrap_or_default(),
        joined,
        default_avatar: member.user.avatar.is_none(),
    };
    tracing::info!(guild, user = join.user_id, "member joined");
    if state.joins.add(guild, join, tokio::time::Instant::now()) {
        let ctx = ctx.clone();
        let state = state.clone();
        tokio::spawn(async move {
            tokio::time::sleep(state.joins.batch_delay()).await;
            flush(&ctx, &state, guild).await;
        });
    }
}

/// Posts the joins that waited: one post each, or the raid's one summary.
async fn flush(ctx: &serenity::Context, state: &Arc<BotState>, guild: u64) {
    let batch = state
        .joins
        .take_batch(guild, tokio::time::Instant::now(), chrono::Utc::now());
    let settings =
        crate::jobs::settings::effective(Some(&state.db), &state.config, Some(guild)).await;
    let Some(channel) = settings.screen_channel.map(serenity::ChannelId::new) else {
        return;
    };
    match batch {
        Batch::Empty => {}
        Batch::Members(joins) => {
            for join in joins {
                post_member(ctx, state, guild, channel, &settings, join).await;
            }
        }
        Batch::Raid(raid) => {
            let embed = create_embed(render::raid_embed(
                &raid,
                settings.new_account_age,
                state.joins.raid_window(),
                settings.auto_scan,
            ));
            match raid.message {
                None => {
                    tracing::warn!(
                        guild,
                        joins = raid.joins,
                        "join burst: summarised, automatic scans paused"
                    );
                    let message = serenity::CreateMessage::new()
                        .embed(embed)
                        .allowed_mentions(serenity::CreateAllowedMentions::new());
                    match channel.send_message(&ctx.http, message).await {
                        Ok(m) => state.joins.set_raid_message(guild, m.id.get()),
                        Err(e) => {
                            tracing::error!(error = %crate::bot::commands::describe(&e), guild, "could not post the join burst summary")
                        }
                    }
                }
                Some(id) => {
                    let edit = serenity::EditMessage::new().embed(embed);
                    if let Err(e) = channel
                        .edit_message(&ctx.http, serenity::MessageId::new(id), edit)
                        .await
                    {
                        tracing::warn!(error = %crate::bot::commands::describe(&e), guild, "could not update the join burst summary");
                    }
                }
            }
        }
    }
}

/// One member's post, then their automatic scan when they qualify.
async fn post_member(
    ctx: &serenity::Context,
    state: &Arc<BotState>,
    guild: u64,
    channel: serenity::ChannelId,
    settings: &Effective,
    join: Join,
) {
    let now = chrono::Utc::now();
    let key = TargetKey {
        username: join.username.to_lowercase(),
        member: Some(join.user_id),
    };
    let previous = match state
        .db
        .history(Scope::Guild(guild), &key, PREVIOUS_SHOWN, 0)
        .await
    {
        Ok(page) => page,
        Err(e) => {
            tracing::error!(error = %e, guild, "history unreadable for the join screen");
            HistoryPage::default()
        }
    };
    let username = Username::parse(&join.username).ok();
    let auto_scan = (settings.auto_scan
        && username.is_some()
        && join.is_new(settings.new_account_age)
        && !state.joins.in_raid(guild, tokio::time::Instant::now()))
    .then(|| {
        let cap = settings.auto_scan_cap;
        match state
            .joins
            .take_auto_scan(guild, cap, tokio::time::Instant::now())
        {
            Some(nth) => render::AutoScan::Started { nth, cap },
            None => render::AutoScan::CapReached { cap },
        }
    });
    let embed = render::join_embed(&join, settings.new_account_age, &previous, auto_scan, now);
    let mut message = serenity::CreateMessage::new()
        .embed(create_embed(embed))
        .allowed_mentions(serenity::CreateAllowedMentions::new());
    if username.is_some() {
        let expires = crate::bot::buttons::expiry(now, state.config.discord.button_lifetime);
        let scan = ButtonId {
            action: Action::Scan,
            mode: settings.default_mode,
            member: Some(join.user_id),
            username: join.username.clone(),
            expires,
        };
        message = message.components(vec![serenity::CreateActionRow::Buttons(vec![
            serenity::CreateButton::new(scan.encode())
                .label("Scan")
                .style(serenity::ButtonStyle::Primary),
        ])]);
    }
    let posted = match channel.send_message(&ctx.http, message).await {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(error = %crate::bot::commands::describe(&e), guild, user = join.user_id, "could not post to the join screen");
            return;
        }
    };
    if let (Some(render::AutoScan::Started { .. }), Some(username)) = (auto_scan, username) {
        let ctx = ctx.clone();
        let state = state.clone();
        let mode = settings.default_mode;
        tokio::spawn(async move {
            auto_scan_member(&ctx, &state, guild, posted, join, username, mode).await;
        });
    }
}

/// The join screen's own scan of a new account, answered as a reply to its post.
async fn auto_scan_member(
    ctx: &serenity::Context,
    state: &Arc<BotState>,
    guild: u64,
    post: serenity::Message,
    join: Join,
    username: Username,
    mode: ScanMode,
) {
    let me = ctx.cache.current_user().clone();
    let job = JobRequest {
        username,
        member: Some(DiscordMember {
            user_id: join.user_id.to_string(),
            username: join.username.clone(),
            account_created: join.created,
            joined_server: Some(join.joined),
        }),
        mode: Some(mode),
        requester: Requester {
            user_id: me.id.get(),
            user_name: "join screen".into(),
            channel: post.channel_id.get(),
            guild: Some(guild),
        },
        priority: Priority::Automatic,
    };
    let replies = AutoReplies {
        http: ctx.http.clone(),
        post: &post,
        state,
    };
    if let Err(e) = crate::jobs::scan::run(&state.services(), &replies, job).await {
        tracing::error!(error = %e, guild, user = join.user_id, "automatic scan failed");
    }
}

/// An automatic scan's replies: no acknowledgement (its post says it started), the result a
/// reply to the member's post, with a nonce so a retry never posts it twice.
struct AutoReplies<'a> {
    http: Arc<serenity::Http>,
    post: &'a serenity::Message,
    state: &'a Arc<BotState>,
}

impl Replies for AutoReplies<'_> {
    type Ack = ();
    type Result = poise::CreateReply;

    async fn acknowledge(&self, _: &Username, _: ScanMode, _: Status<'_>) -> Result<(), PostError> {
        Ok(())
    }

    async fn edit(
        &self,
        _: &(),
        _: &Username,
        _: ScanMode,
        _: Status<'_>,
    ) -> Result<(), PostError> {
        Ok(())
    }

    async fn prepare(&self, outcome: Outcome<'_>) -> poise::CreateReply {
        prepare_result(outcome, self.state.config.discord.button_lifetime).await
    }

    async fn post(&self, reply: &poise::CreateReply, scan_id: &str) -> Result<(), PostError> {
        // poise adds the reference only to replies it marks as such.
        let message = result_message(reply, self.post.into(), scan_id).reference_message(self.post);
        self.post
            .channel_id
            .send_message(&self.http, message)
            .await
            .map(|_| ())
            .map_err(post_error)
    }

    async fn already_posted(&self, _: &str) -> bool {
        // The post carries a nonce Discord enforces: a retry of one that arrived returns it.
        false
    }

    async fn handoff(&self, _: Option<&()>) -> Option<crate::jobs::shared::Handoff> {
        Some(crate::jobs::shared::Handoff {
            key: self.post.id.get().to_string(),
            target: crate::jobs::shared::ReplyTarget::Message {
                channel: self.post.channel_id.get(),
                guild: self.post.guild_id.map(|g| g.get()),
                reply_to: Some(self.post.id.get()),
                ack: None,
                quiet: true,
            },
        })
    }

    async fn audit(&self, entry: audit::Entry) {
        audit::post(self.state, &entry).await;
    }
}
