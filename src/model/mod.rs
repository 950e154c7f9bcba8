//! What a scan knows: the request, each source's section and its status, the sites, the scored
//! Reddit items, and the report that holds them all.
//!
//! This module imports nothing else of the crate (a test in `tests/layout.rs` checks it): the
//! sources produce these types, the store writes them, the front ends render them.

pub mod events;
pub mod history;
pub mod reddit;
pub mod request;
pub mod scores;
pub mod sites;
pub mod username;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use events::{EventSink, ScanEvent};
pub use history::{Change, EarlierScan, Previous, ScanDigest};
pub use reddit::RedditSection;
pub use request::{ScanMode, ScanRequest, StopReason, UnknownMode};
pub use scores::{ScorerInfo, Scores, TextScore};
pub use sites::{ControlResult, ErrorKind, SherlockSection, SiteResult, SiteStatus, StatusCounts};
pub use username::{Username, UsernameError};

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
    /// The last earlier scan of the same target in the same server, and what changed since.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<Previous>,
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

impl ScanReport {
    pub fn to_json(&self) -> Vec<u8> {
        // Serialising plain data structs cannot fail; an empty object would only hide a bug.
        let mut bytes = serde_json::to_vec_pretty(self).unwrap_or_else(|_| b"{}".to_vec());
        bytes.push(b'\n');
        bytes
    }
}

/// Milliseconds of a duration, saturating (a report field).
pub fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
