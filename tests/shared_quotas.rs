//! Several machines, one API key (issue 17): two processes scanning Reddit at once, against one
//! fake Reddit and one fake Perspective, pace each API through its credential's row in a real
//! PostgreSQL, so together they never send more in any 0.9 s than one process may send alone.
//! The same two processes without PostgreSQL (each its own SQLite file, each its own quota) send
//! about twice that: the check can fail. A 429 with `Retry-After` seen by one process holds the
//! other back too.

mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::fake_perspective::{FakePerspective, FakePerspectiveConfig};
use support::fake_reddit::{FakeAccount, FakeReddit, FakeRedditConfig};
use support::fake_server::max_in_window;
use support::postgres::TestPostgres;

/// 300 requests a minute and 5 a second: one request per 200 ms (207 ms with the limiter's
/// margin), so at most 5 in any 0.9 s for one process alone (a sixth would need 1.035 s; the
/// window leaves 135 ms for the requests' own jitter on a loaded machine).
const QUOTA_ENV: [(&str, &str); 2] = [("REDDIT_RATE_PER_MIN", "300"), ("PERSPECTIVE_QPS", "5")];
const ONE_ALONE_PER_WINDOW: usize = 5;
const WINDOW: Duration = Duration::from_millis(900);

struct Fakes {
    reddit: FakeReddit,
    perspective: FakePerspective,
}

impl Fakes {
    fn start() -> Fakes {
        Fakes {
            reddit: FakeReddit::start(FakeRedditConfig {
                accounts: vec![
                    FakeAccount::new("alice")
                        .with_comments(12, |i| format!("comment number {i} about gardening"))
                        .with_posts(4, |i| format!("post number {i}")),
                ],
                page_size: 4,
                ..FakeRedditConfig::default()
            }),
            perspective: FakePerspective::start(FakePerspectiveConfig::default()),
        }
    }

    /// `account-scanner scan alice --mode reddit` in `dir`, with `DATABASE_URL` when given.
    fn scan(&self, dir: &Path, database: Option<&str>) -> Child {
        let mut cmd: Command = support::scanner(dir);
        cmd.env("SCANS_DIR", dir.join("scans"));
        for (k, v) in self.reddit.env().into_iter().chain(self.perspective.env()) {
            cmd.env(k, v);
        }
        for (k, v) in QUOTA_ENV {
            cmd.env(k, v);
        }
        if let Some(url) = database {
            cmd.env("DATABASE_URL", url);
        }
        cmd.args(["scan", "alice", "--mode", "reddit", "--json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start account-scanner")
    }
}

/// Runs two scans at once; each one's report.
fn two_at_once(fakes: &Fakes, database: Option<&str>) -> Vec<serde_json::Value> {
    let dirs = [
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    ];
    let children: Vec<Child> = dirs
        .iter()
        .map(|d| fakes.scan(d.path(), database))
        .collect();
    children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().expect("wait");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let report: serde_json::Value =
                serde_json::from_slice(&out.stdout).expect("a JSON report");
            assert_eq!(
                report["reddit"]["status"], "completed",
                "{}",
                report["reddit"]["error"]
            );
            assert_eq!(report["reddit"]["summary"]["scored"], 16);
            report
        })
        .collect()
}

fn busiest_window(times: Vec<Instant>) -> usize {
    max_in_window(&times, WINDOW)
}

#[test]
fn two_processes_share_each_apis_quota_through_postgresql() {
    let pg = TestPostgres::new();
    let fakes = Fakes::start();
    two_at_once(&fakes, Some(&pg.url));
    let reddit: Vec<Instant> = fakes.reddit.api_requests().iter().map(|r| r.when).collect();
    let perspective: Vec<Instant> = fakes
        .perspective
        .requests()
        .iter()
        .map(|r| r.when)
        .collect();
    assert_eq!(perspective.len(), 32, "16 texts scored by each process");
    assert_eq!(
        reddit.len(),
        2 * 5,
        "each process: about, three pages of comments, one of posts"
    );
    assert!(
        busiest_window(reddit.clone()) <= ONE_ALONE_PER_WINDOW,
        "Reddit got {} requests within 0.9 s from the two processes",
        busiest_window(reddit)
    );
    assert!(
        busiest_window(perspective.clone()) <= ONE_ALONE_PER_WINDOW,
        "Perspective got {} requests within 0.9 s from the two processes",
        busiest_window(perspective)
    );
    // One OAuth token per process.
    assert_eq!(fakes.reddit.token_requests().len(), 2);

    // Without PostgreSQL each process has a quota of its own: together they exceed it.
    let apart = Fakes::start();
    two_at_once(&apart, None);
    let reddit: Vec<Instant> = apart.reddit.api_requests().iter().map(|r| r.when).collect();
    let perspective: Vec<Instant> = apart
        .perspective
        .requests()
        .iter()
        .map(|r| r.when)
        .collect();
    assert!(
        busiest_window(reddit) > ONE_ALONE_PER_WINDOW
            || busiest_window(perspective) > ONE_ALONE_PER_WINDOW,
        "two unshared processes should exceed one process's quota"
    );
}

#[test]
fn a_retry_after_seen_by_one_process_holds_the_other_back() {
    let pg = TestPostgres::new();
    let fakes = Fakes::start();
    // The first API request (whichever process sends it) gets 429 with Retry-After: 2.
    fakes.reddit.fail_next(429, Some(2));
    two_at_once(&fakes, Some(&pg.url));
    let requests = fakes.reddit.api_requests();
    let limited = requests
        .iter()
        .find(|r| r.status == 429)
        .expect("the 429 was answered");
    let next = requests
        .iter()
        .filter(|r| r.when > limited.when)
        .map(|r| r.when.duration_since(limited.when))
        .min()
        .expect("requests after the 429");
    assert!(
        next >= Duration::from_millis(1900),
        "the next request from either process came {next:?} after the 429"
    );
}

#[test]
fn a_command_line_scan_does_not_start_without_the_shared_quota_database() {
    let fakes = Fakes::start();
    let dir = tempfile::tempdir().expect("tempdir");
    // Nothing listens on port 1: PostgreSQL is unreachable.
    let out = fakes
        .scan(
            dir.path(),
            Some("postgres://scanner:hunter2secret@127.0.0.1:1/scans"),
        )
        .wait_with_output()
        .expect("wait");
    assert_eq!(out.status.code(), Some(3), "a configuration problem");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "the database that holds the shared API quotas cannot be reached, so no scan starts"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2secret"), "{stderr}");
    assert!(fakes.reddit.requests().is_empty(), "nothing sent to Reddit");
    assert!(fakes.perspective.requests().is_empty());
}
