//! Fault drills for the hosted toxicity backends, through the real binary (mode `reddit`): the
//! fake Perspective or the fake OpenAI is down (5xx, or nothing listening) or answers garbage
//! with 200 (an HTML page, cut-off JSON, JSON of the wrong shape). In every case the Reddit half
//! still completes, each item is marked unscored with the reason, the summary says why scoring
//! stopped, and the report is written whole; no key appears anywhere.
//!
//! Both also answer 100 MB (streamed, valid JSON if read to its end): the client stops at its
//! 8 MiB cap and says so.
//!
//! The library-level counterparts (a 500 from each backend, 429s, a short answer) are in
//! `reddit_scan.rs` and `toxicity_backends.rs`.

mod support;

use std::path::PathBuf;
use std::process::Output;

use serde_json::Value;
use support::fake_openai::{self, FakeOpenAi, FakeOpenAiConfig};
use support::fake_perspective::{self, FakePerspective, FakePerspectiveConfig};
use support::fake_reddit::{FakeAccount, FakeReddit, FakeRedditConfig};

const HTML: &str = "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8><title>Error 502 (Server Error)!!1</title></head><body><p>That's an error.</p></body></html>\n";
const CUT_OFF: &str = r#"{"attributeScores": {"TOXICITY": {"summaryScore": {"val"#;

struct Fixture {
    reddit: FakeReddit,
    dir: tempfile::TempDir,
}

impl Fixture {
    /// `alice` with 5 comments, one of them deleted (never sent to a backend).
    fn new() -> Fixture {
        Fixture {
            reddit: FakeReddit::start(FakeRedditConfig {
                accounts: vec![FakeAccount::new("alice").with_comments(5, |i| match i {
                    2 => "[deleted]".to_string(),
                    i => format!("a perfectly nice comment, number {i}"),
                })],
                ..FakeRedditConfig::default()
            }),
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn scans(&self) -> PathBuf {
        self.dir.path().join("scans")
    }

    fn scan(&self, env: Vec<(&'static str, String)>) -> Output {
        let mut cmd = support::scanner(self.dir.path());
        cmd.env("SCANS_DIR", self.scans())
            .env("REDDIT_RATE_PER_MIN", "60000")
            .env("PERSPECTIVE_QPS", "1000")
            .env("OPENAI_RATE_PER_MIN", "100000");
        for (k, v) in self.reddit.env().into_iter().chain(env) {
            cmd.env(k, v);
        }
        cmd.args(["scan", "alice", "--mode", "reddit"])
            .output()
            .expect("run account-scanner")
    }

    /// Checks what the user sees and what is on disk when scoring failed with `error`, and
    /// returns the report from disk.
    fn assert_unscored(&self, out: &Output, error: &str, key: &str) -> Value {
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(0),
            "the Reddit half completed; only its scores are missing\n{stdout}\n{stderr}"
        );
        assert!(
            stdout.contains("Reddit · alice: found · completed"),
            "{stdout}"
        );
        assert!(
            stdout.contains("5 comments, 0 posts · 0 scored, 5 unscored"),
            "{stdout}"
        );
        assert!(
            stdout.contains(&format!("  scoring stopped: {error}")),
            "{stdout}"
        );
        assert!(!stdout.contains("toxicity: mean"), "{stdout}");

        support::assert_no_temp_files(&self.scans());
        let files = support::files_in(&self.scans());
        assert_eq!(files.len(), 2, "json and reddit csv: {files:?}");
        let mut everything = format!("{stdout}{stderr}");
        for f in &files {
            everything.push_str(&std::fs::read_to_string(self.scans().join(f)).expect("read"));
        }
        assert!(!everything.contains(key), "the API key leaked");

        let json = files.iter().find(|f| f.ends_with(".json")).expect("json");
        let report: Value =
            serde_json::from_slice(&std::fs::read(self.scans().join(json)).expect("read"))
                .expect("the report on disk is whole JSON");
        assert_eq!(report["reddit"]["status"], "completed");
        assert_eq!(report["reddit"]["scoring"]["error"], error);
        let comments = report["reddit"]["comments"].as_array().expect("comments");
        assert_eq!(comments.len(), 5);
        for (i, c) in comments.iter().enumerate() {
            assert!(c["toxicity"]["toxicity"].is_null(), "{c}");
            let reason = c["toxicity"]["unscored_reason"].as_str().expect("reason");
            if i == 2 {
                assert!(
                    !reason.contains(error),
                    "the deleted one says why: {reason}"
                );
            } else {
                assert_eq!(reason, format!("not scored: {error}"));
            }
        }
        let csv = files
            .iter()
            .find(|f| f.ends_with("_reddit.csv"))
            .expect("csv");
        let csv = std::fs::read_to_string(self.scans().join(csv)).expect("csv");
        assert_eq!(csv.lines().count(), 6, "header and 5 rows:\n{csv}");
        // CSV doubles the quotes inside a quoted field.
        let quoted = format!("not scored: {error}").replace('"', "\"\"");
        assert!(csv.contains(&quoted), "{csv}");
        report
    }
}

fn perspective(f: &FakePerspective) -> Vec<(&'static str, String)> {
    f.env()
}

fn openai(f: &FakeOpenAi) -> Vec<(&'static str, String)> {
    let mut env = f.env();
    env.push(("TOXICITY_BACKEND", "openai".into()));
    env
}

#[test]
fn perspective_down_leaves_items_unscored_and_the_report_written() {
    let fx = Fixture::new();
    let p = FakePerspective::start(FakePerspectiveConfig::default());
    p.fail_always(Some(503));
    let out = fx.scan(perspective(&p));
    fx.assert_unscored(
        &out,
        "Perspective answered 503 Service Unavailable after 4 attempts",
        fake_perspective::API_KEY,
    );
    let sent = p.requests().len();
    assert!(
        (4..=16).contains(&sent),
        "4 texts, at most 4 attempts each: {sent} requests"
    );
    p.assert_no_unexpected();
}

#[test]
fn perspective_answering_an_html_page_is_named() {
    let fx = Fixture::new();
    let p = FakePerspective::start(FakePerspectiveConfig::default());
    p.answer_garbage(Some(HTML));
    let out = fx.scan(perspective(&p));
    fx.assert_unscored(
        &out,
        "Perspective answered 200 OK: the answer could not be read: it is an HTML page, not JSON (title: \"Error 502 (Server Error)!!1\")",
        fake_perspective::API_KEY,
    );
    let sent = p.requests().len();
    assert!(
        (1..=4).contains(&sent),
        "at most one request per text (4 in flight), none retried: {sent}"
    );
}

#[test]
fn perspective_answering_cut_off_json_is_named() {
    let fx = Fixture::new();
    let p = FakePerspective::start(FakePerspectiveConfig::default());
    p.answer_garbage(Some(CUT_OFF));
    let out = fx.scan(perspective(&p));
    fx.assert_unscored(
        &out,
        "Perspective answered 200 OK: the answer could not be read: it is not the JSON expected: EOF while parsing a string at line 1 column 55",
        fake_perspective::API_KEY,
    );
}

#[test]
fn perspective_answering_json_without_scores_marks_each_item() {
    let fx = Fixture::new();
    let p = FakePerspective::start(FakePerspectiveConfig::default());
    p.answer_garbage(Some(
        r#"{"attributeScores": {"TOXICITY": {"summaryScore": {"value": "high"}}}}"#,
    ));
    let out = fx.scan(perspective(&p));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("5 comments, 0 posts · 0 scored, 5 unscored"),
        "{stdout}"
    );
    let files = support::files_in(&fx.scans());
    let json = files.iter().find(|f| f.ends_with(".json")).expect("json");
    let report: Value =
        serde_json::from_slice(&std::fs::read(fx.scans().join(json)).expect("read")).expect("json");
    let reasons: Vec<&str> = report["reddit"]["comments"]
        .as_array()
        .expect("comments")
        .iter()
        .map(|c| c["toxicity"]["unscored_reason"].as_str().expect("reason"))
        .collect();
    assert_eq!(reasons.len(), 5);
    for (i, r) in reasons.iter().enumerate() {
        if i != 2 {
            assert!(
                r.contains("Perspective answered 200 OK: the answer could not be read: it is not the JSON expected: invalid type: string \"high\""),
                "{r}"
            );
        }
    }
}

#[test]
fn openai_down_leaves_items_unscored_and_the_report_written() {
    let fx = Fixture::new();
    // Nothing listens on a port just released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let o = FakeOpenAi::start(FakeOpenAiConfig::default());
    let mut env = openai(&o);
    env.push(("OPENAI_API_BASE", format!("http://127.0.0.1:{port}")));
    let out = fx.scan(env);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let error = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("scoring stopped: "))
        .expect("the summary says why scoring stopped")
        .to_string();
    assert!(
        error.starts_with("OpenAI could not be reached after 4 attempts: the connection failed"),
        "{error}"
    );
    fx.assert_unscored(&out, &error, fake_openai::API_KEY);
}

#[test]
fn openai_answering_an_html_page_is_named() {
    let fx = Fixture::new();
    let o = FakeOpenAi::start(FakeOpenAiConfig::default());
    o.answer_garbage(Some(HTML));
    let out = fx.scan(openai(&o));
    fx.assert_unscored(
        &out,
        "OpenAI answered 200 OK: the answer could not be read: it is an HTML page, not JSON (title: \"Error 502 (Server Error)!!1\")",
        fake_openai::API_KEY,
    );
    assert_eq!(o.requests().len(), 1, "one batch, not retried");
}

#[test]
fn openai_answering_json_of_the_wrong_shape_is_named() {
    let fx = Fixture::new();
    let o = FakeOpenAi::start(FakeOpenAiConfig::default());
    o.answer_garbage(Some(r#"{"results": {"flagged": true}}"#));
    let out = fx.scan(openai(&o));
    fx.assert_unscored(
        &out,
        "OpenAI answered 200 OK: the answer could not be read: it is not the JSON expected: invalid type: map, expected a sequence at line 1 column 12",
        fake_openai::API_KEY,
    );
}

/// What an item says when its backend's answer passed the body cap.
fn too_large(backend: &str) -> String {
    format!(
        "{backend} answered 200 OK: the answer could not be read: it is larger than 8 MiB, the most account-scanner reads of one answer"
    )
}

/// 100 MB: far past the cap, and more than a test should ever hold in memory.
const HUGE: u64 = 100 * 1024 * 1024;

#[test]
fn perspective_answering_100_mb_is_cut_off_at_the_cap() {
    let fx = Fixture::new();
    let p = FakePerspective::start(FakePerspectiveConfig::default());
    p.answer_huge(Some(HUGE));
    let out = fx.scan(perspective(&p));
    fx.assert_unscored(&out, &too_large("Perspective"), fake_perspective::API_KEY);
    p.assert_no_unexpected();
}

#[test]
fn openai_answering_100_mb_is_cut_off_at_the_cap() {
    let fx = Fixture::new();
    let o = FakeOpenAi::start(FakeOpenAiConfig::default());
    o.answer_huge(Some(HUGE));
    let out = fx.scan(openai(&o));
    fx.assert_unscored(&out, &too_large("OpenAI"), fake_openai::API_KEY);
    assert_eq!(o.requests().len(), 1, "one batch, not retried");
}
