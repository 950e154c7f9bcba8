//! Runs the fake Reddit, the fake Perspective and the fake OpenAI moderation used by the tests,
//! for benchmarks and manual runs of the binary.
//!
//! ```text
//! cargo run --example fake_reddit -- [--user NAME] [--comments N] [--posts N] [--latency-ms MS]
//!     [--moderation-latency-ms MS] [--stats] [--stats-file PATH]
//! ```
//!
//! Prints the environment that points the binary at them (`REDDIT_*`, `PERSPECTIVE_*`,
//! `OPENAI_*` lines, `KEY=value`), then `ready`, and serves until killed. `--latency-ms` delays
//! every answer; `--moderation-latency-ms` overrides it for Perspective and OpenAI. With
//! `--stats`, prints request counts to stderr whenever they change; with `--stats-file`, keeps
//! them in that file (`reddit=N perspective=N openai=N`, rewritten every 100 ms).

#[path = "../tests/support/fake_openai.rs"]
mod fake_openai;
#[path = "../tests/support/fake_perspective.rs"]
mod fake_perspective;
#[path = "../tests/support/fake_reddit.rs"]
mod fake_reddit;
#[path = "../tests/support/fake_server.rs"]
mod fake_server;

use std::io::Write;
use std::time::Duration;

use fake_openai::{FakeOpenAi, FakeOpenAiConfig};
use fake_perspective::{FakePerspective, FakePerspectiveConfig};
use fake_reddit::{FakeAccount, FakeReddit, FakeRedditConfig};

const USAGE: &str = "usage: fake_reddit [--user NAME] [--comments N] [--posts N] [--latency-ms MS] [--moderation-latency-ms MS] [--stats] [--stats-file PATH]";

fn main() {
    let mut user = "alice".to_string();
    let (mut comments, mut posts, mut latency_ms, mut stats) = (50usize, 25usize, 0u64, false);
    let mut moderation_latency_ms: Option<u64> = None;
    let mut stats_file: Option<String> = None;
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |flag: &str| {
            it.next().unwrap_or_else(|| {
                eprintln!("fake_reddit: {flag} needs a value\n{USAGE}");
                std::process::exit(2)
            })
        };
        let number = |flag: &str, v: String| {
            v.parse::<u64>().unwrap_or_else(|_| {
                eprintln!("fake_reddit: bad {flag} {v:?}\n{USAGE}");
                std::process::exit(2)
            })
        };
        match arg.as_str() {
            "--user" => user = value("--user"),
            "--comments" => comments = number("--comments", value("--comments")) as usize,
            "--posts" => posts = number("--posts", value("--posts")) as usize,
            "--latency-ms" => latency_ms = number("--latency-ms", value("--latency-ms")),
            "--moderation-latency-ms" => {
                moderation_latency_ms = Some(number(
                    "--moderation-latency-ms",
                    value("--moderation-latency-ms"),
                ))
            }
            "--stats" => stats = true,
            "--stats-file" => stats_file = Some(value("--stats-file")),
            _ => {
                eprintln!("fake_reddit: unknown argument {arg:?}\n{USAGE}");
                std::process::exit(2);
            }
        }
    }
    let latency = Duration::from_millis(latency_ms);
    // Varied texts so the scores (and the summary) are not all alike.
    let text = |i: usize| match i % 10 {
        0 => format!("comment {i}: what an idiot"),
        3 => format!("comment {i}: damn, that hurt"),
        _ => format!("comment {i}: a perfectly friendly remark about the weather"),
    };
    let reddit = FakeReddit::start(FakeRedditConfig {
        accounts: vec![
            FakeAccount::new(&user)
                .with_comments(comments, text)
                .with_posts(posts, |i| format!("post {i}: here is my project")),
        ],
        latency,
        ..FakeRedditConfig::default()
    });
    let moderation = moderation_latency_ms.map_or(latency, Duration::from_millis);
    let perspective = FakePerspective::start(FakePerspectiveConfig {
        latency: moderation,
    });
    let openai = FakeOpenAi::start(FakeOpenAiConfig {
        latency: moderation,
    });

    let mut stdout = std::io::stdout();
    for (k, v) in reddit
        .env()
        .into_iter()
        .chain(perspective.env())
        .chain(openai.env())
    {
        let _ = writeln!(stdout, "{k}={v}");
    }
    let _ = writeln!(stdout, "ready");
    let _ = stdout.flush();

    let mut last = (usize::MAX, usize::MAX, usize::MAX);
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let now = (
            reddit.requests().len(),
            perspective.requests().len(),
            openai.requests().len(),
        );
        if now != last {
            if stats {
                eprintln!(
                    "reddit_requests={} perspective_requests={} openai_requests={}",
                    now.0, now.1, now.2
                );
            }
            if let Some(path) = &stats_file {
                let tmp = format!("{path}.tmp");
                let line = format!("reddit={} perspective={} openai={}\n", now.0, now.1, now.2);
                if std::fs::write(&tmp, line).is_ok() {
                    let _ = std::fs::rename(&tmp, path);
                }
            }
            last = now;
        }
    }
}
