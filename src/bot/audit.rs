//! The audit trail: who scanned whom, refusals, shutdowns. Always in the log (target `audit`);
//! also posted to `LOG_CHANNEL_ID` when set.

use poise::serenity_prelude as serenity;

use crate::bot::BotState;
use crate::bot::render::escape;

#[derive(Debug, Clone)]
pub enum Entry {
    Scan {
        requester: u64,
        channel: u64,
        guild: Option<u64>,
        target: String,
        mode: String,
        scan_id: String,
        hits: usize,
        unverified: usize,
        partial: bool,
        failed: bool,
        duration_ms: u64,
    },
    Refused {
        user: u64,
        channel: u64,
        command: String,
        why: String,
    },
    Shutdown {
        by: String,
    },
}

impl Entry {
    pub fn line(&self) -> String {
        match self {
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
}

/// Logs the entry and, with `LOG_CHANNEL_ID`, posts it there (mentions shown, never pinged).
pub async fn record(state: &BotState, entry: Entry) {
    match &entry {
        Entry::Scan {
            requester,
            channel,
            guild,
            target,
            mode,
            scan_id,
            hits,
            unverified,
            partial,
            failed,
            duration_ms,
        } => tracing::info!(
            target: "audit",
            requester,
            channel,
            guild,
            %target,
            %mode,
            scan_id = %scan_id,
            hits,
            unverified,
            partial,
            failed,
            duration_ms,
            "scan"
        ),
        Entry::Refused {
            user,
            channel,
            command,
            why,
        } => tracing::warn!(target: "audit", user, channel, %command, %why, "refused"),
        Entry::Shutdown { by } => tracing::warn!(target: "audit", %by, "shutdown"),
    }
    let (Some(channel), Some(http)) = (state.config.discord.log_channel_id, state.http.get())
    else {
        return;
    };
    let message = serenity::CreateMessage::new()
        .content(entry.line())
        .allowed_mentions(serenity::CreateAllowedMentions::new());
    if let Err(e) = serenity::ChannelId::new(channel)
        .send_message(http, message)
        .await
    {
        tracing::warn!(error = %crate::bot::commands::describe(&e), channel, "could not post to the audit channel");
    }
}
