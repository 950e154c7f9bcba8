//! What several machines share on PostgreSQL, each in one statement on the database's clock:
//! API quotas (one row per credential: a GCRA state, the theoretical arrival time of the next
//! request with no burst, and a pause imposed by the API) and cooldowns (one row per server and
//! user, started only when the last one has run out).

use std::time::Duration;

use sqlx::{AnyPool, Row};

use super::{Db, DbError, Engine, id_to_db};

/// A handle on the shared rows (a clone of the database's pool).
#[derive(Clone)]
pub struct SharedState {
    pub(crate) pool: AnyPool,
}

impl std::fmt::Debug for SharedState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedState")
    }
}

/// The database's clock in microseconds.
pub(crate) const NOW_US: &str = "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000)::BIGINT";

impl Db {
    /// State shared by several machines needs PostgreSQL; `None` on SQLite (one machine keeps
    /// it in process).
    pub fn shared(&self) -> Option<SharedState> {
        (self.engine() == Engine::Postgres).then(|| SharedState {
            pool: self.pool().clone(),
        })
    }
}

impl SharedState {
    /// Takes the quota's next slot if it is free now: `None`; else how long until it may be.
    /// `spacing` is the time between two requests of the quota.
    pub async fn take_quota(
        &self,
        key: &str,
        spacing: Duration,
    ) -> Result<Option<Duration>, DbError> {
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
    pub async fn pause_quota(&self, key: &str, pause: Duration) -> Result<(), DbError> {
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

    /// Starts the user's cooldown of `every` in `guild`: `Ok(Ok(()))`, or `Ok(Err(left))` while
    /// the last one runs.
    pub async fn start_cooldown(
        &self,
        guild: Option<u64>,
        user: u64,
        every: Duration,
    ) -> Result<Result<(), Duration>, DbError> {
        let guild = guild.map(id_to_db).unwrap_or(0);
        let user = id_to_db(user);
        let every_us = i64::try_from(every.as_micros()).unwrap_or(i64::MAX);
        // Two tries: the last cooldown may run out between the two statements.
        for _ in 0..2 {
            let started = sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO cooldowns AS c (guild_id, user_id, until_us) \
                 VALUES ($1, $2, {NOW_US} + $3) \
                 ON CONFLICT (guild_id, user_id) DO UPDATE SET until_us = excluded.until_us \
                 WHERE c.until_us <= {NOW_US} RETURNING until_us"
            )))
            .bind(guild)
            .bind(user)
            .bind(every_us)
            .fetch_optional(&self.pool)
            .await?;
            if started.is_some() {
                return Ok(Ok(()));
            }
            let left: Option<i64> = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT until_us - {NOW_US} AS left_us FROM cooldowns \
                 WHERE guild_id = $1 AND user_id = $2"
            )))
            .bind(guild)
            .bind(user)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| r.try_get("left_us"))
            .transpose()?;
            if let Some(us) = left
                .and_then(|l| u64::try_from(l).ok())
                .filter(|us| *us > 0)
            {
                return Ok(Err(Duration::from_micros(us)));
            }
        }
        Ok(Err(Duration::from_secs(1)))
    }

    /// The control probe's result stored under `key` by any machine (JSON), if any.
    pub async fn control_result(&self, key: &str) -> Result<Option<String>, DbError> {
        let row = sqlx::query("SELECT result FROM control_results WHERE cache_key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("result")).transpose()?)
    }

    /// Stores a control probe's result for every machine (replacing an older one).
    pub async fn store_control_result(
        &self,
        key: &str,
        result: &str,
        checked: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO control_results (cache_key, result, checked_us) VALUES ($1, $2, $3) \
             ON CONFLICT (cache_key) DO UPDATE SET result = excluded.result, \
               checked_us = excluded.checked_us WHERE control_results.checked_us < excluded.checked_us",
        )
        .bind(key)
        .bind(result)
        .bind(checked.timestamp_micros())
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
