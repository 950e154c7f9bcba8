//! The real binary scanning Reddit against the fake Reddit and fake Perspective (and, in mode
//! `all`, the real Sherlock against the fake sites).

mod support;

use std::path::PathBuf;
use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::fake_perspective::{self, FakePerspective, FakePerspectiveConfig};
use support::fake_reddit::{self, FakeAccount, FakeReddit, FakeRedditConfig};
use support::fake_server::max_in_window;
use support::fake_sites::{FakeSites, FakeSitesConfig};

struct Fixture {
    reddit: FakeReddit,
    perspective: FakePerspective,
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new(accounts: Vec<FakeAccount>) -> Fixture {
        Fixture {
            reddit: FakeReddit::start(FakeRedditConfig {
                accounts,
                ..FakeRedditConfig::default()
            }),
            perspective: FakePerspective::start(FakePerspectiveConfig::default()),
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn scans(&self) -> PathBuf {
        self.dir.path().join("scans")
    }

    /// The binary with both fakes configured (fast quotas unless `env` says otherwise).
    fn command(&self, env: &[(&str, &str)]) -> std::process::Command {
        let mut cmd = support::scanner(self.dir.path());
        cmd.env("SCANS_DIR", self.scans())
            .env("REDDIT_RATE_PER_MIN", "60000")
            .env("PERSPECTIVE_QPS", "1000");
        for (k, v) in self.reddit.env().into_iter().chain(self.perspective.env()) {
            cmd.env(k, v);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd
    }

    fn scan(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        self.command(env)
            .arg("scan")
            .args(args)
            .output()
            .expect("run account-scanner")
    }

    /// Every byte the scan left: stdout, stderr and each file in the scans directory.
    fn everything(&self, out: &Output) -> String {
        let mut all = String::from_utf8_lossy(&out.stdout).into_owned();
        all.push_str(&String::from_utf8_lossy(&out.stderr));
        for f in support::files_in(&self.scans()) {
            all.push_str(&std::fs::read_to_string(self.scans().join(f)).unwrap_or_default());
        }
        all
    }
}

use support::stdout_json as json;

fn texts(i: usize) -> String {
    match i {
        0 => "you absolute idiot".to_string(),
        1 => "=HYPERLINK(\"http://evil.invalid\")".to_string(),
        2 => "[deleted]".to_string(),
        i => format!("a perfectly nice comment, number {i}"),
    }
}

#[test]
fn a_reddit_scan_end_to_end_keeps_perspective_to_its_qps() {
    let fx = Fixture::new(vec![FakeAccount::new("alice").with_comments(21, texts)]);
    let started = Instant::now();
    let out = fx.scan(&["alice", "--mode", "reddit"], &[("PERSPECTIVE_QPS", "5")]);
    let elapsed = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");

    // 20 texts sent (the deleted one is not) at 5 a second. Arrival times at the fake carry
    // the machine's scheduling delay: one request handled late moves closer to the next, so a
    // 1-second window may show one extra; the span of all 20 cannot shrink that way by more
    // than one such delay, and it is what a too-fast limiter would shorten (19 gaps of 0.2 s).
    let mut times: Vec<Instant> = fx.perspective.requests().iter().map(|r| r.when).collect();
    times.sort();
    assert_eq!(times.len(), 20);
    let most = max_in_window(&times, Duration::from_secs(1));
    assert!(most <= 6, "{most} Perspective requests inside one second");
    let span = times[19].duration_since(times[0]);
    assert!(
        span >= Duration::from_millis(3700),
        "20 Perspective requests within {span:?}: faster than 5 a second"
    );
    assert!(elapsed >= Duration::from_millis(3800), "{elapsed:?}");
    fx.perspective.assert_no_unexpected();
    fx.reddit.assert_no_unexpected();

    // The summary.
    for line in [
        "of alice (mode reddit): done in",
        "Reddit · alice: found · completed",
        "created 2015-01-01 · karma 3520 (posts 120, comments 3400) · verified · verified email",
        "21 comments, 0 posts · 20 scored, 1 unscored",
        "scorer: perspective (Perspective API v1alpha1 (TOXICITY, SEVERE_TOXICITY",
        "toxicity: mean",
        "1 at or above 0.70",
        "top subreddits: r/rust 11, r/AskReddit 5, r/pics 5",
        "most toxic:",
        "0.92  comment  r/rust  https://www.reddit.com/r/rust/comments/c0000/a_thread/c0000",
        "\"you absolute idiot\"",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in\n{stdout}");
    }
    // Progress lines (not a terminal).
    for line in [
        "reddit: account alice found",
        "reddit: fetched 21 comments, 0 posts",
        "reddit: 10/21 items scored",
        "reddit: 21/21 items scored",
        "reddit: completed",
    ] {
        assert!(stderr.contains(line), "missing {line:?} in\n{stderr}");
    }

    // The files: JSON and the Reddit CSV, no Sherlock CSV in mode reddit.
    let files = support::files_in(&fx.scans());
    assert_eq!(files.len(), 2, "{files:?}");
    let json_name = files.iter().find(|f| f.ends_with(".json")).expect("json");
    let csv_name = files
        .iter()
        .find(|f| f.ends_with("_reddit.csv"))
        .expect("reddit csv");
    assert_eq!(
        csv_name.trim_end_matches("_reddit.csv"),
        json_name.trim_end_matches(".json")
    );
    for f in &files {
        assert!(stdout.contains(f.as_str()), "summary names {f}");
    }
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(fx.scans().join(json_name)).expect("read"))
            .expect("json");
    assert_eq!(report["schema_version"], 1);
    assert_eq!(report["sherlock"]["status"], "skipped");
    let r = &report["reddit"];
    assert_eq!(r["status"], "completed");
    assert_eq!(r["account"]["status"], "found");
    assert_eq!(r["account"]["created_utc"], "2015-01-01T00:00:00Z");
    assert_eq!(r["comments"].as_array().map(Vec::len), Some(21));
    let first = &r["comments"][0];
    assert_eq!(first["kind"], "comment");
    assert_eq!(first["id"], "t1_c0000");
    assert_eq!(first["subreddit"], "rust");
    assert_eq!(first["score"], 1);
    assert_eq!(first["edited"], true);
    assert_eq!(first["title"], "A thread");
    assert_eq!(first["created_utc"], "2025-06-15T15:06:40Z");
    assert_eq!(first["toxicity"]["toxicity"], 0.92);
    assert_eq!(first["toxicity"]["categories"]["insult"], 0.88);
    assert_eq!(r["comments"][2]["toxicity"]["unscored_reason"], "deleted");
    assert_eq!(r["summary"]["most_toxic"][0]["id"], "t1_c0000");
    assert_eq!(r["summary"]["at_or_above_threshold"], 1);
    assert_eq!(r["scoring"]["backend"], "perspective");
    assert_eq!(r["scoring"]["heuristic"], false);
    assert_eq!(r["scoring"]["threshold"], 0.7);

    let mut csv = csv::Reader::from_path(fx.scans().join(csv_name)).expect("csv");
    assert_eq!(
        csv.headers().expect("headers").iter().collect::<Vec<_>>(),
        [
            "username",
            "kind",
            "id",
            "subreddit",
            "created_utc",
            "permalink",
            "score",
            "title",
            "text",
            "url",
            "over_18",
            "edited",
            "toxicity",
            "at_or_above_threshold",
            "categories",
            "truncated",
            "unscored_reason"
        ]
    );
    let rows: Vec<csv::StringRecord> = csv.records().map(|r| r.expect("row")).collect();
    assert_eq!(rows.len(), 21);
    let row = &rows[0];
    assert_eq!(&row[0], "alice");
    assert_eq!(&row[1], "comment");
    assert_eq!(&row[2], "t1_c0000");
    assert_eq!(&row[4], "2025-06-15T15:06:40Z");
    assert_eq!(&row[8], "you absolute idiot");
    assert_eq!(&row[12], "0.920");
    assert_eq!(&row[13], "true");
    assert!(row[14].contains("insult=0.880"), "{}", &row[14]);
    assert_eq!(&row[15], "false");
    assert_eq!(
        &rows[1][8], "'=HYPERLINK(\"http://evil.invalid\")",
        "formula-like text is neutralised"
    );
    assert_eq!((&rows[2][12], &rows[2][16]), ("", "deleted"));
}

#[test]
fn the_perspective_key_and_reddit_secrets_never_appear_in_logs_errors_or_reports() {
    let fx = Fixture::new(vec![FakeAccount::new("alice").with_comments(3, texts)]);
    fx.perspective.rate_limit_next(0);
    fx.reddit.fail_next(503, None);
    let out = fx.scan(&["alice", "--mode", "reddit"], &[("RUST_LOG", "trace")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let first = fx.everything(&out);
    assert!(
        first.contains("TRACE") && first.contains("retrying"),
        "trace logs were captured"
    );

    // A wrong key: the fake's 403 echoes it, the scanner must not.
    let wrong = "PKEY-wrong-key-that-must-not-leak-77";
    let out = fx.scan(
        &["alice", "--mode", "reddit", "--json"],
        &[("RUST_LOG", "trace"), ("PERSPECTIVE_API_KEY", wrong)],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = json(&out);
    let error = report["reddit"]["scoring"]["error"]
        .as_str()
        .expect("error");
    assert_eq!(
        error,
        "Perspective refused the API key (403 Forbidden): API key [redacted] is not valid for this API."
    );
    let second = fx.everything(&out);

    for (name, secret) in [
        ("the Perspective key", fake_perspective::API_KEY),
        ("the wrong Perspective key", wrong),
        ("the Reddit client secret", fake_reddit::CLIENT_SECRET),
        ("a Reddit token", "fake-token-"),
    ] {
        assert!(!first.contains(secret), "{name} leaked:\n{first}");
        assert!(!second.contains(secret), "{name} leaked:\n{second}");
    }
    assert!(
        fx.perspective.requests().iter().all(|r| r.query.is_empty()),
        "the key never travels in the URL"
    );
}

#[test]
fn a_permanent_reddit_failure_still_returns_the_sherlock_half() {
    support::sherlock();
    let fx = Fixture::new(vec![FakeAccount::new("alice").with_comments(3, texts)]);
    fx.reddit.fail_always(Some(500));
    let sites = FakeSites::start(FakeSitesConfig::default());
    let list = fx.dir.path().join("sites.json");
    sites.write_site_list(&list).expect("site list");
    let out = fx.scan(
        &["alice", "--mode", "all"],
        &[
            ("SHERLOCK_SITES", &list.display().to_string()),
            ("SHERLOCK_SITE_TIMEOUT", "2"),
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a failed half is a failed scan\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("Found on 3 site(s):"), "{stdout}");
    assert!(stdout.contains("Reddit: failed"), "{stdout}");
    assert!(
        stdout.contains("error: Reddit answered 500 Internal Server Error after 4 attempts"),
        "{stdout}"
    );
    let files = support::files_in(&fx.scans());
    assert_eq!(files.len(), 3, "json, sherlock csv, reddit csv: {files:?}");
    let json_name = files.iter().find(|f| f.ends_with(".json")).expect("json");
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(fx.scans().join(json_name)).expect("read"))
            .expect("json");
    assert_eq!(report["sherlock"]["status"], "completed");
    assert_eq!(report["sherlock"]["sites_checked"], 7);
    assert_eq!(report["reddit"]["status"], "failed");
    assert_eq!(fx.reddit.api_requests().len(), 4, "bounded retries");
    assert!(fx.perspective.requests().is_empty());
}

#[test]
fn an_all_scan_overlaps_its_halves() {
    support::sherlock();
    // About 2 s of scoring (10 texts at 5/s) next to Sherlock's ~2.5 s (HangSite times out).
    let fx = Fixture::new(vec![
        FakeAccount::new("alice").with_comments(10, |i| format!("hello {i}")),
    ]);
    let sites = FakeSites::start(FakeSitesConfig::default());
    let list = fx.dir.path().join("sites.json");
    sites.write_site_list(&list).expect("site list");
    let out = fx.scan(
        &["alice", "--json"],
        &[
            ("SHERLOCK_SITES", &list.display().to_string()),
            ("SHERLOCK_SITE_TIMEOUT", "2"),
            ("PERSPECTIVE_QPS", "5"),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = json(&out);
    let total = report["duration_ms"].as_u64().expect("duration");
    let sherlock = report["sherlock"]["duration_ms"]
        .as_u64()
        .expect("sherlock");
    let reddit = report["reddit"]["duration_ms"].as_u64().expect("reddit");
    assert_eq!(report["reddit"]["summary"]["scored"], 10);
    assert!(reddit >= 1800, "{reddit}");
    assert!(
        (total as f64) < 0.8 * (sherlock + reddit) as f64,
        "the halves ran one after the other: total {total} ms, sherlock {sherlock} ms, reddit {reddit} ms"
    );
}

#[test]
fn missing_and_suspended_accounts_are_reported_not_failed() {
    let fx = Fixture::new(vec![FakeAccount::suspended("banned_one")]);
    let out = fx.scan(&["nobody_here", "--mode", "reddit"], &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("Reddit · nobody_here: not found · completed"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Reddit has no account by this name"),
        "{stdout}"
    );

    let out = fx.scan(&["banned_one", "--mode", "reddit", "--json"], &[]);
    assert!(out.status.success());
    let report = json(&out);
    assert_eq!(report["reddit"]["account"]["status"], "suspended");
    assert_eq!(report["reddit"]["comments"], serde_json::json!([]));

    let out = fx.scan(&["john.doe", "--mode", "reddit"], &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("Reddit · john.doe: not a valid Reddit name · completed"),
        "{stdout}"
    );
    assert!(
        stdout.contains("`john.doe` cannot be a Reddit username (it contains '.')"),
        "{stdout}"
    );
    fx.reddit.assert_no_unexpected();
}

#[test]
fn partial_reddit_credentials_are_a_configuration_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    for args in [&["scan", "alice", "--mode", "reddit"][..], &["check"][..]] {
        let out = support::scanner(dir.path())
            .env("REDDIT_CLIENT_ID", "abc")
            .env("SCANS_DIR", dir.path().join("scans"))
            .args(args)
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(3), "{args:?}");
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        for missing in [
            "REDDIT_CLIENT_SECRET: is not set",
            "REDDIT_USER_AGENT: is not set",
        ] {
            assert!(all.contains(missing), "{args:?}: {all}");
        }
        assert!(!all.contains("REDDIT_CLIENT_ID: is not set"), "{all}");
    }
}

#[test]
fn reddit_mode_without_credentials_is_a_configuration_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = support::scanner(dir.path())
        .env("SCANS_DIR", dir.path().join("scans"))
        .args(["scan", "alice", "--mode", "reddit"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "Reddit scanning is not configured (it needs REDDIT_CLIENT_ID, REDDIT_CLIENT_SECRET and REDDIT_USER_AGENT)"
        ),
        "{stderr}"
    );
}

#[test]
fn check_shows_reddit_and_the_toxicity_backend() {
    let fx = Fixture::new(Vec::new());
    let out = fx.command(&[]).arg("check").output().expect("run check");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("configuration: ok"), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "reddit: configured (client id fake-client-id, user agent \"{}\"; API {}",
            fake_reddit::USER_AGENT,
            fx.reddit.base_url()
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("toxicity: perspective (Perspective API v1alpha1 (TOXICITY"),
        "{stdout}"
    );
    assert!(!stdout.contains(fake_perspective::API_KEY), "{stdout}");
    assert!(!stdout.contains(fake_reddit::CLIENT_SECRET), "{stdout}");

    let dir = tempfile::tempdir().expect("tempdir");
    let out = support::scanner(dir.path())
        .env("SCANS_DIR", dir.path().join("scans"))
        .arg("check")
        .output()
        .expect("run check");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("reddit: not configured"), "{stdout}");
    assert!(
        stdout.contains("toxicity: local (all-MiniLM-L6-v2 fine-tuned + head ")
            && stdout.contains(" + word lists; offline, an automated signal for a human to read; threshold 0.65); set OPENAI_API_KEY or PERSPECTIVE_API_KEY for a hosted model"),
        "{stdout}"
    );
    assert!(fx.reddit.requests().is_empty(), "check makes no request");
}
