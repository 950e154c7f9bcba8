//! A toxicity score as a scan keeps it: who scored, and per text a score or the reason for none.

use std::collections::BTreeMap;

/// Who scored: shown in every report next to the scores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScorerInfo {
    /// Backend name, e.g. `perspective`.
    pub name: String,
    /// What the backend says about its model (version, attributes).
    pub model: String,
    /// True for heuristics (word lists, small local models).
    pub heuristic: bool,
    /// False for the stand-in used when the configured backend could not be set up.
    pub configured: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Scores {
    /// 0..1, the backend's main toxicity score.
    pub toxicity: f64,
    /// 0..1 per category on the common scale, lowercase names (`toxicity`, `insult`, `threat`, ...).
    pub categories: BTreeMap<String, f64>,
    /// What the backend itself said, by its own names, before mapping (OpenAI's categories; the
    /// local backend's parts). Empty when the common scale is the backend's own (Perspective).
    pub raw_categories: BTreeMap<String, f64>,
    /// Only the beginning of the text was scored (it was over the backend's size limit).
    pub truncated: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TextScore {
    Scored(Scores),
    Unscored { reason: String },
}

impl TextScore {
    pub fn unscored(reason: impl Into<String>) -> Self {
        TextScore::Unscored {
            reason: reason.into(),
        }
    }
}
