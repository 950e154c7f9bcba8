//! Shared by the integration tests: the real binary with a clean environment, and the real,
//! pinned Sherlock installed once under `target/` by the binary's own `setup` command.
#![allow(dead_code)]

pub mod bot;
pub mod discord_spec;
pub mod fake_discord;
pub mod fake_openai;
pub mod fake_perspective;
pub mod fake_reddit;
pub mod fake_server;
pub mod fake_sites;
pub mod tmpfs;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

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
pub fn processes_mentioning(needle: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return pids;
    };
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if pid == std::process::id() {
            continue;
        }
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(needle) {
                pids.push(pid);
            }
        }
    }
    pids
}

/// Report files in a directory, sorted by name (hidden entries such as `.cache` left out).
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

pub fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Writes an executable shell script (a stand-in for a misbehaving Sherlock).
pub fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}
