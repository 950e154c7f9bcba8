//! The audit trail's rows: every scan, refusal, shutdown, settings change and deletion, with
//! who and where. `jobs::audit` says what each entry holds; this file only keeps them.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{Db, DbError, from_millis, id_from_db, id_to_db, millis};

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AuditRecord {
    pub at: DateTime<Utc>,
    /// `None`: not tied to a server (a signal, the command line).
    pub guild: Option<u64>,
    pub channel: Option<u64>,
    pub user: Option<u64>,
    /// `scan`, `refused`, `shutdown`, `settings`, `forget`, `retention`.
    pub action: String,
    pub target: Option<String>,
    pub detail: serde_json::Value,
}

impl Db {
    pub async fn record_audit(&self, record: &AuditRecord) -> Result<(), DbError> {
        let id = format!("{:013x}-{:08x}", millis(record.at), rand::random::<u32>());
        sqlx::query(
            "INSERT INTO audit (id, at, guild_id, channel_id, user_id, action, target, detail) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(id)
        .bind(millis(record.at))
        .bind(record.guild.map(id_to_db))
        .bind(record.channel.map(id_to_db))
        .bind(record.user.map(id_to_db))
        .bind(record.action.clone())
        .bind(record.target.clone())
        .bind(record.detail.to_string())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// A server's newest audit entries first (`None`: every server's, for the operator).
    pub async fn audit_trail(
        &self,
        guild: Option<u64>,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, DbError> {
        let rows = sqlx::query(
            "SELECT at, guild_id, channel_id, user_id, action, target, detail FROM audit \
             WHERE ($1 IS NULL OR guild_id = $1) ORDER BY at DESC, id DESC LIMIT $2",
        )
        .bind(guild.map(id_to_db))
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let detail: String = r.try_get("detail")?;
                Ok(AuditRecord {
                    at: from_millis(r.try_get("at")?),
                    guild: r.try_get::<Option<i64>, _>("guild_id")?.map(id_from_db),
                    channel: r.try_get::<Option<i64>, _>("channel_id")?.map(id_from_db),
                    user: r.try_get::<Option<i64>, _>("user_id")?.map(id_from_db),
                    action: r.try_get("action")?,
                    target: r.try_get("target")?,
                    detail: serde_json::from_str(&detail)
                        .map_err(|e| DbError::Corrupt(e.to_string()))?,
                })
            })
            .collect()
    }
}
