//! Google's Perspective API (`comments:analyze`), one text per request.
//!
//! The key travels in the `x-goog-api-key` header (marked sensitive), never in the URL, so no
//! request log can show it. Every request asks for six attributes with `doNotStore`. A text in a
//! language some attribute does not support gets a second request for TOXICITY alone; if that is
//! refused too the text is unscored with Perspective's reason. `languages` is left out so
//! Perspective detects the language itself instead of scoring every text as English.

use std::collections::BTreeMap;
use std::sync::Arc;

use reqwest::StatusCode;
use reqwest::header::HeaderValue;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ScoreFuture, ScorerError, ToxicityScorer};
use crate::config::{PerspectiveConfig, Secret};
use crate::model::{ScorerInfo, Scores, TextScore};
use crate::net::{ApiLimiter, Pacing};

const BACKEND: &str = "Perspective";
pub const ATTRIBUTES: [&str; 6] = [
    "TOXICITY",
    "SEVERE_TOXICITY",
    "IDENTITY_ATTACK",
    "INSULT",
    "PROFANITY",
    "THREAT",
];
/// Perspective's limit on a comment's text, in bytes of UTF-8.
pub const MAX_TEXT_BYTES: usize = 20 * 1024;
const LANGUAGE_NOT_SUPPORTED: &str = "LANGUAGE_NOT_SUPPORTED_BY_ATTRIBUTE";

pub struct PerspectiveScorer {
    http: reqwest::Client,
    url: String,
    /// `None` if the key cannot be a header value (config validation prevents that).
    key_header: Option<HeaderValue>,
    key: Secret,
    limiter: Arc<ApiLimiter>,
}

impl std::fmt::Debug for PerspectiveScorer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PerspectiveScorer")
            .field("url", &self.url)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

enum Analyzed {
    Scores(BTreeMap<String, f64>),
    /// A 400 for this text: Perspective's message, and whether it is about the language.
    Refused {
        language: bool,
        message: String,
    },
}

impl PerspectiveScorer {
    pub fn new(
        config: &PerspectiveConfig,
        http: reqwest::Client,
        limiter: Arc<ApiLimiter>,
    ) -> Self {
        let key_header = HeaderValue::from_str(config.api_key.expose())
            .ok()
            .map(|mut v| {
                v.set_sensitive(true);
                v
            });
        PerspectiveScorer {
            http,
            url: format!("{}/v1alpha1/comments:analyze", config.api_base),
            key_header,
            key: config.api_key.clone(),
            limiter,
        }
    }

    async fn score_one(&self, text: &str) -> Result<TextScore, ScorerError> {
        let (text, truncated) = super::truncate_utf8(text, MAX_TEXT_BYTES);
        let scored = |categories: BTreeMap<String, f64>| match categories.get("toxicity") {
            Some(&toxicity) => TextScore::Scored(Scores {
                toxicity,
                categories,
                raw_categories: BTreeMap::new(),
                truncated,
            }),
            None => TextScore::unscored("Perspective returned no TOXICITY score"),
        };
        match self.analyze(text, &ATTRIBUTES).await? {
            Analyzed::Scores(categories) => Ok(scored(categories)),
            Analyzed::Refused {
                language: true,
                message,
            } => {
                tracing::debug!(%message, "language not supported by every attribute: retrying with TOXICITY only");
                match self.analyze(text, &["TOXICITY"]).await? {
                    Analyzed::Scores(categories) => Ok(scored(categories)),
                    Analyzed::Refused { message, .. } => Ok(TextScore::unscored(format!(
                        "Perspective cannot score this text: {message}"
                    ))),
                }
            }
            Analyzed::Refused { message, .. } => Ok(TextScore::unscored(format!(
                "Perspective refused this text: {message}"
            ))),
        }
    }

    async fn analyze(&self, text: &str, attributes: &[&str]) -> Result<Analyzed, ScorerError> {
        let Some(key) = &self.key_header else {
            return Err(ScorerError::Setup {
                backend: BACKEND,
                message: "PERSPECTIVE_API_KEY cannot be sent as an HTTP header".to_string(),
            });
        };
        let requested: serde_json::Map<String, Value> = attributes
            .iter()
            .map(|a| (a.to_string(), json!({})))
            .collect();
        let body = json!({
            "comment": {"text": text},
            "requestedAttributes": requested,
            "doNotStore": true,
        });
        let response = self
            .limiter
            .send(Pacing::Paced, || {
                self.http
                    .post(&self.url)
                    .header("x-goog-api-key", key.clone())
                    .json(&body)
            })
            .await?;
        let status = response.status();
        let bytes = super::read_answer(response, BACKEND).await?;
        match status {
            StatusCode::OK => {
                let answer: AnalyzeResponse =
                    super::decode_answer(BACKEND, status, &bytes, &self.key)?;
                Ok(Analyzed::Scores(
                    answer
                        .attribute_scores
                        .into_iter()
                        .filter_map(|(name, s)| {
                            let v = s.summary_score?.value?;
                            v.is_finite()
                                .then(|| (name.to_ascii_lowercase(), v.clamp(0.0, 1.0)))
                        })
                        .collect(),
                ))
            }
            StatusCode::BAD_REQUEST => {
                let error = self.error_of(&bytes);
                let language = error
                    .details
                    .iter()
                    .any(|d| d.error_type.as_deref() == Some(LANGUAGE_NOT_SUPPORTED));
                Ok(Analyzed::Refused {
                    language,
                    message: error.message,
                })
            }
            _ => Err(super::status_error(
                BACKEND,
                status,
                self.error_of(&bytes).message,
            )),
        }
    }

    /// Google's error object, its message scrubbed of the key.
    fn error_of(&self, body: &[u8]) -> ErrorBody {
        let mut error = serde_json::from_slice::<ErrorEnvelope>(body)
            .map(|e| e.error)
            .unwrap_or_default();
        error.message = super::scrub_message(&error.message, &self.key);
        error
    }
}

impl ToxicityScorer for PerspectiveScorer {
    fn info(&self) -> ScorerInfo {
        ScorerInfo {
            name: "perspective".to_string(),
            model: format!("Perspective API v1alpha1 ({})", ATTRIBUTES.join(", ")),
            heuristic: false,
            configured: true,
        }
    }

    fn batch_size(&self) -> usize {
        1
    }

    fn concurrency(&self) -> usize {
        // Requests are paced by the shared limiter; a few in flight hide latency at high QPS.
        4
    }

    fn score<'a>(&'a self, texts: &'a [String]) -> ScoreFuture<'a> {
        Box::pin(async move {
            let mut out = Vec::with_capacity(texts.len());
            for text in texts {
                out.push(self.score_one(text).await?);
            }
            Ok(out)
        })
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct AnalyzeResponse {
    attribute_scores: BTreeMap<String, AttributeScore>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct AttributeScore {
    summary_score: Option<SummaryScore>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct SummaryScore {
    value: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ErrorEnvelope {
    error: ErrorBody,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ErrorBody {
    message: String,
    details: Vec<ErrorDetail>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct ErrorDetail {
    error_type: Option<String>,
}
