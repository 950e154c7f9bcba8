//! Runs the real Sherlock as a subprocess and streams its per-site results.
//!
//! The child gets an argument vector (never a shell) ending in `-- <username>`, an environment
//! with no secret in it ([`child_env`]), its own process group (so a deadline kills it and
//! anything it started), and a temp dir for its CSV. Results are taken from stdout line by line
//! as Sherlock prints them, so a run stopped at the deadline still yields every site checked so
//! far; when the run completes, the CSV adds HTTP status and timings.

pub mod child_env;
pub mod control;
pub mod install;
pub mod output;

use std::ffi::OsString;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::{SherlockConfig, SiteList};
use crate::model::events::{EventSink, ScanEvent};
use crate::model::{SiteResult, StopReason, Username};
pub use install::SherlockInstall;

/// The launcher (`sherlock/launcher.py`), written next to each run: it widens Sherlock's worker
/// pool and answers its update check locally. Embedded so every install uses this exact file.
pub const LAUNCHER: &str = include_str!("../../../sherlock/launcher.py");
const LAUNCHER_FILE: &str = "account-scanner-launcher.py";

/// Longest stdout line kept; longer ones are garbage (Sherlock's lines are short).
const MAX_LINE: usize = 16 * 1024;
/// After Sherlock exits, how long a process it left behind may keep its stdout open.
const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum SherlockError {
    #[error(
        "Sherlock is not installed: run `account-scanner setup`, install it on PATH, or set SHERLOCK_BIN"
    )]
    NotInstalled,
    #[error("Sherlock could not be started ({program}): {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("Sherlock exited with status {code}: {detail}")]
    Exit { code: i32, detail: String },
    #[error("Sherlock was killed by signal {signal} before it finished")]
    Signal { signal: i32 },
    #[error("Sherlock printed nothing recognisable (is SHERLOCK_BIN really Sherlock?): {detail}")]
    Garbage { detail: String },
    #[error("reading Sherlock's output failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("the site list could not be read: {0}")]
    SiteList(String),
}

#[derive(Debug)]
pub enum RunOutcome {
    Completed,
    Stopped(StopReason),
    Failed(SherlockError),
}

#[derive(Debug)]
pub struct SherlockRun {
    /// In the order Sherlock reported them (its site-list order).
    pub sites: Vec<SiteResult>,
    pub sites_total: Option<usize>,
    pub outcome: RunOutcome,
}

/// A configured way to run Sherlock.
#[derive(Debug, Clone)]
pub struct SherlockRunner {
    pub install: SherlockInstall,
    pub sites: SiteList,
    pub site_timeout: Duration,
    pub nsfw: bool,
    pub workers: u32,
}

impl SherlockRunner {
    pub fn new(install: SherlockInstall, config: &SherlockConfig) -> Self {
        SherlockRunner {
            install,
            sites: config.sites.clone(),
            site_timeout: config.site_timeout,
            nsfw: config.nsfw,
            workers: config.workers,
        }
    }

    /// True when runs go through the project's launcher (not for an explicit `SHERLOCK_BIN`).
    pub fn uses_launcher(&self) -> bool {
        self.install.interpreter.is_some()
    }

    /// Program and full argument vector: the launcher under the install's Python, or the
    /// executable itself.
    fn command(
        &self,
        username: &Username,
        workdir: &Path,
    ) -> std::io::Result<(std::path::PathBuf, Vec<OsString>)> {
        let args = self.args(username, workdir);
        match &self.install.interpreter {
            Some(python) => {
                let launcher = workdir.join(LAUNCHER_FILE);
                std::fs::write(&launcher, LAUNCHER)?;
                let mut full = vec![launcher.into_os_string()];
                full.extend(args);
                Ok((python.clone(), full))
            }
            None => Ok((self.install.program.clone(), args)),
        }
    }

    /// The argument vector for one username; the username is always last, after `--`.
    pub fn args(&self, username: &Username, output_dir: &Path) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![
            "--print-all".into(),
            "--no-color".into(),
            "--timeout".into(),
            self.site_timeout.as_secs().max(1).to_string().into(),
            "--csv".into(),
            "--folderoutput".into(),
            output_dir.into(),
        ];
        match &self.sites {
            SiteList::Bundled => args.push("--local".into()),
            SiteList::Remote => {}
            SiteList::File(path) => {
                args.push("--json".into());
                args.push(path.into());
                args.push("--ignore-exclusions".into());
            }
        }
        if self.nsfw {
            args.push("--nsfw".into());
        }
        args.push("--".into());
        args.push(username.as_str().into());
        args
    }

    /// How many sites this run will check, when the list is a file we can read.
    pub async fn count_sites(&self) -> Option<usize> {
        let path = match &self.sites {
            SiteList::File(path) => path.as_path(),
            SiteList::Bundled => self.install.bundled_list.as_deref()?,
            SiteList::Remote => return None,
        };
        let bytes = tokio::fs::read(path).await.ok()?;
        count_sites(&bytes, self.nsfw)
    }

    /// Runs Sherlock for `username` until it finishes, `deadline` passes or `cancel` fires.
    pub async fn run(
        &self,
        username: &Username,
        deadline: Instant,
        cancel: &CancellationToken,
        events: &EventSink,
    ) -> SherlockRun {
        let sites_total = self.count_sites().await;
        events.emit(ScanEvent::SherlockStarted { sites_total });
        let mut sites = Vec::new();
        let outcome = match self
            .run_child(username, deadline, cancel, events, sites_total, &mut sites)
            .await
        {
            Ok(outcome) => outcome,
            Err(error) => RunOutcome::Failed(error),
        };
        crate::ops::telemetry::sherlock_run(match outcome {
            RunOutcome::Completed => "completed",
            RunOutcome::Stopped(_) => "stopped",
            RunOutcome::Failed(_) => "failed",
        });
        SherlockRun {
            sites,
            sites_total,
            outcome,
        }
    }

    async fn run_child(
        &self,
        username: &Username,
        deadline: Instant,
        cancel: &CancellationToken,
        events: &EventSink,
        sites_total: Option<usize>,
        sites: &mut Vec<SiteResult>,
    ) -> Result<RunOutcome, SherlockError> {
        let workdir = tempfile::Builder::new()
            .prefix("account-scanner-sherlock-")
            .tempdir()?;
        let (program, args) = self.command(username, workdir.path())?;
        // A cleared environment plus the allow-list (no secret reaches Sherlock), then what the
        // project sets itself.
        let mut child = child_env::command(&program, child_env::Child::Sherlock);
        child
            .args(args)
            .current_dir(workdir.path())
            .env("SHERLOCK_WORKERS", self.workers.to_string())
            .env("PYTHONUNBUFFERED", "1")
            .env("PYTHONIOENCODING", "utf-8")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .process_group(0);
        // A process killed outright (`kill -9`, the OOM killer) drops nothing, so
        // `kill_on_drop` cannot act: the kernel then kills Sherlock, so no orphan keeps
        // probing sites (and holding CPU) on a machine whose job another worker took over.
        #[cfg(target_os = "linux")]
        // SAFETY: prctl(2) is async-signal-safe and touches no memory of the parent.
        unsafe {
            child.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                    .map_err(std::io::Error::from)
            });
        }
        let mut child = child.spawn().map_err(|source| SherlockError::Spawn {
            program: program.display().to_string(),
            source,
        })?;
        // Taken now: `child.id()` is `None` once the child has been reaped, and the group (its
        // id is the child's pid) may outlive it.
        let pgid = child.id();
        let _group = pgid.map(ProcessGroup);
        tracing::debug!(pid = child.id(), username = %username, "sherlock started");

        let stdout = child.stdout.take().ok_or_else(|| {
            SherlockError::Io(std::io::Error::other("child stdout was not captured"))
        })?;
        let stderr_tail = child
            .stderr
            .take()
            .map(|e| tokio::spawn(read_tail(e, 2048)));
        let mut reader = BufReader::new(stdout);
        let mut line = Vec::with_capacity(256);
        let mut noise = Tail::default();
        let mut started = false;
        let mut status: Option<ExitStatus> = None;
        let mut drain_until: Option<Instant> = None;

        let stop = loop {
            let mut limited = (&mut reader).take(MAX_LINE as u64);
            let drained = async {
                match drain_until {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                _ = cancel.cancelled() => break Some(StopReason::Cancelled),
                _ = tokio::time::sleep_until(deadline) => break Some(StopReason::Deadline),
                exited = child.wait(), if status.is_none() => {
                    status = Some(exited?);
                    drain_until = Some(Instant::now() + DRAIN_AFTER_EXIT);
                }
                _ = drained => break None,
                read = limited.read_until(b'\n', &mut line) => {
                    let n = read?;
                    if n == 0 {
                        break None;
                    }
                    if line.last() != Some(&b'\n') && line.len() < MAX_LINE {
                        continue; // EOF without newline: the next read returns 0 and ends the loop
                    }
                    let text = String::from_utf8_lossy(&line).into_owned();
                    line.clear();
                    match output::parse_line(&text) {
                        output::SherlockLine::Site(result) => {
                            sites.push(result.clone());
                            events.emit(ScanEvent::SiteChecked {
                                result,
                                checked: sites.len(),
                                sites_total,
                            });
                        }
                        output::SherlockLine::Started { .. } => started = true,
                        output::SherlockLine::Finished { .. } => {}
                        output::SherlockLine::LauncherWarning(warning) => {
                            static WARNED: std::sync::Once = std::sync::Once::new();
                            WARNED.call_once(|| tracing::warn!(%warning, "Sherlock runs without the launcher's patches"));
                        }
                        output::SherlockLine::Other => noise.push(&text),
                    }
                }
            }
        };
        if !line.is_empty() {
            noise.push(&String::from_utf8_lossy(&line));
        }

        if let Some(reason) = stop {
            tracing::info!(?reason, checked = sites.len(), "stopping sherlock");
            kill_group(pgid);
            let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
            return Ok(RunOutcome::Stopped(reason));
        }

        let status = match status {
            Some(status) => status,
            None => tokio::select! {
                biased;
                _ = cancel.cancelled() => {
                    kill_group(pgid);
                    return Ok(RunOutcome::Stopped(StopReason::Cancelled));
                }
                _ = tokio::time::sleep_until(deadline) => {
                    kill_group(pgid);
                    return Ok(RunOutcome::Stopped(StopReason::Deadline));
                }
                exited = child.wait() => exited?,
            },
        };
        // Anything Sherlock left running in its group goes now, so its stderr pipe closes.
        kill_group(pgid);
        let stderr = match stderr_tail {
            Some(task) => tokio::time::timeout(Duration::from_secs(2), task)
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or_default(),
            None => String::new(),
        };

        if !status.success() {
            if !stderr.trim().is_empty() {
                tracing::warn!(stderr = %stderr.trim(), "sherlock failed; the end of its stderr");
            }
            // A Python traceback ends in the line that says what went wrong.
            let last_stderr_line = printable(
                stderr
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or(""),
                300,
            );
            let detail = first_non_empty(&[noise.last(), &last_stderr_line])
                .unwrap_or("no message")
                .to_string();
            return Err(match status.code() {
                Some(code) => SherlockError::Exit { code, detail },
                None => {
                    use std::os::unix::process::ExitStatusExt;
                    SherlockError::Signal {
                        signal: status.signal().unwrap_or(0),
                    }
                }
            });
        }
        if !started && sites.is_empty() {
            let detail = first_non_empty(&[noise.joined().trim(), &printable(&stderr, 600)])
                .unwrap_or("no output at all")
                .to_string();
            return Err(SherlockError::Garbage { detail });
        }
        let csv_path = workdir.path().join(format!("{username}.csv"));
        match tokio::fs::read(&csv_path).await {
            Ok(bytes) => output::merge_csv(sites, output::parse_csv(&bytes)),
            Err(e) => tracing::warn!(error = %e, "sherlock finished without writing its CSV"),
        }
        Ok(RunOutcome::Completed)
    }
}

/// Counts the sites in a `data.json` the way Sherlock does: `$schema` is not a site, and NSFW
/// sites are dropped unless `--nsfw`.
pub fn count_sites(bytes: &[u8], nsfw: bool) -> Option<usize> {
    let value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    let map = value.as_object()?;
    Some(
        map.iter()
            .filter(|(k, _)| k.as_str() != "$schema")
            .filter(|(_, v)| nsfw || !v.get("isNSFW").and_then(|b| b.as_bool()).unwrap_or(false))
            .count(),
    )
}

/// Kills the child's whole process group when dropped (a cancelled scan, a panic).
struct ProcessGroup(u32);

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        kill_group(Some(self.0));
    }
}

fn kill_group(pgid: Option<u32>) {
    if let Some(pgid) = pgid.and_then(|p| i32::try_from(p).ok()).filter(|p| *p > 1) {
        // ESRCH (nothing left in the group) is the normal case after a clean exit.
        let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
    }
}

/// The last few non-empty lines that were not results, for error messages.
#[derive(Default)]
struct Tail(std::collections::VecDeque<String>);

impl Tail {
    fn push(&mut self, line: &str) {
        // It ends up in messages shown on a terminal and in Discord: no escape sequences or
        // other control characters.
        let line = printable(line, 300);
        if line.is_empty() {
            return;
        }
        if self.0.len() == 4 {
            self.0.pop_front();
        }
        self.0.push_back(line);
    }

    fn last(&self) -> &str {
        self.0.back().map(String::as_str).unwrap_or("")
    }

    fn joined(&self) -> String {
        self.0.iter().cloned().collect::<Vec<_>>().join(" | ")
    }
}

/// Text from the child made safe to show: escape sequences removed, line breaks and tabs made
/// spaces, other control characters replaced, trimmed, at most `max` characters.
fn printable(text: &str, max: usize) -> String {
    output::strip_escapes(text)
        .chars()
        .map(|c| match c {
            '\n' | '\t' => ' ',
            c if c.is_control() => '\u{FFFD}',
            c => c,
        })
        .collect::<String>()
        .trim()
        .chars()
        .take(max)
        .collect()
}

fn first_non_empty<'a>(candidates: &[&'a str]) -> Option<&'a str> {
    candidates.iter().copied().find(|s| !s.is_empty())
}

/// Reads a stream to its end, keeping only the last `keep` bytes.
async fn read_tail(mut stream: impl AsyncRead + Unpin, keep: usize) -> String {
    let mut tail: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 4096];
    while let Ok(n) = stream.read(&mut chunk).await {
        if n == 0 {
            break;
        }
        tail.extend_from_slice(&chunk[..n]);
        if tail.len() > keep {
            tail.drain(..tail.len() - keep);
        }
    }
    String::from_utf8_lossy(&tail).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SiteList;

    fn runner(sites: SiteList, nsfw: bool) -> SherlockRunner {
        SherlockRunner {
            install: SherlockInstall {
                program: "/venv/bin/sherlock".into(),
                origin: install::Origin::Configured,
                version: None,
                bundled_list: None,
                interpreter: None,
            },
            sites,
            site_timeout: Duration::from_secs(10),
            nsfw,
            workers: 64,
        }
    }

    #[test]
    fn username_is_the_last_argument_after_a_double_dash() {
        let user = Username::parse("alice").expect("valid");
        let args =
            runner(SiteList::File("/lists/x.json".into()), true).args(&user, Path::new("/tmp/o"));
        let args: Vec<_> = args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            args,
            [
                "--print-all",
                "--no-color",
                "--timeout",
                "10",
                "--csv",
                "--folderoutput",
                "/tmp/o",
                "--json",
                "/lists/x.json",
                "--ignore-exclusions",
                "--nsfw",
                "--",
                "alice"
            ]
        );
        let bundled = runner(SiteList::Bundled, false).args(&user, Path::new("/o"));
        assert!(bundled.contains(&OsString::from("--local")));
        assert!(!bundled.contains(&OsString::from("--nsfw")));
    }

    #[test]
    fn counts_sites_like_sherlock() {
        let list = br#"{"$schema":"x","A":{"url":"u"},"B":{"isNSFW":true},"C":{"isNSFW":false}}"#;
        assert_eq!(count_sites(list, false), Some(2));
        assert_eq!(count_sites(list, true), Some(3));
        assert_eq!(count_sites(b"not json", false), None);
    }
}
