//! The database: scan history, the audit trail and per-server settings.
//!
//! One code path for both engines (sqlx's `Any` driver, portable SQL with `$N` parameters):
//! SQLite by default (a file in the scans volume, WAL, a busy timeout so concurrent writers wait
//! rather than fail), PostgreSQL when `DATABASE_URL` says so. Migrations in `migrations/` are
//! embedded and run at open. The report files stay the record; the `scans` table indexes them
//! and is written only after its files are on disk.

pub mod audit;
pub mod backup;
pub mod jobs;
pub mod scans;
pub mod settings;
pub mod shared;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;
use sqlx::{Executor, Row};

use crate::config::DatabaseTarget;

pub use scans::{HistoryEntry, HistoryPage, Scope, TargetKey};
pub use settings::GuildSettings;

/// How long a statement waits for another connection's write (SQLite).
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a scan, an audit entry or `health` waits for the database before going on without
/// it (shorter than a pool checkout: a moderator is waiting).
pub const ANSWER_WITHIN: Duration = Duration::from_secs(3);
/// Connecting to PostgreSQL (or any pool checkout) gives up after this.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

impl Engine {
    pub fn name(self) -> &'static str {
        match self {
            Engine::Sqlite => "SQLite",
            Engine::Postgres => "PostgreSQL",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("the database could not be opened ({what}): {source}")]
    Open {
        what: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("the database's migrations failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("a database query failed: {0}")]
    Query(#[from] sqlx::Error),
    #[error("a stored value could not be read: {0}")]
    Corrupt(String),
    #[error("{0}")]
    Backup(String),
    #[error("{0}")]
    Files(String),
}

/// The last failure of a write, for `health`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteFailure {
    pub reference: String,
    pub at: chrono::DateTime<chrono::Utc>,
}

pub struct Db {
    pool: AnyPool,
    engine: Engine,
    sqlite_file: Option<PathBuf>,
    last_failure: Mutex<Option<WriteFailure>>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("engine", &self.engine)
            .field("sqlite_file", &self.sqlite_file)
            .finish_non_exhaustive()
    }
}

impl Db {
    /// Connects, sets SQLite up (WAL, busy timeout) and runs the migrations.
    pub async fn open(target: &DatabaseTarget) -> Result<Db, DbError> {
        let db = Db::connect(target).await?;
        MIGRATOR.run(&db.pool).await?;
        Ok(db)
    }

    /// Connects without migrating (restore checks a file's schema before using it).
    async fn connect(target: &DatabaseTarget) -> Result<Db, DbError> {
        sqlx::any::install_default_drivers();
        let (url, engine, sqlite_file) = match target {
            DatabaseTarget::Sqlite(path) => {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(|e| DbError::Open {
                        what: path.display().to_string(),
                        source: sqlx::Error::Io(e),
                    })?;
                }
                (sqlite_url(path), Engine::Sqlite, Some(path.clone()))
            }
            DatabaseTarget::Postgres(url) => (url.expose().to_string(), Engine::Postgres, None),
        };
        let what = target.describe();
        let pool = AnyPoolOptions::new()
            .max_connections(match engine {
                Engine::Sqlite => 4,
                Engine::Postgres => 8,
            })
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if engine == Engine::Sqlite {
                        conn.execute(sqlx::AssertSqlSafe(format!(
                            "PRAGMA busy_timeout = {}",
                            BUSY_TIMEOUT.as_millis()
                        )))
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await
            .map_err(|source| DbError::Open {
                what: what.clone(),
                source: redact_url(source, &url),
            })?;
        if engine == Engine::Sqlite {
            // Persistent for the file: readers never block the writer, a crash loses nothing
            // that was committed.
            pool.execute("PRAGMA journal_mode = WAL")
                .await
                .map_err(|source| DbError::Open { what, source })?;
        }
        Ok(Db {
            pool,
            engine,
            sqlite_file,
            last_failure: Mutex::new(None),
        })
    }

    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// The SQLite file, when that is the engine.
    pub fn sqlite_file(&self) -> Option<&Path> {
        self.sqlite_file.as_deref()
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Remembers that a write failed (for `health`); `reference` ties it to the log line.
    pub fn note_failure(&self, reference: &str) {
        *self.last_failure.lock().unwrap_or_else(|e| e.into_inner()) = Some(WriteFailure {
            reference: reference.to_string(),
            at: chrono::Utc::now(),
        });
    }

    pub fn note_success(&self) {
        *self.last_failure.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// The last write failure since the last success.
    pub fn last_failure(&self) -> Option<WriteFailure> {
        self.last_failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// A quick round trip, for `health`.
    pub async fn ping(&self) -> Result<(), DbError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Whether the database answers within [`ANSWER_WITHIN`]; else why not, for the log.
    pub async fn answers(&self) -> Result<(), String> {
        match tokio::time::timeout(ANSWER_WITHIN, self.ping()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {} s", ANSWER_WITHIN.as_secs())),
        }
    }

    /// SQLite's `PRAGMA integrity_check` (`ok` when sound); PostgreSQL has no such check.
    pub async fn integrity_check(&self) -> Result<String, DbError> {
        if self.engine != Engine::Sqlite {
            return Ok("ok".into());
        }
        let rows = sqlx::query("PRAGMA integrity_check")
            .fetch_all(&self.pool)
            .await?;
        let lines: Vec<String> = rows
            .iter()
            .filter_map(|r| r.try_get::<String, _>(0).ok())
            .collect();
        Ok(lines.join("; "))
    }

    /// The newest migration applied to this database.
    pub async fn schema_version(&self) -> Result<i64, DbError> {
        let row = sqlx::query("SELECT MAX(version) FROM _sqlx_migrations WHERE success = TRUE")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<Option<i64>, _>(0)?.unwrap_or(0))
    }

    /// The newest migration this binary knows.
    pub fn known_schema_version() -> i64 {
        MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0)
    }
}

/// `sqlite://PATH?mode=rwc`, with the characters a URL would misread escaped.
pub(crate) fn sqlite_url(path: &Path) -> String {
    let escaped = path
        .display()
        .to_string()
        .replace('%', "%25")
        .replace('?', "%3F")
        .replace('#', "%23");
    format!("sqlite://{escaped}?mode=rwc")
}

/// sqlx's configuration errors may quote the URL, password and all.
fn redact_url(e: sqlx::Error, url: &str) -> sqlx::Error {
    let text = e.to_string();
    if text.contains(url) {
        sqlx::Error::Configuration(text.replace(url, "[DATABASE_URL]").into())
    } else {
        e
    }
}

/// Unix milliseconds.
pub(crate) fn millis(t: chrono::DateTime<chrono::Utc>) -> i64 {
    t.timestamp_millis()
}

pub(crate) fn from_millis(ms: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// Discord ids are u64 on the wire and BIGINT in the database (they fit in 63 bits).
pub(crate) fn id_to_db(id: u64) -> i64 {
    i64::try_from(id).unwrap_or(i64::MAX)
}

pub(crate) fn id_from_db(id: i64) -> u64 {
    u64::try_from(id).unwrap_or_default()
}
