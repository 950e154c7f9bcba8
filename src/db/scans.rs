//! Queries put together with `format!` join only constants of this file (columns, a scope's
//! filter); every value is a bound parameter.
//!
//! The scan index: one row per scan whose files were written, what history lists and what
//! "what changed" compares with.

use std::path::Path;

use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Db, DbError, from_millis, id_from_db, id_to_db, millis};
use crate::model::history::RedditDigest;
use crate::model::{EarlierScan, ScanDigest, ScanReport, SectionStatus};
use crate::store::SavedReport;

/// Where and by whom a scan was asked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Place {
    /// `None`: the command line.
    pub guild: Option<u64>,
    pub channel: Option<u64>,
    pub requester: Option<u64>,
    pub requester_name: Option<String>,
}

/// Whose history a query sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// One Discord server's scans only.
    Guild(u64),
    /// The command line's own scans.
    CommandLine,
    /// Everything (the operator's `history` command).
    All,
}

impl Scope {
    pub fn of(guild: Option<u64>) -> Scope {
        guild.map_or(Scope::CommandLine, Scope::Guild)
    }
}

/// Who a history lookup is about: a username (any case) and, for a member, their id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetKey {
    pub username: String,
    pub member: Option<u64>,
}

impl TargetKey {
    pub fn username(name: &str) -> TargetKey {
        TargetKey {
            username: name.to_lowercase(),
            member: None,
        }
    }
}

/// One scan as history lists it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct HistoryEntry {
    pub scan_id: String,
    pub guild_id: Option<u64>,
    pub channel_id: Option<u64>,
    pub requester_id: Option<u64>,
    pub requester_name: Option<String>,
    pub target: String,
    pub member_id: Option<u64>,
    pub mode: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub outcome: String,
    pub hits: u64,
    pub unverified: u64,
    pub sites: Option<Vec<String>>,
    pub reddit: Option<RedditDigest>,
    pub scorer: Option<String>,
    /// File names in the scans directory: the JSON report first.
    pub files: Vec<String>,
    /// False when the start-up check found the files gone (removed by hand, or a database
    /// restored without them): the row stays, as history.
    pub files_present: bool,
}

impl HistoryEntry {
    pub fn digest(&self) -> ScanDigest {
        ScanDigest {
            sites: self.sites.clone(),
            reddit: self.reddit.clone(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct HistoryPage {
    pub total: u64,
    pub entries: Vec<HistoryEntry>,
}

const COLUMNS: &str = "scan_id, guild_id, channel_id, requester_id, requester_name, target, \
    target_key, member_id, mode, started_at, finished_at, outcome, hits, unverified, sites, reddit_status, \
    reddit_karma, reddit_created, reddit_items, mean_toxicity, max_toxicity, at_or_above, scorer, \
    json_file, sherlock_csv, reddit_csv, files_present";

/// The file name inside the scans directory.
fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn outcome(report: &ScanReport) -> &'static str {
    let failed = |s: SectionStatus| s == SectionStatus::Failed;
    if failed(report.sherlock.status) && !report.request.mode.runs_reddit()
        || failed(report.reddit.status) && !report.request.mode.runs_sherlock()
        || failed(report.sherlock.status) && failed(report.reddit.status)
    {
        "failed"
    } else if report.partial {
        "partial"
    } else {
        "completed"
    }
}

impl Db {
    /// Indexes a scan whose files are written. One statement: the row is there whole or not.
    pub async fn record_scan(
        &self,
        place: &Place,
        report: &ScanReport,
        saved: &SavedReport,
    ) -> Result<(), DbError> {
        let digest = ScanDigest::of(report);
        let sites = digest
            .sites
            .as_ref()
            .map(|s| serde_json::to_string(s).unwrap_or_else(|_| "[]".into()));
        let reddit = digest.reddit.as_ref();
        let member = report
            .request
            .discord_member
            .as_ref()
            .and_then(|m| m.user_id.parse::<u64>().ok());
        let scorer = report.reddit.scoring.as_ref().map(|s| s.model.clone());
        let sql = format!(
            "INSERT INTO scans ({COLUMNS}, report_json) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, \
             $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, \
             1, $27)"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(report.scan_id.clone())
            .bind(place.guild.map(id_to_db))
            .bind(place.channel.map(id_to_db))
            .bind(place.requester.map(id_to_db))
            .bind(place.requester_name.clone())
            .bind(report.request.username.clone())
            .bind(report.request.username.to_lowercase())
            .bind(member.map(id_to_db))
            .bind(report.request.mode.as_str().to_string())
            .bind(millis(report.started_at))
            .bind(millis(report.finished_at))
            .bind(outcome(report).to_string())
            .bind(report.sherlock.counts.claimed as i64)
            .bind(report.sherlock.counts.unverified as i64)
            .bind(sites)
            .bind(reddit.map(|r| r.status.clone()))
            .bind(reddit.and_then(|r| r.total_karma))
            .bind(reddit.and_then(|r| r.created_utc).map(millis))
            .bind(reddit.map(|r| r.items as i64))
            .bind(reddit.and_then(|r| r.mean_toxicity))
            .bind(reddit.and_then(|r| r.max_toxicity))
            .bind(reddit.map(|r| r.at_or_above_threshold as i64))
            .bind(scorer)
            .bind(file_name(&saved.json))
            .bind(saved.sherlock_csv.as_deref().map(file_name))
            .bind(saved.reddit_csv.as_deref().map(file_name))
            // Several machines (PostgreSQL): the files stay where they were written.
            .bind(
                (self.engine() == super::Engine::Postgres)
                    .then(|| String::from_utf8_lossy(&report.to_json()).into_owned()),
            )
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// The target's scans in `scope`, newest first: `limit` of them after skipping `offset`.
    pub async fn history(
        &self,
        scope: Scope,
        target: &TargetKey,
        limit: u32,
        offset: u32,
    ) -> Result<HistoryPage, DbError> {
        let (filter, guild) = scope_filter(scope);
        // Two constant shapes, so SQLite's planner uses the target index when there is no member.
        let matches = match target.member {
            Some(_) => "(target_key = $2 OR member_id = $3)",
            None => "target_key = $2 AND $3 IS NULL",
        };
        let member = target.member.map(id_to_db);
        let total: i64 = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM scans WHERE {filter} AND {matches}"
        )))
        .bind(guild)
        .bind(target.username.clone())
        .bind(member)
        .fetch_one(self.pool())
        .await?
        .try_get(0)?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM scans WHERE {filter} AND {matches} \
             ORDER BY finished_at DESC, scan_id DESC LIMIT $4 OFFSET $5"
        )))
        .bind(guild)
        .bind(target.username.clone())
        .bind(member)
        .bind(i64::from(limit))
        .bind(i64::from(offset))
        .fetch_all(self.pool())
        .await?;
        Ok(HistoryPage {
            total: u64::try_from(total).unwrap_or_default(),
            entries: rows.iter().map(entry).collect::<Result<_, _>>()?,
        })
    }

    /// The newest scan of the target in `scope`, as "what changed" compares with.
    pub async fn latest(
        &self,
        scope: Scope,
        target: &TargetKey,
    ) -> Result<Option<EarlierScan>, DbError> {
        let page = self.history(scope, target, 1, 0).await?;
        Ok(page.entries.into_iter().next().map(|e| EarlierScan {
            digest: e.digest(),
            scan_id: e.scan_id,
            finished_at: e.finished_at,
            requested_by: e.requester_id,
            mode: e.mode,
        }))
    }

    /// Every scan of the target in one server (for `forget`), newest first.
    pub async fn all_of(
        &self,
        guild: u64,
        target: &TargetKey,
    ) -> Result<Vec<HistoryEntry>, DbError> {
        Ok(self
            .history(Scope::Guild(guild), target, u32::MAX / 2, 0)
            .await?
            .entries)
    }

    /// Scans that finished before `cutoff` (for retention), oldest first.
    pub async fn finished_before(
        &self,
        cutoff: DateTime<Utc>,
    ) -> Result<Vec<HistoryEntry>, DbError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM scans WHERE finished_at < $1 ORDER BY finished_at"
        )))
        .bind(millis(cutoff))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(entry).collect()
    }

    /// Every row's id and files (for the start-up reconciliation).
    pub async fn all_files(&self) -> Result<Vec<(String, Vec<String>)>, DbError> {
        let rows = sqlx::query(
            "SELECT scan_id, json_file, sherlock_csv, reddit_csv FROM scans WHERE files_present = 1",
        )
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| {
                let files = [
                    Some(r.try_get::<String, _>(1)?),
                    r.try_get::<Option<String>, _>(2)?,
                    r.try_get::<Option<String>, _>(3)?,
                ];
                Ok((r.try_get(0)?, files.into_iter().flatten().collect()))
            })
            .collect()
    }

    /// Marks rows whose files are gone.
    pub async fn mark_files_missing(&self, scan_ids: &[String]) -> Result<(), DbError> {
        let mut tx = self.pool().begin().await?;
        for id in scan_ids {
            sqlx::query("UPDATE scans SET files_present = 0 WHERE scan_id = $1")
                .bind(id.clone())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Deletes these rows in one transaction; returns how many there were.
    pub async fn delete_scans(&self, scan_ids: &[String]) -> Result<u64, DbError> {
        let mut tx = self.pool().begin().await?;
        let mut deleted = 0;
        for id in scan_ids {
            deleted += sqlx::query("DELETE FROM scans WHERE scan_id = $1")
                .bind(id.clone())
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        tx.commit().await?;
        Ok(deleted)
    }

    /// How many scans the database holds.
    pub async fn count_scans(&self) -> Result<u64, DbError> {
        let n: i64 = sqlx::query("SELECT COUNT(*) FROM scans")
            .fetch_one(self.pool())
            .await?
            .try_get(0)?;
        Ok(u64::try_from(n).unwrap_or_default())
    }
}

/// The `WHERE` part for a scope (parameter `$1`) and its value.
impl Db {
    /// The report JSON the database keeps of a scan in `scope` (PostgreSQL only; `None` on
    /// SQLite or for scans indexed before it was kept).
    pub async fn report_copy(
        &self,
        scope: Scope,
        scan_id: &str,
    ) -> Result<Option<String>, DbError> {
        let (filter, guild) = scope_filter(scope);
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT report_json FROM scans WHERE {filter} AND scan_id = $2"
        )))
        .bind(guild)
        .bind(scan_id.to_string())
        .fetch_optional(self.pool())
        .await?;
        Ok(row
            .map(|r| r.try_get::<Option<String>, _>("report_json"))
            .transpose()?
            .flatten())
    }
}

fn scope_filter(scope: Scope) -> (&'static str, Option<i64>) {
    match scope {
        Scope::Guild(g) => ("guild_id = $1", Some(id_to_db(g))),
        Scope::CommandLine => ("guild_id IS NULL AND $1 IS NULL", None),
        Scope::All => ("($1 IS NULL OR TRUE)", None),
    }
}

fn entry(r: &AnyRow) -> Result<HistoryEntry, DbError> {
    let sites: Option<String> = r.try_get("sites")?;
    let sites = sites
        .map(|s| serde_json::from_str(&s).map_err(|e| DbError::Corrupt(e.to_string())))
        .transpose()?;
    let reddit_status: Option<String> = r.try_get("reddit_status")?;
    let reddit = match reddit_status {
        None => None,
        Some(status) => Some(RedditDigest {
            status,
            total_karma: r.try_get("reddit_karma")?,
            created_utc: r
                .try_get::<Option<i64>, _>("reddit_created")?
                .map(from_millis),
            items: count(r.try_get::<Option<i64>, _>("reddit_items")?.unwrap_or(0)),
            mean_toxicity: r.try_get("mean_toxicity")?,
            max_toxicity: r.try_get("max_toxicity")?,
            at_or_above_threshold: count(r.try_get::<Option<i64>, _>("at_or_above")?.unwrap_or(0)),
        }),
    };
    let files = [
        Some(r.try_get::<String, _>("json_file")?),
        r.try_get::<Option<String>, _>("sherlock_csv")?,
        r.try_get::<Option<String>, _>("reddit_csv")?,
    ];
    Ok(HistoryEntry {
        scan_id: r.try_get("scan_id")?,
        guild_id: r.try_get::<Option<i64>, _>("guild_id")?.map(id_from_db),
        channel_id: r.try_get::<Option<i64>, _>("channel_id")?.map(id_from_db),
        requester_id: r.try_get::<Option<i64>, _>("requester_id")?.map(id_from_db),
        requester_name: r.try_get("requester_name")?,
        target: r.try_get("target")?,
        member_id: r.try_get::<Option<i64>, _>("member_id")?.map(id_from_db),
        mode: r.try_get("mode")?,
        started_at: from_millis(r.try_get("started_at")?),
        finished_at: from_millis(r.try_get("finished_at")?),
        outcome: r.try_get("outcome")?,
        hits: u64::try_from(r.try_get::<i64, _>("hits")?).unwrap_or_default(),
        unverified: u64::try_from(r.try_get::<i64, _>("unverified")?).unwrap_or_default(),
        sites,
        reddit,
        scorer: r.try_get("scorer")?,
        files: files.into_iter().flatten().collect(),
        files_present: r.try_get::<i64, _>("files_present")? != 0,
    })
}

fn count(n: i64) -> usize {
    usize::try_from(n).unwrap_or_default()
}
