//! `settings [setting] [value]`: view or change this server's log channel, toxicity threshold,
//! default scan mode, cooldown, scan channels and join screen (Manage Server). Every change is
//! audited with its old and new value.

use poise::serenity_prelude as serenity;

use crate::bot::{BotError, Context, audit, render};
use crate::jobs::settings::{self as server_settings, Effective, Setting};

#[derive(Debug, Clone, Copy, poise::ChoiceParameter)]
pub enum SettingChoice {
    #[name = "log_channel"]
    LogChannel,
    #[name = "threshold"]
    Threshold,
    #[name = "mode"]
    Mode,
    #[name = "cooldown"]
    Cooldown,
    #[name = "channels"]
    Channels,
    #[name = "screening"]
    Screening,
    #[name = "new_account_days"]
    NewAccountDays,
    #[name = "auto_scan"]
    AutoScan,
    #[name = "auto_scan_cap"]
    AutoScanCap,
}

impl From<SettingChoice> for Setting {
    fn from(c: SettingChoice) -> Setting {
        match c {
            SettingChoice::LogChannel => Setting::LogChannel,
            SettingChoice::Threshold => Setting::Threshold,
            SettingChoice::Mode => Setting::Mode,
            SettingChoice::Cooldown => Setting::Cooldown,
            SettingChoice::Channels => Setting::Channels,
            SettingChoice::Screening => Setting::Screening,
            SettingChoice::NewAccountDays => Setting::NewAccountDays,
            SettingChoice::AutoScan => Setting::AutoScan,
            SettingChoice::AutoScanCap => Setting::AutoScanCap,
        }
    }
}

/// View or change this server's scan settings (`reset` puts one back to the default).
#[poise::command(
    prefix_command,
    slash_command,
    guild_only,
    required_permissions = "MANAGE_GUILD",
    default_member_permissions = "MANAGE_GUILD",
    category = "Moderation"
)]
pub async fn settings(
    ctx: Context<'_>,
    #[description = "The setting to change; leave out to see them all"] setting: Option<
        SettingChoice,
    >,
    #[description = "The new value, or `reset`"]
    #[rest]
    value: Option<String>,
) -> Result<(), BotError> {
    let guild = ctx
        .guild_id()
        .ok_or_else(|| BotError::user("`settings` works in a server channel only."))?;
    let state = ctx.data();
    let mut own = state
        .db
        .guild_settings(guild.get())
        .await
        .map_err(|e| BotError::Internal(e.into()))?;
    let (Some(choice), Some(value)) = (setting, value) else {
        if setting.is_some() {
            return Err(BotError::user(
                "Give the new value too, e.g. `settings threshold 0.8`, or `reset`.",
            ));
        }
        let effective = Effective::of(&state.config, &own);
        ctx.say(render::settings_view(
            &own,
            &effective,
            state.scanner.toxicity_threshold(),
            state.config.discord.log_channel_id,
            state.config.discord.members_intent,
        ))
        .await?;
        return Ok(());
    };
    let setting = Setting::from(choice);
    let before = own.clone();
    server_settings::apply(&mut own, setting, &value).map_err(BotError::User)?;
    match setting {
        Setting::LogChannel => {
            if let Some(channel) = own.log_channel {
                check_postable(ctx, guild, channel)?;
            }
        }
        Setting::Channels => {
            for channel in own.scan_channels.iter().flatten() {
                check_in_guild(ctx, guild, *channel)?;
            }
        }
        Setting::Screening | Setting::AutoScan => {
            let turning_on = match setting {
                Setting::Screening => own.screen_channel.is_some(),
                _ => own.auto_scan == Some(true),
            };
            // Without the intent Discord never sends joins: refuse rather than stay silent.
            if turning_on && !state.config.discord.members_intent {
                return Err(BotError::user(server_settings::MEMBERS_INTENT_NEEDED));
            }
            if let Some(channel) = own.screen_channel.filter(|_| setting == Setting::Screening) {
                check_postable(ctx, guild, channel)?;
            }
        }
        _ => {}
    }
    let old = server_settings::describe(&before, setting);
    let new = server_settings::describe(&own, setting);
    state
        .db
        .save_guild_settings(guild.get(), &own, ctx.author().id.get())
        .await
        .map_err(|e| BotError::Internal(e.into()))?;
    audit::record(
        state,
        audit::Entry::Settings {
            user: ctx.author().id.get(),
            channel: ctx.channel_id().get(),
            guild: guild.get(),
            setting: setting.name().into(),
            old: old.clone(),
            new: new.clone(),
        },
    )
    .await;
    ctx.say(format!("⚙️ `{}`: {old} → {new}", setting.name()))
        .await?;
    Ok(())
}

/// The channel belongs to this server (known from the cache).
fn check_in_guild(
    ctx: Context<'_>,
    guild: serenity::GuildId,
    channel: u64,
) -> Result<(), BotError> {
    let known = ctx
        .cache()
        .guild(guild)
        .is_some_and(|g| g.channels.contains_key(&serenity::ChannelId::new(channel)));
    if known {
        Ok(())
    } else {
        Err(BotError::user(format!(
            "<#{channel}> is not a channel of this server that the bot can see."
        )))
    }
}

/// The bot can post (view, send) in the channel, by the cached roles and overwrites.
fn check_postable(
    ctx: Context<'_>,
    guild: serenity::GuildId,
    channel: u64,
) -> Result<(), BotError> {
    check_in_guild(ctx, guild, channel)?;
    let bot = ctx.framework().bot_id();
    let allowed = ctx.cache().guild(guild).and_then(|g| {
        let ch = g.channels.get(&serenity::ChannelId::new(channel))?;
        let me = g.members.get(&bot)?;
        Some(g.user_permissions_in(ch, me))
    });
    match allowed {
        Some(p) if p.view_channel() && p.send_messages() => Ok(()),
        Some(_) => Err(BotError::user(format!(
            "The bot cannot post in <#{channel}> (it lacks View Channel or Send Messages there): give it those permissions or choose another channel."
        ))),
        None => Err(BotError::user(format!(
            "The bot cannot tell whether it may post in <#{channel}>; try again in a minute."
        ))),
    }
}
