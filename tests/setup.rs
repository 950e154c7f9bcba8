//! Finding and installing Sherlock: `scan` sets up the managed venv on first use.
//!
//! The real `pip install` of the pinned version runs in `support::sherlock()` (every other test
//! uses it). Here `PYTHON` is a stand-in so the first-use flow can be checked offline and
//! quickly: its venv's pip "installs" a `sherlock` that runs the real, already installed one.

mod support;

use std::path::Path;

fn fake_python(dir: &Path) -> String {
    let real = support::sherlock().display().to_string();
    let venv_python = format!(
        r#"# stand-in for venv/bin/python: "-m pip install ... --requirement FILE"
[ "$1 $2 $3" = "-m pip install" ] || exit 9
for last; do :; done
grep -q '^sherlock-project==0.16.2$' "$last" || {{ echo "pin missing from $last" >&2; exit 8; }}
printf '#!/bin/sh\nexec {real} "$@"\n' > "$(dirname "$0")/sherlock"
chmod +x "$(dirname "$0")/sherlock""#
    );
    let venv_python = support::script(dir, "venv-python", &venv_python);
    support::script(
        dir,
        "python",
        &format!(
            r#"# stand-in for python3: "-m venv DIR"
[ "$1 $2" = "-m venv" ] || exit 9
mkdir -p "$3/bin" && cp {} "$3/bin/python""#,
            venv_python.display()
        ),
    )
    .display()
    .to_string()
}

#[test]
fn scan_installs_sherlock_on_first_use_then_reuses_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let python = fake_python(dir.path());
    let sites = support::fake_sites::FakeSites::start(Default::default());
    let list = dir.path().join("sites.json");
    sites.write_site_list(&list).expect("site list");
    let data_home = dir.path().join("data");
    let run = || {
        support::scanner(dir.path())
            .env("XDG_DATA_HOME", &data_home)
            .env("PYTHON", &python)
            .env("SHERLOCK_SITES", &list)
            .env("SHERLOCK_SITE_TIMEOUT", "1")
            .args(["scan", "alice", "--mode", "sherlock", "--json"])
            .output()
            .expect("run scan")
    };

    let first = run();
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(first.status.success(), "{stderr}");
    let venv = data_home.join("account-scanner/sherlock-0.16.2");
    for line in [
        "Sherlock was not found on PATH; installing it once for this user.".to_string(),
        format!("Creating a Python virtualenv at {}", venv.display()),
        "Installing sherlock-project==0.16.2 and its dependencies from PyPI".to_string(),
        format!("Sherlock is ready: {}", venv.join("bin/sherlock").display()),
    ] {
        assert!(stderr.contains(&line), "missing {line:?} in:\n{stderr}");
    }
    let report: serde_json::Value = serde_json::from_slice(&first.stdout).expect("report");
    assert_eq!(report["sherlock"]["status"], "completed");
    assert_eq!(report["sherlock"]["counts"]["claimed"], 3);
    assert_eq!(report["tools"]["sherlock"], "0.16.2", "asked via --version");

    let second = run();
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(second.status.success(), "{stderr}");
    assert!(!stderr.contains("installing"), "set up twice:\n{stderr}");
}

#[test]
fn an_unfinished_venv_is_rebuilt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let python = fake_python(dir.path());
    let data_home = dir.path().join("data");
    let venv = data_home.join("account-scanner/sherlock-0.16.2");
    std::fs::create_dir_all(venv.join("bin")).expect("mkdir");
    std::fs::write(venv.join("leftover"), b"from a killed setup").expect("write");
    let out = support::scanner(dir.path())
        .env("XDG_DATA_HOME", &data_home)
        .env("PYTHON", &python)
        .arg("setup")
        .output()
        .expect("run setup");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("Removing an unfinished virtualenv"),
        "{stderr}"
    );
    assert!(!venv.join("leftover").exists());
    assert!(venv.join(".account-scanner-ready").is_file());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        venv.join("bin/sherlock").display().to_string()
    );
}

#[test]
fn setup_without_python_says_what_to_install() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = support::scanner(dir.path())
        .env("XDG_DATA_HOME", dir.path().join("data"))
        .env("PYTHON", "no-such-python3")
        .arg("setup")
        .output()
        .expect("run setup");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "`no-such-python3` was not found. Install Python 3 (3.9 or newer) or set SHERLOCK_BIN"
        ),
        "{stderr}"
    );
}
