//! Report files under the scans directory: safe names, atomic writes.
//!
//! A file appears under its final name only once it is complete and on disk: it is written to a
//! hidden temp file in the same directory, fsynced, renamed without replacing anything, and the
//! directory is fsynced. A crash leaves either nothing or a whole file. The writer holds an
//! exclusive lock on its temp file, so the next `open` can tell a dead writer's leftover (lock
//! free) from a live one's (locked) and removes only the former.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

pub mod csv;

use crate::model::ScanReport;

const TEMP_SUFFIX: &str = ".partial";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the scans directory {} cannot be created: {source}", .dir.display())]
    CreateDir {
        dir: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the scans directory {} is not writable: {source}", .dir.display())]
    NotWritable {
        dir: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "the scans directory {} has only {} free (the floor is {}): free some space or lower MIN_FREE_SPACE_MB",
        .dir.display(),
        crate::ops::host::human_bytes(*.free),
        crate::ops::host::human_bytes(*.min)
    )]
    LowSpace { dir: PathBuf, free: u64, min: u64 },
    #[error("writing {} failed: {source}", .path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// The files one scan produced.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SavedReport {
    pub json: PathBuf,
    pub sherlock_csv: Option<PathBuf>,
    pub reddit_csv: Option<PathBuf>,
}

impl SavedReport {
    pub fn paths(&self) -> Vec<&Path> {
        std::iter::once(self.json.as_path())
            .chain(self.sherlock_csv.as_deref())
            .chain(self.reddit_csv.as_deref())
            .collect()
    }
}

#[derive(Debug, Clone)]
pub struct ReportStore {
    dir: PathBuf,
}

impl ReportStore {
    /// Creates the directory if needed, checks it is writable, and removes stale temp files.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(|source| StoreError::CreateDir {
            dir: dir.clone(),
            source,
        })?;
        let store = ReportStore { dir };
        store.check_writable()?;
        store.remove_stale_temp_files();
        Ok(store)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn check_writable(&self) -> Result<(), StoreError> {
        tempfile::Builder::new()
            .prefix(".write-check-")
            .suffix(TEMP_SUFFIX)
            .tempfile_in(&self.dir)
            .and_then(|mut f| f.write_all(b"ok").and_then(|_| f.as_file().sync_all()))
            .map_err(|source| StoreError::NotWritable {
                dir: self.dir.clone(),
                source,
            })
    }

    /// Refuses (before a scan starts, not halfway) when free space is under `min_bytes`.
    pub fn check_free_space(&self, min_bytes: u64) -> Result<(), StoreError> {
        match crate::ops::host::free_space(&self.dir) {
            Some(free) if free < min_bytes => Err(StoreError::LowSpace {
                dir: self.dir.clone(),
                free,
                min: min_bytes,
            }),
            _ => Ok(()),
        }
    }

    /// Removes report files (the names `save` writes) last modified more than `max_age` ago,
    /// and returns them. Hidden entries (the control cache, temp files) are left alone.
    pub fn remove_older_than(&self, max_age: std::time::Duration) -> Vec<PathBuf> {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let now = std::time::SystemTime::now();
        let mut removed = Vec::new();
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let is_report = !name.starts_with('.')
                && (name.ends_with(".json")
                    || name.ends_with("_sherlock.csv")
                    || name.ends_with("_reddit.csv"));
            let old = entry
                .metadata()
                .ok()
                .filter(std::fs::Metadata::is_file)
                .and_then(|m| m.modified().ok())
                .and_then(|t| now.duration_since(t).ok())
                .is_some_and(|age| age > max_age);
            if is_report && old {
                match fs::remove_file(entry.path()) {
                    Ok(()) => removed.push(entry.path()),
                    Err(e) => {
                        tracing::warn!(file = %entry.path().display(), error = %e, "retention could not remove a file")
                    }
                }
            }
        }
        removed.sort();
        removed
    }

    fn remove_stale_temp_files(&self) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if !(name.starts_with('.') && name.ends_with(TEMP_SUFFIX)) {
                continue;
            }
            // A live writer holds the lock; a crashed one released it when it died.
            let abandoned = File::open(entry.path()).is_ok_and(|f| f.try_lock().is_ok());
            if abandoned {
                match fs::remove_file(entry.path()) {
                    Ok(()) => {
                        tracing::info!(file = %entry.path().display(), "removed a temp file left by a crashed write")
                    }
                    Err(e) => {
                        tracing::warn!(file = %entry.path().display(), error = %e, "could not remove stale temp file")
                    }
                }
            }
        }
    }

    /// This report's files when they are in this directory already (a scan finished on this
    /// machine, posted again after a takeover); `None` when they are elsewhere or gone.
    pub fn find_saved(&self, report: &ScanReport) -> Option<SavedReport> {
        for stem in stems(report) {
            let json = self.dir.join(format!("{stem}.json"));
            let bytes = fs::read(&json).ok()?;
            let same = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .is_some_and(|v| v["scan_id"].as_str() == Some(report.scan_id.as_str()));
            if same {
                let existing = |name: String| Some(self.dir.join(name)).filter(|p| p.is_file());
                return Some(SavedReport {
                    json,
                    sherlock_csv: existing(format!("{stem}_sherlock.csv")),
                    reddit_csv: existing(format!("{stem}_reddit.csv")),
                });
            }
        }
        None
    }

    /// Writes the report's files: the Sherlock CSV (when Sherlock ran), the Reddit CSV (when
    /// Reddit was asked), then the JSON report.
    /// Names come only from the validated username and the scan's UTC start time.
    /// When the directory was removed during the scan it is created again (and a warning
    /// logged): the scan's work is not thrown away because someone cleaned up.
    pub fn save(&self, report: &ScanReport) -> Result<SavedReport, StoreError> {
        if !self.dir.is_dir() {
            fs::create_dir_all(&self.dir).map_err(|source| StoreError::CreateDir {
                dir: self.dir.clone(),
                source,
            })?;
            tracing::warn!(dir = %self.dir.display(), "the scans directory disappeared during the scan: created it again");
        }
        let base = base_name(report);
        let with_sherlock = !report.sherlock.sites.is_empty()
            || report.sherlock.status != crate::model::SectionStatus::Skipped;
        let with_reddit = !matches!(
            report.reddit.status,
            crate::model::SectionStatus::Skipped | crate::model::SectionStatus::NotConfigured
        );

        for stem in stems(report) {
            let json_name = format!("{stem}.json");
            let csv_name = format!("{stem}_sherlock.csv");
            let reddit_name = format!("{stem}_reddit.csv");
            if self.dir.join(&json_name).exists()
                || self.dir.join(&csv_name).exists()
                || self.dir.join(&reddit_name).exists()
            {
                continue;
            }
            let mut saved = SavedReport::default();
            if with_sherlock {
                let bytes =
                    crate::store::csv::sherlock_csv(report).map_err(|e| StoreError::Write {
                        path: self.dir.join(&csv_name),
                        source: io::Error::other(e),
                    })?;
                match write_atomic(&self.dir, &csv_name, |f| f.write_all(&bytes)) {
                    Ok(path) => saved.sherlock_csv = Some(path),
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                    Err(source) => {
                        return Err(StoreError::Write {
                            path: self.dir.join(&csv_name),
                            source,
                        });
                    }
                }
            }
            if with_reddit {
                let written = crate::store::csv::reddit_csv(report)
                    .map_err(io::Error::other)
                    .and_then(|bytes| {
                        write_atomic(&self.dir, &reddit_name, |f| f.write_all(&bytes))
                    });
                match written {
                    Ok(path) => saved.reddit_csv = Some(path),
                    Err(e) => {
                        if let Some(csv) = &saved.sherlock_csv {
                            let _ = fs::remove_file(csv);
                        }
                        if e.kind() == io::ErrorKind::AlreadyExists {
                            continue;
                        }
                        return Err(StoreError::Write {
                            path: self.dir.join(&reddit_name),
                            source: e,
                        });
                    }
                }
            }
            let json = report.to_json();
            match write_atomic(&self.dir, &json_name, |f| f.write_all(&json)) {
                Ok(path) => {
                    saved.json = path;
                    return Ok(saved);
                }
                Err(source) => {
                    // The JSON is the report of record: without it, drop the CSVs too.
                    for csv in [&saved.sherlock_csv, &saved.reddit_csv]
                        .into_iter()
                        .flatten()
                    {
                        let _ = fs::remove_file(csv);
                    }
                    if source.kind() == io::ErrorKind::AlreadyExists {
                        continue;
                    }
                    return Err(StoreError::Write {
                        path: self.dir.join(&json_name),
                        source,
                    });
                }
            }
        }
        Err(StoreError::Write {
            path: self.dir.join(format!("{base}.json")),
            source: io::Error::new(
                io::ErrorKind::AlreadyExists,
                "100 reports with this name and time exist",
            ),
        })
    }
}

/// A report's file stem: the validated username and the scan's UTC start time.
fn base_name(report: &ScanReport) -> String {
    let stamp = report.started_at.format("%Y%m%dT%H%M%S%.3fZ").to_string();
    format!("{}_{stamp}", report.request.username)
}

/// The stems a report's files may have, in the order `save` tries them: the base name, then
/// `-2` … `-100` when another scan of the same name started in the same millisecond.
fn stems(report: &ScanReport) -> impl Iterator<Item = String> {
    let base = base_name(report);
    (1..=100u32).map(move |attempt| match attempt {
        1 => base.clone(),
        n => format!("{base}-{n}"),
    })
}

/// Writes `dir/name` atomically: the file appears complete or not at all, and an existing file
/// of that name is never replaced (`AlreadyExists`).
pub fn write_atomic(
    dir: &Path,
    name: &str,
    contents: impl FnOnce(&mut File) -> io::Result<()>,
) -> io::Result<PathBuf> {
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(TEMP_SUFFIX)
        .tempfile_in(dir)?;
    tmp.as_file().lock()?;
    contents(tmp.as_file_mut())?;
    tmp.as_file_mut().flush()?;
    tmp.as_file().sync_all()?;
    let target = dir.join(name);
    tmp.persist_noclobber(&target).map_err(|e| e.error)?;
    File::open(dir)?.sync_all()?;
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_atomic_never_replaces_and_leaves_no_temp() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write_atomic(dir.path(), "a.json", |f| f.write_all(b"one")).expect("first");
        assert_eq!(fs::read(&path).expect("read"), b"one");
        let err = write_atomic(dir.path(), "a.json", |f| f.write_all(b"two")).expect_err("exists");
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&path).expect("read"), b"one");
        let failed = write_atomic(dir.path(), "b.json", |f| {
            f.write_all(b"half")?;
            Err(io::Error::other("disk full"))
        });
        assert!(failed.is_err());
        let names: Vec<_> = fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["a.json"]);
    }

    #[test]
    fn retention_removes_exactly_the_old_report_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let day = std::time::Duration::from_secs(86_400);
        let now = std::time::SystemTime::now();
        let files = [
            ("old_20250101T000000.000Z.json", 40),
            ("old_20250101T000000.000Z_sherlock.csv", 40),
            ("old_20250101T000000.000Z_reddit.csv", 31),
            ("new_20261101T000000.000Z.json", 29),
            ("new_20261101T000000.000Z_sherlock.csv", 1),
            ("notes.txt", 400),
            (".hidden.json", 400),
        ];
        for (name, age_days) in files {
            let path = dir.path().join(name);
            fs::write(&path, "x").expect("write");
            File::options()
                .write(true)
                .open(&path)
                .and_then(|f| f.set_modified(now - day * age_days))
                .expect("mtime");
        }
        let store = ReportStore::open(dir.path()).expect("open");
        let removed: Vec<String> = store
            .remove_older_than(day * 30)
            .iter()
            .map(|p| p.file_name().expect("name").to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            removed,
            [
                "old_20250101T000000.000Z.json",
                "old_20250101T000000.000Z_reddit.csv",
                "old_20250101T000000.000Z_sherlock.csv"
            ]
        );
        let mut left: Vec<String> = fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                ".hidden.json",
                "new_20261101T000000.000Z.json",
                "new_20261101T000000.000Z_sherlock.csv",
                "notes.txt"
            ]
        );
    }

    #[test]
    fn a_floor_above_the_free_space_refuses() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = ReportStore::open(dir.path()).expect("open");
        assert!(store.check_free_space(0).is_ok());
        let err = store
            .check_free_space(u64::MAX)
            .expect_err("no disk is that big");
        assert!(err.to_string().contains("lower MIN_FREE_SPACE_MB"), "{err}");
    }

    #[test]
    fn abandoned_temp_files_are_removed_on_open_but_live_ones_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let abandoned = dir.path().join(".x.json.abc.partial");
        let live = dir.path().join(".y.json.abc.partial");
        fs::write(&abandoned, "half").expect("write");
        fs::write(&live, "half").expect("write");
        let writer = File::open(&live).expect("open");
        writer.lock().expect("lock");
        ReportStore::open(dir.path()).expect("open");
        assert!(!abandoned.exists());
        assert!(live.exists(), "a live writer's temp file is left alone");
    }
}
