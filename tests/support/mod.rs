//! Shared by the integration tests: the real binary with a clean environment, and the real,
//! pinned Sherlock installed once under `target/` by the binary's own `setup` command.
#![allow(dead_code)]

pub mod bot;
pub mod child_log;
pub mod endpoint;
pub mod fake_discord;
pub mod fake_openai;
pub mod fake_perspective;
pub mod fake_reddit;
pub mod fake_server;
pub mod fake_sites;
pub mod machine;
pub mod minilm;
pub mod postgres;
pub mod tmpfs;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use fake_sites::{FakeSites, FakeSitesConfig};

pub const BIN: &str = env!("CARGO_BIN_EXE_account-scanner");

/// The data home holding the managed Sherlock venv for every test run (cached across runs).
pub fn sherlock_home() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("sherlock-home")
}

/// Installs the pinned Sherlock through `account-scanner setup` (idempotent, locked against
/// parallel test binaries) and returns its executable.
pub fn sherlock() -> &'static Path {
    static SHERLOCK: OnceLock<PathBuf> = OnceLock::new();
    SHERLOCK.get_or_init(|| {
        let out = Command::new(BIN)
            .arg("setup")
            .env("XDG_DATA_HOME", sherlock_home())
            .env_remove("SHERLOCK_BIN")
            .output()
            .expect("run account-scanner setup");
        assert!(
            out.status.success(),
            "setup failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        assert!(path.is_file(), "setup printed {path:?}");
        path
    })
}

/// The binary with nothing inherited that could change its behaviour: no `.env` (it runs in
/// `workdir`), no SHERLOCK_* or other configuration from the developer's shell, and a PATH
/// without any `sherlock` so discovery is deterministic.
pub fn scanner(workdir: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .current_dir(workdir)
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", workdir)
        .env("XDG_DATA_HOME", sherlock_home())
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "warn");
    cmd
}

/// Process ids whose command line mentions `needle` (e.g. a test's unique site-list path).
/// Panics when the process table cannot be read (no `/proc`: not Linux, or not mounted), so an
/// "outlived the scan" check can never pass by seeing nothing.
pub fn processes_mentioning(needle: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    let entries = std::fs::read_dir("/proc").unwrap_or_else(|e| {
        panic!("cannot read the process table /proc ({e}): these checks need Linux with /proc")
    });
    let mut seen_self = false;
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if pid == std::process::id() {
            seen_self = true;
            continue;
        }
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(needle) {
                pids.push(pid);
            }
        }
    }
    // A /proc that does not list this very process is not this machine's process table.
    assert!(
        seen_self,
        "/proc does not list this test process ({}): it is not a usable process table",
        std::process::id()
    );
    pids
}

/// Report files in a directory, sorted by name (hidden entries such as `.cache` left out).
/// The real Sherlock installed, the fake sites running, and a temp dir holding their site list
/// (`sites.json`) and the scans directory (`scans/`).
pub struct SitesWorkdir {
    pub sites: FakeSites,
    pub dir: tempfile::TempDir,
}

impl SitesWorkdir {
    pub fn new(cfg: FakeSitesConfig) -> SitesWorkdir {
        sherlock();
        let sites = FakeSites::start(cfg);
        let dir = tempfile::tempdir().expect("tempdir");
        sites
            .write_site_list(&dir.path().join("sites.json"))
            .expect("write site list");
        SitesWorkdir { sites, dir }
    }

    pub fn list(&self) -> PathBuf {
        self.dir.path().join("sites.json")
    }

    pub fn scans(&self) -> PathBuf {
        self.dir.path().join("scans")
    }

    /// The binary (clean environment, see [`scanner`]) pointed at the site list and the scans
    /// directory.
    pub fn command(&self) -> Command {
        let mut cmd = scanner(self.dir.path());
        cmd.env("SHERLOCK_SITES", self.list())
            .env("SCANS_DIR", self.scans());
        cmd
    }
}

/// A `--json` run's report from its stdout (the test fails with stderr shown if it is not JSON).
pub fn stdout_json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}); stderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Fails the test if a report's temp file (`.NAME.partial`) is left in `dir`.
pub fn assert_no_temp_files(dir: &Path) {
    let all: Vec<String> = std::fs::read_dir(dir)
        .expect("scans dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        all.iter().all(|n| !n.ends_with(".partial")),
        "a temp file was left: {all:?}"
    );
}

/// Every entry of a directory, hidden ones included, sorted (none if it cannot be read).
pub fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The files a user would see: hidden ones (temp files, the cache) left out.
pub fn files_in(dir: &Path) -> Vec<String> {
    entries(dir)
        .into_iter()
        .filter(|n| !n.starts_with('.'))
        .collect()
}

/// Writes an executable shell script (a stand-in for a misbehaving Sherlock).
pub fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}
