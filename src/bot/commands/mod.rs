//! The bot's commands, one file each: they parse their arguments, call a plain function and
//! render. The scan flow itself is `jobs::scan`.

mod forget;
mod health;
mod history;
pub(crate) mod scan;
mod settings;
mod shutdown;

use std::sync::Arc;

use poise::serenity_prelude as serenity;
use poise::{CreateReply, FrameworkError};

use crate::bot::{BotError, BotState, audit};
use crate::config::Config;
use crate::jobs::scan::reference_id;
pub use scan::{Target, parse_mode, parse_target};

pub fn framework_options(config: &Config) -> poise::FrameworkOptions<Arc<BotState>, BotError> {
    poise::FrameworkOptions {
        commands: vec![
            scan::scan(),
            scan::scan_account(),
            scan::scan_author(),
            history::history(),
            settings::settings(),
            forget::forget(),
            health::health(),
            shutdown::shutdown(),
        ],
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
        // Buttons and joins are not commands: poise leaves them to the event handler.
        event_handler: |framework, event| {
            Box::pin(async move {
                let ctx = framework.serenity_context.clone();
                let state = framework.user_data.clone();
                match event {
                    serenity::FullEvent::InteractionCreate {
                        interaction: serenity::Interaction::Component(press),
                    } => {
                        let press = press.clone();
                        tokio::spawn(async move {
                            crate::bot::buttons::handle(&ctx, &state, &press).await
                        });
                    }
                    serenity::FullEvent::GuildMemberAddition { new_member } => {
                        let member = new_member.clone();
                        tokio::spawn(async move {
                            crate::bot::joins::on_member_add(&ctx, &state, &member).await
                        });
                    }
                    _ => {}
                }
                Ok(())
            })
        },
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
                    guild: ctx.guild_id().map(|g| g.get()),
                    // A context menu is known to moderators by its menu label.
                    command: ctx
                        .command()
                        .context_menu_name
                        .as_deref()
                        .unwrap_or(&ctx.command().qualified_name)
                        .to_string(),
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
