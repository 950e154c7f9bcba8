//! `health`: version, uptime, latency, integrations, scans, disk and memory.

use crate::bot::{BotError, Context, render};

/// Bot status: version, uptime, latency, integrations, scans, disk and memory.
#[poise::command(prefix_command, slash_command)]
pub async fn health(ctx: Context<'_>) -> Result<(), BotError> {
    let status = crate::bot::status::collect(ctx.data(), ctx.ping().await).await;
    ctx.say(render::health(&status)).await?;
    Ok(())
}
