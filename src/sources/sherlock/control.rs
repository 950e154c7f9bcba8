//! The false-positive guard: a control probe with a username that cannot exist.
//!
//! Some sites answer "profile exists" for any name (a catch-all page, a redirect that ends on a
//! 200, a soft 404). Alongside a scan, the same site list is checked for a random control name;
//! every site that claims it is marked "claims any username" and its hit is not counted. The
//! result depends only on the site list, the Sherlock version and the NSFW flag, so it is cached
//! under `<scans dir>/.cache` for `SHERLOCK_CONTROL_TTL` and most scans run Sherlock once.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::Utc;
use rand::Rng;
use sha2::{Digest, Sha256};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{RunOutcome, SherlockRunner};
use crate::config::SiteList;
use crate::db::shared::SharedState;
use crate::model::{ControlResult, EventSink, SiteStatus, Username};

/// 12 characters: long enough that nobody has it (36^11 × 26 names), short enough to pass the
/// `regexCheck` of all but 3 sites in Sherlock's bundled list (16 characters fail 7).
pub const CONTROL_NAME_LEN: usize = 12;

/// A random control name: a lowercase letter, then lowercase letters and digits.
pub fn control_username() -> Username {
    const FIRST: &[u8] = b"abcdefghijklmnopqrstuvwxyz";
    const REST: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let mut name = String::with_capacity(CONTROL_NAME_LEN);
    name.push(FIRST[rng.random_range(0..FIRST.len())] as char);
    for _ in 1..CONTROL_NAME_LEN {
        name.push(REST[rng.random_range(0..REST.len())] as char);
    }
    // Letters and digits only: always a valid username.
    Username::parse(&name).unwrap_or_else(|_| unreachable!("generated names are valid"))
}

/// The cache key: a hash of the site list's content (or its identity for `remote`), the
/// Sherlock version and the NSFW flag.
pub async fn cache_key(runner: &SherlockRunner, sherlock_version: Option<&str>) -> String {
    let mut h = Sha256::new();
    let list: Option<&Path> = match &runner.sites {
        SiteList::File(path) => Some(path),
        SiteList::Bundled => runner.install.bundled_list.as_deref(),
        SiteList::Remote => None,
    };
    match list {
        Some(path) => match tokio::fs::read(path).await {
            Ok(bytes) => h.update(&bytes),
            Err(_) => h.update(path.as_os_str().as_encoded_bytes()),
        },
        None => h.update(runner.sites.to_string().as_bytes()),
    }
    h.update(b"\0");
    h.update(sherlock_version.unwrap_or("unknown").as_bytes());
    h.update(if runner.nsfw { b"\0nsfw" } else { b"\0sfw!" });
    let digest = h.finalize();
    digest[..12].iter().map(|b| format!("{b:02x}")).collect()
}

/// Control results on disk, one file per key, replaced atomically; with PostgreSQL also in
/// the database, so a probe one machine ran serves every machine.
#[derive(Debug, Clone)]
pub struct ControlCache {
    dir: PathBuf,
    ttl: Duration,
    shared: Option<SharedState>,
}

impl ControlCache {
    pub fn new(scans_dir: &Path, ttl: Duration) -> Self {
        ControlCache {
            dir: scans_dir.join(".cache"),
            ttl,
            shared: None,
        }
    }

    /// Also reads and keeps results in the database every machine shares.
    pub fn shared_with(mut self, shared: Option<SharedState>) -> Self {
        self.shared = shared;
        self
    }

    /// A fresh complete result another machine stored in the database (kept in this
    /// machine's file too). A database that does not answer costs a probe, nothing else.
    async fn load_shared(&self, key: &str) -> Option<ControlResult> {
        let shared = self.shared.as_ref()?;
        let json = match shared.control_result(key).await {
            Ok(json) => json?,
            Err(e) => {
                tracing::warn!(error = %e, "the shared control results could not be read");
                return None;
            }
        };
        let result: ControlResult = serde_json::from_str(&json).ok()?;
        let result = self.fresh(result)?;
        if let Err(e) = self.store_file(key, &result) {
            tracing::debug!(error = %e, "could not keep the shared control result in a file");
        }
        Some(result)
    }

    async fn store_shared(&self, key: &str, result: &ControlResult) {
        let Some(shared) = &self.shared else { return };
        let json = serde_json::to_string(result).unwrap_or_default();
        if let Err(e) = shared
            .store_control_result(key, &json, result.checked_at)
            .await
        {
            tracing::warn!(error = %e, "could not share the control result with the other machines");
        }
    }

    fn fresh(&self, mut result: ControlResult) -> Option<ControlResult> {
        let age = Utc::now().signed_duration_since(result.checked_at);
        let fresh =
            age >= chrono::TimeDelta::zero() && age.to_std().is_ok_and(|age| age < self.ttl);
        (fresh && result.complete).then(|| {
            result.from_cache = true;
            result
        })
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("sherlock-control-{key}.json"))
    }

    /// A complete result younger than the TTL, if there is one.
    pub fn load(&self, key: &str) -> Option<ControlResult> {
        let bytes = std::fs::read(self.path(key)).ok()?;
        let result: ControlResult = serde_json::from_slice(&bytes).ok()?;
        self.fresh(result)
    }

    pub fn store(&self, key: &str, result: &ControlResult) -> io::Result<()> {
        self.store_file(key, result)
    }

    fn store_file(&self, key: &str, result: &ControlResult) -> io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let mut bytes = serde_json::to_vec_pretty(result).map_err(io::Error::other)?;
        bytes.push(b'\n');
        let mut tmp = tempfile::Builder::new()
            .prefix(".control.")
            .suffix(".partial")
            .tempfile_in(&self.dir)?;
        tmp.write_all(&bytes)?;
        tmp.as_file().sync_all()?;
        tmp.persist(self.path(key)).map_err(|e| e.error)?;
        File::open(&self.dir)?.sync_all()
    }

    /// Holds an exclusive lock on the key (across processes too) so concurrent scans run one
    /// probe and share it. Gives up at the deadline.
    async fn lock(&self, key: &str, deadline: Instant) -> io::Result<Option<File>> {
        std::fs::create_dir_all(&self.dir)?;
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.dir.join(format!("sherlock-control-{key}.lock")))?;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Some(file)),
                Err(std::fs::TryLockError::WouldBlock) => {}
                Err(std::fs::TryLockError::Error(e)) => return Err(e),
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Runs the guard for one scan: the cached result when fresh, else a probe (cached when
/// complete). `cache` is `None` when `SHERLOCK_CONTROL_TTL` is 0.
pub async fn guard(
    runner: &SherlockRunner,
    cache: Option<&ControlCache>,
    sherlock_version: Option<&str>,
    deadline: Instant,
    cancel: &CancellationToken,
) -> Result<ControlResult, String> {
    let Some(cache) = cache else {
        return probe(runner, deadline, cancel).await;
    };
    let key = cache_key(runner, sherlock_version).await;
    let lock = match cache.lock(&key, deadline).await {
        Ok(lock) => lock,
        Err(e) => {
            tracing::warn!(error = %e, "control cache unavailable; probing without it");
            None
        }
    };
    if let Some(hit) = cache.load(&key) {
        tracing::debug!(key, "control result from cache");
        return Ok(hit);
    }
    if let Some(hit) = cache.load_shared(&key).await {
        tracing::debug!(key, "control result from another machine");
        return Ok(hit);
    }
    let result = probe(runner, deadline, cancel).await?;
    if result.complete && lock.is_some() {
        if let Err(e) = cache.store(&key, &result) {
            tracing::warn!(error = %e, "could not cache the control result");
        }
        cache.store_shared(&key, &result).await;
    }
    drop(lock);
    Ok(result)
}

async fn probe(
    runner: &SherlockRunner,
    deadline: Instant,
    cancel: &CancellationToken,
) -> Result<ControlResult, String> {
    let name = control_username();
    let run = runner
        .run(&name, deadline, cancel, &EventSink::none())
        .await;
    let complete = match run.outcome {
        RunOutcome::Completed => true,
        RunOutcome::Stopped(_) => false,
        RunOutcome::Failed(e) => return Err(format!("the control probe failed: {e}")),
    };
    let claims_any_username = run
        .sites
        .iter()
        .filter(|s| s.status == SiteStatus::Claimed)
        .map(|s| s.site.clone())
        .collect();
    Ok(ControlResult {
        control_username: name.to_string(),
        checked_at: Utc::now(),
        claims_any_username,
        sites_checked: run.sites.len(),
        complete,
        from_cache: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_names_are_valid_and_differ() {
        let a = control_username();
        let b = control_username();
        assert_eq!(a.as_str().len(), CONTROL_NAME_LEN);
        assert!(a.as_str().starts_with(|c: char| c.is_ascii_lowercase()));
        assert_ne!(a, b);
    }

    #[test]
    fn the_cache_serves_only_fresh_complete_results() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = ControlCache::new(dir.path(), Duration::from_secs(60));
        let mut result = ControlResult {
            control_username: "q1234567890a".into(),
            checked_at: Utc::now(),
            claims_any_username: vec!["CatchAll".into()],
            sites_checked: 10,
            complete: true,
            from_cache: false,
        };
        cache.store("k", &result).expect("store");
        let hit = cache.load("k").expect("fresh");
        assert!(hit.from_cache);
        assert_eq!(hit.claims_any_username, ["CatchAll"]);
        assert!(cache.load("other").is_none());

        result.checked_at = Utc::now() - chrono::TimeDelta::seconds(120);
        cache.store("k", &result).expect("store");
        assert!(cache.load("k").is_none(), "expired");

        result.checked_at = Utc::now();
        result.complete = false;
        cache.store("k", &result).expect("store");
        assert!(
            cache.load("k").is_none(),
            "incomplete results are not reused"
        );
    }
}
