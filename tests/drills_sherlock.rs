//! Fault drills for the Sherlock half, through the real binary with a misbehaving stand-in for
//! Sherlock (`SHERLOCK_BIN`, a shell script): killed by a signal mid-stream, exiting 1 mid-stream
//! while a child it left holds its output open, hanging forever with a background grandchild,
//! finishing but leaving a child behind, printing hostile garbage. Each drill asserts what the
//! user reads (exit code, summary), what is on disk (the report), and that no process of the
//! run outlives the scan (the process table, by a path only this test's processes carry).
//!
//! Already covered elsewhere: a plain exit 1 and plain garbage
//! (`scan_cli::a_failing_sherlock_is_a_clear_error_and_the_report_says_so`,
//! `scan_cli::garbage_output_is_a_clear_error`), a missing binary
//! (`scan_cli::a_missing_sherlock_bin_is_a_configuration_error`), and the real Sherlock killed
//! at the deadline (`scan_cli::the_deadline_returns_partial_results_and_kills_sherlock`).

mod support;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Longest any drill may run before the test gives up on it (a safety net so a regression
/// fails instead of hanging the suite; the drills themselves take a few seconds).
const WATCHDOG: Duration = Duration::from_secs(90);

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    /// A temp dir holding the fake Sherlock and `grandchild`, a link to `sleep` whose command
    /// line carries this dir's path (so the process table shows which processes are ours).
    fn new(script: &str) -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        std::os::unix::fs::symlink("/bin/sleep", dir.path().join("grandchild")).expect("link");
        let body = format!(
            "D='{}'\n# the username is the last argument\nfor a in \"$@\"; do u=\"$a\"; done\n{script}",
            dir.path().display()
        );
        support::script(dir.path(), "fake-sherlock", &body);
        Fixture { dir }
    }

    fn scans(&self) -> PathBuf {
        self.dir.path().join("scans")
    }

    fn needle(&self) -> String {
        self.dir.path().display().to_string()
    }

    /// Runs `scan alice --mode sherlock` to its end (or the watchdog).
    fn scan(&self, env: &[(&str, &str)]) -> Output {
        let mut cmd = support::scanner(self.dir.path());
        cmd.env("SHERLOCK_BIN", self.dir.path().join("fake-sherlock"))
            .env("SCANS_DIR", self.scans())
            .env("SHERLOCK_CONTROL_CHECK", "false")
            .args(["scan", "alice", "--mode", "sherlock"]);
        for (k, v) in env {
            cmd.env(k, v);
        }
        run_with_watchdog(cmd)
    }

    fn report_on_disk(&self) -> Value {
        support::assert_no_temp_files(&self.scans());
        let files = support::files_in(&self.scans());
        assert_eq!(files.len(), 2, "json and sherlock csv: {files:?}");
        let json = files.iter().find(|f| f.ends_with(".json")).expect("json");
        serde_json::from_slice(&std::fs::read(self.scans().join(json)).expect("read"))
            .expect("the report on disk is whole JSON")
    }

    /// Asserts nothing started by this drill is still running. A process just sent SIGKILL may
    /// take a moment to leave the table, so this looks again for a few seconds before failing.
    fn assert_no_orphans(&self) {
        let until = Instant::now() + Duration::from_secs(5);
        loop {
            let left = support::processes_mentioning(&self.needle());
            if left.is_empty() {
                return;
            }
            if Instant::now() > until {
                let cmdlines: Vec<String> = left
                    .iter()
                    .map(|pid| {
                        std::fs::read(format!("/proc/{pid}/cmdline"))
                            .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
                            .unwrap_or_default()
                    })
                    .collect();
                for pid in &left {
                    let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
                }
                panic!("processes outlived the scan: {left:?} {cmdlines:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Like `Command::output`, but kills the scanner and fails after [`WATCHDOG`].
fn run_with_watchdog(mut cmd: Command) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run account-scanner");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out_thread = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let err_thread = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > WATCHDOG {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the scan did not end within {WATCHDOG:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output {
        status,
        stdout: out_thread.join().expect("stdout reader"),
        stderr: err_thread.join().expect("stderr reader"),
    }
}

fn texts(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn site_names(report: &Value) -> Vec<(String, String)> {
    report["sherlock"]["sites"]
        .as_array()
        .expect("sites")
        .iter()
        .map(|s| {
            (
                s["site"].as_str().unwrap_or("").to_string(),
                s["status"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

const STARTED_AND_TWO_SITES: &str = r#"echo "[*] Checking username $u on:"
echo "[+] SiteA: https://a.example/$u"
echo "[-] SiteB: Not Found!"
"#;

#[test]
fn killed_by_a_signal_mid_stream_keeps_what_it_printed_and_kills_its_children() {
    let fx = Fixture::new(&format!(
        "{STARTED_AND_TWO_SITES}\"$D/grandchild\" 1000 &\nkill -9 $$\n"
    ));
    let out = fx.scan(&[]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(
            "  error: Sherlock was killed by signal 9 before it finished; the 2 site results it printed before are kept"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("2 sites checked · failed"), "{stdout}");
    assert!(stdout.contains("Found on 1 site(s):"), "{stdout}");
    assert!(
        stdout.contains("SiteA  https://a.example/alice"),
        "{stdout}"
    );
    let report = fx.report_on_disk();
    assert_eq!(report["sherlock"]["status"], "failed");
    assert_eq!(report["sherlock"]["sites_checked"], 2);
    assert_eq!(
        site_names(&report),
        [
            ("SiteA".to_string(), "claimed".to_string()),
            ("SiteB".to_string(), "available".to_string())
        ]
    );
    fx.assert_no_orphans();
}

#[test]
fn exiting_1_mid_stream_says_why_even_while_a_child_holds_its_output_open() {
    // The child inherits stdout and stderr: the scanner must not wait on it to read the error.
    let fx = Fixture::new(
        r#"echo "[*] Checking username $u on:"
echo "[+] SiteA: https://a.example/$u"
"$D/grandchild" 1000 &
echo 'Traceback (most recent call last):' >&2
echo '  File "sherlock.py", line 1, in <module>' >&2
echo 'RuntimeError: the site list is broken' >&2
exit 1
"#,
    );
    let out = fx.scan(&[]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    let error = "Sherlock exited with status 1: RuntimeError: the site list is broken; the 1 site result it printed before is kept";
    assert!(stdout.contains(&format!("  error: {error}")), "{stdout}");
    assert!(stdout.contains("Found on 1 site(s):"), "{stdout}");
    let report = fx.report_on_disk();
    assert_eq!(report["sherlock"]["status"], "failed");
    assert_eq!(report["sherlock"]["error"], error);
    assert_eq!(report["sherlock"]["sites_checked"], 1);
    fx.assert_no_orphans();
}

#[test]
fn hanging_forever_with_grandchildren_is_stopped_at_the_deadline_and_nothing_survives() {
    // The control probe is on here: its run of the same script hangs too and must be stopped.
    let fx = Fixture::new(
        r#"echo "[*] Checking username $u on:"
if [ "$u" = alice ]; then echo "[+] SiteA: https://a.example/$u"; else echo "[-] SiteA: Not Found!"; fi
"$D/grandchild" 1000 &
( "$D/grandchild" 1002 & wait ) &
"$D/grandchild" 1001
"#,
    );
    let out = fx.scan(&[("SCAN_TIMEOUT", "3"), ("SHERLOCK_CONTROL_CHECK", "true")]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "a deadline is not a failure\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains(
            "PARTIAL RESULTS: the scan reached its 3s deadline (SCAN_TIMEOUT); 1 site had been checked"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("Found on 1 site(s):"), "{stdout}");
    assert!(stdout.contains("cut off by the deadline"), "{stdout}");
    let report = fx.report_on_disk();
    assert_eq!(report["partial"], true);
    assert_eq!(report["sherlock"]["status"], "partial");
    // The deadline is honoured by the scan as a whole, the version query of the hanging
    // program included (it used to wait 30 s for it). The slack is for a loaded machine.
    let took = report["duration_ms"].as_u64().expect("duration");
    assert!(took < 3_000 + 10_000, "the 3 s scan recorded {took} ms");
    assert_eq!(
        site_names(&report),
        [("SiteA".to_string(), "claimed".to_string())]
    );
    fx.assert_no_orphans();
}

#[test]
fn finishing_but_leaving_a_child_behind_completes_and_the_child_is_killed() {
    let fx = Fixture::new(&format!(
        "{STARTED_AND_TWO_SITES}echo '[*] Search completed with 1 results'\n\"$D/grandchild\" 1000 &\nexit 0\n"
    ));
    let out = fx.scan(&[]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("2 sites checked · completed"), "{stdout}");
    assert!(!stdout.contains("error:"), "{stdout}");
    let report = fx.report_on_disk();
    assert_eq!(report["sherlock"]["status"], "completed");
    assert_eq!(report["partial"], false);
    fx.assert_no_orphans();
}

#[test]
fn hostile_garbage_is_a_clear_error_that_carries_no_control_characters() {
    // Terminal escapes (a title change, colours), NUL, invalid UTF-8, and a 20 000-byte line.
    let fx = Fixture::new(
        r#"printf '\033]0;pwned\007\033[31mI am red\033[0m \000 \377\376 not sherlock\n'
head -c 20000 /dev/zero | tr '\000' 'x'
printf '\n\033[2Jcleared\n' >&2
exit 0
"#,
    );
    let out = fx.scan(&[]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    let line = stdout
        .lines()
        .find(|l| l.contains("error: "))
        .expect("an error line");
    assert!(
        line.starts_with(
            "  error: Sherlock printed nothing recognisable (is SHERLOCK_BIN really Sherlock?): I am red"
        ),
        "{line:?}"
    );
    assert!(line.contains("not sherlock"), "{line:?}");
    for (name, text) in [("stdout", &stdout), ("stderr", &stderr)] {
        assert!(
            !text.contains('\u{1b}') && !text.contains('\0') && !text.contains('\u{7}'),
            "a control character reached the terminal on {name}: {text:?}"
        );
    }
    let report = fx.report_on_disk();
    assert_eq!(report["sherlock"]["status"], "failed");
    let error = report["sherlock"]["error"].as_str().expect("error");
    assert!(!error.chars().any(char::is_control), "{error:?}");
    assert!(
        error.chars().count() < 2000,
        "the error is bounded: {} chars",
        error.len()
    );
    fx.assert_no_orphans();
}

#[test]
fn a_sherlock_that_is_not_executable_is_a_configuration_error() {
    let fx = Fixture::new("exit 0");
    let bin: &Path = &fx.dir.path().join("not-executable");
    std::fs::write(bin, "#!/bin/sh\necho '[*] Checking username x on:'\n").expect("write");
    let out = support::scanner(fx.dir.path())
        .env("SHERLOCK_BIN", bin)
        .env("SCANS_DIR", fx.scans())
        .args(["scan", "alice", "--mode", "sherlock"])
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "SHERLOCK_BIN is set to {}, but it is not an executable file",
            bin.display()
        )),
        "{stderr}"
    );
    assert!(support::files_in(&fx.scans()).is_empty());
}
