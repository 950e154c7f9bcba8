//! The audit trail in Discord: each entry is logged and kept (`jobs::audit::keep`), then posted
//! to the server's own log channel (`settings log_channel`) and to the operator's channel
//! (`LOG_CHANNEL_ID`, which sees every server's entries by design).

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
            ..
        } => format!(
            "⛔ <@{user}> was refused `{command}` in <#{channel}>: {}",
            escape(why)
        ),
        Entry::Shutdown { by, .. } => format!("⏹️ Shutdown requested by {by}"),
        Entry::Settings {
            user,
            channel,
            setting,
            old,
            new,
            ..
        } => format!(
            "⚙️ <@{user}> changed `{setting}` in <#{channel}>: {} → {}",
            escape(old),
            escape(new)
        ),
        Entry::Forget {
            user,
            channel,
            target,
            scans,
            files,
            ..
        } => format!(
            "🗑️ <@{user}> made the bot forget **{}** in <#{channel}>: {scans} scan(s) and {files} report file(s) deleted",
            escape(target)
        ),
    }
}

/// Logs and keeps the entry, then posts it (see [`post`]).
pub async fn record(state: &BotState, entry: Entry) {
    crate::jobs::audit::keep(Some(&state.db), &entry).await;
    post(state, &entry).await;
}

/// Posts the entry to its server's log channel and to the operator's `LOG_CHANNEL_ID` (once when
/// they are the same), mentions shown, never pinged.
pub async fn post(state: &BotState, entry: &Entry) {
    let Some(http) = state.http.get() else {
        return;
    };
    let own = match entry.guild() {
        Some(guild) => {
            crate::jobs::settings::effective(Some(&state.db), &state.config, Some(guild))
                .await
                .log_channel
        }
        None => None,
    };
    let mut channels: Vec<u64> = own.into_iter().collect();
    if let Some(operator) = state.config.discord.log_channel_id
        && !channels.contains(&operator)
    {
        channels.push(operator);
    }
    for channel in channels {
        let message = serenity::CreateMessage::new()
            .content(line(entry))
            .allowed_mentions(serenity::CreateAllowedMentions::new());
        if let Err(e) = serenity::ChannelId::new(channel)
            .send_message(http, message)
            .await
        {
            tracing::warn!(error = %crate::bot::commands::describe(&e), channel, "could not post to the audit channel");
        }
    }
}
