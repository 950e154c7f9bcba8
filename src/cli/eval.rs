//! `account-scanner eval-toxicity [FILE]`: how well the local backend separates harmful from
//! harmless texts, at `TOXICITY_THRESHOLD` (or `--threshold`), on the labelled set shipped with
//! the binary (`tests/data/toxicity_eval.csv`) or on FILE (same columns).

use std::path::PathBuf;
use std::time::Instant;

use crate::cli::exit;
use crate::config::{Config, ConfigError};
use crate::scanner::toxicity::eval::{EMBEDDED_SET, Evaluation, parse_set};
use crate::scanner::toxicity::local;

#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// A CSV with columns text,label,category[,split]; default: the set built into the binary.
    file: Option<PathBuf>,
    /// Flag at or above this score instead of TOXICITY_THRESHOLD.
    #[arg(long)]
    threshold: Option<f64>,
    /// Also list every text the backend got wrong, with its score.
    #[arg(long)]
    errors: bool,
    /// Score with one part only, to compare: `model` (alt-profanity-check's linear model),
    /// `wordlist` (rustrict's severity), `max` (the higher of the two) or `combined` (the backend).
    #[arg(long, value_enum, default_value_t = Part::Combined)]
    part: Part,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Part {
    Model,
    Wordlist,
    Max,
    Combined,
}

pub fn run(args: EvalArgs, config: Result<Config, ConfigError>) -> u8 {
    let threshold = match args.threshold {
        Some(t) if (0.0..=1.0).contains(&t) => t,
        Some(t) => {
            eprintln!("error: --threshold {t} is not between 0 and 1");
            return exit::BAD_INPUT;
        }
        None => match config {
            Ok(c) => c.toxicity_threshold,
            Err(e) => {
                eprintln!("error: {e}");
                return exit::CONFIGURATION;
            }
        },
    };
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
    let _ = local::LinearModel::embedded();
    let started = Instant::now();
    let part = args.part;
    let evaluation = Evaluation::run(&set, threshold, |t| {
        let scores = local::score_text(t);
        let raw = |k: &str| scores.raw_categories.get(k).copied().unwrap_or(0.0);
        let wordlist = local::severity_score(
            [
                "rustrict_profane",
                "rustrict_offensive",
                "rustrict_sexual",
                "rustrict_mean",
            ]
            .iter()
            .map(|k| raw(k) as u8)
            .max()
            .unwrap_or(0),
        );
        match part {
            Part::Model => raw("alt_profanity_check"),
            Part::Wordlist => wordlist,
            Part::Max => raw("alt_profanity_check").max(wordlist),
            Part::Combined => scores.toxicity,
        }
    });
    let elapsed = started.elapsed();
    let what = match part {
        Part::Combined => format!("local backend ({}, heuristic)", local::MODEL),
        Part::Model => "alt-profanity-check's linear model alone".to_string(),
        Part::Wordlist => {
            "rustrict alone (severity mild 0.5, moderate 0.8, severe 0.95)".to_string()
        }
        Part::Max => "the higher of alt-profanity-check and rustrict".to_string(),
    };
    println!(
        "{what} on {name}: {} texts scored in {:.1} ms",
        set.len(),
        elapsed.as_secs_f64() * 1000.0
    );
    print!("{}", evaluation.render(args.errors));
    exit::DONE
}
