//! The environment of every child process: Sherlock, `sherlock --version`, and the Python and
//! pip that `setup` runs.
//!
//! A child starts from an empty environment plus an explicit allow-list of the system's own
//! variables, never from the bot's: `DISCORD_BOT_TOKEN`, `REDDIT_CLIENT_SECRET`, the API keys and
//! whatever `.env` loaded would otherwise be readable by third-party Python code that fetches
//! hundreds of URLs, and by anyone who can read `/proc/PID/environ`. The project then adds what
//! it sets itself (`SHERLOCK_WORKERS`, `PYTHONUNBUFFERED`, `PYTHONIOENCODING`) at the spawn
//! site. This module is the one place that decides; every `Command` in the crate comes from
//! [`command`].

use std::ffi::{OsStr, OsString};

use tokio::process::Command;

/// Which kind of child: the installer also gets pip's own configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Child {
    /// Sherlock itself, through the launcher or as `SHERLOCK_BIN`, and its `--version`.
    Sherlock,
    /// `PYTHON -m venv` and the virtualenv's `pip install` (`setup`).
    Installer,
}

/// Passed to every child when set: the search paths (`PYTHONPATH` too: Python's own, an
/// operator's deliberate setting, no secret), the user's home and locale, temp dirs, and the
/// proxy and CA-bundle variables an operator may need for Sherlock's and pip's requests.
pub const INHERITED: &[&str] = &[
    "PATH",
    "PYTHONPATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LANGUAGE",
    "TZ",
    "TMPDIR",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
];

/// Prefixes passed to every child (`LC_ALL`, `LC_CTYPE`…).
pub const INHERITED_PREFIXES: &[&str] = &["LC_"];

/// Prefixes passed to the installer only: pip's configuration (`PIP_INDEX_URL`, `PIP_CERT`,
/// `PIP_FIND_LINKS`…), which an offline or mirrored install needs.
pub const INSTALLER_PREFIXES: &[&str] = &["PIP_"];

/// Whether a variable of this process may be passed to a child of this kind.
pub fn is_inherited(name: &OsStr, child: Child) -> bool {
    let Some(name) = name.to_str() else {
        return false;
    };
    INHERITED.contains(&name)
        || INHERITED_PREFIXES.iter().any(|p| name.starts_with(p))
        || (child == Child::Installer && INSTALLER_PREFIXES.iter().any(|p| name.starts_with(p)))
}

/// The allowed part of this process's environment, for a child of this kind.
pub fn inherited(child: Child) -> Vec<(OsString, OsString)> {
    std::env::vars_os()
        .filter(|(name, _)| is_inherited(name, child))
        .collect()
}

/// A `Command` for `program` with a cleared environment plus the allow-list; the caller adds
/// arguments, the variables the project sets, and stdio.
pub fn command(program: impl AsRef<OsStr>, child: Child) -> Command {
    let mut cmd = Command::new(program);
    cmd.env_clear().envs(inherited(child));
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_and_configuration_are_not_inherited() {
        for name in [
            "DISCORD_BOT_TOKEN",
            "REDDIT_CLIENT_SECRET",
            "REDDIT_CLIENT_ID",
            "PERSPECTIVE_API_KEY",
            "OPENAI_API_KEY",
            "SOME_OTHER_SECRET",
            "LD_PRELOAD",
            "RUST_LOG",
        ] {
            for child in [Child::Sherlock, Child::Installer] {
                assert!(!is_inherited(OsStr::new(name), child), "{name}");
            }
        }
    }

    #[test]
    fn the_system_s_own_variables_are() {
        for name in [
            "PATH",
            "HOME",
            "LANG",
            "LC_ALL",
            "HTTPS_PROXY",
            "SSL_CERT_FILE",
        ] {
            assert!(is_inherited(OsStr::new(name), Child::Sherlock), "{name}");
        }
        assert!(is_inherited(OsStr::new("PIP_INDEX_URL"), Child::Installer));
        assert!(!is_inherited(OsStr::new("PIP_INDEX_URL"), Child::Sherlock));
    }
}
