//! What was asked: the name, the mode (which sources), the time allowed, and why a run stopped.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Username;

/// Which sources a scan runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScanMode {
    #[default]
    All,
    Sherlock,
    Reddit,
}

impl ScanMode {
    pub const NAMES: &'static str = "all, sherlock or reddit";

    pub fn as_str(self) -> &'static str {
        match self {
            ScanMode::All => "all",
            ScanMode::Sherlock => "sherlock",
            ScanMode::Reddit => "reddit",
        }
    }

    pub fn runs_sherlock(self) -> bool {
        matches!(self, ScanMode::All | ScanMode::Sherlock)
    }

    pub fn runs_reddit(self) -> bool {
        matches!(self, ScanMode::All | ScanMode::Reddit)
    }
}

impl fmt::Display for ScanMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a scan mode: use {modes}", modes = ScanMode::NAMES)]
pub struct UnknownMode(String);

impl FromStr for ScanMode {
    type Err = UnknownMode;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "all" => Ok(ScanMode::All),
            "sherlock" => Ok(ScanMode::Sherlock),
            "reddit" => Ok(ScanMode::Reddit),
            _ => Err(UnknownMode(s.chars().take(20).collect())),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ScanRequest {
    pub username: Username,
    pub mode: ScanMode,
    pub timeout: Duration,
    /// Who asked (a Discord user, or `cli`), recorded in the report.
    pub requested_by: Option<String>,
    /// The server member behind the username, when the target was a mention.
    pub discord_member: Option<super::DiscordMember>,
    /// The server's own toxicity threshold; `None`: `TOXICITY_THRESHOLD` or the backend's.
    pub toxicity_threshold: Option<f64>,
}

/// Why a source was stopped before it finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    Deadline,
    Cancelled,
}
