//! History's housekeeping, for every face: the start-up check of rows against files, `forget`,
//! and retention. The order is always files first, then rows: a crash in between leaves a row
//! whose files are gone, which the start-up check finds and marks, never a file the database
//! says was removed.

use std::path::Path;
use std::time::Duration;

use crate::db::scans::TargetKey;
use crate::db::{Db, DbError, HistoryEntry};
use crate::store::ReportStore;

/// What the start-up check found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reconciled {
    pub rows: usize,
    /// Rows whose files were gone: kept as history, marked.
    pub files_missing: Vec<String>,
    /// JSON reports in the scans directory that no row names (written just before a crash,
    /// made before history existed, or by another database).
    pub unindexed_reports: usize,
}

/// Checks every row's files and marks those whose files are gone; counts reports no row names.
pub async fn reconcile(db: &Db, store: &ReportStore) -> Result<Reconciled, DbError> {
    let rows = db.all_files().await?;
    let dir = store.dir().to_path_buf();
    let (missing, named) = {
        let mut missing = Vec::new();
        let mut named = std::collections::HashSet::new();
        for (scan_id, files) in &rows {
            if files.iter().any(|f| !dir.join(f).is_file()) {
                missing.push(scan_id.clone());
            }
            named.extend(files.iter().cloned());
        }
        (missing, named)
    };
    if !missing.is_empty() {
        db.mark_files_missing(&missing).await?;
    }
    let unindexed_reports = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    name.ends_with(".json") && !name.starts_with('.') && !named.contains(&name)
                })
                .count()
        })
        .unwrap_or(0);
    Ok(Reconciled {
        rows: rows.len(),
        files_missing: missing,
        unindexed_reports,
    })
}

/// Logs what [`reconcile`] found.
pub async fn reconcile_and_log(db: &Db, store: &ReportStore) {
    match reconcile(db, store).await {
        Ok(r) => {
            for scan_id in &r.files_missing {
                tracing::warn!(scan_id = %scan_id, "history row's report files are gone; kept as history, marked files missing");
            }
            tracing::info!(
                rows = r.rows,
                files_missing = r.files_missing.len(),
                unindexed_reports = r.unindexed_reports,
                "history checked against the report files"
            );
        }
        Err(e) => tracing::error!(error = %e, "could not check history against the report files"),
    }
}

/// What `forget` removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Forgotten {
    pub scans: usize,
    pub files: usize,
}

/// Removes a server's scans of a target: their files, then their rows.
pub async fn forget(
    db: &Db,
    store: &ReportStore,
    guild: u64,
    target: &TargetKey,
) -> Result<Forgotten, DbError> {
    let entries = db.all_of(guild, target).await?;
    let forgotten = remove_scans(db, store.dir(), &entries).await?;
    if let Some(shared) = db.shared() {
        shared
            .forget_jobs(guild, &target.username, target.member)
            .await?;
    }
    Ok(forgotten)
}

/// Removes scans that finished more than `max_age` ago: files, then rows.
pub async fn apply_retention(
    db: &Db,
    store: &ReportStore,
    max_age: Duration,
) -> Result<Forgotten, DbError> {
    let cutoff =
        chrono::Utc::now() - chrono::Duration::from_std(max_age).unwrap_or(chrono::Duration::MAX);
    let entries = db.finished_before(cutoff).await?;
    remove_scans(db, store.dir(), &entries).await
}

async fn remove_scans(db: &Db, dir: &Path, entries: &[HistoryEntry]) -> Result<Forgotten, DbError> {
    let mut files = 0;
    for entry in entries {
        for name in &entry.files {
            // Names come from the database; only a plain file name inside the scans directory
            // is ever removed.
            if name.contains('/') || name.starts_with('.') {
                continue;
            }
            match std::fs::remove_file(dir.join(name)) {
                Ok(()) => files += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(DbError::Files(format!(
                        "could not remove the report file {name}: {e}"
                    )));
                }
            }
        }
    }
    let ids: Vec<String> = entries.iter().map(|e| e.scan_id.clone()).collect();
    let scans = db.delete_scans(&ids).await?;
    Ok(Forgotten {
        scans: usize::try_from(scans).unwrap_or_default(),
        files,
    })
}
