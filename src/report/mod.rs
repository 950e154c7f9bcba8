//! The scan report: everything a scan knows, serialised as versioned JSON and as CSV.

pub mod csv;
pub mod reddit;
pub mod store;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::scanner::ScanMode;
use crate::scanner::sherlock::control::ControlResult;
use crate::scanner::sherlock::{SiteResult, SiteStatus};
pub use reddit::RedditSection;

/// Bumped whenever a field changes meaning or disappears (adding a field does not bump it).
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScanReport {
    pub schema_version: u32,
    /// Short random id shared by the log lines and the report of one scan.
    pub scan_id: String,
    pub request: RequestInfo,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub duration_ms: u64,
    pub tools: ToolVersions,
    /// True when the scan stopped early (deadline or cancellation); the reason says which.
    pub partial: bool,
    pub partial_reason: Option<String>,
    pub sherlock: SherlockSection,
    pub reddit: RedditSection,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RequestInfo {
    pub username: String,
    pub mode: ScanMode,
    pub timeout_s: u64,
    pub requested_by: Option<String>,
    /// Set when the target was a mention of a server member.
    #[serde(default)]
    pub discord_member: Option<DiscordMember>,
}

/// The Discord member a scan was asked about (the target was a mention).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiscordMember {
    pub user_id: String,
    pub username: String,
    pub account_created: DateTime<Utc>,
    pub joined_server: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ToolVersions {
    pub account_scanner: String,
    pub sherlock: Option<String>,
}

/// How one section (source) of a scan ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SectionStatus {
    Completed,
    /// Stopped early; the results hold what was checked by then.
    Partial,
    Failed,
    /// Not part of the requested mode.
    Skipped,
    NotConfigured,
}

impl SectionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SectionStatus::Completed => "completed",
            SectionStatus::Partial => "partial",
            SectionStatus::Failed => "failed",
            SectionStatus::Skipped => "skipped",
            SectionStatus::NotConfigured => "not configured",
        }
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

impl ScanReport {
    pub fn to_json(&self) -> Vec<u8> {
        // Serialising plain data structs cannot fail; an empty object would only hide a bug.
        let mut bytes = serde_json::to_vec_pretty(self).unwrap_or_else(|_| b"{}".to_vec());
        bytes.push(b'\n');
        bytes
    }
}
