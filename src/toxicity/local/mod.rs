//! The embedded, offline backend (the default when no API key is set). Nothing leaves the
//! process and nothing is downloaded: every part ships inside the binary.
//!
//! - [`learned`]: a fine-tuned all-MiniLM-L6-v2 sentence encoder with linear heads, which reads
//!   meaning (threats without a swear word, hate said politely, harassment by deed) and gives
//!   calibrated probabilities for toxicity, threat, identity attack, insult and harassment.
//! - [`wordlist`]: rustrict's word lists, alt-profanity-check's linear model and patterns, which
//!   see through leetspeak and spacing that sub-word embeddings can miss; they also give the
//!   `profanity` and `sexual` categories.
//!
//! The headline combines the two by the rule chosen on the development split
//! ([`learned::Combination`]). When the model cannot be loaded (a corrupt or missing
//! `TOXICITY_MODEL_DIR`), the word lists score alone, at their own threshold, and the scorer
//! info says so. Either way it surfaces items for a human; it never decides.

pub mod embedding;
pub mod learned;
mod linear;
pub mod wordlist;

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{PrepareFuture, ScoreFuture, ToxicityScorer};
use crate::model::{ScorerInfo, Scores, TextScore};
use learned::{HEAD_NAMES, Learned, ModelSource, SharedModel};
pub use linear::LinearModel;

/// The word lists' model string when they score alone.
pub const FALLBACK_MODEL: &str = wordlist::MODEL;

#[derive(Debug, Clone)]
pub struct LocalScorer {
    model: Arc<SharedModel>,
}

impl LocalScorer {
    /// Cheap: nothing is loaded until the first text is scored, so Sherlock-only scans and an
    /// idle bot never pay for the model.
    pub fn new(source: ModelSource) -> Self {
        LocalScorer {
            model: Arc::new(SharedModel::new(source)),
        }
    }

    pub fn model(&self) -> &SharedModel {
        &self.model
    }

    /// The threshold that goes with what scores now: the loaded model's, the word lists' own
    /// after a failed load, and before the first load the built-in model's (a
    /// `TOXICITY_MODEL_DIR`'s own is known once it has loaded; reports are finished after
    /// scoring, so they always carry the right one).
    pub fn threshold(&self) -> f64 {
        match self.model.state() {
            Some(Err(_)) => wordlist::THRESHOLD,
            Some(Ok(model)) => model.combination.threshold,
            None => learned::Combination::parse(learned::EMBEDDED_COMBINATION)
                .map(|c| c.threshold)
                .unwrap_or(wordlist::THRESHOLD),
        }
    }
}

/// Every part's score for one text, without the combination (for `eval-toxicity --part`).
#[derive(Debug, Clone, PartialEq)]
pub struct Parts {
    /// The heads' probabilities, [`HEAD_NAMES`] order.
    pub model: [f64; 5],
    pub wordlist: Scores,
    /// The text was longer than the model's window (256 tokens); its start was scored.
    pub model_truncated: bool,
}

/// The parts of each text, on the calling thread (it runs the encoder: call it off the async
/// threads).
pub fn parts(model: &Learned, texts: &[&str]) -> Result<Vec<Parts>, embedding::EmbeddingError> {
    let embeddings = model.encoder.embed(texts)?;
    Ok(texts
        .iter()
        .zip(embeddings)
        .map(|(text, e)| Parts {
            model: model.heads.probabilities(&e.vector),
            wordlist: wordlist::score_text(text),
            model_truncated: e.truncated,
        })
        .collect())
}

/// The backend's scores from a text's parts.
pub fn combine(model: &Learned, parts: Parts) -> Scores {
    let [toxicity, threat, identity_attack, insult, harassment] = parts.model;
    let w = parts.wordlist;
    let headline = model.combination.score(toxicity, w.toxicity);
    let get = |k: &str| w.categories.get(k).copied().unwrap_or(0.0);
    let categories = BTreeMap::from([
        ("toxicity".to_string(), headline),
        ("threat".to_string(), threat),
        ("identity_attack".to_string(), identity_attack),
        ("insult".to_string(), insult),
        ("harassment".to_string(), harassment),
        ("profanity".to_string(), get("profanity")),
        ("sexual".to_string(), get("sexual")),
    ]);
    let mut raw_categories: BTreeMap<String, f64> = HEAD_NAMES
        .iter()
        .zip(parts.model)
        .map(|(name, p)| (format!("model_{name}"), p))
        .collect();
    raw_categories.insert("wordlist_toxicity".to_string(), w.toxicity);
    raw_categories.extend(
        w.raw_categories
            .into_iter()
            .map(|(k, v)| (format!("wordlist_{k}"), v)),
    );
    Scores {
        toxicity: headline,
        categories,
        raw_categories,
        truncated: w.truncated || parts.model_truncated,
    }
}

impl ToxicityScorer for LocalScorer {
    fn info(&self) -> ScorerInfo {
        let model = match self.model.state() {
            Some(Ok(model)) => format!("{} + word lists", model.describe()),
            Some(Err(e)) => format!(
                "word lists only ({FALLBACK_MODEL}): fallback, the model could not be loaded: {e}"
            ),
            None => {
                "all-MiniLM-L6-v2 fine-tuned + head + word lists (loads on first use)".to_string()
            }
        };
        ScorerInfo {
            name: "local".to_string(),
            model,
            heuristic: true,
            configured: true,
        }
    }

    fn default_threshold(&self) -> f64 {
        self.threshold()
    }

    fn prepare(&self) -> PrepareFuture<'_> {
        Box::pin(async { self.model.get().await.map(|_| ()) })
    }

    fn batch_size(&self) -> usize {
        // About half a second of encoder time on one core: long enough to batch well, short
        // enough that a deadline or cancellation is noticed soon.
        64
    }

    fn score<'a>(&'a self, texts: &'a [String]) -> ScoreFuture<'a> {
        Box::pin(async move {
            let owned = texts.to_vec();
            let scores = match self.model.get().await {
                Ok(model) => tokio::task::spawn_blocking(move || {
                    let refs: Vec<&str> = owned.iter().map(String::as_str).collect();
                    parts(&model, &refs).map(|all| {
                        all.into_iter()
                            .map(|p| TextScore::Scored(combine(&model, p)))
                            .collect::<Vec<_>>()
                    })
                })
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r.map_err(|e| e.to_string())),
                Err(_) => tokio::task::spawn_blocking(move || {
                    owned
                        .iter()
                        .map(|t| TextScore::Scored(wordlist::score_text(t)))
                        .collect::<Vec<_>>()
                })
                .await
                .map_err(|e| e.to_string()),
            };
            Ok(scores.unwrap_or_else(|e| {
                tracing::error!(error = %e, "local scoring failed");
                texts
                    .iter()
                    .map(|_| TextScore::unscored(format!("the local scorer failed: {e}")))
                    .collect()
            }))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two scans scoring at once on the process's one scorer: one load, one model, and both get
    /// their scores (the second waits for the first's load instead of loading its own copy).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_scans_share_one_loaded_model() {
        let scorer = LocalScorer::new(ModelSource::Embedded);
        assert!(
            scorer.model().state().is_none(),
            "nothing loads before the first score"
        );
        let loads_before = learned::loads();
        let a: Vec<String> = vec!["I will find you and hurt you".into(); 3];
        let b: Vec<String> = vec!["what a lovely photo of your garden".into(); 5];
        let (ra, rb) = tokio::join!(scorer.score(&a), scorer.score(&b));
        let (ra, rb) = (ra.expect("scored"), rb.expect("scored"));
        assert_eq!((ra.len(), rb.len()), (3, 5));
        assert_eq!(learned::loads() - loads_before, 1, "loaded once");
        let Some(Ok(model)) = scorer.model().state() else {
            panic!("the built-in model loads");
        };
        let threshold = model.combination.threshold;
        let toxicity = |s: &TextScore| match s {
            TextScore::Scored(s) => s.toxicity,
            TextScore::Unscored { reason } => panic!("unscored: {reason}"),
        };
        assert!(ra.iter().all(|s| toxicity(s) >= threshold), "{ra:?}");
        // Scoring beside another scan changes nothing: the same texts alone, now loaded.
        let alone = scorer.score(&b).await.expect("scored");
        assert_eq!(alone, rb);
        assert_eq!(learned::loads() - loads_before, 1, "still loaded once");
        assert!(
            scorer
                .info()
                .model
                .starts_with("all-MiniLM-L6-v2 fine-tuned + head ")
        );
    }

    #[tokio::test]
    async fn a_text_longer_than_the_window_is_marked_truncated() {
        let scorer = LocalScorer::new(ModelSource::Embedded);
        let long = "this is a perfectly ordinary sentence about the weather. ".repeat(60);
        let scores = scorer.score(&[long, "short".into()]).await.expect("scored");
        match (&scores[0], &scores[1]) {
            (TextScore::Scored(a), TextScore::Scored(b)) => {
                assert!(a.truncated, "600 words exceed 256 tokens");
                assert!(!b.truncated);
            }
            other => panic!("{other:?}"),
        }
    }
}
