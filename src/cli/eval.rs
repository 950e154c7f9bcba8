//! `account-scanner eval-toxicity [FILE]`: how well the local backend separates harmful from
//! harmless texts, at `TOXICITY_THRESHOLD` (or `--threshold`), on the labelled set shipped with
//! the binary (`tests/data/toxicity_eval.csv`) or on FILE (same columns).

use std::path::PathBuf;
use std::time::Instant;

use crate::cli::exit;
use crate::config::Config;
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
}

pub fn run(args: EvalArgs) -> u8 {
    let threshold = match args.threshold {
        Some(t) if (0.0..=1.0).contains(&t) => t,
        Some(t) => {
            eprintln!("error: --threshold {t} is not between 0 and 1");
            return exit::BAD_INPUT;
        }
        None => match Config::from_env() {
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
    let evaluation = Evaluation::run(&set, threshold, |t| local::score_text(t).toxicity);
    let elapsed = started.elapsed();
    println!(
        "local backend ({}, heuristic) on {name}: {} texts scored in {:.1} ms",
        local::MODEL,
        set.len(),
        elapsed.as_secs_f64() * 1000.0
    );
    print!("{}", evaluation.render(args.errors));
    exit::DONE
}
