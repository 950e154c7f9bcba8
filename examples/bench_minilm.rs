//! Times the all-MiniLM-L6-v2 embedding (src/toxicity/local/embedding.rs): load, 100
//! typical Reddit comments per run, peak RSS, and how many cores the inference really used
//! (process CPU time over wall time). Prints one JSON object; asserts nothing.
//!
//! ```text
//! RAYON_NUM_THREADS=1 cargo run --release --example bench_minilm -- DIR [--runs N] [--unpinned]
//! ```
//!
//! DIR holds model.safetensors (f32 or f16) and tokenizer.json, e.g. target/tmp/minilm/model
//! or target/tmp/minilm/model-f16 after `cargo test --test minilm_embeddings`. `--unpinned`
//! skips the sha256 check (needed for the f16 copy, whose hash is not pinned).

use std::path::PathBuf;
use std::time::Instant;

use account_scanner::toxicity::eval::{EMBEDDED_SET, parse_set};
use account_scanner::toxicity::local::embedding::{self, MiniLm, Pins};

/// The same 100 comments as examples/bench_toxicity.rs: the labelled set's texts lengthened with
/// everyday sentences to Reddit's typical length.
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

fn status_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// User + system CPU seconds of the whole process (all threads).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // USER_HZ is 100 on every Linux this runs on.
    (ticks(11) + ticks(12)) / 100.0
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut dir = None;
    let mut runs = 5usize;
    let mut pins = Pins::upstream();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--runs" => runs = args.next().and_then(|n| n.parse().ok()).expect("--runs N"),
            "--unpinned" => pins = Pins::unchecked(),
            _ => dir = Some(PathBuf::from(a)),
        }
    }
    let dir = dir.expect("usage: bench_minilm DIR [--runs N] [--unpinned]");
    let texts = comments();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let mean_chars = texts.iter().map(|t| t.chars().count()).sum::<usize>() / texts.len();

    let rss_before_kb = status_kb("VmRSS:");
    let t = Instant::now();
    let model = match MiniLm::load_with(&dir, &pins) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("bench_minilm: {e}");
            std::process::exit(1);
        }
    };
    let load_ms = t.elapsed().as_secs_f64() * 1e3;
    let hwm_after_load_kb = status_kb("VmHWM:");
    let rss_after_load_kb = status_kb("VmRSS:");

    // Warm-up (first allocation of the buffers), then the timed runs.
    model.embed(&refs).expect("embed");
    let (cpu0, wall0) = (cpu_seconds(), Instant::now());
    let mut per_run = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        let out = model.embed(&refs).expect("embed");
        per_run.push(t.elapsed().as_secs_f64() * 1e3);
        assert_eq!(out.len(), refs.len());
    }
    let wall = wall0.elapsed().as_secs_f64();
    let cores_used = (cpu_seconds() - cpu0) / wall;
    per_run.sort_by(f64::total_cmp);

    let info = model.info();
    println!(
        "{}",
        serde_json::json!({
            "dir": dir,
            "stored_dtype": format!("{:?}", info.stored_dtype),
            "model_sha256": info.model_sha256,
            "load_ms": load_ms,
            "texts": refs.len(),
            "mean_chars": mean_chars,
            "runs": runs,
            "ms_per_100_median": per_run[per_run.len() / 2],
            "ms_per_100_min": per_run[0],
            "gemm_threads": embedding::compute_threads(),
            "cores_used": cores_used,
            "threads_in_process": status_kb("Threads:"),
            "rss_before_load_kb": rss_before_kb,
            "rss_after_load_kb": rss_after_load_kb,
            "peak_rss_after_load_kb": hwm_after_load_kb,
            "peak_rss_end_kb": status_kb("VmHWM:"),
        })
    );
}
