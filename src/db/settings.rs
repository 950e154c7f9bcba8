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
}

impl Db {
    pub async fn guild_settings(&self, guild: u64) -> Result<GuildSettings, DbError> {
        let row = sqlx::query(
            "SELECT log_channel_id, toxicity_threshold, default_mode, cooldown_s, scan_channels \
             FROM guild_settings WHERE guild_id = $1",
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
            cooldown_s: r
                .try_get::<Option<i64>, _>("cooldown_s")?
                .map(|s| u64::try_from(s).unwrap_or_default()),
            scan_channels: channels
                .map(|c| {
                    serde_json::from_str::<Vec<u64>>(&c)
                        .map_err(|e| DbError::Corrupt(e.to_string()))
                })
                .transpose()?,
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
             default_mode, cooldown_s, scan_channels, updated_at, updated_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (guild_id) DO UPDATE SET log_channel_id = excluded.log_channel_id, \
             toxicity_threshold = excluded.toxicity_threshold, default_mode = excluded.default_mode, \
             cooldown_s = excluded.cooldown_s, scan_channels = excluded.scan_channels, \
             updated_at = excluded.updated_at, updated_by = excluded.updated_by",
        )
        .bind(id_to_db(guild))
        .bind(settings.log_channel.map(id_to_db))
        .bind(settings.toxicity_threshold)
        .bind(settings.default_mode.map(|m| m.as_str().to_string()))
        .bind(settings.cooldown_s.map(|s| i64::try_from(s).unwrap_or(i64::MAX)))
        .bind(
            settings
                .scan_channels
                .as_ref()
                .map(|c| serde_json::to_string(c).unwrap_or_else(|_| "[]".into())),
        )
        .bind(millis(chrono::Utc::now()))
        .bind(id_to_db(by))
        .execute(self.pool())
        .await?;
        Ok(())
    }
}
