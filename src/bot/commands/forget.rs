//! `forget <target>`: deletes this server's history and report files of a username or member,
//! for members who ask for their data to be removed (Manage Server). Audited.

use super::history::target_key;
use super::scan::parse_target;
use crate::bot::{BotError, Context, audit, render};

/// Delete this server's scans (history and report files) of a username or member.
#[poise::command(
    prefix_command,
    slash_command,
    guild_only,
    required_permissions = "MANAGE_GUILD",
    default_member_permissions = "MANAGE_GUILD",
    category = "Moderation"
)]
pub async fn forget(
    ctx: Context<'_>,
    #[description = "A username, or a mention of a server member"] target: String,
) -> Result<(), BotError> {
    if let poise::Context::Application(_) = ctx {
        ctx.defer().await?;
    }
    let guild = ctx
        .guild_id()
        .ok_or_else(|| BotError::user("`forget` works in a server channel only."))?;
    let (shown, key) = target_key(ctx, parse_target(&target)?).await;
    let state = ctx.data();
    let gone = crate::jobs::history::forget(&state.db, &state.store, guild.get(), &key)
        .await
        .map_err(|e| BotError::Internal(e.into()))?;
    audit::record(
        state,
        audit::Entry::Forget {
            user: ctx.author().id.get(),
            channel: ctx.channel_id().get(),
            guild: guild.get(),
            target: shown.clone(),
            scans: gone.scans,
            files: gone.files,
        },
    )
    .await;
    ctx.say(if gone.scans == 0 {
        format!(
            "This server has no scans of **{}**: nothing to delete.",
            render::escape(&shown)
        )
    } else {
        format!(
            "🗑️ Deleted this server's {} scan(s) of **{}** and their {} report file(s).",
            gone.scans,
            render::escape(&shown),
            gone.files
        )
    })
    .await?;
    Ok(())
}
