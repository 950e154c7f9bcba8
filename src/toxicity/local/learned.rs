//! The learned part of the local backend: a fine-tuned all-MiniLM-L6-v2 encoder (its top two
//! layers trained on `data/toxicity/train.csv` by `scripts/toxicity/finetune.py`) and five linear
//! heads over its embedding, each `p = sigmoid(w · e + b)` with Platt scaling folded in.
//!
//! The files ship inside the binary (`models/toxicity/`, about 46 MB, f16): nothing is
//! downloaded. `TOXICITY_MODEL_DIR` points at another copy of the same files instead (a model
//! retrained by the operator). Either way the weights are checked against the sha256 the heads
//! were trained with before they are used.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use super::embedding::{
    self, DIM, EmbeddingError, MODEL_FILE, MiniLm, Pins, Source, TOKENIZER_FILE,
    UPSTREAM_TOKENIZER_SHA256,
};

pub const HEADS_FILE: &str = "head.json";
pub const COMBINATION_FILE: &str = "combination.json";

static EMBEDDED_MODEL: &[u8] = include_bytes!("../../../models/toxicity/model.safetensors");
static EMBEDDED_TOKENIZER: &[u8] = include_bytes!("../../../models/toxicity/tokenizer.json");
pub static EMBEDDED_HEADS: &str = include_str!("../../../models/toxicity/head.json");
pub static EMBEDDED_COMBINATION: &str = include_str!("../../../models/toxicity/combination.json");

/// The head names, in the order the report lists them; `toxicity` is the headline.
pub const HEAD_NAMES: [&str; 5] = [
    "toxicity",
    "threat",
    "identity_attack",
    "insult",
    "harassment",
];

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Embedding(#[from] EmbeddingError),
    #[error("{} is not a valid heads file: {message}", path.display())]
    Heads { path: PathBuf, message: String },
}

/// Where the model's files come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSource {
    /// The files built into the binary.
    Embedded,
    /// `TOXICITY_MODEL_DIR`: `model.safetensors`, `tokenizer.json`, `head.json` and
    /// `combination.json`.
    Dir(PathBuf),
}

impl std::fmt::Display for ModelSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ModelSource::Embedded => f.write_str("built into the binary"),
            ModelSource::Dir(dir) => write!(f, "{}", dir.display()),
        }
    }
}

#[derive(Debug, Deserialize)]
struct HeadsFile {
    embedding_dim: usize,
    encoder: EncoderFile,
    heads: BTreeMap<String, HeadFile>,
}

#[derive(Debug, Deserialize)]
struct EncoderFile {
    #[serde(rename = "model-f16.safetensors")]
    model: EncoderFileEntry,
}

#[derive(Debug, Deserialize)]
struct EncoderFileEntry {
    sha256: String,
}

#[derive(Debug, Deserialize)]
struct HeadFile {
    weights: Vec<f64>,
    bias: f64,
}

/// How the model's headline and the word lists' make one score, chosen on the development split
/// by `scripts/toxicity/combine.py`: a text is flagged when the model's probability reaches
/// `threshold`, or when the word lists' score reaches `wordlist_threshold` (never, when absent).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Combination {
    pub threshold: f64,
    pub wordlist_threshold: Option<f64>,
}

impl Combination {
    pub fn parse(text: &str) -> Result<Combination, String> {
        let c: Combination = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let in_range = |x: f64| x > 0.0 && x <= 1.0;
        if !in_range(c.threshold) || c.wordlist_threshold.is_some_and(|t| !in_range(t)) {
            return Err("thresholds must be in (0, 1]".to_string());
        }
        Ok(c)
    }

    /// One score on the model's scale: the word lists' score is rescaled so that their threshold
    /// lands on the model's, so "at or above `threshold`" means the same as the rule above.
    pub fn score(&self, model: f64, wordlist: f64) -> f64 {
        match self.wordlist_threshold {
            Some(tw) => model.max((wordlist * self.threshold / tw).min(1.0)),
            None => model,
        }
    }
}

/// The five heads as one matrix.
#[derive(Debug, Clone)]
pub struct Heads {
    /// Row-major, [`HEAD_NAMES`] order, [`DIM`] weights each.
    weights: Vec<f32>,
    bias: Vec<f32>,
    /// sha256 of the encoder weights the heads were trained on.
    pub encoder_sha256: String,
    /// sha256 of the heads file itself (identifies the model in reports).
    pub sha256: String,
}

impl Heads {
    pub fn parse(text: &str) -> Result<Heads, String> {
        let file: HeadsFile = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if file.embedding_dim != DIM {
            return Err(format!(
                "embedding_dim is {}, the encoder's is {DIM}",
                file.embedding_dim
            ));
        }
        let mut weights = Vec::with_capacity(HEAD_NAMES.len() * DIM);
        let mut bias = Vec::with_capacity(HEAD_NAMES.len());
        for name in HEAD_NAMES {
            let head = file
                .heads
                .get(name)
                .ok_or_else(|| format!("the head `{name}` is missing"))?;
            if head.weights.len() != DIM || head.weights.iter().any(|w| !w.is_finite()) {
                return Err(format!("the head `{name}` needs {DIM} finite weights"));
            }
            weights.extend(head.weights.iter().map(|&w| w as f32));
            bias.push(head.bias as f32);
        }
        Ok(Heads {
            weights,
            bias,
            encoder_sha256: file.encoder.model.sha256.to_lowercase(),
            sha256: embedding::sha256_hex(text.as_bytes()),
        })
    }

    /// One probability per head, [`HEAD_NAMES`] order.
    pub fn probabilities(&self, embedding: &[f32]) -> [f64; 5] {
        let mut out = [0.0; 5];
        for (i, p) in out.iter_mut().enumerate() {
            let row = &self.weights[i * DIM..(i + 1) * DIM];
            let z: f32 = row.iter().zip(embedding).map(|(w, e)| w * e).sum::<f32>() + self.bias[i];
            *p = 1.0 / (1.0 + f64::from(-z).exp());
        }
        out
    }
}

/// The encoder, its heads and how they combine with the word lists.
#[derive(Debug)]
pub struct Learned {
    pub encoder: MiniLm,
    pub heads: Heads,
    pub combination: Combination,
    pub source: ModelSource,
}

/// How many times this process has loaded a model (read, checked and parsed the files).
pub fn loads() -> usize {
    LOADS.load(std::sync::atomic::Ordering::Relaxed)
}

static LOADS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl Learned {
    /// Reads and checks every file (a wrong hash, a truncated or missing file is an error).
    pub fn load(source: &ModelSource) -> Result<Learned, LoadError> {
        LOADS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // The small text files first: the heads pin the encoder's sha256.
        let text = |file: &str| -> Result<(PathBuf, String), LoadError> {
            match source {
                ModelSource::Embedded => {
                    let text = match file {
                        HEADS_FILE => EMBEDDED_HEADS,
                        _ => EMBEDDED_COMBINATION,
                    };
                    Ok((embedded_path(file), text.to_owned()))
                }
                ModelSource::Dir(dir) => {
                    let path = dir.join(file);
                    let text = read_text(&path)?;
                    Ok((path, text))
                }
            }
        };
        let (path, heads) = text(HEADS_FILE)?;
        let heads = Heads::parse(&heads).map_err(|message| LoadError::Heads { path, message })?;
        let (path, combination) = text(COMBINATION_FILE)?;
        let combination = Combination::parse(&combination)
            .map_err(|message| LoadError::Heads { path, message })?;
        let encoder = match source {
            ModelSource::Embedded => {
                let encoder = MiniLm::from_bytes(
                    Source {
                        path: &embedded_path(MODEL_FILE),
                        bytes: EMBEDDED_MODEL,
                    },
                    Source {
                        path: &embedded_path(TOKENIZER_FILE),
                        bytes: EMBEDDED_TOKENIZER,
                    },
                    &pins(&heads),
                )?;
                release_pages(EMBEDDED_MODEL);
                encoder
            }
            ModelSource::Dir(dir) => MiniLm::load_with(dir, &pins(&heads))?,
        };
        Ok(Learned {
            encoder,
            heads,
            combination,
            source: source.clone(),
        })
    }

    /// What reports call this model.
    pub fn describe(&self) -> String {
        format!(
            "all-MiniLM-L6-v2 fine-tuned + head {}",
            &self.heads.sha256[..12]
        )
    }
}

/// The built-in weights have been copied into f32 tensors; the 45 MB of the binary's image they
/// were read from need not stay resident beside them. Those pages are read-only and backed by
/// the executable file, so the kernel may drop them and would read them in again if they were
/// ever touched. Best effort: a failure only costs memory.
#[cfg(target_os = "linux")]
fn release_pages(bytes: &'static [u8]) {
    use nix::sys::mman::{MmapAdvise, madvise};
    use nix::unistd::{SysconfVar, sysconf};
    let Ok(Some(page)) = sysconf(SysconfVar::PAGE_SIZE) else {
        return;
    };
    let page = page as usize;
    let start = bytes.as_ptr() as usize;
    let first = start.div_ceil(page) * page;
    let end = (start + bytes.len()) / page * page;
    if end <= first {
        return;
    }
    let Some(addr) = std::ptr::NonNull::new(first as *mut std::ffi::c_void) else {
        return;
    };
    // SAFETY: [first, end) lies inside a `&'static [u8]` in the executable's read-only data,
    // a private file mapping that is never written; MADV_DONTNEED on such pages only drops them
    // from memory, and any later read faults them in again from the file with the same bytes.
    if let Err(e) = unsafe { madvise(addr, end - first, MmapAdvise::MADV_DONTNEED) } {
        tracing::debug!(error = %e, "could not release the built-in weights' pages");
    }
}

#[cfg(not(target_os = "linux"))]
fn release_pages(_bytes: &'static [u8]) {}

fn pins(heads: &Heads) -> Pins {
    Pins {
        model: Some(heads.encoder_sha256.clone()),
        tokenizer: Some(UPSTREAM_TOKENIZER_SHA256.to_owned()),
    }
}

fn embedded_path(file: &str) -> PathBuf {
    Path::new("(built in)").join(file)
}

fn read_text(path: &Path) -> Result<String, LoadError> {
    String::from_utf8(embedding::read(path)?).map_err(|e| LoadError::Heads {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

/// The process's one model: loaded on first use (once, however many scans ask at the same
/// time, on tokio's blocking pool), kept for the life of the process. A failed load is
/// remembered too, so a scan falls back to the word lists at once instead of re-reading 46 MB
/// per batch; the operator fixes the files and restarts.
#[derive(Debug)]
pub struct SharedModel {
    source: ModelSource,
    state: tokio::sync::OnceCell<Result<Arc<Learned>, String>>,
}

impl SharedModel {
    pub fn new(source: ModelSource) -> SharedModel {
        SharedModel {
            source,
            state: tokio::sync::OnceCell::new(),
        }
    }

    pub fn source(&self) -> &ModelSource {
        &self.source
    }

    /// `None` until the first load has finished; never loads.
    pub fn state(&self) -> Option<&Result<Arc<Learned>, String>> {
        self.state.get()
    }

    pub async fn get(&self) -> Result<Arc<Learned>, String> {
        self.state
            .get_or_init(|| async {
                let source = self.source.clone();
                let started = std::time::Instant::now();
                let loaded = tokio::task::spawn_blocking(move || Learned::load(&source))
                    .await
                    .map_err(|e| format!("the model loader did not finish: {e}"))
                    .and_then(|r| r.map_err(|e| e.to_string()));
                match &loaded {
                    Ok(model) => tracing::info!(
                        model = %model.describe(),
                        source = %self.source,
                        load_ms = started.elapsed().as_millis() as u64,
                        "toxicity model loaded"
                    ),
                    Err(e) => tracing::error!(
                        error = %e,
                        source = %self.source,
                        "toxicity model could not be loaded; scoring with the word lists only"
                    ),
                }
                loaded.map(Arc::new)
            })
            .await
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_heads_and_combination_parse() {
        let heads = Heads::parse(EMBEDDED_HEADS).expect("embedded heads");
        assert_eq!(heads.encoder_sha256, embedding::sha256_hex(EMBEDDED_MODEL));
        let c = Combination::parse(EMBEDDED_COMBINATION).expect("embedded combination");
        assert!(c.threshold > 0.0 && c.threshold < 1.0);
    }

    #[test]
    fn the_combination_flags_exactly_what_its_rule_says() {
        let c = Combination {
            threshold: 0.4,
            wordlist_threshold: Some(0.8),
        };
        // model alone
        assert!(c.score(0.41, 0.0) >= 0.4);
        assert!(c.score(0.39, 0.79) < 0.4);
        // word lists alone, at their own threshold
        assert!(c.score(0.0, 0.8) >= 0.4);
        assert!(c.score(0.0, 1.0) <= 1.0);
        let model_only = Combination {
            threshold: 0.4,
            wordlist_threshold: None,
        };
        assert_eq!(model_only.score(0.2, 1.0), 0.2);
    }

    #[test]
    fn bad_heads_files_are_refused() {
        assert!(Heads::parse("{}").is_err());
        let short = r#"{"embedding_dim":384,"encoder":{"model-f16.safetensors":{"sha256":"ab"}},"heads":{"toxicity":{"weights":[1.0],"bias":0}}}"#;
        assert!(Heads::parse(short).unwrap_err().contains("384"));
        assert!(Combination::parse(r#"{"threshold":1.5,"wordlist_threshold":null}"#).is_err());
    }
}
