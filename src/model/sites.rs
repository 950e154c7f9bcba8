//! What the Sherlock source found: one result per site, the counts, the control probe.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::SectionStatus;

/// What Sherlock concluded about one site.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SiteStatus {
    /// The site says an account with this name exists.
    Claimed,
    /// The site says there is no such account.
    Available,
    /// The name breaks the site's own rules, so it was not checked.
    Illegal,
    /// A bot-protection page answered instead of the site.
    Waf,
    /// The check failed (see [`ErrorKind`]).
    Error,
}

impl SiteStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SiteStatus::Claimed => "claimed",
            SiteStatus::Available => "available",
            SiteStatus::Illegal => "illegal",
            SiteStatus::Waf => "waf",
            SiteStatus::Error => "error",
        }
    }
}

/// Why a site check failed, from Sherlock's error context.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    Timeout,
    Connection,
    Proxy,
    Http,
    Encoding,
    Unknown,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Timeout => "timeout",
            ErrorKind::Connection => "connection",
            ErrorKind::Proxy => "proxy",
            ErrorKind::Http => "http",
            ErrorKind::Encoding => "encoding",
            ErrorKind::Unknown => "unknown",
        }
    }

    /// Sherlock's error context (`Timeout Error`, ...) as a kind.
    pub fn from_context(context: &str) -> ErrorKind {
        match context {
            "Timeout Error" => ErrorKind::Timeout,
            "Error Connecting" => ErrorKind::Connection,
            "Proxy Error" => ErrorKind::Proxy,
            "HTTP Error" => ErrorKind::Http,
            "Encoding Error" => ErrorKind::Encoding,
            _ => ErrorKind::Unknown,
        }
    }
}

/// One site's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SiteResult {
    pub site: String,
    pub status: SiteStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<ErrorKind>,
    /// Sherlock's own words for an error, e.g. `Timeout Error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The profile URL that was checked (empty for illegal names).
    #[serde(default)]
    pub url_user: Option<String>,
    #[serde(default)]
    pub url_main: Option<String>,
    #[serde(default)]
    pub http_status: Option<u16>,
    #[serde(default)]
    pub response_time_s: Option<f64>,
    /// The site also claimed the scan's control name: it claims any username, so this hit
    /// proves nothing and is not counted.
    #[serde(default)]
    pub unreliable: bool,
}

impl SiteResult {
    pub fn new(site: &str, status: SiteStatus) -> Self {
        SiteResult {
            site: site.to_string(),
            status,
            error_kind: None,
            detail: None,
            url_user: None,
            url_main: None,
            http_status: None,
            response_time_s: None,
            unreliable: false,
        }
    }

    /// A claim the control probe did not discredit.
    pub fn is_hit(&self) -> bool {
        self.status == SiteStatus::Claimed && !self.unreliable
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusCounts {
    /// Claims that survived the control probe: the hits.
    pub claimed: usize,
    /// Claims from sites that claim any username (see `SherlockSection::control`).
    #[serde(default)]
    pub unverified: usize,
    pub available: usize,
    pub illegal: usize,
    pub waf: usize,
    pub error: usize,
}

impl StatusCounts {
    pub fn of(sites: &[SiteResult]) -> Self {
        let mut c = StatusCounts::default();
        for s in sites {
            match s.status {
                SiteStatus::Claimed if s.unreliable => c.unverified += 1,
                SiteStatus::Claimed => c.claimed += 1,
                SiteStatus::Available => c.available += 1,
                SiteStatus::Illegal => c.illegal += 1,
                SiteStatus::Waf => c.waf += 1,
                SiteStatus::Error => c.error += 1,
            }
        }
        c
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SherlockSection {
    pub status: SectionStatus,
    /// Why it failed, in words fit for a user (no internal detail).
    pub error: Option<String>,
    pub site_list: String,
    pub sites_total: Option<usize>,
    pub sites_checked: usize,
    pub duration_ms: u64,
    pub counts: StatusCounts,
    pub sites: Vec<SiteResult>,
    /// Whether the control probe ran (`SHERLOCK_CONTROL_CHECK`).
    #[serde(default)]
    pub control_check: bool,
    /// The control probe's result: the control name and the sites that claimed it.
    #[serde(default)]
    pub control: Option<ControlResult>,
    /// Why the control probe gave no result (its hits are then unverified by it).
    #[serde(default)]
    pub control_error: Option<String>,
}

impl SherlockSection {
    pub fn skipped() -> Self {
        SherlockSection {
            status: SectionStatus::Skipped,
            error: None,
            site_list: String::new(),
            sites_total: None,
            sites_checked: 0,
            duration_ms: 0,
            counts: StatusCounts::default(),
            sites: Vec::new(),
            control_check: false,
            control: None,
            control_error: None,
        }
    }

    /// Claims the control probe did not discredit.
    pub fn hits(&self) -> impl Iterator<Item = &SiteResult> {
        self.sites.iter().filter(|s| s.is_hit())
    }

    /// Claims from sites that claim any username.
    pub fn unverified(&self) -> impl Iterator<Item = &SiteResult> {
        self.sites
            .iter()
            .filter(|s| s.status == SiteStatus::Claimed && s.unreliable)
    }
}

/// What the control probe found, as recorded in the report and the cache.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ControlResult {
    pub control_username: String,
    pub checked_at: DateTime<Utc>,
    /// Sites that claimed the control name: they claim any username.
    pub claims_any_username: Vec<String>,
    pub sites_checked: usize,
    /// False when the probe was cut off by the deadline: sites it did not reach are unchecked.
    pub complete: bool,
    /// True when this result was read from the cache rather than probed for this scan.
    #[serde(default)]
    pub from_cache: bool,
}
