//! The audit trail in Discord: each entry is logged (`jobs::audit::log`) and, with
//! `LOG_CHANNEL_ID`, posted there.

use poise::serenity_prelude as serenity;

use crate::bot::BotState;
use crate::bot::render::escape;
pub use crate::jobs::audit::Entry;

/// The entry as one Discord line (mentions shown, never pinged).
pub fn line(entry: &Entry) -> String {
    match entry {
        Entry::Scan {
            requester,
            channel,
            target,
            mode,
            scan_id,
            hits,
            unverified,
            partial,
            failed,
            duration_ms,
            ..
        } => format!(
            "🔎 <@{requester}> scanned **{}** (mode `{mode}`) in <#{channel}>: {hits} hit(s), {unverified} unverified{}{} in {:.1} s · scan {scan_id}",
            escape(target),
            if *partial { ", partial" } else { "" },
            if *failed { ", Sherlock failed" } else { "" },
            *duration_ms as f64 / 1000.0
        ),
        Entry::Refused {
            user,
            channel,
            command,
            why,
        } => format!("⛔ <@{user}> was refused `{command}` in <#{channel}>: {why}"),
        Entry::Shutdown { by } => format!("⏹️ Shutdown requested by {by}"),
    }
}

/// Logs the entry and, with `LOG_CHANNEL_ID`, posts it there (mentions shown, never pinged).
pub async fn record(state: &BotState, entry: Entry) {
    crate::jobs::audit::log(&entry);
    let (Some(channel), Some(http)) = (state.config.discord.log_channel_id, state.http.get())
    else {
        return;
    };
    let message = serenity::CreateMessage::new()
        .content(line(&entry))
        .allowed_mentions(serenity::CreateAllowedMentions::new());
    if let Err(e) = serenity::ChannelId::new(channel)
        .send_message(http, message)
        .await
    {
        tracing::warn!(error = %crate::bot::commands::describe(&e), channel, "could not post to the audit channel");
    }
}
