//! `scan <target> [mode]`: parses the target (a username or a member mention) and the mode,
//! then hands over to the scan job with this command's way of replying.

use poise::CreateReply;
use poise::serenity_prelude as serenity;

use super::describe;
use crate::bot::{BotError, Context, audit, render};
use crate::jobs::{
    self,
    scan::{JobRequest, Outcome, PostError, Replies, Requester, Status},
    shared::{Handoff, ReplyTarget},
};
use crate::model::{DiscordMember, ScanMode, ScanReport, Username};
use crate::store::SavedReport;

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

/// `None`: the server's default mode.
pub fn parse_mode(input: Option<&str>) -> Result<Option<ScanMode>, BotError> {
    input
        .map(|m| {
            m.parse()
                .map_err(|e: crate::model::UnknownMode| BotError::user(e.to_string()))
        })
        .transpose()
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
    #[description = "all, sherlock or reddit (default: the server's, else all)"] mode: Option<
        String,
    >,
) -> Result<(), BotError> {
    // Discord rejects an interaction's first answer after 3 s: defer before anything that can
    // wait (the member fetch, the storage checks).
    if let poise::Context::Application(_) = ctx {
        ctx.defer().await?;
    }
    let mode = parse_mode(mode.as_deref())?;
    start(ctx, parse_target(&target)?, mode).await
}

/// Right-click a member → Apps → "Scan account": the same scan as `/scan @member`, in the
/// server's default mode.
#[poise::command(
    context_menu_command = "Scan account",
    guild_only,
    required_permissions = "MODERATE_MEMBERS",
    default_member_permissions = "MODERATE_MEMBERS",
    category = "Moderation"
)]
pub async fn scan_account(ctx: Context<'_>, user: serenity::User) -> Result<(), BotError> {
    ctx.defer().await?;
    start(ctx, Target::Member(user.id.get()), None).await
}

/// Right-click a message → Apps → "Scan author": scans the member who wrote it.
#[poise::command(
    context_menu_command = "Scan author",
    guild_only,
    required_permissions = "MODERATE_MEMBERS",
    default_member_permissions = "MODERATE_MEMBERS",
    category = "Moderation"
)]
pub async fn scan_author(ctx: Context<'_>, message: serenity::Message) -> Result<(), BotError> {
    ctx.defer().await?;
    if message.author.bot {
        return Err(BotError::user(
            "That message was written by a bot; there is no account to scan.",
        ));
    }
    start(ctx, Target::Member(message.author.id.get()), None).await
}

/// Resolves the target and runs the scan job with this command's replies.
async fn start(ctx: Context<'_>, target: Target, mode: Option<ScanMode>) -> Result<(), BotError> {
    let state = ctx.data().clone();
    let (username, member) = resolve_target(ctx.http(), ctx.guild_id(), target).await?;
    let job = JobRequest {
        username,
        member,
        mode,
        requester: Requester {
            user_id: ctx.author().id.get(),
            user_name: ctx.author().name.clone(),
            channel: ctx.channel_id().get(),
            guild: ctx.guild_id().map(|g| g.get()),
        },
        priority: crate::jobs::scan::Priority::Moderator,
    };
    Ok(jobs::scan::run(&state.services(), &CommandReplies { ctx }, job).await?)
}

/// A scan command's replies in Discord: the acknowledgement is the command's reply, the result
/// a new message (a prefix reply with a nonce, or a slash follow-up).
struct CommandReplies<'a> {
    ctx: Context<'a>,
}

impl<'a> Replies for CommandReplies<'a> {
    type Ack = poise::ReplyHandle<'a>;
    type Result = CreateReply;

    async fn acknowledge(
        &self,
        username: &Username,
        mode: ScanMode,
        status: Status<'_>,
    ) -> Result<Self::Ack, PostError> {
        self.ctx
            .say(status_text(username, mode, &status))
            .await
            .map_err(post_error)
    }

    async fn edit(
        &self,
        ack: &Self::Ack,
        username: &Username,
        mode: ScanMode,
        status: Status<'_>,
    ) -> Result<(), PostError> {
        ack.edit(
            self.ctx,
            CreateReply::default().content(status_text(username, mode, &status)),
        )
        .await
        .map_err(post_error)
    }

    async fn prepare(&self, outcome: Outcome<'_>) -> CreateReply {
        prepare_result(outcome, self.ctx.data().config.discord.button_lifetime).await
    }

    async fn post(&self, reply: &CreateReply, scan_id: &str) -> Result<(), PostError> {
        let ctx = self.ctx;
        let sent = match ctx {
            poise::Context::Prefix(p) => {
                let message = result_message(reply, p.msg.into(), scan_id);
                p.msg
                    .channel_id
                    .send_message(ctx, message)
                    .await
                    .map(|_| ())
            }
            poise::Context::Application(_) => ctx.send(reply.clone()).await.map(|_| ()),
        };
        sent.map_err(post_error)
    }

    async fn already_posted(&self, scan_id: &str) -> bool {
        // A prefix result carries a nonce that Discord enforces: a retry of a post that did
        // arrive returns the first message. A slash follow-up has no such key.
        match self.ctx {
            poise::Context::Prefix(_) => false,
            poise::Context::Application(_) => {
                already_posted(
                    self.ctx.http(),
                    self.ctx.channel_id(),
                    self.ctx.framework().bot_id(),
                    scan_id,
                )
                .await
            }
        }
    }

    async fn handoff(&self, ack: Option<&Self::Ack>) -> Option<Handoff> {
        let ctx = self.ctx;
        match ctx {
            poise::Context::Prefix(p) => {
                let ack = match ack {
                    Some(ack) => Some(ack.message().await.ok()?.id.get()),
                    None => None,
                };
                Some(Handoff {
                    key: p.msg.id.get().to_string(),
                    target: ReplyTarget::Message {
                        channel: p.msg.channel_id.get(),
                        guild: p.msg.guild_id.map(|g| g.get()),
                        reply_to: None,
                        ack,
                        quiet: false,
                    },
                })
            }
            poise::Context::Application(a) => Some(interaction_handoff(
                a.interaction.id,
                a.interaction.application_id,
                &a.interaction.token,
                a.interaction.channel_id,
                a.interaction.guild_id,
            )),
        }
    }

    async fn audit(&self, entry: audit::Entry) {
        audit::post(self.ctx.data(), &entry).await;
    }
}

/// An interaction's job for the shared queue: keyed by the interaction, answered through its
/// webhook for the 15 minutes Discord keeps it.
pub(crate) fn interaction_handoff(
    id: serenity::InteractionId,
    application: serenity::ApplicationId,
    token: &str,
    channel: serenity::ChannelId,
    guild: Option<serenity::GuildId>,
) -> Handoff {
    Handoff {
        key: id.get().to_string(),
        target: ReplyTarget::Interaction {
            application: application.get(),
            token: token.to_string(),
            channel: channel.get(),
            guild: guild.map(|g| g.get()),
            expires: id.created_at().unix_timestamp() + 15 * 60,
        },
    }
}

/// The result message for any face in Discord: embeds, files, notices and the buttons.
pub(crate) async fn prepare_result(
    outcome: Outcome<'_>,
    button_lifetime: std::time::Duration,
) -> CreateReply {
    let (reply, mut notes) = result_reply(outcome.report, outcome.saved).await;
    let reply = reply.components(crate::bot::buttons::result_rows(
        outcome.report,
        chrono::Utc::now(),
        button_lifetime,
    ));
    if let Some(reference) = outcome.not_saved_reference {
        notes.insert(0, format!(
            "⚠️ The report files could not be written on the bot's server, so none are attached; the results are below. An admin can find why in the bot's log (reference `{reference}`)."
        ));
    }
    if let Some(reference) = outcome.history_not_saved_reference {
        notes.push(format!(
            "⚠️ This scan could not be saved to the server's history, so `history` will not list it. An admin can find why in the bot's log (reference `{reference}`)."
        ));
    }
    if notes.is_empty() {
        reply
    } else {
        reply.content(notes.join("\n"))
    }
}

pub(crate) fn status_text(username: &Username, mode: ScanMode, status: &Status<'_>) -> String {
    match status {
        Status::Accepted { position } => render::ack(username, mode, *position),
        Status::Running(progress) => render::progress(username, mode, progress),
        Status::NotStarted { why } => format!(
            "⏹️ The scan of **{}** did not start: {why}.",
            render::escape(username.as_str())
        ),
        Status::Finished { partial } => format!(
            "✅ Scan of **{}** finished{}.",
            render::escape(username.as_str()),
            if *partial { " (partial)" } else { "" }
        ),
        Status::Following { requested_by } => format!(
            "🔁 **{}** is being scanned in this server already (asked by <@{requested_by}>): its result will be posted here too (mode `{mode}`).",
            render::escape(username.as_str())
        ),
        Status::Abandoned { why } => format!(
            "⚠️ The scan of **{}** could not be finished: {why}. Nothing was posted; please scan again.",
            render::escape(username.as_str())
        ),
        Status::HandedOver => format!(
            "🔄 The machine scanning **{}** is restarting: another machine takes the scan over and starts it again (mode `{mode}`); its result will be posted here.",
            render::escape(username.as_str())
        ),
    }
}

pub(crate) fn post_error(e: serenity::Error) -> PostError {
    PostError {
        detail: describe(&e),
        transient: is_transient(&e),
        no_answer: got_no_answer(&e),
    }
}

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

/// A result as a channel message: no pings, and a nonce Discord enforces, so a retry of a post
/// that arrived returns the first message instead of posting it twice.
pub(crate) fn result_message(
    reply: &CreateReply,
    invocation: serenity::MessageReference,
    scan_id: &str,
) -> serenity::CreateMessage {
    reply
        .clone()
        .allowed_mentions(serenity::CreateAllowedMentions::new())
        .to_prefix(invocation)
        .nonce(serenity::Nonce::String(result_nonce(scan_id)))
        .enforce_nonce(true)
}

/// Whether the channel's latest messages already hold this scan's result (its embed footer
/// names the scan id). Unknown (no access) counts as not posted: a duplicate beats a loss.
pub(crate) async fn already_posted(
    http: &serenity::Http,
    channel: serenity::ChannelId,
    me: serenity::UserId,
    scan_id: &str,
) -> bool {
    let footer = format!("scan {scan_id} ");
    match channel
        .messages(http, serenity::GetMessages::new().limit(50))
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

/// The username to scan, and the member's facts when the target was a mention.
pub(crate) async fn resolve_target(
    http: &serenity::Http,
    guild: Option<serenity::GuildId>,
    target: Target,
) -> Result<(Username, Option<DiscordMember>), BotError> {
    let id = match target {
        Target::Username(u) => return Ok((u, None)),
        Target::Member(id) => serenity::UserId::new(id),
    };
    let guild = guild.ok_or_else(|| BotError::user("Mentions can only be scanned in a server."))?;
    let member = guild.member(http, id).await.map_err(|e| {
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

/// The final message: embeds and the report files; the notes say which files are not attached
/// and why.
pub(crate) async fn result_reply(
    report: &ScanReport,
    saved: Option<&SavedReport>,
) -> (CreateReply, Vec<String>) {
    let mut reply = CreateReply::default();
    for e in render::result_embeds(report) {
        reply = reply.embed(create_embed(e));
    }
    attach_files(reply, &saved.map(SavedReport::paths).unwrap_or_default()).await
}

/// A rendered embed as serenity builds it.
pub(crate) fn create_embed(e: render::Embed) -> serenity::CreateEmbed {
    let mut embed = serenity::CreateEmbed::new()
        .title(e.title)
        .description(e.description)
        .colour(e.colour)
        .footer(serenity::CreateEmbedFooter::new(e.footer));
    for (name, value) in e.fields {
        embed = embed.field(name, value, false);
    }
    embed
}

/// Attaches report files within Discord's upload limit; the notes say which are not attached
/// and why (too big, unreadable, gone).
pub(crate) async fn attach_files(
    mut reply: CreateReply,
    paths: &[&std::path::Path],
) -> (CreateReply, Vec<String>) {
    let mut notes = Vec::new();
    for path in paths {
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
    (reply, notes)
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
        assert_eq!(parse_mode(None).expect("default"), None);
        assert_eq!(
            parse_mode(Some("Sherlock")).expect("valid"),
            Some(ScanMode::Sherlock)
        );
        let err = parse_mode(Some("deep")).expect_err("invalid").to_string();
        assert_eq!(
            err,
            "`deep` is not a scan mode: use all, sherlock or reddit"
        );
    }
}
