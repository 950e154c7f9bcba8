//! Every environment variable the binary reads, its dependencies included, is documented in
//! `.env.example`: as a setting (`NAME=`, a row of `config::spec`, which
//! `ops::env_example_lists_exactly_the_variables_the_binary_reads` holds equal to it) or in its
//! last section, the system's variables that the binary or a library reads but that are not
//! configuration (`PATH`, `HOME`, proxies…).
//!
//! Reading the source finds only the names this crate spells out; a library (reqwest's proxy
//! lookup, `dirs`, tokio, the standard library) reads others. So this test watches the process
//! instead: a tiny `LD_PRELOAD` library (compiled here with `cc`) logs every `getenv` name while
//! the binary runs `check`, `scan` (both halves, against a stand-in Sherlock and the fake Reddit)
//! `setup` and `eval-toxicity`. Children get a cleared environment (see `child_env.rs`), so
//! `LD_PRELOAD` does not follow them and the log is the binary's own.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::fake_reddit::{FakeAccount, FakeReddit, FakeRedditConfig};

const SHIM: &str = r#"
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *(*real_getenv)(const char *);
static char *(*real_secure_getenv)(const char *);
static int fd = -1;

__attribute__((constructor)) static void init(void) {
    real_getenv = (char *(*)(const char *))dlsym(RTLD_NEXT, "getenv");
    real_secure_getenv = (char *(*)(const char *))dlsym(RTLD_NEXT, "secure_getenv");
    const char *path = real_getenv ? real_getenv("GETENV_LOG") : 0;
    if (path) fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
}

static void note(const char *name) {
    if (fd < 0 || !name) return;
    char line[512];
    size_t n = strlen(name);
    if (n > sizeof line - 2) n = sizeof line - 2;
    memcpy(line, name, n);
    line[n] = '\n';
    (void)!write(fd, line, n + 1);
}

char *getenv(const char *name) {
    note(name);
    return real_getenv ? real_getenv(name) : 0;
}

char *secure_getenv(const char *name) {
    note(name);
    return real_secure_getenv ? real_secure_getenv(name) : 0;
}
"#;

/// Compiles the shim once per test run.
fn shim(dir: &Path) -> PathBuf {
    let src = dir.join("getenv_log.c");
    let lib = dir.join("libgetenv_log.so");
    std::fs::write(&src, SHIM).expect("write shim");
    let out = Command::new("cc")
        .args(["-shared", "-fPIC", "-O1", "-o"])
        .arg(&lib)
        .arg(&src)
        .arg("-ldl")
        .output()
        .expect("this test needs a C compiler (`cc`) to build its getenv logger");
    assert!(
        out.status.success(),
        "compiling the getenv logger failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    lib
}

/// The names `.env.example` documents: its `NAME=` lines (commented or not) and every
/// upper-case word of its system section.
fn documented() -> BTreeSet<String> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/.env.example"))
        .expect(".env.example");
    let mut names = BTreeSet::new();
    let mut system = false;
    for line in text.lines() {
        let bare = line.trim_start_matches(['#', ' ']);
        if line.starts_with("# ---") {
            system = line.contains("system");
        }
        if let Some((name, _)) = bare.split_once('=')
            && !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        {
            names.insert(name.to_string());
        }
        if system {
            for word in line.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '*')) {
                let upper = word
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_' || c == '*');
                // Names are upper case, or carry an underscore (`OPENSSL_ia32cap`); prose has
                // neither.
                if word.len() > 1 && (upper || word.contains('_')) {
                    names.insert(word.to_string());
                }
            }
        }
    }
    names
}

/// Whether `name` is documented, `LC_*`-style prefixes and lower-case proxy spellings included.
fn is_documented(name: &str, documented: &BTreeSet<String>) -> bool {
    documented.contains(name)
        || documented.contains(&name.to_ascii_uppercase())
        || documented
            .iter()
            .filter_map(|d| d.strip_suffix('*'))
            .any(|prefix| name.starts_with(prefix))
}

#[test]
fn every_variable_the_process_reads_is_in_env_example() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lib = shim(dir.path());
    let log = dir.path().join("getenv.log");
    let traced = |cmd: &mut Command| {
        cmd.env("LD_PRELOAD", &lib).env("GETENV_LOG", &log);
        let out = cmd.output().expect("run account-scanner");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };

    let sherlock = support::script(
        dir.path(),
        "fake-sherlock",
        r#"case "$1" in --version) echo "sherlock v0.16.2"; exit 0;; esac
echo "[*] Checking username alice on:"
echo "[+] GitHub: https://github.com/alice""#,
    );
    let reddit = FakeReddit::start(FakeRedditConfig {
        accounts: vec![FakeAccount::new("alice").with_comments(3, |i| format!("comment {i}"))],
        ..FakeRedditConfig::default()
    });

    let mut check = support::scanner(dir.path());
    check.env("SHERLOCK_BIN", &sherlock).arg("check");
    let (code, stderr) = traced(&mut check);
    assert_eq!(code, Some(0), "check: {stderr}");

    let mut scan = support::scanner(dir.path());
    scan.env("SHERLOCK_BIN", &sherlock)
        .env("REDDIT_RATE_PER_MIN", "60000")
        .args(["scan", "alice", "--mode", "all"]);
    for (k, v) in reddit.env() {
        scan.env(k, v);
    }
    let (code, stderr) = traced(&mut scan);
    assert_eq!(code, Some(0), "scan: {stderr}");

    // setup with a Python that does not exist: far enough to read its configuration.
    let mut setup = support::scanner(dir.path());
    setup
        .env("XDG_DATA_HOME", dir.path().join("data"))
        .env("PYTHON", "no-such-python3")
        .arg("setup");
    let (code, stderr) = traced(&mut setup);
    assert_eq!(code, Some(1), "setup: {stderr}");

    let mut eval = support::scanner(dir.path());
    eval.arg("eval-toxicity");
    let (code, stderr) = traced(&mut eval);
    assert_eq!(code, Some(0), "eval-toxicity: {stderr}");

    let read: BTreeSet<String> = std::fs::read_to_string(&log)
        .expect("the getenv logger wrote nothing: was LD_PRELOAD honoured?")
        .lines()
        .map(str::to_string)
        .filter(|n| n != "GETENV_LOG" && n != "LD_PRELOAD")
        .collect();
    for expected in [
        "SCANS_DIR",
        "REDDIT_CLIENT_SECRET",
        "XDG_DATA_HOME",
        "PYTHON",
    ] {
        assert!(
            read.contains(expected),
            "the logger missed {expected}: {read:?}"
        );
    }
    let documented = documented();
    let missing: Vec<&String> = read
        .iter()
        .filter(|n| !is_documented(n, &documented))
        .collect();
    assert!(
        missing.is_empty(),
        "read by the binary or a library but not in .env.example: {missing:?}\n(all read: {read:?})"
    );
}
