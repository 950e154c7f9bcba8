//! Times the local toxicity backend: scoring 100 typical Reddit comments, repeated, on whatever
//! cores the process is given (`taskset -c 0` for one core). Prints one JSON object.
//!
//! ```text
//! cargo run --release --example bench_toxicity -- [--runs N]
//! ```

use std::time::{Duration, Instant};

use account_scanner::scanner::toxicity::ToxicityScorer;
use account_scanner::scanner::toxicity::eval::{EMBEDDED_SET, parse_set};
use account_scanner::scanner::toxicity::local::{self, LocalScorer};

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
    let mut runs = 50usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--runs" => runs = args.next().and_then(|v| v.parse().ok()).unwrap_or(runs),
            _ => {
                eprintln!("usage: bench_toxicity [--runs N]");
                std::process::exit(2);
            }
        }
    }
    let texts = comments();
    let mean_len = texts.iter().map(String::len).sum::<usize>() / texts.len();

    let rss_start = rss_kib();
    let started = Instant::now();
    let scorer = LocalScorer::new();
    // First use, part by part: gunzip and parse the embedded model, rustrict's word lists, then
    // compiling the patterns.
    std::hint::black_box(local::LinearModel::embedded());
    let rss_model = rss_kib();
    std::hint::black_box(local::Wordlist::of("warm up"));
    let rss_rustrict = rss_kib();
    std::hint::black_box(local::analyze("warm up"));
    let load = started.elapsed();
    let rss_loaded = rss_kib();

    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let mut times: Vec<Duration> = Vec::with_capacity(runs);
    let mut flagged = 0;
    for _ in 0..runs {
        let t = Instant::now();
        let scores = rt.block_on(scorer.score(&texts)).expect("scored");
        times.push(t.elapsed());
        flagged = scores
            .iter()
            .filter(|s| match s {
                account_scanner::scanner::toxicity::TextScore::Scored(s) => s.toxicity >= 0.7,
                _ => false,
            })
            .count();
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    // The two parts alone, for the record.
    let t = Instant::now();
    for text in &texts {
        std::hint::black_box(local::LinearModel::embedded().probability(text));
    }
    let model_only = t.elapsed();
    let t = Instant::now();
    for text in &texts {
        std::hint::black_box(local::Wordlist::of(text));
    }
    let rustrict_only = t.elapsed();
    let rss_scored = rss_kib();
    let mib = |kib: u64| kib as f64 / 1024.0;
    println!(
        "{{\"rss_start_mib\": {:.1}, \"rss_model_mib\": {:.1}, \"rss_rustrict_mib\": {:.1}, \"rss_loaded_mib\": {:.1}, \"rss_scored_mib\": {:.1}, \"texts\": {}, \"mean_chars\": {mean_len}, \"runs\": {runs}, \"load_ms\": {:.2}, \"min_ms\": {:.2}, \"median_ms\": {:.2}, \"max_ms\": {:.2}, \"linear_model_ms\": {:.2}, \"rustrict_ms\": {:.2}, \"flagged\": {flagged}}}",
        mib(rss_start),
        mib(rss_model),
        mib(rss_rustrict),
        mib(rss_loaded),
        mib(rss_scored),
        texts.len(),
        ms(load),
        ms(times[0]),
        ms(times[times.len() / 2]),
        ms(times[times.len() - 1]),
        ms(model_only),
        ms(rustrict_only),
    );
}
