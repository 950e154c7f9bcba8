//! `shutdown`: stop taking scans, let running ones finish, then exit (admins only).

use std::sync::atomic::Ordering;

use crate::bot::{BotError, Context, audit};

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
                guild: ctx.guild_id().map(|g| g.get()),
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
            guild: ctx.guild_id().map(|g| g.get()),
        },
    )
    .await;
    Ok(())
}
