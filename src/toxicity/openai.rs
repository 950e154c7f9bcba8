//! OpenAI's moderation endpoint (`POST {base}/v1/moderations`), many texts per request.
//!
//! The key travels in `Authorization: Bearer …` (marked sensitive). A batch of up to
//! `OPENAI_BATCH_SIZE` texts goes out as one `input` array; the answer's `results` come back in
//! input order, and a batch whose result count does not match is left unscored with the reason
//! rather than guessed at. Requests go through the process-wide OpenAI limiter
//! (`OPENAI_RATE_PER_MIN`) with the common retry rules (429 `rate_limit_exceeded` and 5xx are
//! retried with backoff, `Retry-After` honoured).
//!
//! OpenAI's categories are mapped onto the report's common scale ([`common_scale`], docs/toxicity.md): the
//! headline `toxicity` is the highest of harassment, harassment/threatening, hate and
//! hate/threatening, the categories aimed at people. The raw scores are kept as they came.

use std::collections::BTreeMap;
use std::sync::Arc;

use reqwest::StatusCode;
use reqwest::header::HeaderValue;
use serde::Deserialize;
use serde_json::json;

use super::{ScoreFuture, ScorerError, ToxicityScorer};
use crate::config::{OpenAiConfig, Secret};
use crate::model::{ScorerInfo, Scores, TextScore};
use crate::net::{ApiLimiter, Pacing};

const BACKEND: &str = "OpenAI";
/// Each text is cut to its first 20 KB (as for Perspective): a Reddit post can reach 40,000
/// characters, and the moderation models score a bounded number of tokens anyway.
pub const MAX_TEXT_BYTES: usize = 20 * 1024;

/// The categories that make up the headline: abuse aimed at a person or a group.
pub const HEADLINE: [&str; 4] = [
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
];

/// Common category ← the OpenAI categories whose highest score it takes.
pub const MAPPING: [(&str, &[&str]); 6] = [
    ("insult", &["harassment"]),
    ("threat", &["harassment/threatening", "hate/threatening"]),
    ("identity_attack", &["hate", "hate/threatening"]),
    ("sexual", &["sexual", "sexual/minors"]),
    (
        "self_harm",
        &["self-harm", "self-harm/intent", "self-harm/instructions"],
    ),
    ("violence", &["violence", "violence/graphic"]),
];

pub struct OpenAiScorer {
    http: reqwest::Client,
    url: String,
    model: String,
    batch_size: usize,
    /// `None` if the key cannot be a header value (config validation prevents that).
    auth_header: Option<HeaderValue>,
    key: Secret,
    limiter: Arc<ApiLimiter>,
}

impl std::fmt::Debug for OpenAiScorer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiScorer")
            .field("url", &self.url)
            .field("model", &self.model)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl OpenAiScorer {
    pub fn new(config: &OpenAiConfig, http: reqwest::Client, limiter: Arc<ApiLimiter>) -> Self {
        let auth_header = HeaderValue::from_str(&format!("Bearer {}", config.api_key.expose()))
            .ok()
            .map(|mut v| {
                v.set_sensitive(true);
                v
            });
        OpenAiScorer {
            http,
            url: format!("{}/v1/moderations", config.api_base),
            model: config.model.clone(),
            batch_size: config.batch_size.max(1),
            auth_header,
            key: config.api_key.clone(),
            limiter,
        }
    }

    async fn moderate(&self, texts: &[String]) -> Result<Vec<TextScore>, ScorerError> {
        let Some(auth) = &self.auth_header else {
            return Err(ScorerError::Setup {
                backend: BACKEND,
                message: "OPENAI_API_KEY cannot be sent as an HTTP header".to_string(),
            });
        };
        let cut: Vec<(&str, bool)> = texts
            .iter()
            .map(|t| super::truncate_utf8(t, MAX_TEXT_BYTES))
            .collect();
        let input: Vec<&str> = cut.iter().map(|(t, _)| *t).collect();
        let body = json!({"model": self.model, "input": input});
        let response = self
            .limiter
            .send(Pacing::Paced, || {
                self.http
                    .post(&self.url)
                    .header(reqwest::header::AUTHORIZATION, auth.clone())
                    .json(&body)
            })
            .await?;
        let status = response.status();
        let bytes = super::read_answer(response, BACKEND).await?;
        match status {
            StatusCode::OK => {
                let answer: ModerationResponse =
                    super::decode_answer(BACKEND, status, &bytes, &self.key)?;
                if answer.results.len() != texts.len() {
                    let reason = format!(
                        "OpenAI returned {} results for {} texts",
                        answer.results.len(),
                        texts.len()
                    );
                    tracing::warn!(%reason, "a moderation batch is left unscored");
                    return Ok(vec![TextScore::unscored(reason); texts.len()]);
                }
                Ok(answer
                    .results
                    .into_iter()
                    .zip(&cut)
                    .map(|(r, (_, truncated))| common_scale(&r.category_scores, *truncated))
                    .collect())
            }
            // The batch as a whole was refused (e.g. an input too long for the model): its texts
            // are unscored with OpenAI's reason, the scan goes on.
            StatusCode::BAD_REQUEST => {
                let message = self.error_of(&bytes).message;
                Ok(vec![
                    TextScore::unscored(format!(
                        "OpenAI refused this batch: {message}"
                    ));
                    texts.len()
                ])
            }
            _ => Err(super::status_error(
                BACKEND,
                status,
                self.error_of(&bytes).message,
            )),
        }
    }

    /// OpenAI's error object, its message scrubbed of the key.
    fn error_of(&self, body: &[u8]) -> ErrorBody {
        let mut error = serde_json::from_slice::<ErrorEnvelope>(body)
            .map(|e| e.error)
            .unwrap_or_default();
        error.message = super::scrub_message(&error.message, &self.key);
        error
    }
}

/// OpenAI's `category_scores` on the report's common scale, raw scores kept.
pub fn common_scale(raw: &BTreeMap<String, f64>, truncated: bool) -> TextScore {
    let raw: BTreeMap<String, f64> = raw
        .iter()
        .filter(|(_, v)| v.is_finite())
        .map(|(k, v)| (k.clone(), v.clamp(0.0, 1.0)))
        .collect();
    let highest = |names: &[&str]| -> Option<f64> {
        names
            .iter()
            .filter_map(|n| raw.get(*n).copied())
            .reduce(f64::max)
    };
    let Some(toxicity) = highest(&HEADLINE) else {
        return TextScore::unscored("OpenAI returned no harassment or hate scores");
    };
    let mut categories = BTreeMap::from([("toxicity".to_string(), toxicity)]);
    for (name, from) in MAPPING {
        if let Some(v) = highest(from) {
            categories.insert(name.to_string(), v);
        }
    }
    TextScore::Scored(Scores {
        toxicity,
        categories,
        raw_categories: raw,
        truncated,
    })
}

impl ToxicityScorer for OpenAiScorer {
    fn info(&self) -> ScorerInfo {
        ScorerInfo {
            name: "openai".to_string(),
            model: format!("OpenAI moderation {}", self.model),
            heuristic: false,
            configured: true,
        }
    }

    fn batch_size(&self) -> usize {
        self.batch_size
    }

    fn concurrency(&self) -> usize {
        // The limiter paces requests; two in flight hide one request's latency behind the other.
        2
    }

    fn score<'a>(&'a self, texts: &'a [String]) -> ScoreFuture<'a> {
        Box::pin(async move {
            let mut out = Vec::with_capacity(texts.len());
            // A caller may hand over more than one batch's worth.
            for chunk in texts.chunks(self.batch_size) {
                out.extend(self.moderate(chunk).await?);
            }
            Ok(out)
        })
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ModerationResponse {
    results: Vec<ModerationResult>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ModerationResult {
    /// Scores may be null for a category the model does not cover.
    #[serde(deserialize_with = "scores_skipping_nulls")]
    category_scores: BTreeMap<String, f64>,
}

fn scores_skipping_nulls<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, f64>, D::Error> {
    let m: BTreeMap<String, Option<f64>> = BTreeMap::deserialize(d)?;
    Ok(m.into_iter().filter_map(|(k, v)| Some((k, v?))).collect())
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scores(pairs: &[(&str, f64)]) -> BTreeMap<String, f64> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn the_headline_is_the_highest_abuse_category() {
        let raw = scores(&[
            ("harassment", 0.4),
            ("harassment/threatening", 0.8),
            ("hate", 0.1),
            ("hate/threatening", 0.05),
            ("violence", 0.99),
            ("sexual", 0.3),
            ("self-harm", 0.2),
            ("illicit", 0.6),
        ]);
        let TextScore::Scored(s) = common_scale(&raw, false) else {
            panic!("scored");
        };
        assert_eq!(s.toxicity, 0.8, "violence alone is not the headline");
        assert_eq!(s.categories["insult"], 0.4);
        assert_eq!(s.categories["threat"], 0.8);
        assert_eq!(s.categories["identity_attack"], 0.1);
        assert_eq!(s.categories["violence"], 0.99);
        assert_eq!(s.categories["self_harm"], 0.2);
        assert_eq!(s.raw_categories, raw, "raw scores kept as they came");
    }

    #[test]
    fn no_abuse_scores_means_unscored() {
        assert!(matches!(
            common_scale(&scores(&[("violence", 0.2)]), false),
            TextScore::Unscored { .. }
        ));
    }
}
