//! Per-server settings: what a server changed from the environment's defaults.

use sqlx::Row;

use super::{Db, DbError, id_from_db, id_to_db, millis};
use crate::model::ScanMode;

/// A server's own values; `None` everywhere means "the environment's default".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GuildSettings {
    pub log_channel: Option<u64>,
    pub toxicity_threshold: Option<f64>,
    pub default_mode: Option<ScanMode>,
    pub cooldown_s: Option<u64>,
    /// Scans run only in these channels; `None`: in any channel.
    pub scan_channels: Option<Vec<u64>>,
    /// The join screen posts here; `None`: off.
    pub screen_channel: Option<u64>,
    /// Accounts younger than this many days are new.
    pub new_account_days: Option<u64>,
    /// Scan new accounts by themselves when they join.
    pub auto_scan: Option<bool>,
    /// At most this many automatic scans per hour.
    pub auto_scan_cap: Option<u64>,
}

fn count_from_db(v: Option<i64>) -> Option<u64> {
    v.map(|s| u64::try_from(s).unwrap_or_default())
}

fn count_to_db(v: Option<u64>) -> Option<i64> {
    v.map(|s| i64::try_from(s).unwrap_or(i64::MAX))
}

impl Db {
    pub async fn guild_settings(&self, guild: u64) -> Result<GuildSettings, DbError> {
        let row = sqlx::query(
            "SELECT log_channel_id, toxicity_threshold, default_mode, cooldown_s, scan_channels, \
             screen_channel_id, new_account_days, auto_scan, auto_scan_cap FROM guild_settings WHERE guild_id = $1",
        )
        .bind(id_to_db(guild))
        .fetch_optional(self.pool())
        .await?;
        let Some(r) = row else {
            return Ok(GuildSettings::default());
        };
        let mode: Option<String> = r.try_get("default_mode")?;
        let channels: Option<String> = r.try_get("scan_channels")?;
        Ok(GuildSettings {
            log_channel: r
                .try_get::<Option<i64>, _>("log_channel_id")?
                .map(id_from_db),
            toxicity_threshold: r.try_get("toxicity_threshold")?,
            default_mode: mode
                .map(|m| {
                    m.parse()
                        .map_err(|e: crate::model::UnknownMode| DbError::Corrupt(e.to_string()))
                })
                .transpose()?,
            cooldown_s: count_from_db(r.try_get("cooldown_s")?),
            scan_channels: channels
                .map(|c| {
                    serde_json::from_str::<Vec<u64>>(&c)
                        .map_err(|e| DbError::Corrupt(e.to_string()))
                })
                .transpose()?,
            screen_channel: r
                .try_get::<Option<i64>, _>("screen_channel_id")?
                .map(id_from_db),
            new_account_days: count_from_db(r.try_get("new_account_days")?),
            auto_scan: r.try_get::<Option<i64>, _>("auto_scan")?.map(|v| v != 0),
            auto_scan_cap: count_from_db(r.try_get("auto_scan_cap")?),
        })
    }

    /// Replaces a server's settings in one statement.
    pub async fn save_guild_settings(
        &self,
        guild: u64,
        settings: &GuildSettings,
        by: u64,
    ) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO guild_settings (guild_id, log_channel_id, toxicity_threshold, \
             default_mode, cooldown_s, scan_channels, screen_channel_id, new_account_days, auto_scan, \
             auto_scan_cap, updated_at, updated_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
             ON CONFLICT (guild_id) DO UPDATE SET log_channel_id = excluded.log_channel_id, \
             toxicity_threshold = excluded.toxicity_threshold, default_mode = excluded.default_mode, \
             cooldown_s = excluded.cooldown_s, scan_channels = excluded.scan_channels, \
             screen_channel_id = excluded.screen_channel_id, \
             new_account_days = excluded.new_account_days, auto_scan = excluded.auto_scan, \
             auto_scan_cap = excluded.auto_scan_cap, updated_at = excluded.updated_at, updated_by = excluded.updated_by",
        )
        .bind(id_to_db(guild))
        .bind(settings.log_channel.map(id_to_db))
        .bind(settings.toxicity_threshold)
        .bind(settings.default_mode.map(|m| m.as_str().to_string()))
        .bind(count_to_db(settings.cooldown_s))
        .bind(
            settings
                .scan_channels
                .as_ref()
                .map(|c| serde_json::to_string(c).unwrap_or_else(|_| "[]".into())),
        )
        .bind(settings.screen_channel.map(id_to_db))
        .bind(count_to_db(settings.new_account_days))
        .bind(settings.auto_scan.map(i64::from))
        .bind(count_to_db(settings.auto_scan_cap))
        .bind(millis(chrono::Utc::now()))
        .bind(id_to_db(by))
        .execute(self.pool())
        .await?;
        Ok(())
    }
}
