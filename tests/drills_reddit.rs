//! Fault drills for the Reddit half, through the real binary in mode `all`: the fake Reddit
//! misbehaves (429 storms with and without `Retry-After`, answers that hang past HTTP_TIMEOUT,
//! malformed JSON, HTML error pages, a 100 MB answer (cut off at the 8 MiB body cap), a token endpoint that is down or unreachable) while the real
//! Sherlock scans the fake sites. Each drill asserts what the user reads (exit code, summary) and
//! what is on disk (the JSON report: Reddit failed with the reason, Sherlock completed, and the
//! report files complete with no temp file left).
//!
//! The plain 500 storm is `reddit_cli::a_permanent_reddit_failure_still_returns_the_sherlock_half`.

mod support;

use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use serde_json::Value;
use support::fake_reddit::{FakeAccount, FakeReddit, FakeRedditConfig, Fault, HTML_TITLE};
use support::fake_sites::FakeSitesConfig;

struct Fixture {
    reddit: FakeReddit,
    work: support::SitesWorkdir,
}

impl Fixture {
    /// `alice` with 150 comments (two pages) and 3 posts; the fake sites know her too.
    fn new() -> Fixture {
        let reddit = FakeReddit::start(FakeRedditConfig {
            accounts: vec![
                FakeAccount::new("alice")
                    .with_comments(150, |i| format!("a perfectly nice comment, number {i}"))
                    .with_posts(3, |i| format!("a post body {i}")),
            ],
            ..FakeRedditConfig::default()
        });
        Fixture {
            reddit,
            work: support::SitesWorkdir::new(FakeSitesConfig::default()),
        }
    }

    fn scans(&self) -> PathBuf {
        self.work.scans()
    }

    fn scan(&self, mode: &str, env: &[(&str, String)]) -> Output {
        let mut cmd = self.work.command();
        cmd.env("SHERLOCK_SITE_TIMEOUT", "1")
            .env("SHERLOCK_CONTROL_CHECK", "false")
            .env("REDDIT_RATE_PER_MIN", "60000")
            .env("REDDIT_MAX_COMMENTS", "150")
            .env("TOXICITY_BACKEND", "local");
        for (k, v) in self.reddit.env() {
            cmd.env(k, v);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.args(["scan", "alice", "--mode", mode])
            .output()
            .expect("run account-scanner")
    }

    /// The JSON report on disk, after checking the files are whole and no temp file is left.
    fn report_on_disk(&self, expect_reddit_csv: bool) -> Value {
        support::assert_no_temp_files(&self.scans());
        let files = support::files_in(&self.scans());
        let expected = 2 + usize::from(expect_reddit_csv);
        assert_eq!(files.len(), expected, "{files:?}");
        assert!(
            files.iter().any(|f| f.ends_with("_sherlock.csv")),
            "{files:?}"
        );
        assert_eq!(
            files.iter().any(|f| f.ends_with("_reddit.csv")),
            expect_reddit_csv,
            "{files:?}"
        );
        let json = files.iter().find(|f| f.ends_with(".json")).expect("json");
        serde_json::from_slice(&std::fs::read(self.scans().join(json)).expect("read"))
            .expect("the report on disk is whole JSON")
    }
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// What every drill in mode `all` expects: exit 1 (a failed half is a failed scan), the
/// Sherlock half complete with its hits, the Reddit half failed with `error`, on screen and on
/// disk.
fn assert_reddit_failed_sherlock_done(fx: &Fixture, out: &Output, error: &str) -> Value {
    let (stdout, stderr) = text(out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("Found on 3 site(s):"), "{stdout}");
    assert!(
        stdout.contains("7 of 7 sites checked · completed"),
        "{stdout}"
    );
    assert!(stdout.contains(&format!("  error: {error}")), "{stdout}");
    assert!(stdout.contains("Files:"), "{stdout}");
    let report = fx.report_on_disk(true);
    assert_eq!(report["sherlock"]["status"], "completed");
    assert_eq!(report["sherlock"]["sites_checked"], 7);
    assert_eq!(report["reddit"]["status"], "failed");
    assert_eq!(report["reddit"]["error"], error);
    assert_eq!(report["partial"], false);
    report
}

/// Gaps between consecutive requests.
fn gaps(times: &[std::time::Instant]) -> Vec<Duration> {
    times.windows(2).map(|w| w[1] - w[0]).collect()
}

#[test]
fn a_429_storm_without_retry_after_backs_off_then_gives_up() {
    let fx = Fixture::new();
    fx.reddit.fault_api(0, Some(Fault::Status(429, None)));
    let out = fx.scan("all", &[]);
    let report = assert_reddit_failed_sherlock_done(
        &fx,
        &out,
        "Reddit answered 429 Too Many Requests after 4 attempts",
    );
    assert!(
        report["reddit"]["comments"]
            .as_array()
            .expect("list")
            .is_empty()
    );
    let times: Vec<_> = fx.reddit.api_requests().iter().map(|r| r.when).collect();
    assert_eq!(times.len(), 4, "bounded retries");
    // Exponential backoff with equal jitter: at least half of 0.5 s, 1 s, 2 s.
    let g = gaps(&times);
    for (gap, floor_ms) in g.iter().zip([250, 500, 1000]) {
        assert!(
            *gap >= Duration::from_millis(floor_ms),
            "backoff too short: {g:?}"
        );
    }
}

#[test]
fn a_429_storm_with_retry_after_waits_as_told_then_gives_up() {
    let fx = Fixture::new();
    fx.reddit.fault_api(0, Some(Fault::Status(429, Some(2))));
    let out = fx.scan("all", &[]);
    assert_reddit_failed_sherlock_done(
        &fx,
        &out,
        "Reddit answered 429 Too Many Requests after 4 attempts",
    );
    let times: Vec<_> = fx.reddit.api_requests().iter().map(|r| r.when).collect();
    assert_eq!(times.len(), 4, "bounded retries");
    let g = gaps(&times);
    assert!(
        g.iter().all(|gap| *gap >= Duration::from_secs(2)),
        "Retry-After: 2 was not waited out: {g:?}"
    );
}

#[test]
fn a_retry_after_longer_than_the_deadline_ends_in_a_partial_report_on_time() {
    let fx = Fixture::new();
    fx.reddit.fault_api(1, Some(Fault::Status(429, Some(3600))));
    let out = fx.scan("reddit", &[("SCAN_TIMEOUT", "3".into())]);
    let (stdout, stderr) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "a deadline is not a failure\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("PARTIAL RESULTS: the scan reached its 3s deadline (SCAN_TIMEOUT)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Reddit · alice: found · partial"),
        "{stdout}"
    );
    assert_eq!(
        fx.reddit.api_requests().len(),
        2,
        "about, then one 429: nothing is sent during the pause"
    );
    let files = support::files_in(&fx.scans());
    assert_eq!(files.len(), 2, "json and reddit csv: {files:?}");
    let json = files.iter().find(|f| f.ends_with(".json")).expect("json");
    let report: Value =
        serde_json::from_slice(&std::fs::read(fx.scans().join(json)).expect("read")).expect("json");
    assert_eq!(report["partial"], true);
    assert_eq!(report["reddit"]["status"], "partial");
    assert_eq!(report["reddit"]["account"]["status"], "found");
}

#[test]
fn answers_hanging_past_the_http_timeout_are_abandoned_and_retried_a_bounded_number_of_times() {
    let fx = Fixture::new();
    fx.reddit
        .fault_api(0, Some(Fault::Hang(Duration::from_secs(60))));
    let out = fx.scan("all", &[("HTTP_TIMEOUT", "1".into())]);
    assert_reddit_failed_sherlock_done(
        &fx,
        &out,
        "Reddit could not be reached after 4 attempts: the request timed out",
    );
    assert!(
        fx.reddit.api_requests().is_empty(),
        "no hung request was ever answered"
    );
}

#[test]
fn malformed_json_is_named_and_not_retried() {
    let fx = Fixture::new();
    fx.reddit.fault_api(0, Some(Fault::Malformed));
    let out = fx.scan("all", &[]);
    let report = assert_reddit_failed_sherlock_done(
        &fx,
        &out,
        "Reddit's answer to the about request could not be read: it is not the JSON expected: EOF while parsing a string at line 1 column 77",
    );
    assert!(report["reddit"]["account"].is_null());
    assert_eq!(
        fx.reddit.api_requests().len(),
        1,
        "a 200 that does not parse is not retried"
    );
}

#[test]
fn a_listing_that_breaks_halfway_keeps_the_page_already_fetched_and_scored() {
    let fx = Fixture::new();
    // about, comments page 1 answer; comments page 2 is cut off.
    fx.reddit.fault_api(2, Some(Fault::Malformed));
    let out = fx.scan("all", &[]);
    let report = assert_reddit_failed_sherlock_done(
        &fx,
        &out,
        "Reddit's answer to the comments request could not be read: it is not the JSON expected: EOF while parsing a string at line 1 column 77",
    );
    let (stdout, _) = text(&out);
    assert!(
        stdout.contains("Reddit · alice: found · failed"),
        "{stdout}"
    );
    assert!(
        stdout.contains("100 comments, 0 posts · 100 scored, 0 unscored"),
        "{stdout}"
    );
    assert_eq!(report["reddit"]["account"]["status"], "found");
    let comments = report["reddit"]["comments"].as_array().expect("comments");
    assert_eq!(comments.len(), 100, "the first page is kept");
    assert!(
        comments
            .iter()
            .all(|c| c["toxicity"]["toxicity"].as_f64().is_some()),
        "and scored"
    );
    assert_eq!(fx.reddit.api_requests().len(), 3);
}

#[test]
fn a_100_mb_listing_is_cut_off_at_the_cap_and_the_page_already_fetched_kept() {
    let fx = Fixture::new();
    // about and comments page 1 answer; page 2 is 100 MB (valid JSON if read to its end),
    // streamed by the fake, never held whole by either side.
    fx.reddit.fault_api(2, Some(Fault::Huge(100 * 1024 * 1024)));
    let out = fx.scan("all", &[]);
    let report = assert_reddit_failed_sherlock_done(
        &fx,
        &out,
        "Reddit's answer to the comments request could not be read: it is larger than 8 MiB, the most account-scanner reads of one answer",
    );
    let (stdout, _) = text(&out);
    assert!(
        stdout.contains("100 comments, 0 posts · 100 scored, 0 unscored"),
        "{stdout}"
    );
    let comments = report["reddit"]["comments"].as_array().expect("comments");
    assert_eq!(comments.len(), 100, "the first page is kept");
    assert_eq!(fx.reddit.api_requests().len(), 3, "not retried");
}

#[test]
fn an_html_error_page_with_200_is_named_as_such() {
    let fx = Fixture::new();
    fx.reddit.fault_api(0, Some(Fault::Html(200)));
    let out = fx.scan("all", &[]);
    assert_reddit_failed_sherlock_done(
        &fx,
        &out,
        &format!(
            "Reddit's answer to the about request could not be read: it is an HTML page, not JSON (title: \"{HTML_TITLE}\")"
        ),
    );
    assert_eq!(fx.reddit.api_requests().len(), 1);
}

#[test]
fn an_html_503_page_is_retried_then_reported_by_status() {
    let fx = Fixture::new();
    fx.reddit.fault_api(0, Some(Fault::Html(503)));
    let out = fx.scan("all", &[]);
    assert_reddit_failed_sherlock_done(
        &fx,
        &out,
        "Reddit answered 503 Service Unavailable after 4 attempts",
    );
    assert_eq!(fx.reddit.api_requests().len(), 4, "bounded retries");
}

#[test]
fn a_token_endpoint_that_is_down_is_named_and_the_api_never_called() {
    let fx = Fixture::new();
    fx.reddit.fault_token(Some(Fault::Status(503, None)));
    let out = fx.scan("all", &[]);
    assert_reddit_failed_sherlock_done(
        &fx,
        &out,
        "no Reddit token (REDDIT_AUTH_BASE): Reddit answered 503 Service Unavailable after 4 attempts",
    );
    assert_eq!(fx.reddit.token_requests().len(), 4, "bounded retries");
    assert!(fx.reddit.api_requests().is_empty());
}

#[test]
fn a_token_endpoint_that_hangs_is_abandoned_after_bounded_retries() {
    let fx = Fixture::new();
    fx.reddit
        .fault_token(Some(Fault::Hang(Duration::from_secs(60))));
    let out = fx.scan("all", &[("HTTP_TIMEOUT", "1".into())]);
    assert_reddit_failed_sherlock_done(
        &fx,
        &out,
        "no Reddit token (REDDIT_AUTH_BASE): Reddit could not be reached after 4 attempts: the request timed out",
    );
    assert!(fx.reddit.api_requests().is_empty());
}

#[test]
fn a_token_endpoint_answering_html_is_named() {
    let fx = Fixture::new();
    fx.reddit.fault_token(Some(Fault::Html(200)));
    let out = fx.scan("all", &[]);
    assert_reddit_failed_sherlock_done(
        &fx,
        &out,
        &format!(
            "Reddit's answer to the token request could not be read: it is an HTML page, not JSON (title: \"{HTML_TITLE}\")"
        ),
    );
    assert!(fx.reddit.api_requests().is_empty());
}

#[test]
fn an_unreachable_token_endpoint_is_named() {
    let fx = Fixture::new();
    // Nothing listens on the fake sites' dead port.
    let dead = format!("http://127.0.0.1:{}", fx.work.sites.dead_port());
    let out = fx.scan("all", &[("REDDIT_AUTH_BASE", dead)]);
    let (stdout, _) = text(&out);
    let report = fx.report_on_disk(true);
    let error = report["reddit"]["error"].as_str().expect("error");
    assert!(
        error.starts_with(
            "no Reddit token (REDDIT_AUTH_BASE): Reddit could not be reached after 4 attempts: the connection failed"
        ),
        "{error}"
    );
    assert_reddit_failed_sherlock_done(&fx, &out, error);
    assert!(stdout.contains("Reddit: failed"), "{stdout}");
    assert!(fx.reddit.requests().is_empty());
}
