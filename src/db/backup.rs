//! Backup and restore of the SQLite database (PostgreSQL has `pg_dump` / `pg_restore`).
//!
//! A backup is `VACUUM INTO` a temp file beside the destination, then renamed: a consistent
//! snapshot taken inside one read transaction, so scans being written meanwhile are either in it
//! whole or not at all, and never a file copy of a live WAL database.
//!
//! A restore checks the file (SQLite's integrity check, a schema this binary knows), then puts it
//! in place when no bot holds the database's lock file; while a bot runs it is staged beside the
//! database and put in place at the bot's next start, before the database is opened.

use std::fs::File;
use std::path::{Path, PathBuf};

use super::{Db, DbError, Engine};
use crate::config::DatabaseTarget;

/// What `restore` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Restored {
    /// Put in place now.
    InPlace { scans: u64 },
    /// A bot is running: staged, put in place when it next starts.
    Staged { scans: u64, staged: PathBuf },
}

/// The lock a running bot (or a restore) holds on its SQLite database: `FILE.lock`.
pub struct DatabaseLock {
    _lock: nix::fcntl::Flock<File>,
}

fn lock_path(db: &Path) -> PathBuf {
    with_suffix(db, ".lock")
}

fn staged_path(db: &Path) -> PathBuf {
    with_suffix(db, ".restore")
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

impl DatabaseLock {
    /// Takes the lock without waiting; `None` when another process holds it.
    pub fn try_take(db: &Path) -> Result<Option<DatabaseLock>, DbError> {
        if let Some(dir) = db.parent() {
            std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        }
        let path = lock_path(db);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| io(&path, e))?;
        match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
            Ok(lock) => Ok(Some(DatabaseLock { _lock: lock })),
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
            Err((_, e)) => Err(io(&path, e.into())),
        }
    }
}

fn io(path: &Path, e: std::io::Error) -> DbError {
    DbError::Backup(format!("{}: {e}", path.display()))
}

impl Db {
    /// Writes a consistent copy of the database to `dest` (which must not exist yet).
    pub async fn backup(&self, dest: &Path) -> Result<u64, DbError> {
        if self.engine != Engine::Sqlite {
            return Err(DbError::Backup(
                "this database is PostgreSQL: back it up with `pg_dump` (see docs/operations.md)"
                    .into(),
            ));
        }
        if dest.exists() {
            return Err(DbError::Backup(format!(
                "{} already exists: choose a new file name (nothing was overwritten)",
                dest.display()
            )));
        }
        let dir = match dest.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let temp = tempfile::Builder::new()
            .prefix(".backup-")
            .suffix(".partial")
            .tempfile_in(&dir)
            .map_err(|e| io(&dir, e))?
            .into_temp_path();
        // VACUUM INTO refuses an existing file, even an empty one.
        std::fs::remove_file(&temp).map_err(|e| io(&temp, e))?;
        let quoted = temp.display().to_string().replace('\'', "''");
        // The path is the operator's, quoted as SQL text: it cannot end the string.
        sqlx::query(sqlx::AssertSqlSafe(format!("VACUUM INTO '{quoted}'")))
            .execute(self.pool())
            .await?;
        // Counted in the copy itself: scans written since are in the live database, not in it.
        let scans = count_in_file(&temp).await?;
        File::open(&temp)
            .and_then(|f| f.sync_all())
            .map_err(|e| io(&temp, e))?;
        // Never replaces a file that appeared meanwhile.
        std::fs::hard_link(&temp, dest).map_err(|e| io(dest, e))?;
        drop(temp);
        File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io(&dir, e))?;
        Ok(scans)
    }
}

/// The scans in an SQLite file, read-only.
async fn count_in_file(path: &Path) -> Result<u64, DbError> {
    let url = super::sqlite_url(path).replace("?mode=rwc", "?mode=ro");
    let pool = sqlx::AnyPool::connect(&url).await?;
    let counted = sqlx::query("SELECT COUNT(*) FROM scans")
        .fetch_one(&pool)
        .await
        .and_then(|row| sqlx::Row::try_get::<i64, _>(&row, 0));
    pool.close().await;
    Ok(u64::try_from(counted?).unwrap_or_default())
}

/// Checks `source` and puts it in place of the SQLite database at `target` (see the module
/// docs). Nothing changes when a check fails.
pub async fn restore(target: &DatabaseTarget, source: &Path) -> Result<Restored, DbError> {
    let DatabaseTarget::Sqlite(db_path) = target else {
        return Err(DbError::Backup(
            "this database is PostgreSQL: restore it with `pg_restore` (see docs/operations.md)"
                .into(),
        ));
    };
    if !source.is_file() {
        return Err(DbError::Backup(format!(
            "{} is not a file",
            source.display()
        )));
    }
    let dir = db_path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
    // Checked on a copy, never on the operator's file.
    let check = tempfile::Builder::new()
        .prefix(".restore-check-")
        .suffix(".partial")
        .tempfile_in(&dir)
        .map_err(|e| io(&dir, e))?
        .into_temp_path();
    std::fs::copy(source, &check).map_err(|e| io(source, e))?;
    let scans = check_copy(&check, source).await?;
    File::open(&check)
        .and_then(|f| f.sync_all())
        .map_err(|e| io(&check, e))?;

    let lock = DatabaseLock::try_take(db_path)?;
    let Some(_lock) = lock else {
        let staged = staged_path(db_path);
        std::fs::rename(&check, &staged).map_err(|e| io(&staged, e))?;
        sync_dir(&dir)?;
        return Ok(Restored::Staged { scans, staged });
    };
    put_in_place(&check, db_path)?;
    Ok(Restored::InPlace { scans })
}

/// Opens the copy, runs the integrity check, checks the schema and leaves it whole in one file
/// (no `-wal` beside it). Returns its scan count.
async fn check_copy(copy: &Path, source: &Path) -> Result<u64, DbError> {
    let not_ours = |why: String| {
        DbError::Backup(format!(
            "{} cannot be restored: {why}; nothing was changed",
            source.display()
        ))
    };
    let db = Db::connect(&DatabaseTarget::Sqlite(copy.to_path_buf()))
        .await
        .map_err(|e| not_ours(e.to_string()))?;
    let checked = async {
        let integrity = db
            .integrity_check()
            .await
            .map_err(|_| not_ours("it is not an SQLite database".into()))?;
        if integrity != "ok" {
            return Err(not_ours(format!("SQLite's integrity check says {integrity}")));
        }
        let version = db
            .schema_version()
            .await
            .map_err(|_| not_ours("it is not an account-scanner database".into()))?;
        if version > Db::known_schema_version() {
            return Err(not_ours(format!(
                "it was written by a newer account-scanner (schema {version}, this one knows up to {})",
                Db::known_schema_version()
            )));
        }
        db.count_scans()
            .await
            .map_err(|e| not_ours(e.to_string()))
    }
    .await;
    // The last connection to close checkpoints the WAL into the file and removes it.
    db.close().await;
    let wal = with_suffix(copy, "-wal");
    if std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0) {
        return Err(not_ours(
            "its write-ahead log could not be folded in".into(),
        ));
    }
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(with_suffix(copy, suffix));
    }
    checked
}

/// Replaces the database with `file`: the old database's `-wal`/`-shm` go first (they belong to
/// the old file and would be replayed into the new one), then an atomic rename.
fn put_in_place(file: &Path, db_path: &Path) -> Result<(), DbError> {
    for suffix in ["-wal", "-shm"] {
        let side = with_suffix(db_path, suffix);
        match std::fs::remove_file(&side) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(&side, e)),
        }
    }
    std::fs::rename(file, db_path).map_err(|e| io(db_path, e))?;
    sync_dir(db_path.parent().unwrap_or(Path::new(".")))
}

fn sync_dir(dir: &Path) -> Result<(), DbError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io(dir, e))
}

/// At a bot's start, with its lock held: puts a staged restore in place. Returns whether one was.
pub fn apply_staged_restore(db_path: &Path) -> Result<bool, DbError> {
    let staged = staged_path(db_path);
    if !staged.exists() {
        return Ok(false);
    }
    put_in_place(&staged, db_path)?;
    Ok(true)
}
