//! alt-profanity-check's model, reimplemented: a TF-IDF bag of words fed to five linear SVMs, each
//! with its own sigmoid calibration, their probabilities averaged (scikit-learn's
//! `CalibratedClassifierCV` with `ensemble=True`). The weights are exported from the Python package
//! by `scripts/export-profanity-model` into `../data/profanity_model.bin.gz` (format and provenance
//! in `../data/README.md`) and embedded in the binary.
//!
//! `probability` reproduces the package's `predict_prob` (the test compares it with stored Python
//! outputs to 1e-9): lowercase the text, take every maximal run of word characters at least two
//! characters long (scikit-learn's `(?u)\b\w\w+\b`), keep those in the vocabulary, weight their
//! counts by idf, L2-normalise, and for each estimator `1 / (1 + exp(a (w·x + c) + b))`.

use std::collections::HashMap;
use std::io::Read;
use std::sync::OnceLock;

/// The exported model, gzip-compressed.
const MODEL_GZ: &[u8] = include_bytes!("../data/profanity_model.bin.gz");
const MAGIC: &[u8; 4] = b"APC1";

#[derive(Debug, Clone, Copy)]
struct Estimator {
    intercept: f64,
    /// Platt scaling: p = 1 / (1 + exp(a f + b)).
    a: f64,
    b: f64,
}

pub struct LinearModel {
    vocabulary: HashMap<String, u32>,
    idf: Vec<f64>,
    estimators: Vec<Estimator>,
    /// `coef[e * n + j]`: estimator `e`'s weight for feature `j`.
    coef: Vec<f64>,
}

impl std::fmt::Debug for LinearModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinearModel")
            .field("features", &self.idf.len())
            .field("estimators", &self.estimators.len())
            .finish_non_exhaustive()
    }
}

impl LinearModel {
    /// The embedded model, decompressed and parsed on first use (a few milliseconds).
    pub fn embedded() -> &'static LinearModel {
        static MODEL: OnceLock<LinearModel> = OnceLock::new();
        MODEL.get_or_init(|| {
            Self::parse_gz(MODEL_GZ).expect("the embedded profanity model is valid (tested)")
        })
    }

    pub fn parse_gz(gz: &[u8]) -> Result<Self, String> {
        let mut raw = Vec::new();
        flate2::read::GzDecoder::new(gz)
            .read_to_end(&mut raw)
            .map_err(|e| format!("cannot decompress: {e}"))?;
        Self::parse(&raw)
    }

    fn parse(raw: &[u8]) -> Result<Self, String> {
        let mut r = Reader { raw, at: 0 };
        if r.take(4)? != MAGIC {
            return Err("not an APC1 model".into());
        }
        let n = r.u32()? as usize;
        let k = r.u32()? as usize;
        if n == 0 || k == 0 || k > 64 {
            return Err(format!("{n} features, {k} estimators"));
        }
        let mut estimators = Vec::with_capacity(k);
        for _ in 0..k {
            estimators.push(Estimator {
                intercept: r.f64()?,
                a: r.f64()?,
                b: r.f64()?,
            });
        }
        let idf = (0..n).map(|_| r.f64()).collect::<Result<Vec<_>, _>>()?;
        let coef = (0..n * k).map(|_| r.f64()).collect::<Result<Vec<_>, _>>()?;
        let len = r.u32()? as usize;
        let words = std::str::from_utf8(r.take(len)?).map_err(|e| e.to_string())?;
        if r.at != raw.len() {
            return Err("trailing bytes".into());
        }
        let vocabulary: HashMap<String, u32> = words
            .split('\n')
            .enumerate()
            .map(|(i, w)| (w.to_string(), i as u32))
            .collect();
        if vocabulary.len() != n {
            return Err(format!("{} words for {n} features", vocabulary.len()));
        }
        Ok(LinearModel {
            vocabulary,
            idf,
            estimators,
            coef,
        })
    }

    pub fn features(&self) -> usize {
        self.idf.len()
    }

    /// The package's `predict_prob` for one text: 0..1, higher is more offensive.
    pub fn probability(&self, text: &str) -> f64 {
        let lower = text.to_lowercase();
        // Feature index → count, in first-seen order (a short text has few distinct words).
        let mut counts: Vec<(u32, f64)> = Vec::new();
        for token in tokens(&lower) {
            if let Some(&j) = self.vocabulary.get(token) {
                match counts.iter_mut().find(|(i, _)| *i == j) {
                    Some((_, c)) => *c += 1.0,
                    None => counts.push((j, 1.0)),
                }
            }
        }
        // scikit-learn sorts a row's indices before normalising; summing in index order keeps
        // the floating-point sums the same.
        counts.sort_by_key(|(j, _)| *j);
        let mut x: Vec<(usize, f64)> = counts
            .iter()
            .map(|&(j, c)| (j as usize, c * self.idf[j as usize]))
            .collect();
        let norm = x.iter().map(|(_, v)| v * v).sum::<f64>().sqrt();
        if norm > 0.0 {
            for (_, v) in &mut x {
                *v /= norm;
            }
        }
        let n = self.features();
        let total: f64 = self
            .estimators
            .iter()
            .enumerate()
            .map(|(e, est)| {
                let w = &self.coef[e * n..(e + 1) * n];
                let f = x.iter().map(|&(j, v)| v * w[j]).sum::<f64>() + est.intercept;
                1.0 / (1.0 + (est.a * f + est.b).exp())
            })
            .sum();
        total / self.estimators.len() as f64
    }
}

/// Python's `\w` for a `str` pattern: alphanumeric (letters and numbers, not marks) or `_`.
fn is_word(c: char) -> bool {
    c == '_' || (c.is_alphanumeric() && !unicode_normalization::char::is_combining_mark(c))
}

/// `(?u)\b\w\w+\b` on an already lowercased text: maximal runs of word characters of at least
/// two characters.
pub fn tokens(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !is_word(c))
        .filter(|t| t.chars().nth(1).is_some())
}

struct Reader<'a> {
    raw: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.raw.len());
        let end = end.ok_or_else(|| "truncated model".to_string())?;
        let s = &self.raw[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn f64(&mut self) -> Result<f64, String> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(f64::from_le_bytes(a))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_runs_of_two_or_more_word_characters() {
        let t: Vec<&str> = tokens("a bc, d_e-f 42 x1 é").collect();
        assert_eq!(t, ["bc", "d_e", "42", "x1"]);
    }

    /// The embedded file is the one whose provenance `data/README.md` records.
    #[test]
    fn the_embedded_model_is_the_recorded_export() {
        use sha2::{Digest, Sha256};
        let digest: String = Sha256::digest(MODEL_GZ)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let readme = include_str!("../data/README.md");
        assert!(
            readme.contains(&format!("sha256 `{digest}`")),
            "data/README.md does not record sha256 {digest}"
        );
    }

    #[test]
    fn the_embedded_model_loads() {
        let m = LinearModel::embedded();
        assert_eq!(m.features(), 15_442);
        assert_eq!(m.estimators.len(), 5);
    }

    /// The reimplementation against `predict_prob` of alt-profanity-check 1.9.1 itself, on every
    /// text of the evaluation set and some edge cases (written by the export script).
    #[test]
    fn probabilities_match_the_python_package() {
        let m = LinearModel::embedded();
        let reference = include_str!("../../../tests/data/profanity_check_reference.csv");
        let mut rows = csv::Reader::from_reader(reference.as_bytes());
        let mut checked = 0;
        let mut worst = 0.0f64;
        for row in rows.records() {
            let row = row.expect("reference row");
            let expected: f64 = row[1].parse().expect("probability");
            let got = m.probability(&row[0]);
            worst = worst.max((got - expected).abs());
            assert!(
                (got - expected).abs() < 1e-9,
                "{:?}: Rust {got}, Python {expected}",
                &row[0]
            );
            checked += 1;
        }
        assert!(checked >= 200, "{checked} reference texts");
        eprintln!("{checked} texts, largest difference {worst:e}");
    }
}
