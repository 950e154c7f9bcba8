//! No child process sees a secret: Sherlock, `sherlock --version`, and the Python and pip that
//! `setup` runs start from a cleared environment plus an allow-list (PATH, HOME, the locale, temp
//! dirs, proxies and CA bundles; pip's own `PIP_*` for the installer only), never the bot's.
//!
//! Stand-ins record the environment they were started with: a `SHERLOCK_BIN` for a scan (its
//! run, the control probe's run and `--version`) and for `check`, and a `PYTHON` (and the
//! venv's `python` it creates, which runs pip) for `setup`. The secrets are set both in the
//! binary's environment and in a `.env` file in its working directory.

mod support;

use std::path::{Path, PathBuf};

/// Secrets in the binary's environment: (name, value).
const IN_ENV: [(&str, &str); 5] = [
    ("DISCORD_BOT_TOKEN", "discord-token-VALUE-7f3a9c"),
    ("REDDIT_CLIENT_ID", "reddit-client-id-VALUE-19c2"),
    ("REDDIT_CLIENT_SECRET", "reddit-secret-VALUE-88d1e"),
    ("PERSPECTIVE_API_KEY", "perspective-key-VALUE-c0de5"),
    ("SOME_OTHER_SECRET", "other-secret-VALUE-5eed1"),
];

/// Secrets only in `.env` (dotenvy loads them into the process environment).
const IN_DOTENV: [(&str, &str); 2] = [
    ("OPENAI_API_KEY", "sk-openai-key-VALUE-beef2"),
    ("DOTENV_ONLY_SECRET", "dotenv-secret-VALUE-f00d3"),
];

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let dotenv: String = IN_DOTENV
            .iter()
            .map(|(k, v)| format!("{k}={v}\n"))
            .collect();
        std::fs::write(dir.path().join(".env"), dotenv).expect("write .env");
        std::fs::create_dir(dir.path().join("env")).expect("mkdir");
        Fixture { dir }
    }

    /// Where each child writes `env` (one file per process).
    fn records(&self) -> PathBuf {
        self.dir.path().join("env")
    }

    /// A line of shell that writes this process's environment to a new file named after `what`.
    fn record(&self, what: &str) -> String {
        format!("env > '{}/{what}.'$$", self.records().display())
    }

    /// A Sherlock stand-in: records its environment, answers `--version`, finds one site.
    fn sherlock(&self, name: &str) -> PathBuf {
        let body = format!(
            r#"case "$1" in
  --version) {record_version}; echo "sherlock v0.16.2"; exit 0;;
esac
{record_run}
for a in "$@"; do u="$a"; done
echo "[*] Checking username $u on:"
echo "[+] GitHub: https://github.com/$u"
echo "[*] Search completed with 1 results""#,
            record_version = self.record("sherlock-version"),
            record_run = self.record("sherlock-run"),
        );
        support::script(self.dir.path(), name, &body)
    }

    /// A `PYTHON` stand-in for `setup`: `-m venv DIR` records its environment and makes
    /// `DIR/bin/python`, whose `-m pip install` records its own and installs the Sherlock
    /// stand-in as `DIR/bin/sherlock`.
    fn python(&self) -> PathBuf {
        let sherlock = self.sherlock("sherlock-for-venv");
        let venv_python = support::script(
            self.dir.path(),
            "venv-python",
            &format!(
                r#"[ "$1 $2 $3" = "-m pip install" ] || exit 9
{record}
cp '{sherlock}' "$(dirname "$0")/sherlock""#,
                record = self.record("pip"),
                sherlock = sherlock.display()
            ),
        );
        support::script(
            self.dir.path(),
            "python",
            &format!(
                r#"[ "$1 $2" = "-m venv" ] || exit 9
{record}
mkdir -p "$3/bin" && cp '{venv_python}' "$3/bin/python""#,
                record = self.record("venv"),
                venv_python = venv_python.display()
            ),
        )
    }

    /// The binary with every secret in its environment (and the rest in `.env`), plus
    /// variables the allow-list passes on.
    fn command(&self) -> std::process::Command {
        let mut cmd = support::scanner(self.dir.path());
        for (k, v) in IN_ENV {
            cmd.env(k, v);
        }
        cmd.env(
            "REDDIT_USER_AGENT",
            "linux:account-scanner:v0.1.0 (by /u/test)",
        )
        .env("SCANS_DIR", self.dir.path().join("scans"))
        .env("LANG", "C.UTF-8")
        .env("LC_ALL", "C.UTF-8")
        .env("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt")
        .env("PIP_DISABLE_PIP_VERSION_CHECK", "1");
        cmd
    }

    /// Every recorded environment: (file name, contents).
    fn recorded(&self) -> Vec<(String, String)> {
        let mut all: Vec<(String, String)> = std::fs::read_dir(self.records())
            .expect("records")
            .flatten()
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read_to_string(e.path()).expect("read record"),
                )
            })
            .collect();
        all.sort();
        all
    }

    /// No secret's name or value in any record; `kinds` were all recorded; the allow-list's
    /// variables arrived. Returns the records.
    fn assert_no_secret(&self, kinds: &[&str]) -> Vec<(String, String)> {
        let recorded = self.recorded();
        for kind in kinds {
            assert!(
                recorded
                    .iter()
                    .any(|(name, _)| name.starts_with(&format!("{kind}."))),
                "no {kind} was run: {:?}",
                recorded.iter().map(|(n, _)| n).collect::<Vec<_>>()
            );
        }
        for (file, env) in &recorded {
            for (name, value) in IN_ENV.iter().chain(&IN_DOTENV) {
                assert!(
                    !env.contains(name) && !env.contains(value),
                    "{file} got {name}:\n{env}"
                );
            }
            assert!(!env.contains("REDDIT_USER_AGENT"), "{file}:\n{env}");
            for allowed in [
                "PATH=/usr/local/bin:/usr/bin:/bin",
                "LANG=C.UTF-8",
                "LC_ALL=C.UTF-8",
                "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
            ] {
                assert!(
                    env.lines().any(|l| l == allowed),
                    "{file} lacks {allowed}:\n{env}"
                );
            }
            let pip_config = env.lines().any(|l| l == "PIP_DISABLE_PIP_VERSION_CHECK=1");
            let installer = file.starts_with("venv.") || file.starts_with("pip.");
            assert_eq!(
                pip_config, installer,
                "pip's configuration goes to the installer only: {file}:\n{env}"
            );
        }
        recorded
    }
}

fn assert_success(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "exit {:?}\n{}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_scan_gives_sherlock_no_secret() {
    let fx = Fixture::new();
    let sherlock = fx.sherlock("fake-sherlock");
    let out = fx
        .command()
        .env("SHERLOCK_BIN", &sherlock)
        .args(["scan", "alice", "--mode", "sherlock", "--json"])
        .output()
        .expect("run scan");
    assert_success(&out);
    let report = support::stdout_json(&out);
    assert_eq!(report["sherlock"]["status"], "completed", "{report}");
    // The control probe ran the stand-in too (and found it claims any name).
    assert_eq!(report["sherlock"]["sites_checked"], 1, "{report}");
    assert_eq!(
        report["sherlock"]["control"]["sites_checked"], 1,
        "{report}"
    );
    let recorded = fx.assert_no_secret(&["sherlock-version", "sherlock-run"]);
    // What the project sets itself still arrives.
    let run = recorded
        .iter()
        .find(|(name, _)| name.starts_with("sherlock-run."))
        .map(|(_, env)| env)
        .expect("a run");
    for set in [
        "SHERLOCK_WORKERS=64",
        "PYTHONUNBUFFERED=1",
        "PYTHONIOENCODING=utf-8",
    ] {
        assert!(run.lines().any(|l| l == set), "{set} missing:\n{run}");
    }
}

#[test]
fn check_gives_sherlock_no_secret() {
    let fx = Fixture::new();
    let sherlock = fx.sherlock("fake-sherlock");
    let out = fx
        .command()
        .env("SHERLOCK_BIN", &sherlock)
        .arg("check")
        .output()
        .expect("run check");
    assert_success(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("0.16.2 (from SHERLOCK_BIN"), "{stdout}");
    fx.assert_no_secret(&["sherlock-version"]);
}

#[test]
fn setup_gives_python_and_pip_no_secret() {
    let fx = Fixture::new();
    let python = fx.python();
    let data = fx.dir.path().join("data");
    let out = fx
        .command()
        .env("XDG_DATA_HOME", &data)
        .env("PYTHON", &python)
        .arg("setup")
        .output()
        .expect("run setup");
    assert_success(&out);
    let installed = Path::new(String::from_utf8_lossy(&out.stdout).trim()).to_path_buf();
    assert_eq!(
        installed,
        data.join("account-scanner/sherlock-0.16.2/bin/sherlock")
    );
    fx.assert_no_secret(&["venv", "pip"]);
}
