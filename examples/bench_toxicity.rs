//! Times the local toxicity backend: loading the built-in model, then scoring 100 typical Reddit
//! comments (encoder, heads and word lists), repeated, on whatever cores the process is given
//! (`RAYON_NUM_THREADS=1 taskset -c 0` for one core). Prints one JSON object.
//!
//! ```text
//! cargo run --release --example bench_toxicity -- [--runs N] [--model-dir DIR]
//!
//! `--model-dir` loads the model files from a directory (as `TOXICITY_MODEL_DIR` does), to time
//! another model beside the built-in one on the same machine.
//! ```

use std::time::{Duration, Instant};

use account_scanner::toxicity::eval::{EMBEDDED_SET, parse_set};
use account_scanner::toxicity::local::learned::{Learned, ModelSource};
use account_scanner::toxicity::local::{self, embedding, wordlist};

/// 100 comments of typical length: the labelled set's texts (short) lengthened with everyday
/// sentences to Reddit's typical 150-300 characters.
fn comments() -> Vec<String> {
    let set = parse_set(EMBEDDED_SET).expect("labelled set");
    let filler = [
        "Anyway, that's just my experience after a couple of years with it.",
        "I read the whole thread before posting and nobody mentioned this.",
        "Edit: fixed a typo, and thanks for the replies everyone.",
        "Not sure if this is the right sub for it but here goes.",
    ];
    (0..100)
        .map(|i| {
            let e = &set[(i * 7) % set.len()];
            format!("{} {} {}", e.text, filler[i % 4], filler[(i + 1) % 4])
        })
        .collect()
}

/// This process's resident set now (VmRSS), KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

fn main() {
    let mut runs = 20usize;
    let mut source = ModelSource::Embedded;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--runs" => runs = args.next().and_then(|v| v.parse().ok()).unwrap_or(runs),
            "--model-dir" => match args.next() {
                Some(dir) => source = ModelSource::Dir(dir.into()),
                None => {
                    eprintln!("--model-dir needs a directory");
                    std::process::exit(2);
                }
            },
            _ => {
                eprintln!("usage: bench_toxicity [--runs N] [--model-dir DIR]");
                std::process::exit(2);
            }
        }
    }
    let texts = comments();
    let mean_len = texts.iter().map(String::len).sum::<usize>() / texts.len();

    let rss_start = rss_kib();
    // First use as a scan pays it: read, hash and parse the encoder and heads (the word lists
    // and patterns are warmed up by the first score).
    let started = Instant::now();
    let model = Learned::load(&source).expect("the model loads");
    let load = started.elapsed();
    let rss_loaded = rss_kib();
    let t = Instant::now();
    std::hint::black_box(wordlist::analyze("warm up"));
    let wordlist_load = t.elapsed();
    let rss_wordlist = rss_kib();

    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let mut times: Vec<Duration> = Vec::with_capacity(runs);
    let mut flagged = 0;
    for _ in 0..runs {
        let t = Instant::now();
        let parts = local::parts(&model, &refs).expect("scored");
        flagged = parts
            .into_iter()
            .map(|p| local::combine(&model, p))
            .filter(|s| s.toxicity >= model.combination.threshold)
            .count();
        times.push(t.elapsed());
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    // The parts alone, for the record.
    let t = Instant::now();
    std::hint::black_box(model.encoder.embed(&refs).expect("embedded"));
    let encoder_only = t.elapsed();
    let t = Instant::now();
    for text in &texts {
        std::hint::black_box(wordlist::score_text(text));
    }
    let wordlist_only = t.elapsed();
    let rss_scored = rss_kib();
    let mib = |kib: u64| kib as f64 / 1024.0;
    println!(
        "{{\"rss_start_mib\": {:.1}, \"rss_loaded_mib\": {:.1}, \"rss_wordlist_mib\": {:.1}, \"rss_scored_mib\": {:.1}, \"texts\": {}, \"mean_chars\": {mean_len}, \"runs\": {runs}, \"threads\": {}, \"load_ms\": {:.2}, \"wordlist_load_ms\": {:.2}, \"min_ms\": {:.2}, \"median_ms\": {:.2}, \"max_ms\": {:.2}, \"encoder_ms\": {:.2}, \"wordlist_ms\": {:.2}, \"flagged\": {flagged}}}",
        mib(rss_start),
        mib(rss_loaded),
        mib(rss_wordlist),
        mib(rss_scored),
        texts.len(),
        embedding::compute_threads(),
        ms(load),
        ms(wordlist_load),
        ms(times[0]),
        ms(times[times.len() / 2]),
        ms(times[times.len() - 1]),
        ms(encoder_only),
        ms(wordlist_only),
    );
}
