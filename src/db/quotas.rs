//! Shared API quotas on PostgreSQL: one row per credential holds a GCRA state (the theoretical
//! arrival time of the next request, with no burst) and a pause imposed by the API. Taking a
//! slot is one statement that either takes it or says how long to wait, on the database's clock.

use std::time::Duration;

use sqlx::{AnyPool, Row};

use super::{Db, DbError, Engine};

/// A handle on the shared quota rows (a clone of the database's pool).
#[derive(Clone)]
pub struct SharedQuotas {
    pool: AnyPool,
}

impl std::fmt::Debug for SharedQuotas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedQuotas")
    }
}

/// The database's clock in microseconds.
pub(super) const NOW_US: &str = "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000)::BIGINT";

impl Db {
    /// Shared quotas need PostgreSQL (several machines); `None` on SQLite.
    pub fn shared_quotas(&self) -> Option<SharedQuotas> {
        (self.engine() == Engine::Postgres).then(|| SharedQuotas {
            pool: self.pool().clone(),
        })
    }
}

impl SharedQuotas {
    /// Takes the quota's next slot if it is free now: `None`; else how long until it may be.
    /// `spacing` is the time between two requests of the quota.
    pub async fn take(&self, key: &str, spacing: Duration) -> Result<Option<Duration>, DbError> {
        let spacing_us = i64::try_from(spacing.as_micros()).unwrap_or(i64::MAX);
        let token = format!("{:016x}", rand::random::<u64>());
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "WITH now AS (SELECT {NOW_US} AS us) \
             INSERT INTO api_quotas AS q (quota_key, tat_us, paused_until_us, granted_to) \
             SELECT $1, now.us + $2, 0, $3 FROM now \
             ON CONFLICT (quota_key) DO UPDATE SET \
               tat_us = CASE WHEN q.tat_us <= (SELECT us FROM now) \
                         AND q.paused_until_us <= (SELECT us FROM now) \
                    THEN (SELECT us FROM now) + $2 ELSE q.tat_us END, \
               granted_to = CASE WHEN q.tat_us <= (SELECT us FROM now) \
                         AND q.paused_until_us <= (SELECT us FROM now) \
                    THEN $3 ELSE q.granted_to END \
             RETURNING granted_to, \
               GREATEST(tat_us, paused_until_us) - (SELECT us FROM now) AS wait_us"
        )))
        .bind(key)
        .bind(spacing_us)
        .bind(&token)
        .fetch_one(&self.pool)
        .await?;
        let granted: Option<String> = row.try_get("granted_to")?;
        if granted.as_deref() == Some(token.as_str()) {
            return Ok(None);
        }
        let wait_us: i64 = row.try_get("wait_us")?;
        Ok(Some(Duration::from_micros(
            u64::try_from(wait_us).unwrap_or(0).max(1),
        )))
    }

    /// Holds every machine's requests on this quota back for `pause` (never shortens a longer
    /// pause).
    pub async fn pause(&self, key: &str, pause: Duration) -> Result<(), DbError> {
        let pause_us = i64::try_from(pause.as_micros()).unwrap_or(i64::MAX);
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO api_quotas AS q (quota_key, tat_us, paused_until_us) \
             VALUES ($1, 0, {NOW_US} + $2) \
             ON CONFLICT (quota_key) DO UPDATE SET \
               paused_until_us = GREATEST(q.paused_until_us, {NOW_US} + $2)"
        )))
        .bind(key)
        .bind(pause_us)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
