//! The real binary running the real, pinned Sherlock against a fake-sites server on 127.0.0.1.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::fake_sites::FakeSitesConfig;

struct Fixture(support::SitesWorkdir);

impl Fixture {
    fn new(cfg: FakeSitesConfig) -> Fixture {
        Fixture(support::SitesWorkdir::new(cfg))
    }

    fn scan(&self, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
        let mut cmd = self.0.command();
        cmd.env("SHERLOCK_SITE_TIMEOUT", "2").arg("scan").args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("run account-scanner")
    }
}

impl std::ops::Deref for Fixture {
    type Target = support::SitesWorkdir;
    fn deref(&self) -> &support::SitesWorkdir {
        &self.0
    }
}

use support::stdout_json as json;

/// site name → (status, error_kind)
fn outcomes(report: &Value) -> BTreeMap<String, (String, Option<String>)> {
    report["sherlock"]["sites"]
        .as_array()
        .expect("sites array")
        .iter()
        .map(|s| {
            (
                s["site"].as_str().expect("site").to_string(),
                (
                    s["status"].as_str().expect("status").to_string(),
                    s["error_kind"].as_str().map(str::to_string),
                ),
            )
        })
        .collect()
}

/// Sherlock reports names a site's `regexCheck` rejects while it queues requests, then the
/// rest in site-list order.
const SHERLOCK_ORDER: [&str; 7] = [
    "RegexSite",
    "StatusHit",
    "MessageMiss",
    "RedirectSite",
    "HangSite",
    "WafSite",
    "DeadSite",
];

fn site<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["sherlock"]["sites"]
        .as_array()
        .expect("sites")
        .iter()
        .find(|s| s["site"] == name)
        .unwrap_or_else(|| panic!("no result for {name}"))
}

fn expect_outcomes(report: &Value, expected: &[(&str, &str, Option<&str>)]) {
    let got = outcomes(report);
    let want: BTreeMap<String, (String, Option<String>)> = expected
        .iter()
        .map(|(site, status, kind)| {
            (
                site.to_string(),
                (status.to_string(), kind.map(str::to_string)),
            )
        })
        .collect();
    assert_eq!(got, want);
}

#[test]
fn every_site_outcome_is_reported_exactly() {
    let fx = Fixture::new(FakeSitesConfig::default());
    let out = fx.scan(&["alice", "--mode", "sherlock", "--json"], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = json(&out);
    expect_outcomes(
        &report,
        &[
            ("StatusHit", "claimed", None),
            ("MessageMiss", "claimed", None),
            ("RedirectSite", "claimed", None),
            ("HangSite", "error", Some("timeout")),
            ("WafSite", "waf", None),
            ("RegexSite", "illegal", None),
            ("DeadSite", "error", Some("connection")),
        ],
    );
    let base = fx.sites.base_url();
    let sites = report["sherlock"]["sites"].as_array().expect("sites");
    assert_eq!(
        sites
            .iter()
            .map(|s| s["site"].as_str().expect("name"))
            .collect::<Vec<_>>(),
        SHERLOCK_ORDER,
        "results keep Sherlock's order (illegal names first, then the list's order)"
    );
    let hit = site(&report, "StatusHit");
    assert_eq!(hit["url_user"], format!("{base}/status/alice"));
    assert_eq!(hit["url_main"], format!("{base}/"));
    assert_eq!(hit["http_status"], 200);
    assert!(hit["response_time_s"].as_f64().is_some());
    assert_eq!(
        site(&report, "WafSite")["http_status"],
        403,
        "the WAF page's status"
    );
    assert_eq!(site(&report, "HangSite")["detail"], "Timeout Error");

    assert_eq!(report["schema_version"], 1);
    assert_eq!(report["request"]["username"], "alice");
    assert_eq!(report["request"]["mode"], "sherlock");
    assert_eq!(report["request"]["requested_by"], "cli");
    assert_eq!(report["partial"], false);
    assert_eq!(report["partial_reason"], Value::Null);
    assert_eq!(report["tools"]["sherlock"], "0.16.2");
    assert_eq!(
        report["tools"]["account_scanner"],
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(report["sherlock"]["status"], "completed");
    assert_eq!(report["sherlock"]["sites_total"], 7);
    assert_eq!(report["sherlock"]["sites_checked"], 7);
    assert_eq!(
        report["sherlock"]["counts"],
        serde_json::json!({"claimed": 3, "unverified": 0, "available": 0, "illegal": 1, "waf": 1, "error": 2})
    );
    assert_eq!(report["reddit"]["status"], "skipped");

    // The files: the JSON on disk is the report printed, the CSV has the documented columns.
    let files = support::files_in(&fx.scans());
    assert_eq!(files.len(), 2, "{files:?}");
    let json_name = files
        .iter()
        .find(|f| f.ends_with(".json"))
        .expect("json file");
    let csv_name = files
        .iter()
        .find(|f| f.ends_with("_sherlock.csv"))
        .expect("csv file");
    assert!(json_name.starts_with("alice_"), "{json_name}");
    assert_eq!(
        csv_name.trim_end_matches("_sherlock.csv"),
        json_name.trim_end_matches(".json")
    );
    let on_disk: Value =
        serde_json::from_slice(&std::fs::read(fx.scans().join(json_name)).expect("read json"))
            .expect("json file parses");
    assert_eq!(on_disk, report);

    let mut csv = csv::Reader::from_path(fx.scans().join(csv_name)).expect("csv");
    assert_eq!(
        csv.headers().expect("headers").iter().collect::<Vec<_>>(),
        [
            "username",
            "site",
            "status",
            "error_kind",
            "url_user",
            "url_main",
            "http_status",
            "response_time_s",
            "detail",
            "unreliable"
        ]
    );
    let rows: Vec<csv::StringRecord> = csv.records().map(|r| r.expect("row")).collect();
    assert_eq!(
        rows.iter().map(|r| &r[1]).collect::<Vec<_>>(),
        SHERLOCK_ORDER,
        "one row per site, in the report's order"
    );
    let first = &rows[1];
    assert_eq!(&first[0], "alice");
    assert_eq!(&first[1], "StatusHit");
    assert_eq!(&first[2], "claimed");
    assert_eq!(&first[3], "");
    assert_eq!(&first[4], format!("{base}/status/alice"));
    assert_eq!(&first[5], format!("{base}/"));
    assert_eq!(&first[6], "200");
    assert!(
        first[7].parse::<f64>().is_ok(),
        "response time {:?}",
        &first[7]
    );
    let hang = &rows[4];
    assert_eq!(
        (&hang[1], &hang[2], &hang[3], &hang[8]),
        ("HangSite", "error", "timeout", "Timeout Error")
    );
    let regex = &rows[0];
    assert_eq!(
        (&regex[1], &regex[2], &regex[4]),
        ("RegexSite", "illegal", "")
    );
}

#[test]
fn a_name_that_exists_nowhere_is_not_found() {
    let fx = Fixture::new(FakeSitesConfig::default());
    let out = fx.scan(&["nobody123", "--mode", "sherlock", "--json"], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = json(&out);
    expect_outcomes(
        &report,
        &[
            ("StatusHit", "available", None),
            ("MessageMiss", "available", None),
            ("RedirectSite", "available", None),
            ("HangSite", "error", Some("timeout")),
            ("WafSite", "waf", None),
            ("RegexSite", "illegal", None),
            ("DeadSite", "error", Some("connection")),
        ],
    );
    assert_eq!(site(&report, "StatusHit")["http_status"], 404);
    assert_eq!(
        site(&report, "RedirectSite")["http_status"],
        302,
        "the redirect is not followed"
    );
}

#[test]
fn the_summary_lists_hits_counts_and_files() {
    let fx = Fixture::new(FakeSitesConfig::default());
    let out = fx.scan(&["alice", "--mode", "all"], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let base = fx.sites.base_url();
    assert!(stdout.contains("of alice (mode all): done in"), "{stdout}");
    assert!(stdout.contains("Found on 3 site(s):"), "{stdout}");
    assert!(
        stdout.contains(&format!("StatusHit     {base}/status/alice")),
        "{stdout}"
    );
    assert!(
        stdout.contains("found 3 · not found 0 · name not allowed 1 · blocked by bot detection 1 · errors 2 (connection 1, timeout 1)"),
        "{stdout}"
    );
    assert!(stdout.contains("Reddit: not configured"), "{stdout}");
    for f in support::files_in(&fx.scans()) {
        assert!(stdout.contains(&f), "summary names {f}: {stdout}");
    }
    // Not a terminal: plain progress lines on stderr, no progress-bar escapes.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("sherlock: checking 7 sites"), "{stderr}");
    assert!(
        stderr.contains(&format!("sherlock: found StatusHit {base}/status/alice")),
        "{stderr}"
    );
    assert!(!stderr.contains('\u{1b}'), "{stderr}");
}

#[test]
fn the_deadline_returns_partial_results_and_kills_sherlock() {
    let fx = Fixture::new(FakeSitesConfig::default());
    let started = Instant::now();
    let out = fx.scan(
        &["alice", "--mode", "sherlock", "--json"],
        &[("SCAN_TIMEOUT", "4"), ("SHERLOCK_SITE_TIMEOUT", "120")],
    );
    let elapsed = started.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = json(&out);
    assert_eq!(report["partial"], true);
    assert_eq!(report["sherlock"]["status"], "partial");
    let reason = report["partial_reason"].as_str().expect("reason");
    assert!(
        reason.contains("4s deadline (SCAN_TIMEOUT); 4 of 7 sites had been checked"),
        "{reason}"
    );
    // The sites Sherlock reported before the hanging one are kept.
    expect_outcomes(
        &report,
        &[
            ("RegexSite", "illegal", None),
            ("StatusHit", "claimed", None),
            ("MessageMiss", "claimed", None),
            ("RedirectSite", "claimed", None),
        ],
    );
    assert!(
        elapsed < Duration::from_secs(60),
        "the deadline was not honoured: {elapsed:?}"
    );
    assert!(
        support::processes_mentioning(&fx.list().display().to_string()).is_empty(),
        "a Sherlock process outlived the scan"
    );
    // The partial report is on disk too.
    let files = support::files_in(&fx.scans());
    let json_file = files.iter().find(|f| f.ends_with(".json")).expect("json");
    let on_disk: Value =
        serde_json::from_slice(&std::fs::read(fx.scans().join(json_file)).expect("read"))
            .expect("parse");
    assert_eq!(on_disk["partial"], true);
}

#[test]
fn check_reports_what_is_configured() {
    let fx = Fixture::new(FakeSitesConfig::default());
    let out = support::scanner(fx.dir.path())
        .env("SHERLOCK_SITES", fx.list())
        .env("SCANS_DIR", fx.scans())
        .arg("check")
        .output()
        .expect("run check");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("configuration: ok"), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "scans directory: {} (writable",
            fx.scans().display()
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "sherlock: {} 0.16.2 (from managed virtualenv; pinned version 0.16.2)",
            support::sherlock().display()
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("site list: file {}, 7 sites", fx.list().display())),
        "{stdout}"
    );
    assert!(stdout.contains("reddit: not configured"), "{stdout}");
}

#[test]
fn check_names_the_invalid_variable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = support::scanner(dir.path())
        .env("SCAN_TIMEOUT", "five")
        .arg("check")
        .output()
        .expect("run check");
    assert_eq!(out.status.code(), Some(3));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("SCAN_TIMEOUT: `five` is not a whole number of seconds"),
        "{stdout}"
    );
}

fn fake_sherlock(dir: &Path, body: &str) -> String {
    support::script(dir, "fake-sherlock", body)
        .display()
        .to_string()
}

#[test]
fn a_failing_sherlock_is_a_clear_error_and_the_report_says_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = fake_sherlock(
        dir.path(),
        "echo 'ERROR:  Problem parsing json contents'; exit 1",
    );
    let out = support::scanner(dir.path())
        .env("SHERLOCK_BIN", &bin)
        .env("SCANS_DIR", dir.path().join("scans"))
        .args(["scan", "alice", "--mode", "sherlock", "--json"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let report = json(&out);
    assert_eq!(report["sherlock"]["status"], "failed");
    assert_eq!(
        report["sherlock"]["error"],
        "Sherlock exited with status 1: ERROR:  Problem parsing json contents"
    );
    assert_eq!(support::files_in(&dir.path().join("scans")).len(), 2);
}

#[test]
fn garbage_output_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = fake_sherlock(dir.path(), "echo 'hello, I am not sherlock'; exit 0");
    let out = support::scanner(dir.path())
        .env("SHERLOCK_BIN", &bin)
        .env("SCANS_DIR", dir.path().join("scans"))
        .args(["scan", "alice", "--mode", "sherlock"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("error: Sherlock printed nothing recognisable (is SHERLOCK_BIN really Sherlock?): hello, I am not sherlock"),
        "{stdout}"
    );
}

#[test]
fn a_missing_sherlock_bin_is_a_configuration_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = support::scanner(dir.path())
        .env("SHERLOCK_BIN", "/nonexistent/sherlock")
        .args(["scan", "alice"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr
            .contains("SHERLOCK_BIN is set to /nonexistent/sherlock, but that file does not exist"),
        "{stderr}"
    );
}

#[test]
fn bad_usernames_are_rejected_and_sherlock_never_starts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let marker = dir.path().join("sherlock-was-started");
    let bin = fake_sherlock(dir.path(), &format!("touch '{}'", marker.display()));
    let long = "a".repeat(500);
    let cases: &[(&str, &str)] = &[
        (
            "-rf",
            "`-rf` is not a valid username: usernames may not start with '-'",
        ),
        (
            "a b",
            "`a b` is not a valid username: usernames may not contain spaces",
        ),
        ("{?}", "'{?}' is Sherlock's wildcard"),
        (
            "../../etc",
            "usernames may not contain '/' (a path separator)",
        ),
        (&long, "it is 500 characters long, the limit is 64"),
        ("", "the username is empty"),
        (
            "evil\u{202E}txt",
            "it contains a control character (U+202E)",
        ),
        ("bell\u{7}", "it contains a control character (U+0007)"),
    ];
    for (input, message) in cases {
        let out = support::scanner(dir.path())
            .env("SHERLOCK_BIN", &bin)
            .env("SCANS_DIR", dir.path().join("scans"))
            .args(["scan", input])
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(2), "{input:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(message), "{input:?}: {stderr}");
        assert!(!marker.exists(), "Sherlock was started for {input:?}");
    }
    assert!(
        !dir.path().join("scans").exists(),
        "bad input changed nothing on disk"
    );
}

#[test]
fn help_documents_the_exit_codes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = support::scanner(dir.path())
        .arg("--help")
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    for line in [
        "0  done",
        "1  the scan failed",
        "2  bad usage or input",
        "3  configuration problem",
    ] {
        assert!(stdout.contains(line), "{stdout}");
    }
}

#[test]
fn command_line_scans_go_to_history_and_the_second_says_what_changed() {
    let fx = Fixture::new(FakeSitesConfig::default());
    for _ in 0..2 {
        let out = fx.scan(&["alice", "--mode", "sherlock", "--json"], &[]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // `--out` writes elsewhere: not indexed.
    let elsewhere = fx.dir.path().join("elsewhere");
    let out = fx.scan(
        &[
            "alice",
            "--mode",
            "sherlock",
            "--out",
            &elsewhere.display().to_string(),
        ],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = fx
        .command()
        .args(["history", "ALICE", "--json"])
        .output()
        .expect("history");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let page = json(&out);
    assert_eq!(page["total"], 2, "{page:#}");
    let newest = &page["entries"][0];
    assert_eq!(newest["guild_id"], Value::Null, "a command-line scan");
    assert_eq!(newest["mode"], "sherlock");
    assert!(newest["hits"].as_u64().is_some_and(|h| h > 0), "{newest}");
    let report: Value = serde_json::from_slice(
        &std::fs::read(fx.scans().join(newest["files"][0].as_str().expect("file"))).expect("read"),
    )
    .expect("json");
    assert_eq!(report["previous"]["scan_id"], page["entries"][1]["scan_id"]);
    assert_eq!(report["previous"]["sites_compared"], true);
    assert_eq!(report["previous"]["sites_added"], serde_json::json!([]));

    let out = fx
        .command()
        .args(["history", "alice"])
        .output()
        .expect("history");
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.starts_with("2 scan(s) of alice"), "{table}");
    assert!(table.contains("command line"), "{table}");
}
