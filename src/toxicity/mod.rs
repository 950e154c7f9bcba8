//! Toxicity scoring behind one trait, one file per backend.
//!
//! A backend takes a batch of texts and returns one [`TextScore`] per text, in order: a headline
//! `toxicity` in 0..1 plus per-category scores, or "unscored" with the reason. A failure of the
//! backend as a whole (bad key, service down after retries) is a [`ScorerError`]; the scan then
//! leaves the remaining items unscored and says why. Texts that are empty, `[deleted]` or
//! `[removed]` never reach a backend ([`not_sent_reason`]).
//!
//! Backends: [`perspective`] (Google Perspective API), [`openai`] (OpenAI moderation, batched) and
//! [`local`] (embedded and offline: a fine-tuned sentence encoder plus word lists; the default
//! when no key is set). Adding one means
//! one more file implementing [`ToxicityScorer`] and one more arm in [`from_config`].

pub mod eval;
pub mod local;
pub mod openai;
pub mod perspective;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::config::{Config, ToxicityBackend};
use crate::model::{ScorerInfo, TextScore};
use crate::net::{ApiError, Limits};

/// The reason given for every item when no backend could be set up (the HTTP client failed).
pub const NOT_CONFIGURED: &str = "the toxicity backend could not be set up";

/// The backend cannot score anything more.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScorerError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("{backend} refused the API key ({status}): {message}")]
    Rejected {
        backend: &'static str,
        status: reqwest::StatusCode,
        message: String,
    },
    #[error("{backend} answered {status}: {message}")]
    Unexpected {
        backend: &'static str,
        status: reqwest::StatusCode,
        message: String,
    },
    #[error("{backend} is not usable: {message}")]
    Setup {
        backend: &'static str,
        message: String,
    },
}

/// A hosted backend's answer body, read up to the cap (`limits::MAX_BODY_BYTES`).
pub(crate) async fn read_answer(
    response: reqwest::Response,
    backend: &'static str,
) -> Result<Vec<u8>, ScorerError> {
    let status = response.status();
    crate::net::read_body(response, crate::net::MAX_BODY_BYTES)
        .await
        .map_err(|e| ScorerError::Unexpected {
            backend,
            status,
            message: format!("the answer could not be read: {e}"),
        })
}

pub type PrepareFuture<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

pub type ScoreFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<TextScore>, ScorerError>> + Send + 'a>>;

pub trait ToxicityScorer: Send + Sync {
    fn info(&self) -> ScorerInfo;

    /// How many texts suit one call (Perspective takes one text per request; batch APIs more).
    fn batch_size(&self) -> usize {
        1
    }

    /// The threshold reports use when `TOXICITY_THRESHOLD` is unset: the score at which this
    /// backend's output is best read as "flag it" (0.7 for the hosted APIs, as Perspective
    /// recommends; the local model's is chosen on its development split).
    fn default_threshold(&self) -> f64 {
        0.7
    }

    /// Loads what scoring needs before the first text (for `check`); `Err` says why the backend
    /// cannot score as configured.
    fn prepare(&self) -> PrepareFuture<'_> {
        Box::pin(async { Ok(()) })
    }

    /// How many calls a scan may have in flight; the backend's limiter still paces requests.
    fn concurrency(&self) -> usize {
        1
    }

    /// One result per text, in the same order. Texts arrive already filtered by
    /// [`not_sent_reason`]; size limits are the backend's to enforce (and mark as truncated).
    fn score<'a>(&'a self, texts: &'a [String]) -> ScoreFuture<'a>;
}

/// The stand-in when the configured backend cannot run (its HTTP client could not be built):
/// every text unscored, nothing sent anywhere.
#[derive(Debug, Clone, Default)]
pub struct NotConfigured;

impl ToxicityScorer for NotConfigured {
    fn info(&self) -> ScorerInfo {
        ScorerInfo {
            name: "none".to_string(),
            model: String::new(),
            heuristic: false,
            configured: false,
        }
    }

    fn batch_size(&self) -> usize {
        usize::MAX
    }

    fn score<'a>(&'a self, texts: &'a [String]) -> ScoreFuture<'a> {
        Box::pin(async move {
            Ok(texts
                .iter()
                .map(|_| TextScore::unscored(NOT_CONFIGURED))
                .collect())
        })
    }
}

/// The backend `TOXICITY_BACKEND` chose (`auto`: Perspective if its key is set, else OpenAI if its
/// key is set, else local). The HTTP backends need `http`; without it they cannot run and every
/// item is left unscored ([`NotConfigured`]).
pub fn from_config(
    config: &Config,
    http: Option<&reqwest::Client>,
    limits: &Limits,
) -> Arc<dyn ToxicityScorer> {
    match (config.toxicity_backend, http) {
        (ToxicityBackend::Local, _) => {
            Arc::new(local::LocalScorer::new(match &config.toxicity_model_dir {
                Some(dir) => local::learned::ModelSource::Dir(dir.clone()),
                None => local::learned::ModelSource::Embedded,
            }))
        }
        (ToxicityBackend::Perspective, Some(http)) => match &config.perspective {
            Some(p) => Arc::new(perspective::PerspectiveScorer::new(
                p,
                http.clone(),
                limits.perspective.clone(),
            )),
            None => Arc::new(NotConfigured),
        },
        (ToxicityBackend::OpenAi, Some(http)) => match &config.openai {
            Some(o) => Arc::new(openai::OpenAiScorer::new(
                o,
                http.clone(),
                limits.openai.clone(),
            )),
            None => Arc::new(NotConfigured),
        },
        (_, None) => Arc::new(NotConfigured),
    }
}

/// The threshold reports use: `TOXICITY_THRESHOLD` when set, else the backend's own (asked now:
/// the local backend's changes when it falls back to its word lists).
pub fn threshold(configured: Option<f64>, scorer: &dyn ToxicityScorer) -> f64 {
    configured.unwrap_or_else(|| scorer.default_threshold())
}

/// Why a text is not worth sending: it has no words of its author's left.
pub fn not_sent_reason(text: &str) -> Option<&'static str> {
    match text.trim() {
        "" => Some("empty"),
        "[deleted]" => Some("deleted"),
        "[removed]" => Some("removed"),
        _ => None,
    }
}

/// The longest prefix of `text` of at most `max_bytes` bytes that ends on a character boundary,
/// and whether anything was cut.
pub fn truncate_utf8(text: &str, max_bytes: usize) -> (&str, bool) {
    if text.len() <= max_bytes {
        return (text, false);
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    (&text[..end], true)
}

/// A backend's error message fit for reports and logs: never empty, at most 300 characters, and
/// with the API key blanked out should the service ever echo it.
/// A hosted backend's 200 answer decoded, or why not (an HTML page's title included, scrubbed
/// of the key like any text the API echoes).
pub(crate) fn decode_answer<T: serde::de::DeserializeOwned>(
    backend: &'static str,
    status: reqwest::StatusCode,
    bytes: &[u8],
    key: &crate::config::Secret,
) -> Result<T, ScorerError> {
    crate::net::decode_json(bytes).map_err(|e| ScorerError::Unexpected {
        backend,
        status,
        message: scrub_message(&format!("the answer could not be read: {e}"), key),
    })
}

/// A hosted backend's failing status as an error: 401/403 mean the key was refused.
pub(crate) fn status_error(
    backend: &'static str,
    status: reqwest::StatusCode,
    message: String,
) -> ScorerError {
    match status {
        reqwest::StatusCode::UNAUTHORIZED | reqwest::StatusCode::FORBIDDEN => {
            ScorerError::Rejected {
                backend,
                status,
                message,
            }
        }
        _ => ScorerError::Unexpected {
            backend,
            status,
            message,
        },
    }
}

pub(crate) fn scrub_message(message: &str, key: &crate::config::Secret) -> String {
    let mut out = if message.is_empty() {
        "(no message)".to_string()
    } else {
        message.to_string()
    };
    if !key.expose().is_empty() {
        out = out.replace(key.expose(), "[redacted]");
    }
    out.chars().take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_not_sent() {
        assert_eq!(not_sent_reason(""), Some("empty"));
        assert_eq!(not_sent_reason("  \n"), Some("empty"));
        assert_eq!(not_sent_reason("[deleted]"), Some("deleted"));
        assert_eq!(not_sent_reason("[removed]"), Some("removed"));
        assert_eq!(not_sent_reason("[deleted] but not really"), None);
    }

    #[test]
    fn truncation_keeps_whole_characters() {
        assert_eq!(truncate_utf8("abc", 3), ("abc", false));
        assert_eq!(truncate_utf8("abcd", 3), ("abc", true));
        // "é" is two bytes: a cut in its middle moves back before it.
        assert_eq!(truncate_utf8("aéb", 2), ("a", true));
        assert_eq!(truncate_utf8("🦀🦀", 5), ("🦀", true));
    }

    #[tokio::test]
    async fn not_configured_leaves_every_text_unscored() {
        let texts = vec!["a".to_string(), "b".to_string()];
        let scores = NotConfigured.score(&texts).await.expect("never fails");
        assert_eq!(scores, vec![TextScore::unscored(NOT_CONFIGURED); 2]);
        assert!(!NotConfigured.info().configured);
    }
}
