//! The Reddit section of a report: the account, every item fetched with its scores, a summary.
//!
//! Every field added after the first release has `#[serde(default)]`, so older reports (status
//! and message only) still load.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::SectionStatus;
use super::scores::{ScorerInfo, TextScore};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RedditSection {
    pub status: SectionStatus,
    /// A note for the reader: why Reddit was not scanned, or what the account's outcome means.
    pub message: Option<String>,
    /// Why the half failed, in words fit for a user.
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub duration_ms: u64,
    /// Who the account is; `None` when Reddit was not asked (not configured, skipped, failed).
    #[serde(default)]
    pub account: Option<RedditAccount>,
    /// Newest first, as Reddit lists them.
    #[serde(default)]
    pub comments: Vec<RedditItem>,
    #[serde(default)]
    pub posts: Vec<RedditItem>,
    #[serde(default)]
    pub scoring: Option<ScoringInfo>,
    #[serde(default)]
    pub summary: Option<RedditSummary>,
}

impl RedditSection {
    fn empty(status: SectionStatus, message: Option<String>) -> Self {
        RedditSection {
            status,
            message,
            error: None,
            duration_ms: 0,
            account: None,
            comments: Vec::new(),
            posts: Vec::new(),
            scoring: None,
            summary: None,
        }
    }

    pub fn skipped() -> Self {
        Self::empty(SectionStatus::Skipped, None)
    }

    pub fn not_configured() -> Self {
        Self::empty(
            SectionStatus::NotConfigured,
            Some(
                "Reddit scanning is not configured (it needs REDDIT_CLIENT_ID, REDDIT_CLIENT_SECRET and REDDIT_USER_AGENT)"
                    .to_string(),
            ),
        )
    }

    pub fn failed(error: String) -> Self {
        RedditSection {
            error: Some(error),
            ..Self::empty(SectionStatus::Failed, None)
        }
    }

    /// Comments then posts.
    pub fn items(&self) -> impl Iterator<Item = &RedditItem> {
        self.comments.iter().chain(&self.posts)
    }
}

/// What Reddit said about the name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountStatus {
    Found,
    Suspended,
    /// 404: never existed, deleted, or shadowbanned (Reddit does not say which).
    NotFound,
    /// The name breaks Reddit's rules (3-20 letters, digits, `_`, `-`): no request was made.
    InvalidName,
}

impl AccountStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountStatus::Found => "found",
            AccountStatus::Suspended => "suspended",
            AccountStatus::NotFound => "not found",
            AccountStatus::InvalidName => "not a valid Reddit name",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RedditAccount {
    pub status: AccountStatus,
    /// The name as Reddit spells it (when found), else as asked.
    pub name: String,
    #[serde(default)]
    pub created_utc: Option<DateTime<Utc>>,
    #[serde(default)]
    pub link_karma: Option<i64>,
    #[serde(default)]
    pub comment_karma: Option<i64>,
    #[serde(default)]
    pub total_karma: Option<i64>,
    /// Reddit's `verified` flag.
    #[serde(default)]
    pub verified: Option<bool>,
    #[serde(default)]
    pub has_verified_email: Option<bool>,
}

impl RedditAccount {
    pub fn bare(status: AccountStatus, name: impl Into<String>) -> Self {
        RedditAccount {
            status,
            name: name.into(),
            created_utc: None,
            link_karma: None,
            comment_karma: None,
            total_karma: None,
            verified: None,
            has_verified_email: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemKind {
    Comment,
    Post,
}

impl ItemKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ItemKind::Comment => "comment",
            ItemKind::Post => "post",
        }
    }
}

/// One comment or post.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RedditItem {
    pub kind: ItemKind,
    /// Reddit's fullname (`t1_…` for comments, `t3_…` for posts).
    pub id: String,
    pub subreddit: String,
    pub created_utc: Option<DateTime<Utc>>,
    /// Absolute link on www.reddit.com.
    pub permalink: String,
    pub score: i64,
    /// A post's title, or the title of the post a comment answers.
    #[serde(default)]
    pub title: Option<String>,
    /// The text as written (comment body, or a post's title and body): never HTML-escaped.
    pub text: String,
    /// A link post's target.
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub over_18: bool,
    #[serde(default)]
    pub edited: bool,
    #[serde(default)]
    pub toxicity: ItemScore,
}

/// Toxicity of one item, on the scorer's 0..1 scale.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ItemScore {
    /// The headline score; `None` when unscored.
    pub toxicity: Option<f64>,
    /// Per category (e.g. `insult`, `threat`), lowercase names, on the common scale.
    #[serde(default)]
    pub categories: BTreeMap<String, f64>,
    /// The backend's own scores before mapping, by its names (OpenAI's categories, the local
    /// backend's parts); left out when empty (Perspective's scores are the common scale).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub raw_categories: BTreeMap<String, f64>,
    /// The text was longer than the scorer accepts; its beginning was scored.
    #[serde(default)]
    pub truncated: bool,
    /// Why there is no score (e.g. `deleted`, an unsupported language, no backend).
    #[serde(default)]
    pub unscored_reason: Option<String>,
}

impl ItemScore {
    pub fn unscored(reason: impl Into<String>) -> Self {
        ItemScore {
            unscored_reason: Some(reason.into()),
            ..ItemScore::default()
        }
    }
}

impl From<TextScore> for ItemScore {
    fn from(s: TextScore) -> Self {
        match s {
            TextScore::Scored(s) => ItemScore {
                toxicity: Some(s.toxicity),
                categories: s.categories,
                raw_categories: s.raw_categories,
                truncated: s.truncated,
                unscored_reason: None,
            },
            TextScore::Unscored { reason } => ItemScore::unscored(reason),
        }
    }
}

/// Which backend scored the items.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoringInfo {
    pub backend: String,
    pub model: String,
    /// True for word-list or small local models: they surface items for a human, never decide.
    pub heuristic: bool,
    pub configured: bool,
    pub threshold: f64,
    /// Said with every score: what the scores are for.
    #[serde(default = "scoring_note")]
    pub note: String,
    /// Why scoring stopped early (the backend failed as a whole); the remaining items are unscored.
    #[serde(default)]
    pub error: Option<String>,
}

impl ScoringInfo {
    pub fn new(info: &ScorerInfo, threshold: f64) -> Self {
        ScoringInfo {
            backend: info.name.clone(),
            model: info.model.clone(),
            heuristic: info.heuristic,
            configured: info.configured,
            threshold,
            note: scoring_note(),
            error: None,
        }
    }
}

/// What every report says next to its toxicity scores.
pub const SCORING_NOTE: &str = "An automated signal for a human to read: it points at items worth reading; it decides nothing.";

fn scoring_note() -> String {
    SCORING_NOTE.to_string()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RedditSummary {
    pub comments: usize,
    pub posts: usize,
    pub scored: usize,
    pub unscored: usize,
    /// Most active first (items per subreddit), at most five.
    pub top_subreddits: Vec<SubredditCount>,
    pub mean_toxicity: Option<f64>,
    pub max_toxicity: Option<f64>,
    pub threshold: f64,
    pub at_or_above_threshold: usize,
    /// The five highest toxicity scores, highest first.
    pub most_toxic: Vec<ToxicItem>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubredditCount {
    pub subreddit: String,
    pub items: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToxicItem {
    pub kind: ItemKind,
    pub id: String,
    pub subreddit: String,
    pub permalink: String,
    pub toxicity: f64,
    /// The first 200 characters of the text.
    pub excerpt: String,
}

pub const TOP_SUBREDDITS: usize = 5;
pub const MOST_TOXIC: usize = 5;
const EXCERPT_CHARS: usize = 200;

impl RedditSummary {
    pub fn of(section: &RedditSection, threshold: f64) -> Self {
        let mut per_sub: HashMap<&str, usize> = HashMap::new();
        let mut scores: Vec<(f64, &RedditItem)> = Vec::new();
        for item in section.items() {
            *per_sub.entry(item.subreddit.as_str()).or_default() += 1;
            if let Some(t) = item.toxicity.toxicity {
                scores.push((t, item));
            }
        }
        let mut top: Vec<SubredditCount> = per_sub
            .into_iter()
            .map(|(subreddit, items)| SubredditCount {
                subreddit: subreddit.to_string(),
                items,
            })
            .collect();
        top.sort_by(|a, b| b.items.cmp(&a.items).then(a.subreddit.cmp(&b.subreddit)));
        top.truncate(TOP_SUBREDDITS);

        let total = section.comments.len() + section.posts.len();
        let mean = (!scores.is_empty())
            .then(|| scores.iter().map(|(t, _)| t).sum::<f64>() / scores.len() as f64);
        let max = scores.iter().map(|(t, _)| *t).reduce(f64::max);
        let at_or_above = scores.iter().filter(|(t, _)| *t >= threshold).count();
        // Stable sort: equal scores keep Reddit's order (newest first, comments before posts).
        scores.sort_by(|a, b| b.0.total_cmp(&a.0));
        let most_toxic = scores
            .iter()
            .take(MOST_TOXIC)
            .map(|(t, item)| ToxicItem {
                kind: item.kind,
                id: item.id.clone(),
                subreddit: item.subreddit.clone(),
                permalink: item.permalink.clone(),
                toxicity: *t,
                excerpt: excerpt(&item.text),
            })
            .collect();
        RedditSummary {
            comments: section.comments.len(),
            posts: section.posts.len(),
            scored: scores.len(),
            unscored: total - scores.len(),
            top_subreddits: top,
            mean_toxicity: mean,
            max_toxicity: max,
            threshold,
            at_or_above_threshold: at_or_above,
            most_toxic,
        }
    }
}

fn excerpt(text: &str) -> String {
    let mut s: String = text.chars().take(EXCERPT_CHARS).collect();
    if text.chars().nth(EXCERPT_CHARS).is_some() {
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(kind: ItemKind, id: &str, sub: &str, toxicity: Option<f64>) -> RedditItem {
        RedditItem {
            kind,
            id: id.to_string(),
            subreddit: sub.to_string(),
            created_utc: None,
            permalink: format!("https://www.reddit.com/r/{sub}/{id}"),
            score: 1,
            title: None,
            text: format!("text of {id}"),
            url: None,
            over_18: false,
            edited: false,
            toxicity: match toxicity {
                Some(t) => ItemScore {
                    toxicity: Some(t),
                    ..ItemScore::default()
                },
                None => ItemScore::unscored("deleted"),
            },
        }
    }

    #[test]
    fn summary_counts_ranks_and_thresholds() {
        let mut section = RedditSection::skipped();
        section.comments = vec![
            item(ItemKind::Comment, "t1_a", "rust", Some(0.1)),
            item(ItemKind::Comment, "t1_b", "rust", Some(0.9)),
            item(ItemKind::Comment, "t1_c", "pics", Some(0.7)),
            item(ItemKind::Comment, "t1_d", "pics", None),
            item(ItemKind::Comment, "t1_e", "news", Some(0.3)),
        ];
        section.posts = vec![
            item(ItemKind::Post, "t3_f", "rust", Some(0.7)),
            item(ItemKind::Post, "t3_g", "aww", Some(0.0)),
            item(ItemKind::Post, "t3_h", "zen", Some(0.2)),
        ];
        let s = RedditSummary::of(&section, 0.7);
        assert_eq!((s.comments, s.posts, s.scored, s.unscored), (5, 3, 7, 1));
        assert_eq!(
            s.top_subreddits
                .iter()
                .map(|c| (c.subreddit.as_str(), c.items))
                .collect::<Vec<_>>(),
            [
                ("rust", 3),
                ("pics", 2),
                ("aww", 1),
                ("news", 1),
                ("zen", 1)
            ]
        );
        assert_eq!(s.max_toxicity, Some(0.9));
        let mean = s.mean_toxicity.expect("mean");
        assert!((mean - 2.9 / 7.0).abs() < 1e-9, "{mean}");
        assert_eq!(s.at_or_above_threshold, 3, "0.7 counts as at the threshold");
        assert_eq!(
            s.most_toxic
                .iter()
                .map(|t| t.id.as_str())
                .collect::<Vec<_>>(),
            ["t1_b", "t1_c", "t3_f", "t1_e", "t3_h"]
        );
    }

    #[test]
    fn an_empty_history_has_no_mean() {
        let s = RedditSummary::of(&RedditSection::skipped(), 0.7);
        assert_eq!(s.mean_toxicity, None);
        assert_eq!(s.max_toxicity, None);
        assert!(s.most_toxic.is_empty());
    }

    #[test]
    fn old_reports_still_load() {
        let old = r#"{"status":"not_configured","message":"x"}"#;
        let s: RedditSection = serde_json::from_str(old).expect("parses");
        assert_eq!(s.status, SectionStatus::NotConfigured);
        assert!(s.comments.is_empty() && s.account.is_none());
    }
}
