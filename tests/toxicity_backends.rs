//! Every toxicity backend through the `ToxicityScorer` trait: the same behavioural cases run
//! against each (local directly, Perspective and OpenAI through their fakes on 127.0.0.1), so a new
//! backend is one more row in [`backends`]. Then what is particular to OpenAI (batching, order,
//! 429s, a short answer, a refused key) through the Reddit half, and the local scorer's figures
//! on the labelled set as a regression guard.

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use account_scanner::config::{Config, ToxicityBackend};
use account_scanner::model::ScanReport;
use account_scanner::model::SectionStatus;
use account_scanner::model::{EventSink, ScanMode, Username};
use account_scanner::model::{Scores, TextScore};
use account_scanner::net::Limits;
use account_scanner::scanner::Scanner;
use account_scanner::toxicity::eval::{EMBEDDED_SET, Evaluation, parse_set};
use account_scanner::toxicity::local::wordlist;
use account_scanner::toxicity::{self, ToxicityScorer, local};
use support::fake_openai::{self, FakeOpenAi, FakeOpenAiConfig};
use support::fake_perspective::{FakePerspective, FakePerspectiveConfig};
use support::fake_reddit::{FakeAccount, FakeReddit, FakeRedditConfig};
use tokio_util::sync::CancellationToken;

fn config_from(pairs: Vec<(&str, String)>) -> Config {
    let map: HashMap<String, String> = pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    Config::from_map(&map).expect("valid test configuration")
}

/// A backend chosen by `TOXICITY_BACKEND=auto` from the keys set, and the fakes behind it.
struct Fixture {
    scorer: Arc<dyn ToxicityScorer>,
    backend: ToxicityBackend,
    requests: Box<dyn Fn() -> usize>,
    assert_no_unexpected: Box<dyn Fn()>,
}

struct Row {
    name: &'static str,
    heuristic: bool,
    start: fn() -> Fixture,
}

fn fixture(
    pairs: Vec<(&str, String)>,
    requests: Box<dyn Fn() -> usize>,
    check: Box<dyn Fn()>,
) -> Fixture {
    let config = config_from(pairs);
    let http = account_scanner::net::http_client(Duration::from_secs(10)).expect("http client");
    let scorer = toxicity::from_config(&config, Some(&http), &Limits::from_config(&config));
    Fixture {
        scorer,
        backend: config.toxicity_backend,
        requests,
        assert_no_unexpected: check,
    }
}

/// One row per backend: a new backend is one more row.
fn backends() -> Vec<Row> {
    vec![
        Row {
            name: "local",
            heuristic: true,
            start: || fixture(Vec::new(), Box::new(|| 0), Box::new(|| {})),
        },
        Row {
            name: "perspective",
            heuristic: false,
            start: || {
                let fake = Arc::new(FakePerspective::start(FakePerspectiveConfig::default()));
                let mut env = fake.env();
                env.push(("PERSPECTIVE_QPS", "1000".into()));
                let (a, b) = (fake.clone(), fake.clone());
                fixture(
                    env,
                    Box::new(move || a.requests().len()),
                    Box::new(move || b.assert_no_unexpected()),
                )
            },
        },
        Row {
            name: "openai",
            heuristic: false,
            start: || {
                let fake = Arc::new(FakeOpenAi::start(FakeOpenAiConfig::default()));
                let mut env = fake.env();
                env.push(("OPENAI_RATE_PER_MIN", "60000".into()));
                let (a, b) = (fake.clone(), fake.clone());
                fixture(
                    env,
                    Box::new(move || a.requests().len()),
                    Box::new(move || b.assert_no_unexpected()),
                )
            },
        },
    ]
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// At or above the default threshold (0.7), with this category at or above it too.
    Toxic(&'static str),
    /// Below 0.3.
    Clean,
}

/// The behavioural cases every backend must meet.
const CASES: [(&str, Expect); 6] = [
    ("you are an idiot", Expect::Toxic("insult")),
    ("what a lovely day for a picnic", Expect::Clean),
    ("I will kill you", Expect::Toxic("threat")),
    ("thanks for the help, it worked", Expect::Clean),
    ("you absolute idiot, nobody asked", Expect::Toxic("insult")),
    ("the library opens at nine tomorrow", Expect::Clean),
];

fn scores(result: &TextScore) -> &Scores {
    match result {
        TextScore::Scored(s) => s,
        TextScore::Unscored { reason } => panic!("unscored: {reason}"),
    }
}

#[tokio::test]
async fn every_backend_meets_the_same_cases_in_order() {
    for row in backends() {
        let fx = (row.start)();
        assert_eq!(fx.backend.as_str(), row.name, "auto picked {}", row.name);
        let info = fx.scorer.info();
        assert_eq!(info.name, row.name);
        assert_eq!(info.heuristic, row.heuristic, "{}", row.name);
        assert!(info.configured && !info.model.is_empty(), "{}", row.name);

        // One call with every case: results come back one per text, in order.
        let texts: Vec<String> = CASES.iter().map(|(t, _)| t.to_string()).collect();
        let batch = fx.scorer.score(&texts).await.expect("scored");
        assert_eq!(batch.len(), texts.len(), "{}", row.name);
        for ((text, expect), result) in CASES.iter().zip(&batch) {
            let s = scores(result);
            assert!(
                (0.0..=1.0).contains(&s.toxicity),
                "{}: {text}: {}",
                row.name,
                s.toxicity
            );
            assert_eq!(
                s.categories.get("toxicity"),
                Some(&s.toxicity),
                "{}",
                row.name
            );
            assert!(!s.truncated);
            match expect {
                Expect::Toxic(category) => {
                    assert!(
                        s.toxicity >= 0.7,
                        "{}: {text:?} scored {}",
                        row.name,
                        s.toxicity
                    );
                    let c = s.categories.get(*category).copied().unwrap_or(0.0);
                    assert!(c >= 0.7, "{}: {text:?} {category} {c}", row.name);
                }
                Expect::Clean => assert!(
                    s.toxicity < 0.3,
                    "{}: {text:?} scored {}",
                    row.name,
                    s.toxicity
                ),
            }
        }
        // Each text alone gets the score it got inside the batch: nothing was shifted.
        for (text, in_batch) in texts.iter().zip(&batch) {
            let alone = fx
                .scorer
                .score(std::slice::from_ref(text))
                .await
                .expect("scored");
            assert_eq!(
                scores(&alone[0]).toxicity,
                scores(in_batch).toxicity,
                "{}: {text}",
                row.name
            );
        }
        (fx.assert_no_unexpected)();
    }
}

#[tokio::test]
async fn every_backend_scores_the_first_20_kb_of_a_long_text() {
    for row in backends() {
        let fx = (row.start)();
        let long = "la ".repeat(8000);
        let result = fx.scorer.score(&[long]).await.expect("scored");
        let s = scores(&result[0]);
        assert!(s.truncated, "{}", row.name);
        (fx.assert_no_unexpected)();
    }
}

#[tokio::test]
async fn only_the_hosted_backends_make_requests() {
    for row in backends() {
        let fx = (row.start)();
        let texts = vec!["hello there".to_string(), "you idiot".to_string()];
        fx.scorer.score(&texts).await.expect("scored");
        let n = (fx.requests)();
        match row.name {
            "local" => assert_eq!(n, 0),
            "perspective" => assert_eq!(n, 2, "one text per request"),
            _ => assert_eq!(n, 1, "{}: one batch", row.name),
        }
    }
}

// --- OpenAI through the Reddit half --------------------------------------------------------

fn reddit_with(comments: usize, text: impl Fn(usize) -> String) -> FakeReddit {
    FakeReddit::start(FakeRedditConfig {
        accounts: vec![FakeAccount::new("alice").with_comments(comments, text)],
        ..FakeRedditConfig::default()
    })
}

fn openai_config(reddit: &FakeReddit, openai: &FakeOpenAi, extra: &[(&str, &str)]) -> Config {
    let mut pairs: Vec<(&str, String)> = reddit.env().into_iter().chain(openai.env()).collect();
    pairs.push(("REDDIT_RATE_PER_MIN", "60000".into()));
    pairs.push(("REDDIT_MAX_COMMENTS", "1000".into()));
    pairs.push(("OPENAI_RATE_PER_MIN", "60000".into()));
    pairs.push(("HTTP_TIMEOUT", "10".into()));
    for (k, v) in extra {
        pairs.push((k, v.to_string()));
    }
    config_from(pairs)
}

async fn scan(scanner: &Scanner) -> ScanReport {
    let request = scanner.request(Username::parse("alice").expect("name"), ScanMode::Reddit);
    scanner
        .scan(request, EventSink::none(), CancellationToken::new())
        .await
}

/// Each comment carries its own exact score, so a shifted result would show.
fn numbered(i: usize) -> String {
    format!("comment {i} [tox={}]", own_score(i))
}

/// Above the fake's background scores (at most 0.011), so it is the headline.
fn own_score(i: usize) -> f64 {
    format!("{:.3}", 0.1 + (i as f64) / 1000.0)
        .parse()
        .expect("number")
}

#[tokio::test]
async fn openai_batches_100_texts_into_4_requests_and_keeps_their_order() {
    let reddit = reddit_with(100, numbered);
    let openai = FakeOpenAi::start(FakeOpenAiConfig::default());
    let scanner = Scanner::new(openai_config(&reddit, &openai, &[]), None);
    let report = scan(&scanner).await;
    let r = &report.reddit;
    assert_eq!(r.status, SectionStatus::Completed, "{:?}", r.error);
    let batches = openai.batches();
    let mut sizes: Vec<usize> = batches.iter().map(Vec::len).collect();
    sizes.sort_unstable();
    assert_eq!(sizes, [4, 32, 32, 32], "100 texts at batch size 32");
    assert_eq!(openai.requests().len(), 4);
    for (i, c) in r.comments.iter().enumerate() {
        let expected = own_score(i);
        assert_eq!(c.toxicity.toxicity, Some(expected), "comment {i}");
        assert_eq!(
            c.toxicity.raw_categories.get("harassment"),
            Some(&expected),
            "raw scores kept"
        );
        assert_eq!(c.toxicity.raw_categories.len(), 13);
    }
    let scoring = r.scoring.as_ref().expect("scoring");
    assert_eq!(scoring.backend, "openai");
    assert_eq!(scoring.model, "OpenAI moderation omni-moderation-latest");
    assert!(!scoring.heuristic && scoring.configured);
    for req in openai.requests() {
        assert_eq!(
            req.header("authorization"),
            Some(format!("Bearer {}", fake_openai::API_KEY).as_str())
        );
        let body: serde_json::Value = serde_json::from_str(&req.body).expect("json");
        assert_eq!(body["model"], fake_openai::MODEL);
    }
    // The JSON report keeps OpenAI's own names next to the common scale.
    let json = String::from_utf8(report.to_json()).expect("utf-8");
    assert!(json.contains("\"raw_categories\""), "{json}");
    assert!(json.contains("\"harassment/threatening\""));
    openai.assert_no_unexpected();
    reddit.assert_no_unexpected();
}

#[tokio::test]
async fn openai_batch_size_is_configurable_and_requests_are_paced() {
    let reddit = reddit_with(20, numbered);
    let openai = FakeOpenAi::start(FakeOpenAiConfig::default());
    let scanner = Scanner::new(
        openai_config(
            &reddit,
            &openai,
            &[("OPENAI_BATCH_SIZE", "5"), ("OPENAI_RATE_PER_MIN", "300")],
        ),
        None,
    );
    let report = scan(&scanner).await;
    assert_eq!(report.reddit.summary.as_ref().map(|s| s.scored), Some(20));
    let times: Vec<Instant> = openai.requests().iter().map(|r| r.when).collect();
    assert_eq!(times.len(), 4, "20 texts at batch size 5");
    let span = times
        .iter()
        .max()
        .expect("max")
        .duration_since(*times.iter().min().expect("min"));
    assert!(
        span >= Duration::from_millis(590),
        "4 requests at 300/min are 200 ms apart: {span:?}"
    );
}

#[tokio::test]
async fn openai_429s_are_retried_with_and_without_retry_after() {
    let reddit = reddit_with(10, numbered);
    let openai = FakeOpenAi::start(FakeOpenAiConfig::default());
    openai.rate_limit_next(Some(1));
    openai.rate_limit_next(None);
    let scanner = Scanner::new(openai_config(&reddit, &openai, &[]), None);
    let report = scan(&scanner).await;
    let r = &report.reddit;
    assert!(
        r.comments.iter().all(|c| c.toxicity.toxicity.is_some()),
        "{:?}",
        r.scoring
    );
    let reqs = openai.requests();
    let statuses: Vec<u16> = reqs.iter().map(|q| q.status).collect();
    assert_eq!(statuses, [429, 429, 200]);
    assert_eq!(reqs[1].body, reqs[0].body, "the same batch again");
    assert!(
        reqs[1].when.duration_since(reqs[0].when) >= Duration::from_millis(990),
        "Retry-After: 1 is waited out"
    );
    assert!(
        reqs[2].when.duration_since(reqs[1].when) >= Duration::from_millis(450),
        "no Retry-After: exponential backoff"
    );
    openai.assert_no_unexpected();
}

#[tokio::test]
async fn a_short_answer_leaves_that_batch_unscored_with_the_reason() {
    let reddit = reddit_with(40, numbered);
    let openai = FakeOpenAi::start(FakeOpenAiConfig::default());
    openai.drop_a_result_next();
    let scanner = Scanner::new(
        openai_config(&reddit, &openai, &[("OPENAI_BATCH_SIZE", "20")]),
        None,
    );
    let report = scan(&scanner).await;
    let r = &report.reddit;
    let unscored: Vec<&str> = r
        .comments
        .iter()
        .filter_map(|c| c.toxicity.unscored_reason.as_deref())
        .collect();
    assert_eq!(unscored.len(), 20, "one batch of 20");
    assert!(
        unscored
            .iter()
            .all(|u| *u == "OpenAI returned 19 results for 20 texts"),
        "{unscored:?}"
    );
    assert_eq!(r.summary.as_ref().map(|s| s.scored), Some(20));
    assert!(
        r.scoring.as_ref().is_some_and(|s| s.error.is_none()),
        "the scan went on"
    );
}

#[tokio::test]
async fn a_refused_openai_key_stops_scoring_without_showing_the_key() {
    let reddit = reddit_with(3, numbered);
    let openai = FakeOpenAi::start(FakeOpenAiConfig::default());
    let wrong = "sk-wrong-key-must-not-leak";
    let scanner = Scanner::new(
        openai_config(&reddit, &openai, &[("OPENAI_API_KEY", wrong)]),
        None,
    );
    let report = scan(&scanner).await;
    let error = report.reddit.scoring.as_ref().and_then(|s| s.error.clone());
    assert_eq!(
        error.as_deref(),
        Some(
            "OpenAI refused the API key (401 Unauthorized): Incorrect API key provided: sk-***. You can find your API key at https://platform.openai.com/account/api-keys."
        )
    );
    assert!(!String::from_utf8_lossy(&report.to_json()).contains(wrong));
    assert_eq!(openai.requests().len(), 1, "a 401 is not retried");
}

#[tokio::test]
async fn a_failing_openai_gives_up_after_bounded_retries() {
    let reddit = reddit_with(3, numbered);
    let openai = FakeOpenAi::start(FakeOpenAiConfig::default());
    openai.fail_always(Some(503));
    let scanner = Scanner::new(openai_config(&reddit, &openai, &[]), None);
    let report = scan(&scanner).await;
    assert_eq!(report.reddit.status, SectionStatus::Completed);
    assert_eq!(
        report
            .reddit
            .scoring
            .as_ref()
            .and_then(|s| s.error.as_deref()),
        Some("OpenAI answered 503 Service Unavailable after 4 attempts")
    );
    assert_eq!(openai.requests().len(), 4);
}

// --- The local scorer on the labelled set ---------------------------------------------------

/// The figures docs/toxicity.md reports (`account-scanner eval-toxicity`), as floors: a change to the
/// local scorer may raise them, never lower them. `fresh2` was written after tuning stopped.
#[test]
fn the_local_scorers_figures_on_the_labelled_set_do_not_regress() {
    let set = parse_set(EMBEDDED_SET).expect("the labelled set");
    let e = Evaluation::run(&set, 0.7, |t| wordlist::score_text(t).toxicity);
    let floors = [
        // (split, precision, recall, F1)
        ("dev", 0.975, 0.975, 0.975),
        ("holdout", 0.960, 0.923, 0.941),
        ("fresh", 1.0, 1.0, 1.0),
        ("fresh2", 0.888, 0.250, 0.390),
    ];
    for (split, p, r, f1) in floors {
        let c = e.split(split);
        assert!(c.total() > 0, "{split} is empty");
        assert!(
            c.precision() >= p && c.recall() >= r && c.f1() >= f1,
            "{split}: precision {:.3} recall {:.3} F1 {:.3}, below {p} / {r} / {f1}\n{}",
            c.precision(),
            c.recall(),
            c.f1(),
            e.render(true)
        );
    }
    let all = e.overall();
    assert!(
        all.f1() >= 0.899 && all.precision() >= 0.972 && all.recall() >= 0.836,
        "{}",
        e.render(true)
    );
}

/// The local backend as it ships (the fine-tuned encoder, its heads and the combination chosen on
/// dev) on every labelled split, at its default threshold: the figures docs/toxicity.md reports, as
/// floors. `data/toxicity/test3.csv` was written after this model was frozen (`test2.csv` and
/// `test.csv` after earlier ones); `fresh2` before any model existed.
#[test]
fn the_local_models_figures_on_every_split_do_not_regress() {
    use account_scanner::toxicity::local::learned::{Learned, ModelSource};
    let model = Learned::load(&ModelSource::Embedded).expect("the built-in model");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let read = |p: &str| std::fs::read_to_string(root.join(p)).expect("labelled file");
    let sets = [
        ("built-in", EMBEDDED_SET.to_string()),
        ("dev.csv", read("data/toxicity/dev.csv")),
        ("test.csv", read("data/toxicity/test.csv")),
        ("test2.csv", read("data/toxicity/test2.csv")),
        ("test3.csv", read("data/toxicity/test3.csv")),
    ];
    let floors = [
        // (set, split, precision, recall, F1, max FPR, AUC)
        ("built-in", "dev", 0.949, 0.937, 0.943, 0.052, 0.985),
        ("built-in", "holdout", 0.928, 0.999, 0.962, 0.088, 0.945),
        ("built-in", "fresh", 0.968, 0.968, 0.968, 0.034, 0.979),
        ("built-in", "fresh2", 0.938, 0.968, 0.953, 0.068, 0.965),
        ("dev.csv", "dev", 0.930, 0.870, 0.899, 0.056, 0.967),
        ("test.csv", "dev", 0.908, 0.884, 0.896, 0.075, 0.961),
        ("test2.csv", "dev", 0.921, 0.889, 0.905, 0.063, 0.969),
        ("test3.csv", "dev", 0.884, 0.862, 0.873, 0.097, 0.956),
    ];
    for (name, text) in sets {
        let set = parse_set(&text).expect("labelled set");
        let texts: Vec<&str> = set.iter().map(|e| e.text.as_str()).collect();
        let scores: Vec<f64> = local::parts(&model, &texts)
            .expect("scored")
            .into_iter()
            .map(|p| local::combine(&model, p).toxicity)
            .collect();
        let e = Evaluation::from_scores(&set, model.combination.threshold, &scores);
        for (_, split, p, r, f1, fpr, auc) in floors.iter().filter(|f| f.0 == name) {
            let c = e.split(split);
            let a = e.auc(|x| x.split == *split).expect("both classes");
            assert!(
                c.precision() >= *p
                    && c.recall() >= *r
                    && c.f1() >= *f1
                    && c.fpr() <= *fpr
                    && a >= *auc,
                "{name}/{split}: P {:.3} R {:.3} F1 {:.3} FPR {:.3} AUC {a:.3}, floors {p} / {r} / {f1} / {fpr} / {auc}\n{}",
                c.precision(),
                c.recall(),
                c.f1(),
                c.fpr(),
                e.render(true)
            );
        }
    }
}
