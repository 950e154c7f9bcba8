//! Configuration corners, through the binary: `PYTHON`, `RUST_LOG` and `XDG_DATA_HOME` are read
//! by the one configuration reader like every other variable: blank means unset, and an invalid
//! value is reported with the variable's name (exit 3) instead of being replaced or ignored.

mod support;

use std::path::{Path, PathBuf};

/// A stand-in `python3` in `dir/bin` for `setup` (no network): `-m venv DIR` makes
/// `DIR/bin/python`, whose `-m pip install` "installs" a `sherlock` that answers `--version`.
fn python_on_path(dir: &Path) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).expect("mkdir");
    let venv_python = support::script(
        dir,
        "venv-python",
        r#"[ "$1 $2 $3" = "-m pip install" ] || exit 9
printf '#!/bin/sh\necho "sherlock v0.16.2"\n' > "$(dirname "$0")/sherlock"
chmod +x "$(dirname "$0")/sherlock""#,
    );
    support::script(
        &bin,
        "python3",
        &format!(
            r#"[ "$1 $2" = "-m venv" ] || exit 9
mkdir -p "$3/bin" && cp '{}' "$3/bin/python""#,
            venv_python.display()
        ),
    );
    bin
}

#[test]
fn a_blank_python_means_python3_from_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = python_on_path(dir.path());
    let data = dir.path().join("data");
    let out = support::scanner(dir.path())
        .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
        .env("XDG_DATA_HOME", &data)
        .env("PYTHON", "  ")
        .arg("setup")
        .output()
        .expect("run setup");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        data.join("account-scanner/sherlock-0.16.2/bin/sherlock")
            .display()
            .to_string()
    );
}

#[test]
fn an_invalid_rust_log_is_reported_like_any_other_variable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let expected = "RUST_LOG: `account_scanner=loud` is not a log filter";
    let check = support::scanner(dir.path())
        .env("RUST_LOG", "account_scanner=loud")
        .arg("check")
        .output()
        .expect("run check");
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert_eq!(check.status.code(), Some(3), "{stdout}");
    assert!(stdout.contains(expected), "{stdout}");

    let scan = support::scanner(dir.path())
        .env("RUST_LOG", "account_scanner=loud")
        .args(["scan", "alice"])
        .output()
        .expect("run scan");
    let stderr = String::from_utf8_lossy(&scan.stderr);
    assert_eq!(scan.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains(expected), "{stderr}");

    // A valid filter is the one used: its debug lines appear on stderr.
    let sherlock = support::script(
        dir.path(),
        "fake-sherlock",
        r#"echo "[*] Checking username alice on:"; echo "[+] GitHub: https://github.com/alice""#,
    );
    let scan = support::scanner(dir.path())
        .env("RUST_LOG", "warn,account_scanner::sources::sherlock=debug")
        .env("SHERLOCK_BIN", &sherlock)
        .env("SHERLOCK_CONTROL_CHECK", "false")
        .args(["scan", "alice", "--mode", "sherlock"])
        .output()
        .expect("run scan");
    let stderr = String::from_utf8_lossy(&scan.stderr);
    assert_eq!(scan.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("sherlock started"), "{stderr}");
}

#[test]
fn a_relative_xdg_data_home_is_reported_not_ignored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = python_on_path(dir.path());
    let out = support::scanner(dir.path())
        .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
        .env("XDG_DATA_HOME", "data")
        .arg("setup")
        .output()
        .expect("run setup");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains(
            "XDG_DATA_HOME: `data` is relative: the XDG base directory spec allows absolute paths only"
        ),
        "{stderr}"
    );
    assert!(
        !dir.path().join(".local").exists(),
        "nothing installed under HOME"
    );
}

#[test]
fn xdg_data_home_decides_where_sherlock_is_installed_and_check_says_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("elsewhere");
    let out = support::scanner(dir.path())
        .env("XDG_DATA_HOME", &data)
        .arg("check")
        .output()
        .expect("run check");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!(
            "sherlock: not installed; `account-scanner setup` (or the first scan) installs 0.16.2 into {}",
            data.join("account-scanner/sherlock-0.16.2").display()
        )),
        "{stdout}"
    );
}
