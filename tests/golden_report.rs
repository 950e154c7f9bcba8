//! The report files of one fixed scan (real binary, real Sherlock on the fake sites, fake Reddit
//! scored by the fake Perspective) compared byte for byte with `tests/golden/`, after redacting
//! what differs between runs: timestamps, durations, run ids, ports and temp paths.
//!
//! Restructuring must not change a report. When a change is meant to, rewrite the golden files
//! with `GOLDEN_WRITE=1 cargo test --test golden_report` and commit them with the reason.

mod support;

use std::path::{Path, PathBuf};

use serde_json::Value;
use support::fake_perspective::{FakePerspective, FakePerspectiveConfig};
use support::fake_reddit::{FakeAccount, FakeReddit, FakeRedditConfig};
use support::fake_sites::FakeSitesConfig;

const REDACTED: &str = "<redacted>";

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn texts(i: usize) -> String {
    match i {
        0 => "you absolute idiot, nobody wants you here".to_string(),
        1 => "=HYPERLINK(\"http://evil.invalid\") spreadsheet trick".to_string(),
        2 => "[deleted]".to_string(),
        3 => "a line with \"quotes\", commas\nand a newline".to_string(),
        i => format!("a perfectly nice comment, number {i}"),
    }
}

/// Keys whose values change from run to run (when, how long, which run).
fn varies(key: &str) -> bool {
    key.ends_with("_at")
        || key.ends_with("_ms")
        || matches!(key, "scan_id" | "response_time_s" | "control_username")
}

fn redact_text(text: &str, temp: &str) -> String {
    let port = regex::Regex::new(r"127\.0\.0\.1:\d+").expect("regex");
    port.replace_all(&text.replace(temp, "<tmp>"), "127.0.0.1:<port>")
        .into_owned()
}

/// The JSON as written (field order and layout kept), with the varying values replaced.
fn redact_json(text: &str, temp: &str) -> String {
    let value = regex::Regex::new(r#""(\w+)": ("[^"]*"|-?[0-9][0-9.eE+-]*)"#).expect("regex");
    let redacted = value.replace_all(text, |c: &regex::Captures| {
        if varies(&c[1]) {
            format!("\"{}\": \"{REDACTED}\"", &c[1])
        } else {
            c[0].to_string()
        }
    });
    redact_text(&redacted, temp)
}

fn redact_csv(text: &str, temp: &str) -> String {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader.headers().expect("csv header").clone();
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(&headers).expect("write header");
    for record in reader.records() {
        let record = record.expect("csv record");
        let row: Vec<String> = headers
            .iter()
            .zip(record.iter())
            .map(|(h, v)| {
                if varies(h) && !v.is_empty() {
                    REDACTED.to_string()
                } else {
                    redact_text(v, temp)
                }
            })
            .collect();
        writer.write_record(&row).expect("write row");
    }
    String::from_utf8(writer.into_inner().expect("flush")).expect("utf-8")
}

fn compare(name: &str, actual: &str) {
    let path = golden_dir().join(name);
    if std::env::var_os("GOLDEN_WRITE").is_some() {
        std::fs::create_dir_all(golden_dir()).expect("golden dir");
        std::fs::write(&path, actual).expect("write golden");
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{} cannot be read ({e})", path.display()));
    assert!(
        expected == actual,
        "{name} differs from the golden file {}:\n--- golden\n{expected}\n--- now\n{actual}",
        path.display()
    );
}

#[test]
fn the_reports_of_a_fixed_scan_match_the_golden_files() {
    let work = support::SitesWorkdir::new(FakeSitesConfig::default());
    let reddit = FakeReddit::start(FakeRedditConfig {
        accounts: vec![
            FakeAccount::new("alice")
                .with_comments(6, texts)
                .with_posts(2, |i| {
                    format!("post body {i}, with a link https://example.org/{i}")
                }),
        ],
        ..FakeRedditConfig::default()
    });
    let perspective = FakePerspective::start(FakePerspectiveConfig::default());
    let mut cmd = work.command();
    cmd.env("SHERLOCK_SITE_TIMEOUT", "2")
        .env("REDDIT_RATE_PER_MIN", "60000")
        .env("PERSPECTIVE_QPS", "1000");
    for (k, v) in reddit.env().into_iter().chain(perspective.env()) {
        cmd.env(k, v);
    }
    let out = cmd
        .args(["scan", "alice", "--mode", "all"])
        .output()
        .expect("run account-scanner");
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let temp = work.dir.path().display().to_string();
    let files = support::files_in(&work.scans());
    assert_eq!(files.len(), 3, "json, sherlock csv, reddit csv: {files:?}");
    for file in &files {
        let text = std::fs::read_to_string(work.scans().join(file)).expect("read report file");
        let (kind, redacted) = if file.ends_with(".json") {
            let _: Value = serde_json::from_str(&text).expect("report is JSON");
            ("report.json", redact_json(&text, &temp))
        } else if file.ends_with("_sherlock.csv") {
            ("sherlock.csv", redact_csv(&text, &temp))
        } else if file.ends_with("_reddit.csv") {
            ("reddit.csv", redact_csv(&text, &temp))
        } else {
            panic!("unexpected report file {file}");
        };
        compare(kind, &redacted);
    }
}
