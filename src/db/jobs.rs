//! The scan queue every machine shares on PostgreSQL (table `scan_jobs`, migration 0005) and the
//! workers' heartbeats (`scan_workers`). What a job asks and where its words go are JSON the
//! caller writes and reads (`jobs::shared`); this module only moves rows, each change in one
//! statement guarded by the lease, so two machines never both run or post one job.

use std::time::Duration;

use sqlx::any::AnyRow;
use sqlx::{Acquire, Row};

use super::shared::{NOW_US, SharedState};
use super::{DbError, id_from_db, id_to_db};

/// A job's states, as stored.
pub mod state {
    pub const QUEUED: &str = "queued";
    pub const RUNNING: &str = "running";
    /// Scanned, its result stored in the row and on its way to Discord.
    pub const POSTING: &str = "posting";
    /// Waits for the job already scanning the same target in the same server.
    pub const FOLLOWING: &str = "following";
    pub const DONE: &str = "done";
    pub const FAILED: &str = "failed";
}

/// A job to add.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub key: String,
    /// 0: a moderator's; 1: automatic (waits behind every moderator's).
    pub priority: i32,
    pub guild: Option<u64>,
    pub channel: u64,
    /// The in-flight key: the same target in the same server is scanned once at a time.
    pub target: String,
    pub request: String,
    pub reply: String,
    /// A job whose machine died later than this after it was queued is failed, not taken over.
    pub deadline: Duration,
}

/// What adding a job did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enqueued {
    /// In line: `position` is `None` when a worker has a free slot for it now, else its 1-based
    /// place among the waiting jobs of every machine.
    Queued { position: Option<u64> },
    /// The same target is being scanned in this server for another request: this one gets
    /// that job's result. `request` is the other job's request JSON.
    Following { leader: String, request: String },
    /// A job with this key exists already (the same request delivered twice).
    Duplicate,
}

/// A job a worker holds.
#[derive(Debug, Clone)]
pub struct ClaimedJob {
    pub key: String,
    pub state: String,
    pub guild: Option<u64>,
    pub channel: u64,
    pub request: String,
    pub reply: String,
    pub attempts: i32,
    pub scan_id: Option<String>,
    /// The report JSON stored by an earlier attempt (or the leader, for a follower).
    pub result: Option<String>,
}

/// A job failed because its machines died, or it ran past its deadline.
#[derive(Debug, Clone)]
pub struct FailedJob {
    pub key: String,
    pub guild: Option<u64>,
    pub channel: u64,
    pub request: String,
    pub reply: String,
    pub attempts: i32,
    /// It waited for another job's scan, and that job failed.
    pub followed: bool,
}

/// A worker as its heartbeat describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerSeen {
    pub worker_id: String,
    pub machine: String,
    pub kind: String,
    pub shards: String,
    pub slots: u32,
    pub running: u32,
    pub seen_ago: Duration,
}

/// A worker is live when it beat within this.
pub const WORKER_LIVE_WITHIN: Duration = Duration::from_secs(15);

const CLAIMED_COLUMNS: &str = "j.job_key, j.state, j.guild_id, j.channel_id, j.request, j.reply, j.attempts, j.scan_id, j.result";
/// Serialises adding jobs, so each one's place counts every job added before it.
const ENQUEUE_LOCK: i64 = 0x5ca9_0017;

fn claimed(row: &AnyRow) -> Result<ClaimedJob, DbError> {
    Ok(ClaimedJob {
        key: row.try_get("job_key")?,
        state: row.try_get("state")?,
        guild: row.try_get::<Option<i64>, _>("guild_id")?.map(id_from_db),
        channel: id_from_db(row.try_get("channel_id")?),
        request: row.try_get("request")?,
        reply: row.try_get("reply")?,
        attempts: row.try_get("attempts")?,
        scan_id: row.try_get("scan_id")?,
        result: row.try_get("result")?,
    })
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

impl SharedState {
    /// Adds a job; its place counts every waiting job of every machine and the free slots of
    /// the live workers. Adding is serialised (a transaction-scoped advisory lock), so two
    /// requests at once never get the same place.
    pub async fn enqueue_job(&self, job: &NewJob) -> Result<Enqueued, DbError> {
        let mut conn = self.pool.acquire().await?;
        let mut tx = conn.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(ENQUEUE_LOCK)
            .execute(&mut *tx)
            .await?;
        let guild = job.guild.map(id_to_db).unwrap_or(0);
        let leader = sqlx::query(
            "SELECT job_key, request FROM scan_jobs \
             WHERE COALESCE(guild_id, 0) = $1 AND target = $2 \
               AND state IN ('queued', 'running') \
             ORDER BY enqueued_us LIMIT 1",
        )
        .bind(guild)
        .bind(&job.target)
        .fetch_optional(&mut *tx)
        .await?;
        let (state, leader_key, leader_request) = match &leader {
            Some(row) => (
                state::FOLLOWING,
                Some(row.try_get::<String, _>("job_key")?),
                Some(row.try_get::<String, _>("request")?),
            ),
            None => (state::QUEUED, None, None),
        };
        let inserted = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO scan_jobs (job_key, priority, enqueued_us, state, guild_id, channel_id, \
               target, request, reply, attempts, deadline_us, leader_key) \
             VALUES ($1, $2, {NOW_US}, $3, $4, $5, $6, $7, $8, 0, {NOW_US} + $9, $10) \
             ON CONFLICT (job_key) DO NOTHING RETURNING enqueued_us"
        )))
        .bind(&job.key)
        .bind(job.priority)
        .bind(state)
        .bind(job.guild.map(id_to_db))
        .bind(id_to_db(job.channel))
        .bind(&job.target)
        .bind(&job.request)
        .bind(&job.reply)
        .bind(micros(job.deadline))
        .bind(leader_key.clone())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(inserted) = inserted else {
            tx.rollback().await?;
            return Ok(Enqueued::Duplicate);
        };
        if let (Some(leader), Some(request)) = (leader_key, leader_request) {
            tx.commit().await?;
            return Ok(Enqueued::Following { leader, request });
        }
        let enqueued_us: i64 = inserted.try_get("enqueued_us")?;
        let place = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT \
               (SELECT COUNT(*) FROM scan_jobs WHERE state = 'queued' \
                  AND (priority, enqueued_us, job_key) < ($1, $2, $3)) AS ahead, \
               (SELECT COALESCE(SUM(slots), 0) FROM scan_workers \
                  WHERE seen_us > {NOW_US} - $4)::BIGINT AS slots, \
               (SELECT COUNT(*) FROM scan_jobs WHERE state IN ('running', 'posting') \
                  AND lease_until_us > {NOW_US}) AS running"
        )))
        .bind(job.priority)
        .bind(enqueued_us)
        .bind(&job.key)
        .bind(micros(WORKER_LIVE_WITHIN))
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        let ahead: i64 = place.try_get("ahead")?;
        let slots: i64 = place.try_get("slots")?;
        let running: i64 = place.try_get("running")?;
        let free = (slots - running).max(0);
        let position = ahead + 1 - free;
        Ok(Enqueued::Queued {
            position: u64::try_from(position).ok().filter(|p| *p > 0),
        })
    }

    /// Rewrites a job's reply target (the acknowledgement's id, known once it is sent).
    pub async fn set_job_reply(&self, key: &str, reply: &str) -> Result<(), DbError> {
        sqlx::query("UPDATE scan_jobs SET reply = $2 WHERE job_key = $1")
            .bind(key)
            .bind(reply)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The job's reply target as stored now.
    pub async fn job_reply(&self, key: &str) -> Result<Option<String>, DbError> {
        let row = sqlx::query("SELECT reply FROM scan_jobs WHERE job_key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("reply")).transpose()?)
    }

    /// Takes the oldest job no live worker holds, moderators' first: a queued one, one whose
    /// worker stopped renewing its lease (taken over, up to `max_attempts` runs, before its
    /// deadline), or one that followed a job now done (it gets that job's result). Rows other
    /// workers are claiming are skipped, never waited for.
    pub async fn claim_job(
        &self,
        worker: &str,
        lease: Duration,
        max_attempts: i32,
    ) -> Result<Option<ClaimedJob>, DbError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE scan_jobs j SET \
               state = CASE j.state WHEN 'queued' THEN 'running' WHEN 'running' THEN 'running' \
                 ELSE 'posting' END, \
               result = CASE WHEN j.state = 'following' THEN \
                 (SELECT l.result FROM scan_jobs l WHERE l.job_key = j.leader_key) ELSE j.result END, \
               scan_id = CASE WHEN j.state = 'following' THEN \
                 (SELECT l.scan_id FROM scan_jobs l WHERE l.job_key = j.leader_key) ELSE j.scan_id END, \
               lease_owner = $1, lease_until_us = {NOW_US} + $2, attempts = j.attempts + 1 \
             WHERE j.job_key = ( \
               SELECT s.job_key FROM scan_jobs s \
               WHERE s.state = 'queued' \
                  OR (s.state IN ('running', 'posting') AND s.lease_until_us < {NOW_US} \
                      AND s.attempts < $3 AND s.deadline_us > {NOW_US}) \
                  OR (s.state = 'following' AND EXISTS (SELECT 1 FROM scan_jobs l \
                      WHERE l.job_key = s.leader_key AND l.state = 'done')) \
               ORDER BY s.priority, s.enqueued_us, s.job_key \
               LIMIT 1 FOR UPDATE OF s SKIP LOCKED) \
             RETURNING {CLAIMED_COLUMNS}"
        )))
        .bind(worker)
        .bind(micros(lease))
        .bind(max_attempts)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(claimed).transpose()
    }

    /// Extends the lease; `false`: this worker no longer holds the job (another took it over).
    pub async fn renew_lease(
        &self,
        key: &str,
        worker: &str,
        lease: Duration,
    ) -> Result<bool, DbError> {
        let done = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE scan_jobs SET lease_until_us = {NOW_US} + $3 \
             WHERE job_key = $1 AND lease_owner = $2 AND state IN ('running', 'posting')"
        )))
        .bind(key)
        .bind(worker)
        .bind(micros(lease))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Stores the scan's result and moves the job to posting, only while this worker holds it:
    /// `false` means another worker took it over and this one must not post.
    pub async fn start_posting(
        &self,
        key: &str,
        worker: &str,
        scan_id: &str,
        result: &str,
    ) -> Result<bool, DbError> {
        let done = sqlx::query(
            "UPDATE scan_jobs SET state = 'posting', scan_id = $3, result = $4 \
             WHERE job_key = $1 AND lease_owner = $2 AND state IN ('running', 'posting')",
        )
        .bind(key)
        .bind(worker)
        .bind(scan_id)
        .bind(result)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives a running job back to the line (this worker's machine is shutting down and another
    /// can run it): it keeps its place (its first request time) and the run is not counted as an
    /// attempt. `false`: this worker no longer holds it, or its result is being posted already.
    pub async fn release_job(&self, key: &str, worker: &str) -> Result<bool, DbError> {
        let done = sqlx::query(
            "UPDATE scan_jobs SET state = 'queued', lease_owner = NULL, lease_until_us = NULL, \
               attempts = attempts - 1 \
             WHERE job_key = $1 AND lease_owner = $2 AND state = 'running'",
        )
        .bind(key)
        .bind(worker)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Ends the job (done or failed) if this worker still holds it.
    pub async fn finish_job(
        &self,
        key: &str,
        worker: &str,
        final_state: &str,
    ) -> Result<bool, DbError> {
        let done = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE scan_jobs SET state = $3, finished_us = {NOW_US}, lease_owner = NULL, \
               lease_until_us = NULL \
             WHERE job_key = $1 AND lease_owner = $2"
        )))
        .bind(key)
        .bind(worker)
        .bind(final_state)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Fails, once (whoever sweeps first gets each row): jobs whose worker died and that may
    /// not be taken over again (too many runs, or past their deadline), and followers whose
    /// leader failed. The caller tells their moderators.
    pub async fn sweep_failed_jobs(&self, max_attempts: i32) -> Result<Vec<FailedJob>, DbError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE scan_jobs j SET state = 'failed', finished_us = {NOW_US}, \
               lease_owner = NULL, lease_until_us = NULL \
             WHERE j.job_key IN ( \
               SELECT job_key FROM scan_jobs s \
               WHERE (s.state IN ('running', 'posting') AND s.lease_until_us < {NOW_US} \
                      AND (s.attempts >= $1 OR s.deadline_us <= {NOW_US})) \
                  OR (s.state = 'following' AND EXISTS (SELECT 1 FROM scan_jobs l \
                      WHERE l.job_key = s.leader_key AND l.state = 'failed')) \
               FOR UPDATE SKIP LOCKED) \
             RETURNING j.job_key, j.guild_id, j.channel_id, j.request, j.reply, j.attempts, \
               j.leader_key"
        )))
        .bind(max_attempts)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(FailedJob {
                    key: row.try_get("job_key")?,
                    guild: row.try_get::<Option<i64>, _>("guild_id")?.map(id_from_db),
                    channel: id_from_db(row.try_get("channel_id")?),
                    request: row.try_get("request")?,
                    reply: row.try_get("reply")?,
                    attempts: row.try_get("attempts")?,
                    followed: row.try_get::<Option<String>, _>("leader_key")?.is_some(),
                })
            })
            .collect()
    }

    /// Deletes jobs that ended more than `age` ago (with the results they held): a job is not
    /// history, and a request Discord delivers twice arrives within minutes.
    pub async fn purge_finished_jobs(&self, age: Duration) -> Result<u64, DbError> {
        let done = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM scan_jobs WHERE state IN ('done', 'failed') AND finished_us < {NOW_US} - $1"
        )))
        .bind(micros(age))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Deletes a server's ended jobs of a name or member (`forget`): their rows hold results.
    pub async fn forget_jobs(
        &self,
        guild: u64,
        username: &str,
        member: Option<u64>,
    ) -> Result<u64, DbError> {
        let done = sqlx::query(
            "DELETE FROM scan_jobs WHERE COALESCE(guild_id, 0) = $1 \
               AND state IN ('done', 'failed') \
               AND (split_part(target, '|', 1) = $2 OR split_part(target, '|', 2) = $3)",
        )
        .bind(id_to_db(guild))
        .bind(username.to_lowercase())
        .bind(member.map(|m| m.to_string()).unwrap_or_else(|| "-".into()))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Jobs waiting in line (every machine's).
    pub async fn jobs_waiting(&self) -> Result<u64, DbError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM scan_jobs WHERE state = 'queued'")
            .fetch_one(&self.pool)
            .await?;
        Ok(u64::try_from(row.try_get::<i64, _>("n")?).unwrap_or(0))
    }

    /// Records this worker as live (`running` is not stored: the jobs it holds say it).
    pub async fn beat(
        &self,
        worker: &WorkerSeen,
        started: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), DbError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO scan_workers (worker_id, machine, kind, shards, slots, started_us, seen_us) \
             VALUES ($1, $2, $3, $4, $5, $6, {NOW_US}) \
             ON CONFLICT (worker_id) DO UPDATE SET slots = excluded.slots, seen_us = excluded.seen_us"
        )))
        .bind(&worker.worker_id)
        .bind(&worker.machine)
        .bind(&worker.kind)
        .bind(&worker.shards)
        .bind(i32::try_from(worker.slots).unwrap_or(i32::MAX))
        .bind(started.timestamp_micros())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Removes this worker's heartbeat (a clean stop), so it stops counting at once.
    pub async fn retire_worker(&self, worker_id: &str) -> Result<(), DbError> {
        sqlx::query("DELETE FROM scan_workers WHERE worker_id = $1")
            .bind(worker_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The workers that beat within [`WORKER_LIVE_WITHIN`], by machine.
    pub async fn live_workers(&self) -> Result<Vec<WorkerSeen>, DbError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT w.worker_id, w.machine, w.kind, w.shards, w.slots, \
               (SELECT COUNT(*) FROM scan_jobs j WHERE j.lease_owner = w.worker_id \
                  AND j.state IN ('running', 'posting'))::INTEGER AS running, \
               {NOW_US} - w.seen_us AS ago_us FROM scan_workers w \
             WHERE w.seen_us > {NOW_US} - $1 ORDER BY w.machine, w.worker_id"
        )))
        .bind(micros(WORKER_LIVE_WITHIN))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(WorkerSeen {
                    worker_id: row.try_get("worker_id")?,
                    machine: row.try_get("machine")?,
                    kind: row.try_get("kind")?,
                    shards: row.try_get("shards")?,
                    slots: u32::try_from(row.try_get::<i32, _>("slots")?).unwrap_or(0),
                    running: u32::try_from(row.try_get::<i32, _>("running")?).unwrap_or(0),
                    seen_ago: Duration::from_micros(
                        u64::try_from(row.try_get::<i64, _>("ago_us")?).unwrap_or(0),
                    ),
                })
            })
            .collect()
    }
}
