//! Precision, recall and F1 of a scorer on a labelled set (`account-scanner eval-toxicity`).
//!
//! The set is a CSV with a header and columns `text,label,category[,split]`: `label` 1 for harmful,
//! 0 for harmless; `category` says what kind (insult, threat, friendly_profanity…); `split` is
//! `dev` (used while tuning the local backend) or `holdout` (rows never looked at one by one while
//! tuning). The set the binary embeds is `tests/data/toxicity_eval.csv`.

use std::collections::BTreeMap;
use std::fmt::Write;

/// The labelled set shipped with the binary.
pub const EMBEDDED_SET: &str = include_str!("../../tests/data/toxicity_eval.csv");

#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    pub text: String,
    pub harmful: bool,
    pub category: String,
    pub split: String,
}

pub fn parse_set(csv_text: &str) -> Result<Vec<Example>, String> {
    let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
    let headers = reader.headers().map_err(|e| e.to_string())?.clone();
    let column = |name: &str| headers.iter().position(|h| h.trim() == name);
    let (Some(text), Some(label), Some(category)) =
        (column("text"), column("label"), column("category"))
    else {
        return Err("the header must name the columns text, label and category".into());
    };
    let split = column("split");
    let mut out = Vec::new();
    for (i, row) in reader.records().enumerate() {
        let row = row.map_err(|e| format!("row {}: {e}", i + 2))?;
        let harmful = match row.get(label).map(str::trim) {
            Some("1") => true,
            Some("0") => false,
            other => return Err(format!("row {}: label {other:?} is not 0 or 1", i + 2)),
        };
        out.push(Example {
            text: row.get(text).unwrap_or_default().to_string(),
            harmful,
            category: row.get(category).unwrap_or_default().trim().to_string(),
            split: split
                .and_then(|s| row.get(s))
                .unwrap_or("dev")
                .trim()
                .to_string(),
        });
    }
    if out.is_empty() {
        return Err("the set has no rows".into());
    }
    Ok(out)
}

/// Confusion counts at one threshold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub tp: usize,
    pub fp: usize,
    pub tn: usize,
    pub fn_: usize,
}

impl Counts {
    pub fn add(&mut self, harmful: bool, flagged: bool) {
        match (harmful, flagged) {
            (true, true) => self.tp += 1,
            (true, false) => self.fn_ += 1,
            (false, true) => self.fp += 1,
            (false, false) => self.tn += 1,
        }
    }

    pub fn total(&self) -> usize {
        self.tp + self.fp + self.tn + self.fn_
    }

    pub fn precision(&self) -> f64 {
        ratio(self.tp, self.tp + self.fp)
    }

    pub fn recall(&self) -> f64 {
        ratio(self.tp, self.tp + self.fn_)
    }

    /// False-positive rate: harmless texts flagged.
    pub fn fpr(&self) -> f64 {
        ratio(self.fp, self.fp + self.tn)
    }

    pub fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// One example's outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub example: Example,
    pub score: f64,
    pub flagged: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub threshold: f64,
    pub outcomes: Vec<Outcome>,
}

impl Evaluation {
    /// Scores every example with `score` and flags those at or above `threshold` (as reports do).
    pub fn run(examples: &[Example], threshold: f64, score: impl Fn(&str) -> f64) -> Self {
        let outcomes = examples
            .iter()
            .map(|e| {
                let s = score(&e.text);
                Outcome {
                    example: e.clone(),
                    score: s,
                    flagged: s >= threshold,
                }
            })
            .collect();
        Evaluation {
            threshold,
            outcomes,
        }
    }

    /// Flags the examples whose given score (same order) is at or above `threshold`.
    pub fn from_scores(examples: &[Example], threshold: f64, scores: &[f64]) -> Self {
        let outcomes = examples
            .iter()
            .zip(scores)
            .map(|(e, &score)| Outcome {
                example: e.clone(),
                score,
                flagged: score >= threshold,
            })
            .collect();
        Evaluation {
            threshold,
            outcomes,
        }
    }

    /// ROC AUC over the examples `keep` selects: the chance that a harmful text scores above a
    /// harmless one (ties count half); `None` without both kinds.
    pub fn auc(&self, keep: impl Fn(&Example) -> bool) -> Option<f64> {
        let kept: Vec<&Outcome> = self.outcomes.iter().filter(|o| keep(&o.example)).collect();
        let pos: Vec<f64> = kept
            .iter()
            .filter(|o| o.example.harmful)
            .map(|o| o.score)
            .collect();
        let neg: Vec<f64> = kept
            .iter()
            .filter(|o| !o.example.harmful)
            .map(|o| o.score)
            .collect();
        if pos.is_empty() || neg.is_empty() {
            return None;
        }
        let mut wins = 0.0;
        for p in &pos {
            for n in &neg {
                wins += if p > n {
                    1.0
                } else if p == n {
                    0.5
                } else {
                    0.0
                };
            }
        }
        Some(wins / (pos.len() * neg.len()) as f64)
    }

    /// Counts over the examples `keep` selects.
    pub fn counts(&self, keep: impl Fn(&Example) -> bool) -> Counts {
        let mut c = Counts::default();
        for o in self.outcomes.iter().filter(|o| keep(&o.example)) {
            c.add(o.example.harmful, o.flagged);
        }
        c
    }

    pub fn overall(&self) -> Counts {
        self.counts(|_| true)
    }

    pub fn split(&self, split: &str) -> Counts {
        self.counts(|e| e.split == split)
    }

    /// Per category: (harmful?, examples, flagged).
    pub fn by_category(&self) -> BTreeMap<(bool, String), (usize, usize)> {
        let mut m: BTreeMap<(bool, String), (usize, usize)> = BTreeMap::new();
        for o in &self.outcomes {
            let e = m
                .entry((!o.example.harmful, o.example.category.clone()))
                .or_default();
            e.0 += 1;
            e.1 += usize::from(o.flagged);
        }
        m.into_iter()
            .map(|((harmless, c), v)| ((!harmless, c), v))
            .collect()
    }

    /// The table `eval-toxicity` prints.
    pub fn render(&self, show_errors: bool) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "threshold {:.2}", self.threshold);
        let _ = writeln!(
            out,
            "{:<10} {:>5} {:>4} {:>4} {:>4} {:>4}  {:>9} {:>6} {:>6} {:>6} {:>6}",
            "set", "texts", "TP", "FP", "TN", "FN", "precision", "recall", "F1", "FPR", "AUC"
        );
        let mut splits: Vec<&str> = self
            .outcomes
            .iter()
            .map(|o| o.example.split.as_str())
            .collect();
        splits.sort();
        splits.dedup();
        let mut rows = vec![("all".to_string(), self.overall(), self.auc(|_| true))];
        if splits.len() > 1 {
            rows.extend(
                splits
                    .iter()
                    .map(|s| (s.to_string(), self.split(s), self.auc(|e| e.split == *s))),
            );
        }
        for (name, c, auc) in rows {
            let auc = auc.map_or("-".to_string(), |a| format!("{a:.3}"));
            let _ = writeln!(
                out,
                "{:<10} {:>5} {:>4} {:>4} {:>4} {:>4}  {:>9.3} {:>6.3} {:>6.3} {:>6.3} {:>6}",
                name,
                c.total(),
                c.tp,
                c.fp,
                c.tn,
                c.fn_,
                c.precision(),
                c.recall(),
                c.f1(),
                c.fpr(),
                auc
            );
        }
        let _ = writeln!(out, "\nby category (flagged / texts):");
        for ((harmful, category), (n, flagged)) in self.by_category() {
            let what = if harmful {
                format!("caught {:.0}%", 100.0 * ratio(flagged, n))
            } else {
                format!("false alarms {:.0}%", 100.0 * ratio(flagged, n))
            };
            let kind = if harmful { "harmful" } else { "harmless" };
            let _ = writeln!(
                out,
                "  {kind:<8} {category:<20} {flagged:>3} / {n:<3} {what}"
            );
        }
        if show_errors {
            let _ = writeln!(out, "\nerrors:");
            for o in self
                .outcomes
                .iter()
                .filter(|o| o.flagged != o.example.harmful)
            {
                let kind = if o.example.harmful {
                    "missed"
                } else {
                    "false alarm"
                };
                let _ = writeln!(
                    out,
                    "  {kind:<11} {:.3}  [{}/{}] {}",
                    o.score, o.example.category, o.example.split, o.example.text
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_give_precision_recall_f1() {
        let c = Counts {
            tp: 8,
            fp: 2,
            tn: 7,
            fn_: 3,
        };
        assert!((c.precision() - 0.8).abs() < 1e-12);
        assert!((c.recall() - 8.0 / 11.0).abs() < 1e-12);
        let f1 = 2.0 * 0.8 * (8.0 / 11.0) / (0.8 + 8.0 / 11.0);
        assert!((c.f1() - f1).abs() < 1e-12);
        assert_eq!(Counts::default().f1(), 0.0);
    }

    #[test]
    fn the_embedded_set_is_balanced_and_large_enough() {
        let set = parse_set(EMBEDDED_SET).expect("valid set");
        let harmful = set.iter().filter(|e| e.harmful).count();
        assert!(set.len() >= 200, "{} texts", set.len());
        assert!(
            (0.4..=0.6).contains(&(harmful as f64 / set.len() as f64)),
            "{harmful} of {} harmful",
            set.len()
        );
        assert!(
            set.iter()
                .all(|e| ["dev", "holdout", "fresh", "fresh2"].contains(&e.split.as_str()))
        );
    }

    #[test]
    fn bad_sets_are_refused() {
        assert!(parse_set("text,label\nx,1\n").is_err());
        assert!(parse_set("text,label,category\nx,2,insult\n").is_err());
        assert!(parse_set("text,label,category\n").is_err());
    }

    #[test]
    fn the_threshold_counts_as_flagged() {
        let set = parse_set("text,label,category\na,1,x\nb,0,y\n").expect("set");
        let e = Evaluation::run(&set, 0.7, |t| if t == "a" { 0.7 } else { 0.69 });
        assert_eq!(
            e.overall(),
            Counts {
                tp: 1,
                fp: 0,
                tn: 1,
                fn_: 0
            }
        );
    }
}
