//! Per-server settings: the environment's values are the defaults, a server's own override them.
//! Parsing and checking what an admin types lives here, so every face says the same words.

use std::time::Duration;

use crate::config::Config;
use crate::db::{Db, GuildSettings};
use crate::model::ScanMode;

/// What applies to a scan in one server.
#[derive(Debug, Clone, PartialEq)]
pub struct Effective {
    pub log_channel: Option<u64>,
    /// `None`: the toxicity backend's own threshold.
    pub toxicity_threshold: Option<f64>,
    pub default_mode: ScanMode,
    pub cooldown: Duration,
    /// `None`: scans may run in any channel.
    pub scan_channels: Option<Vec<u64>>,
    /// The join screen's channel; `None`: the screen is off.
    pub screen_channel: Option<u64>,
    /// Accounts younger than this are new.
    pub new_account_age: Duration,
    /// Scan new accounts by themselves when they join.
    pub auto_scan: bool,
    /// At most this many automatic scans per hour in the server.
    pub auto_scan_cap: u64,
}

/// What an admin is told when the join screen cannot work because the bot does not receive joins.
pub const MEMBERS_INTENT_NEEDED: &str = "The join screen needs Discord's privileged **Server Members** intent, which this bot does not request. Ask the bot's operator to enable *Server Members Intent* for the application in the Discord developer portal (Bot → Privileged Gateway Intents), set `DISCORD_MEMBERS_INTENT=true` and restart the bot.";

/// Accounts younger than this many days are new, unless a server says otherwise.
pub const DEFAULT_NEW_ACCOUNT_DAYS: u64 = 7;
pub const MAX_NEW_ACCOUNT_DAYS: u64 = 365;
/// Automatic scans per hour per server, unless a server says otherwise.
pub const DEFAULT_AUTO_SCAN_CAP: u64 = 10;
pub const MAX_AUTO_SCAN_CAP: u64 = 100;

impl Effective {
    pub fn defaults(config: &Config) -> Effective {
        Effective {
            log_channel: None,
            toxicity_threshold: config.toxicity_threshold,
            default_mode: ScanMode::All,
            cooldown: config.discord.scan_cooldown,
            scan_channels: None,
            screen_channel: None,
            new_account_age: Duration::from_secs(DEFAULT_NEW_ACCOUNT_DAYS * 86_400),
            auto_scan: false,
            auto_scan_cap: DEFAULT_AUTO_SCAN_CAP,
        }
    }

    pub fn of(config: &Config, own: &GuildSettings) -> Effective {
        let d = Effective::defaults(config);
        Effective {
            log_channel: own.log_channel,
            toxicity_threshold: own.toxicity_threshold.or(d.toxicity_threshold),
            default_mode: own.default_mode.unwrap_or(d.default_mode),
            cooldown: own
                .cooldown_s
                .map(Duration::from_secs)
                .unwrap_or(d.cooldown),
            scan_channels: own.scan_channels.clone().filter(|c| !c.is_empty()),
            screen_channel: own.screen_channel,
            new_account_age: own
                .new_account_days
                .map(|d| Duration::from_secs(d * 86_400))
                .unwrap_or(d.new_account_age),
            auto_scan: own.auto_scan.unwrap_or(d.auto_scan),
            auto_scan_cap: own.auto_scan_cap.unwrap_or(d.auto_scan_cap),
        }
    }

    /// Scans may run in the listed channels, and in the join screen's channel (its Scan buttons).
    pub fn allows_channel(&self, channel: u64) -> bool {
        self.screen_channel == Some(channel)
            || self
                .scan_channels
                .as_ref()
                .is_none_or(|list| list.contains(&channel))
    }
}

/// A server's settings, or the defaults when it has none or the database cannot be read (logged:
/// a scan still runs with the environment's values).
pub async fn effective(db: Option<&Db>, config: &Config, guild: Option<u64>) -> Effective {
    let (Some(db), Some(guild)) = (db, guild) else {
        return Effective::defaults(config);
    };
    match db.guild_settings(guild).await {
        Ok(own) => Effective::of(config, &own),
        Err(e) => {
            tracing::error!(error = %e, guild, "server settings unreadable; using the defaults");
            Effective::defaults(config)
        }
    }
}

/// The settings an admin can change, by the names the commands use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    LogChannel,
    Threshold,
    Mode,
    Cooldown,
    Channels,
    Screening,
    NewAccountDays,
    AutoScan,
    AutoScanCap,
}

impl Setting {
    pub const ALL: [Setting; 9] = [
        Setting::LogChannel,
        Setting::Threshold,
        Setting::Mode,
        Setting::Cooldown,
        Setting::Channels,
        Setting::Screening,
        Setting::NewAccountDays,
        Setting::AutoScan,
        Setting::AutoScanCap,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Setting::LogChannel => "log_channel",
            Setting::Threshold => "threshold",
            Setting::Mode => "mode",
            Setting::Cooldown => "cooldown",
            Setting::Channels => "channels",
            Setting::Screening => "screening",
            Setting::NewAccountDays => "new_account_days",
            Setting::AutoScan => "auto_scan",
            Setting::AutoScanCap => "auto_scan_cap",
        }
    }
}

/// The longest cooldown a server may set (a day).
pub const MAX_COOLDOWN_S: u64 = 86_400;

/// `reset`, `default` or `none` puts a setting back to the environment's value.
fn is_reset(value: &str) -> bool {
    matches!(
        value.trim().to_ascii_lowercase().as_str(),
        "reset" | "default" | "none"
    )
}

/// A channel mention `<#123>` or a bare id.
pub fn parse_channel(value: &str) -> Option<u64> {
    let v = value.trim();
    let id = v
        .strip_prefix("<#")
        .and_then(|r| r.strip_suffix('>'))
        .unwrap_or(v);
    id.parse::<u64>().ok().filter(|id| *id > 0)
}

/// Applies one change to `settings`, checking the value; the error is the user's message.
/// Channels are only parsed here: whether the bot can post there is the face's check.
pub fn apply(settings: &mut GuildSettings, setting: Setting, value: &str) -> Result<(), String> {
    let value = value.trim();
    let reset = is_reset(value);
    match setting {
        Setting::LogChannel => {
            settings.log_channel = if reset {
                None
            } else {
                Some(parse_channel(value).ok_or_else(|| {
                    format!(
                        "`{}` is not a channel: mention it (#channel) or give its id, or `reset`.",
                        shown(value)
                    )
                })?)
            }
        }
        Setting::Threshold => {
            settings.toxicity_threshold = if reset {
                None
            } else {
                let t: f64 = value.parse().map_err(|_| {
                    format!(
                        "`{}` is not a number: the threshold is between 0 and 1, e.g. 0.7.",
                        shown(value)
                    )
                })?;
                if !(0.0..=1.0).contains(&t) || t.is_nan() {
                    return Err(format!("The threshold must be between 0 and 1 (got {t})."));
                }
                Some(t)
            }
        }
        Setting::Mode => {
            settings.default_mode = if reset {
                None
            } else {
                Some(
                    value
                        .parse()
                        .map_err(|e: crate::model::UnknownMode| e.to_string())?,
                )
            }
        }
        Setting::Cooldown => {
            settings.cooldown_s = if reset {
                None
            } else {
                let s: u64 = value.trim_end_matches('s').parse().map_err(|_| {
                    format!(
                        "`{}` is not a number of seconds (0-{MAX_COOLDOWN_S}).",
                        shown(value)
                    )
                })?;
                if s > MAX_COOLDOWN_S {
                    return Err(format!(
                        "The cooldown is at most {MAX_COOLDOWN_S} seconds (a day); got {s}."
                    ));
                }
                Some(s)
            }
        }
        Setting::Channels => {
            settings.scan_channels = if reset || value.eq_ignore_ascii_case("any") {
                None
            } else {
                let mut ids = Vec::new();
                for part in value.split([',', ' ']).filter(|p| !p.is_empty()) {
                    ids.push(parse_channel(part).ok_or_else(|| {
                        format!(
                            "`{}` is not a channel: list channels (#a #b) or say `any`.",
                            shown(part)
                        )
                    })?);
                }
                if ids.is_empty() {
                    return Err("List at least one channel, or say `any`.".into());
                }
                ids.dedup();
                Some(ids)
            }
        }
        Setting::Screening => {
            settings.screen_channel = if reset || value.eq_ignore_ascii_case("off") {
                None
            } else {
                Some(parse_channel(value).ok_or_else(|| {
                    format!(
                        "`{}` is not a channel: mention the screening channel (#channel) or give its id, or `off`.",
                        shown(value)
                    )
                })?)
            }
        }
        Setting::NewAccountDays => {
            settings.new_account_days = if reset {
                None
            } else {
                let d: u64 = value.trim_end_matches('d').parse().map_err(|_| {
                    format!(
                        "`{}` is not a number of days (1-{MAX_NEW_ACCOUNT_DAYS}).",
                        shown(value)
                    )
                })?;
                if !(1..=MAX_NEW_ACCOUNT_DAYS).contains(&d) {
                    return Err(format!(
                        "An account is new for 1 to {MAX_NEW_ACCOUNT_DAYS} days; got {d}."
                    ));
                }
                Some(d)
            }
        }
        Setting::AutoScan => {
            settings.auto_scan = if reset {
                None
            } else {
                match value.to_ascii_lowercase().as_str() {
                    "on" | "true" | "yes" => Some(true),
                    "off" | "false" | "no" => Some(false),
                    _ => {
                        return Err(format!("`{}` is neither `on` nor `off`.", shown(value)));
                    }
                }
            }
        }
        Setting::AutoScanCap => {
            settings.auto_scan_cap = if reset {
                None
            } else {
                let n: u64 = value.parse().map_err(|_| {
                    format!(
                        "`{}` is not a number of scans per hour (0-{MAX_AUTO_SCAN_CAP}).",
                        shown(value)
                    )
                })?;
                if n > MAX_AUTO_SCAN_CAP {
                    return Err(format!(
                        "At most {MAX_AUTO_SCAN_CAP} automatic scans per hour; got {n}."
                    ));
                }
                Some(n)
            }
        }
    }
    Ok(())
}

/// At most 40 characters of what the user typed, for an error message.
fn shown(value: &str) -> String {
    value.chars().take(40).collect::<String>().replace('`', "'")
}

/// A setting's value in words, as the settings view and the audit show it.
pub fn describe(settings: &GuildSettings, setting: Setting) -> String {
    match setting {
        Setting::LogChannel => settings
            .log_channel
            .map(|c| format!("<#{c}>"))
            .unwrap_or_else(|| "default".into()),
        Setting::Threshold => settings
            .toxicity_threshold
            .map(|t| format!("{t}"))
            .unwrap_or_else(|| "default".into()),
        Setting::Mode => settings
            .default_mode
            .map(|m| m.to_string())
            .unwrap_or_else(|| "default".into()),
        Setting::Cooldown => settings
            .cooldown_s
            .map(|s| format!("{s} s"))
            .unwrap_or_else(|| "default".into()),
        Setting::Channels => settings
            .scan_channels
            .as_ref()
            .map(|c| {
                c.iter()
                    .map(|id| format!("<#{id}>"))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_else(|| "any".into()),
        Setting::Screening => settings
            .screen_channel
            .map(|c| format!("<#{c}>"))
            .unwrap_or_else(|| "off".into()),
        Setting::NewAccountDays => settings
            .new_account_days
            .map(|d| format!("{d} days"))
            .unwrap_or_else(|| "default".into()),
        Setting::AutoScan => match settings.auto_scan {
            Some(true) => "on".into(),
            Some(false) => "off".into(),
            None => "default".into(),
        },
        Setting::AutoScanCap => settings
            .auto_scan_cap
            .map(|n| format!("{n} per hour"))
            .unwrap_or_else(|| "default".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_checked_with_a_specific_message() {
        let mut s = GuildSettings::default();
        assert_eq!(
            apply(&mut s, Setting::Threshold, "1.5"),
            Err("The threshold must be between 0 and 1 (got 1.5).".into())
        );
        assert!(
            apply(&mut s, Setting::Threshold, "high").is_err_and(|e| e.contains("not a number"))
        );
        assert!(
            apply(&mut s, Setting::LogChannel, "general")
                .is_err_and(|e| e.contains("not a channel"))
        );
        assert!(
            apply(&mut s, Setting::Cooldown, "90000").is_err_and(|e| e.contains("at most 86400"))
        );
        assert!(apply(&mut s, Setting::Mode, "deep").is_err_and(|e| e.contains("not a scan mode")));
        assert_eq!(
            s,
            GuildSettings::default(),
            "a refused change changes nothing"
        );

        apply(&mut s, Setting::Threshold, "0.8").expect("valid");
        apply(&mut s, Setting::LogChannel, "<#42>").expect("valid");
        apply(&mut s, Setting::Channels, "<#1>, <#2> 3").expect("valid");
        apply(&mut s, Setting::Cooldown, "10s").expect("valid");
        apply(&mut s, Setting::Mode, "Sherlock").expect("valid");
        assert_eq!(s.toxicity_threshold, Some(0.8));
        assert_eq!(s.log_channel, Some(42));
        assert_eq!(s.scan_channels, Some(vec![1, 2, 3]));
        assert_eq!(s.cooldown_s, Some(10));
        assert_eq!(s.default_mode, Some(ScanMode::Sherlock));
        apply(&mut s, Setting::Channels, "any").expect("valid");
        apply(&mut s, Setting::Threshold, "reset").expect("valid");
        assert_eq!(s.scan_channels, None);
        assert_eq!(s.toxicity_threshold, None);
    }

    #[test]
    fn join_screen_settings_are_checked_and_the_screening_channel_allows_scans() {
        let mut s = GuildSettings::default();
        assert!(apply(&mut s, Setting::NewAccountDays, "0").is_err_and(|e| e.contains("1 to 365")));
        assert!(apply(&mut s, Setting::AutoScan, "maybe").is_err_and(|e| e.contains("`on`")));
        assert!(
            apply(&mut s, Setting::AutoScanCap, "500").is_err_and(|e| e.contains("At most 100"))
        );
        assert!(
            apply(&mut s, Setting::Screening, "#joins").is_err_and(|e| e.contains("not a channel"))
        );
        assert_eq!(s, GuildSettings::default());
        apply(&mut s, Setting::Screening, "<#77>").expect("valid");
        apply(&mut s, Setting::NewAccountDays, "14d").expect("valid");
        apply(&mut s, Setting::AutoScan, "on").expect("valid");
        apply(&mut s, Setting::AutoScanCap, "3").expect("valid");
        apply(&mut s, Setting::Channels, "<#1>").expect("valid");
        assert_eq!(describe(&s, Setting::Screening), "<#77>");
        assert_eq!(describe(&s, Setting::AutoScanCap), "3 per hour");
        let config = crate::config::Config::from_lookup(|_| None).expect("defaults");
        let e = Effective::of(&config, &s);
        assert_eq!(e.new_account_age, Duration::from_secs(14 * 86_400));
        assert!(e.auto_scan);
        assert_eq!(e.auto_scan_cap, 3);
        assert!(e.allows_channel(1) && e.allows_channel(77) && !e.allows_channel(2));
        apply(&mut s, Setting::Screening, "off").expect("valid");
        assert_eq!(s.screen_channel, None);
    }
}
