//! `account-scanner eval-toxicity [FILE]`: how well the local backend separates harmful from
//! harmless texts, at `TOXICITY_THRESHOLD` (or `--threshold`, else the backend's own), on the
//! labelled set shipped with the binary (`tests/data/toxicity_eval.csv`) or on FILE (same columns).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;

use crate::cli::exit;
use crate::config::{Config, ConfigError};
use crate::toxicity::eval::{EMBEDDED_SET, Evaluation, parse_set};
use crate::toxicity::local::learned::{Learned, ModelSource};
use crate::toxicity::local::{self, wordlist};

#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// A CSV with columns text,label,category[,split]; default: the set built into the binary.
    file: Option<PathBuf>,
    /// Flag at or above this score instead of TOXICITY_THRESHOLD (or the part's own threshold).
    #[arg(long)]
    threshold: Option<f64>,
    /// Also list every text the backend got wrong, with its score.
    #[arg(long)]
    errors: bool,
    /// Score with one part only, to compare: `model` (the fine-tuned MiniLM's toxicity head),
    /// `wordlist` (rustrict + alt-profanity-check + patterns, the backend before the model) or
    /// `combined` (the backend).
    #[arg(long, value_enum, default_value_t = Part::Combined)]
    part: Part,
    /// Also write every text's part scores to this CSV (text,label,category,split,model,wordlist,
    /// combined), for `scripts/toxicity/combine.py`.
    #[arg(long, value_name = "CSV")]
    scores_out: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Part {
    Model,
    Wordlist,
    Combined,
}

pub fn run(args: EvalArgs, config: Result<Config, ConfigError>) -> u8 {
    let config = match config {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::CONFIGURATION;
        }
    };
    if let Some(t) = args.threshold.filter(|t| !(0.0..=1.0).contains(t)) {
        eprintln!("error: --threshold {t} is not between 0 and 1");
        return exit::BAD_INPUT;
    }
    let (name, text) = match &args.file {
        Some(path) => match std::fs::read_to_string(path) {
            Ok(t) => (path.display().to_string(), t),
            Err(e) => {
                eprintln!("error: cannot read {}: {e}", path.display());
                return exit::BAD_INPUT;
            }
        },
        None => (
            "the built-in set (tests/data/toxicity_eval.csv)".to_string(),
            EMBEDDED_SET.to_string(),
        ),
    };
    let set = match parse_set(&text) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {name}: {e}");
            return exit::BAD_INPUT;
        }
    };
    let source = match &config.toxicity_model_dir {
        Some(dir) => ModelSource::Dir(dir.clone()),
        None => ModelSource::Embedded,
    };
    let started = Instant::now();
    let model = match Learned::load(&source) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: the toxicity model ({source}) could not be loaded: {e}");
            return exit::CONFIGURATION;
        }
    };
    let load_ms = started.elapsed().as_secs_f64() * 1000.0;
    let started = Instant::now();
    let texts: Vec<&str> = set.iter().map(|e| e.text.as_str()).collect();
    let parts = match local::parts(&model, &texts) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: scoring failed: {e}");
            return exit::SCAN_FAILED;
        }
    };
    let scored_ms = started.elapsed().as_secs_f64() * 1000.0;
    let rows: Vec<[f64; 3]> = parts
        .into_iter()
        .map(|p| {
            let model_p = p.model[0];
            let wordlist_p = p.wordlist.toxicity;
            [model_p, wordlist_p, local::combine(&model, p).toxicity]
        })
        .collect();
    if let Some(path) = &args.scores_out
        && let Err(e) = write_scores(path, &set, &rows)
    {
        eprintln!("error: {e:#}");
        return exit::BAD_INPUT;
    }
    let (column, own_threshold, what) = match args.part {
        Part::Model => (
            0,
            model.combination.threshold,
            format!("the model alone ({})", model.describe()),
        ),
        Part::Wordlist => (
            1,
            wordlist::THRESHOLD,
            format!("the word lists alone ({})", wordlist::MODEL),
        ),
        Part::Combined => (
            2,
            model.combination.threshold,
            format!("local backend ({} + word lists)", model.describe()),
        ),
    };
    let threshold = args
        .threshold
        .or(config.toxicity_threshold)
        .unwrap_or(own_threshold);
    let scores: Vec<f64> = rows.iter().map(|r| r[column]).collect();
    let evaluation = Evaluation::from_scores(&set, threshold, &scores);
    println!(
        "{what} on {name}: {} texts scored in {scored_ms:.1} ms (model loaded in {load_ms:.0} ms)",
        set.len(),
    );
    print!("{}", evaluation.render(args.errors));
    exit::DONE
}

fn write_scores(
    path: &std::path::Path,
    set: &[crate::toxicity::eval::Example],
    rows: &[[f64; 3]],
) -> anyhow::Result<()> {
    let mut w =
        csv::Writer::from_path(path).with_context(|| format!("cannot write {}", path.display()))?;
    w.write_record([
        "text", "label", "category", "split", "model", "wordlist", "combined",
    ])?;
    for (e, r) in set.iter().zip(rows) {
        w.write_record([
            e.text.as_str(),
            if e.harmful { "1" } else { "0" },
            e.category.as_str(),
            e.split.as_str(),
            &format!("{:.6}", r[0]),
            &format!("{:.6}", r[1]),
            &format!("{:.6}", r[2]),
        ])?;
    }
    w.flush()
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
