//! What history keeps of a scan ([`ScanDigest`]) and what changed since the last scan of the
//! same target ([`Previous`], the report's `previous` section).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{ScanReport, SectionStatus, SiteStatus};

/// The facts of a scan that the next scan of the same target is compared with.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScanDigest {
    /// The verified hits, sorted; `None` when Sherlock did not run (mode, failure).
    pub sites: Option<Vec<String>>,
    /// `None` when Reddit was not asked about the account.
    pub reddit: Option<RedditDigest>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RedditDigest {
    /// Reddit's answer about the account (`found`, `suspended`, `not found`, ...).
    pub status: String,
    pub total_karma: Option<i64>,
    pub created_utc: Option<DateTime<Utc>>,
    /// Comments and posts read.
    pub items: usize,
    pub mean_toxicity: Option<f64>,
    pub max_toxicity: Option<f64>,
    pub at_or_above_threshold: usize,
}

impl ScanDigest {
    pub fn of(report: &ScanReport) -> Self {
        let sherlock = &report.sherlock;
        let sites = matches!(
            sherlock.status,
            SectionStatus::Completed | SectionStatus::Partial
        )
        .then(|| {
            let mut hits: Vec<String> = sherlock
                .sites
                .iter()
                .filter(|s| s.is_hit())
                .map(|s| s.site.clone())
                .collect();
            hits.sort();
            hits
        });
        let reddit = report.reddit.account.as_ref().map(|account| {
            let summary = report.reddit.summary.as_ref();
            RedditDigest {
                status: account.status.as_str().to_string(),
                total_karma: account.total_karma,
                created_utc: account.created_utc,
                items: report.reddit.comments.len() + report.reddit.posts.len(),
                mean_toxicity: summary.and_then(|s| s.mean_toxicity),
                max_toxicity: summary.and_then(|s| s.max_toxicity),
                at_or_above_threshold: summary.map_or(0, |s| s.at_or_above_threshold),
            }
        });
        ScanDigest { sites, reddit }
    }
}

/// A value then and now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change<T> {
    pub before: T,
    pub after: T,
}

/// The last earlier scan of the same target (in the same server) and what changed since.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Previous {
    pub scan_id: String,
    pub finished_at: DateTime<Utc>,
    /// Who asked for it: a Discord user id, or `None` for the command line.
    pub requested_by: Option<u64>,
    pub mode: String,
    /// Verified hits now that were not then; empty when either scan did not run Sherlock.
    pub sites_added: Vec<String>,
    /// Verified hits then that this scan checked and found gone (sites this scan could not
    /// check, or that errored, are not counted as gone).
    pub sites_removed: Vec<String>,
    /// Whether both scans ran Sherlock, so the two lists above mean something.
    pub sites_compared: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reddit_status: Option<Change<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reddit_karma: Option<Change<i64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reddit_items: Option<Change<usize>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_toxicity: Option<Change<f64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_or_above_threshold: Option<Change<usize>>,
}

/// The earlier scan as history holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct EarlierScan {
    pub scan_id: String,
    pub finished_at: DateTime<Utc>,
    pub requested_by: Option<u64>,
    pub mode: String,
    pub digest: ScanDigest,
}

impl Previous {
    /// What changed between `earlier` and `report`.
    pub fn between(earlier: &EarlierScan, report: &ScanReport) -> Previous {
        let now = ScanDigest::of(report);
        let (sites_added, sites_removed, sites_compared) = match (&earlier.digest.sites, &now.sites)
        {
            (Some(then), Some(hits)) => {
                let added = hits.iter().filter(|s| !then.contains(s)).cloned().collect();
                let removed = then
                    .iter()
                    .filter(|site| {
                        report.sherlock.sites.iter().any(|r| {
                            &r.site == *site
                                && !r.is_hit()
                                && !matches!(r.status, SiteStatus::Error | SiteStatus::Waf)
                        })
                    })
                    .cloned()
                    .collect();
                (added, removed, true)
            }
            _ => (Vec::new(), Vec::new(), false),
        };
        let (then, now) = (earlier.digest.reddit.as_ref(), now.reddit.as_ref());
        let both = then.zip(now);
        Previous {
            scan_id: earlier.scan_id.clone(),
            finished_at: earlier.finished_at,
            requested_by: earlier.requested_by,
            mode: earlier.mode.clone(),
            sites_added,
            sites_removed,
            sites_compared,
            reddit_status: both
                .filter(|(a, b)| a.status != b.status)
                .map(|(a, b)| change(a.status.clone(), b.status.clone())),
            reddit_karma: both
                .and_then(|(a, b)| a.total_karma.zip(b.total_karma))
                .filter(|(a, b)| a != b)
                .map(|(a, b)| change(a, b)),
            reddit_items: both
                .filter(|(a, b)| a.items != b.items)
                .map(|(a, b)| change(a.items, b.items)),
            max_toxicity: both
                .and_then(|(a, b)| a.max_toxicity.zip(b.max_toxicity))
                .filter(|(a, b)| (a - b).abs() >= 0.005)
                .map(|(a, b)| change(a, b)),
            at_or_above_threshold: both
                .filter(|(a, b)| a.at_or_above_threshold != b.at_or_above_threshold)
                .map(|(a, b)| change(a.at_or_above_threshold, b.at_or_above_threshold)),
        }
    }

    /// Nothing worth saying changed.
    pub fn is_unchanged(&self) -> bool {
        self.sites_added.is_empty()
            && self.sites_removed.is_empty()
            && self.reddit_status.is_none()
            && self.reddit_karma.is_none()
            && self.reddit_items.is_none()
            && self.max_toxicity.is_none()
            && self.at_or_above_threshold.is_none()
    }
}

fn change<T>(before: T, after: T) -> Change<T> {
    Change { before, after }
}
