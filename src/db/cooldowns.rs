//! Shared cooldowns on PostgreSQL: one row per server and user, started in one statement that
//! only succeeds when the last one has run out, on the database's clock.

use std::time::Duration;

use sqlx::{AnyPool, Row};

use super::quotas::NOW_US;
use super::{Db, DbError, Engine, id_to_db};

/// A handle on the shared cooldown rows (a clone of the database's pool).
#[derive(Clone)]
pub struct SharedCooldowns {
    pool: AnyPool,
}

impl std::fmt::Debug for SharedCooldowns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedCooldowns")
    }
}

impl Db {
    /// Shared cooldowns need PostgreSQL (several machines); `None` on SQLite.
    pub fn shared_cooldowns(&self) -> Option<SharedCooldowns> {
        (self.engine() == Engine::Postgres).then(|| SharedCooldowns {
            pool: self.pool().clone(),
        })
    }
}

impl SharedCooldowns {
    /// Starts the user's cooldown of `every` in `guild`: `Ok(Ok(()))`, or `Ok(Err(left))` while
    /// the last one runs.
    pub async fn start(
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
}
