//! `history <target> [page] [files]`: this server's earlier scans of a username or member,
//! newest first, and on request the latest scan's report files.

use poise::CreateReply;
use poise::serenity_prelude as serenity;

use super::scan::{Target, attach_files, create_embed, parse_target};
use crate::bot::{BotError, Context, render};
use crate::db::scans::{Scope, TargetKey};

/// Scans listed per page (an embed's description holds them well within Discord's limits).
pub const PER_PAGE: u32 = 10;

/// Earlier scans of a username or member in this server.
#[poise::command(
    prefix_command,
    slash_command,
    guild_only,
    required_permissions = "MODERATE_MEMBERS",
    default_member_permissions = "MODERATE_MEMBERS",
    category = "Moderation"
)]
pub async fn history(
    ctx: Context<'_>,
    #[description = "A username, or a mention of a server member"] target: String,
    #[description = "Which page (10 scans a page, newest first)"] page: Option<u32>,
    #[description = "Attach the latest scan's report files"] files: Option<bool>,
) -> Result<(), BotError> {
    if let poise::Context::Application(_) = ctx {
        ctx.defer().await?;
    }
    let guild = ctx
        .guild_id()
        .ok_or_else(|| BotError::user("`history` works in a server channel only."))?;
    let (shown, key) = target_key(ctx, parse_target(&target)?).await;
    let page = page.unwrap_or(1).max(1);
    let state = ctx.data();
    let found = state
        .db
        .history(
            Scope::Guild(guild.get()),
            &key,
            PER_PAGE,
            (page - 1).saturating_mul(PER_PAGE),
        )
        .await
        .map_err(|e| BotError::Internal(e.into()))?;
    let embed = render::history_embed(&shown, &found, page, PER_PAGE, chrono::Utc::now());
    let mut reply = CreateReply::default().embed(create_embed(embed));
    if files.unwrap_or(false) {
        let latest = if page == 1 {
            found.entries.first().cloned()
        } else {
            state
                .db
                .history(Scope::Guild(guild.get()), &key, 1, 0)
                .await
                .map_err(|e| BotError::Internal(e.into()))?
                .entries
                .into_iter()
                .next()
        };
        let notes = match latest {
            None => vec!["There is no scan whose files could be attached.".to_string()],
            Some(entry) => {
                let paths: Vec<_> = entry
                    .files
                    .iter()
                    .map(|n| state.store.dir().join(n))
                    .collect();
                let paths: Vec<&std::path::Path> = paths.iter().map(|p| p.as_path()).collect();
                let (with_files, notes) = attach_files(reply, &paths).await;
                reply = with_files;
                notes
            }
        };
        if !notes.is_empty() {
            reply = reply.content(notes.join("\n"));
        }
    }
    ctx.send(reply).await?;
    Ok(())
}

/// What to call the target, and how history finds it: a mention matches the member's id and
/// their current username.
pub(crate) async fn target_key(ctx: Context<'_>, target: Target) -> (String, TargetKey) {
    match target {
        Target::Username(u) => (u.to_string(), TargetKey::username(u.as_str())),
        Target::Member(id) => {
            let name = match ctx.guild_id() {
                Some(guild) => guild
                    .member(ctx, serenity::UserId::new(id))
                    .await
                    .ok()
                    .map(|m| m.user.name.clone()),
                None => None,
            };
            (
                name.clone().unwrap_or_else(|| format!("<@{id}>")),
                TargetKey {
                    username: name.map(|n| n.to_lowercase()).unwrap_or_default(),
                    member: Some(id),
                },
            )
        }
    }
}
