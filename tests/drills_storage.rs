//! Storage fault drills through the real binary (`scan --mode reddit` against the fake Reddit,
//! so no Sherlock is needed): the scans directory is read-only from the start, goes read-only
//! during the scan, is full, or is removed during the scan. Each drill asserts what the user is
//! told (message, exit code), that no partial file is left (no temp file, no truncated or
//! orphaned report file), and that nothing else broke (the next scan works).
//!
//! Read-only and full need a filesystem of their own: a small tmpfs (`support::tmpfs`; as root,
//! else each drill re-runs itself inside `unshare --user --map-root-user --mount`).
//! The disk-space floor (a refusal before the scan starts) is `ops::scans_refuse_politely_below_the_disk_floor`.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::entries;
use support::fake_reddit::{FakeAccount, FakeReddit, FakeRedditConfig};
use support::tmpfs::{Tmpfs, with_mount_rights};

fn comment(i: usize) -> String {
    format!(
        "comment number {i}, long enough to make the report take some room: {}",
        "lorem ipsum ".repeat(8)
    )
}

struct Fixture {
    reddit: FakeReddit,
    work: tempfile::TempDir,
}

impl Fixture {
    /// `alice` with 150 comments, answered after `latency` each (4 requests a scan).
    fn new(latency: Duration) -> Fixture {
        Fixture {
            reddit: FakeReddit::start(FakeRedditConfig {
                accounts: vec![FakeAccount::new("alice").with_comments(150, comment)],
                latency,
                ..FakeRedditConfig::default()
            }),
            work: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn command(&self, scans: &Path) -> Command {
        let mut cmd = support::scanner(self.work.path());
        // History lives in the working directory: these drills are about the report files on a
        // tmpfs too small (or too read-only) for a database.
        cmd.env("SCANS_DIR", scans)
            .env("DATABASE_URL", "sqlite://history.db")
            .env("MIN_FREE_SPACE_MB", "0")
            .env("REDDIT_RATE_PER_MIN", "60000")
            .env("REDDIT_MAX_COMMENTS", "150")
            .env("TOXICITY_BACKEND", "local")
            .args(["scan", "alice", "--mode", "reddit"]);
        for (k, v) in self.reddit.env() {
            cmd.env(k, v);
        }
        cmd
    }

    fn scan(&self, scans: &Path) -> Output {
        self.command(scans).output().expect("run account-scanner")
    }

    /// Starts a scan, runs `during` once Reddit has answered its first request (the scan has
    /// three more to go), and returns the scan's output.
    fn scan_with(&self, scans: &Path, during: impl FnOnce()) -> Output {
        let child = self
            .command(scans)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run account-scanner");
        let until = Instant::now() + Duration::from_secs(60);
        while self.reddit.requests().is_empty() {
            assert!(Instant::now() < until, "the scan never asked Reddit");
            std::thread::sleep(Duration::from_millis(20));
        }
        during();
        let out = child.wait_with_output().expect("wait");
        assert_eq!(
            self.reddit.api_requests().len(),
            4,
            "the scan went on after `during`: about, 2 pages of comments, posts"
        );
        out
    }
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The scan worked and left exactly its two report files, whole.
fn assert_saved(out: &Output, scans: &Path) -> Value {
    let (stdout, stderr) = text(out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("150 comments, 0 posts"), "{stdout}");
    let files = entries(scans);
    assert_eq!(
        files.len(),
        2,
        "json and reddit csv, nothing else: {files:?}"
    );
    let json = files.iter().find(|f| f.ends_with(".json")).expect("json");
    assert!(
        stdout.contains(json.as_str()),
        "the summary names the file: {stdout}"
    );
    let csv = files
        .iter()
        .find(|f| f.ends_with("_reddit.csv"))
        .expect("csv");
    let csv = std::fs::read_to_string(scans.join(csv)).expect("csv");
    assert_eq!(csv.lines().count(), 151, "whole csv");
    serde_json::from_slice(&std::fs::read(scans.join(json)).expect("read"))
        .expect("the report is whole JSON")
}

#[test]
fn a_read_only_scans_directory_is_refused_before_the_scan_starts() {
    with_mount_rights(
        "a_read_only_scans_directory_is_refused_before_the_scan_starts",
        || {
            let fx = Fixture::new(Duration::ZERO);
            let fs = Tmpfs::new(1024);
            fs.read_only();
            let out = fx.scan(fs.path());
            let (stdout, stderr) = text(&out);
            assert_eq!(out.status.code(), Some(3), "{stdout}\n{stderr}");
            assert!(
                stderr.contains(&format!(
                    "error: the scans directory {} is not writable: Read-only file system",
                    fs.path().display()
                )),
                "{stderr}"
            );
            assert!(fx.reddit.requests().is_empty(), "no scan was started");
            assert!(entries(fs.path()).is_empty());

            // Nothing else broke: writable again, the same directory takes a scan.
            fs.read_write();
            assert_saved(&fx.scan(fs.path()), fs.path());
        },
    );
}

#[test]
fn a_directory_that_turns_read_only_during_the_scan_is_reported_and_left_clean() {
    with_mount_rights(
        "a_directory_that_turns_read_only_during_the_scan_is_reported_and_left_clean",
        || {
            let fx = Fixture::new(Duration::from_millis(400));
            let fs = Tmpfs::new(1024);
            let out = fx.scan_with(fs.path(), || fs.read_only());
            let (stdout, stderr) = text(&out);
            assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
            // The user still gets the results on screen, and is told the file is missing.
            assert!(stdout.contains("150 comments, 0 posts"), "{stdout}");
            assert!(!stdout.contains("Files:"), "{stdout}");
            assert!(
                stderr.contains("error: the report could not be saved: writing ")
                    && stderr.contains("failed: Read-only file system (os error 30)"),
                "{stderr}"
            );
            assert!(entries(fs.path()).is_empty(), "{:?}", entries(fs.path()));
            fs.read_write();
            assert_saved(&fx.scan(fs.path()), fs.path());
        },
    );
}

#[test]
fn a_full_disk_leaves_no_partial_file_and_the_next_scan_works() {
    with_mount_rights(
        "a_full_disk_leaves_no_partial_file_and_the_next_scan_works",
        || {
            let fx = Fixture::new(Duration::ZERO);
            // Measure the report on an ordinary disk first.
            let plain = tempfile::tempdir().expect("tempdir");
            assert_saved(&fx.scan(plain.path()), plain.path());
            let size = |suffix: &str| {
                let name = entries(plain.path())
                    .into_iter()
                    .find(|f| f.ends_with(suffix))
                    .expect("file");
                std::fs::metadata(plain.path().join(name))
                    .expect("stat")
                    .len()
            };
            let (csv, json) = (size("_reddit.csv"), size(".json"));
            let pages = |bytes: u64| bytes.div_ceil(4096);
            assert!(pages(json) >= 4, "the JSON report is {json} bytes");
            // Room for the CSV and half the JSON: the CSV is written, the JSON is not.
            let fs = Tmpfs::new(4 * (pages(csv) + pages(json) / 2));

            let out = fx.scan(fs.path());
            let (stdout, stderr) = text(&out);
            assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
            assert!(stdout.contains("150 comments, 0 posts"), "{stdout}");
            assert!(!stdout.contains("Files:"), "{stdout}");
            assert!(
                stderr.contains("error: the report could not be saved: writing ")
                    && stderr.contains(".json failed: No space left on device (os error 28)"),
                "{stderr}"
            );
            assert!(
                entries(fs.path()).is_empty(),
                "neither a temp file nor the CSV without its report: {:?}",
                entries(fs.path())
            );

            // The space is given back: nothing was held, the next scan fits.
            drop(fs);
            let fs = Tmpfs::new(4 * (pages(csv) + pages(json) + 8));
            assert_saved(&fx.scan(fs.path()), fs.path());
        },
    );
}

#[test]
fn a_scans_directory_removed_during_the_scan_is_created_again_and_the_report_written() {
    // No mount needed: any directory can be removed.
    let fx = Fixture::new(Duration::from_millis(400));
    let parent = tempfile::tempdir().expect("tempdir");
    let scans: PathBuf = parent.path().join("scans");
    let out = fx.scan_with(&scans, || {
        assert!(scans.is_dir(), "the scan created its directory");
        std::fs::remove_dir_all(&scans).expect("remove the scans dir");
    });
    let (_, stderr) = text(&out);
    assert!(
        stderr.contains("the scans directory disappeared during the scan: created it again"),
        "{stderr}"
    );
    let report = assert_saved(&out, &scans);
    assert_eq!(report["reddit"]["status"], "completed");
    assert_eq!(entries(parent.path()), ["scans"]);
}
