//! One typed configuration, read from the environment once at start and validated.
//!
//! Every variable the binary reads is listed in [`VARIABLES`]; `.env.example` and the README
//! document the same list. Values that are secrets are held in [`Secret`] so `Debug` and logs
//! cannot print them.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Every environment variable the binary reads. `RUST_LOG` is read by the tracing filter.
pub const VARIABLES: &[&str] = &[
    "SCANS_DIR",
    "SCAN_TIMEOUT",
    "SHERLOCK_BIN",
    "SHERLOCK_SITES",
    "SHERLOCK_SITE_TIMEOUT",
    "SHERLOCK_NSFW",
    "SHERLOCK_WORKERS",
    "SHERLOCK_CONTROL_CHECK",
    "SHERLOCK_CONTROL_TTL",
    "DISCORD_BOT_TOKEN",
    "COMMAND_PREFIX",
    "ADMIN_USER_IDS",
    "LOG_CHANNEL_ID",
    "SCAN_COOLDOWN",
    "MAX_CONCURRENT_SCANS",
    "SHUTDOWN_GRACE",
    "DISCORD_API_BASE",
    "RUST_LOG",
    // Read by `setup` only: the Python that creates the managed virtualenv.
    "PYTHON",
];

/// A value that must never be printed: `Debug` and `Display` show `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that sends it (a header).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Which site list Sherlock checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SiteList {
    /// The list bundled with the pinned Sherlock (`--local`): reproducible, no download.
    Bundled,
    /// Sherlock downloads its newest list (and its exclusion list) at every run.
    Remote,
    /// A site-list file in Sherlock's `data.json` format (`--json FILE --ignore-exclusions`).
    File(PathBuf),
}

impl fmt::Display for SiteList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SiteList::Bundled => f.write_str("local (bundled with Sherlock)"),
            SiteList::Remote => f.write_str("remote (Sherlock's newest list)"),
            SiteList::File(path) => write!(f, "file {}", path.display()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct SherlockConfig {
    /// `SHERLOCK_BIN`: an explicit Sherlock executable, run exactly as given.
    pub bin: Option<PathBuf>,
    pub sites: SiteList,
    /// Per-request timeout handed to Sherlock (`--timeout`).
    pub site_timeout: Duration,
    pub nsfw: bool,
    /// Sherlock's worker pool size, applied by the launcher (not to an explicit `SHERLOCK_BIN`).
    pub workers: u32,
    /// Run the control probe that flags sites claiming every username.
    pub control_check: bool,
    /// How long a control result is reused; zero disables the cache.
    pub control_ttl: Duration,
}

/// The Discord bot's settings (`account-scanner bot`).
#[derive(Debug, Clone)]
pub struct DiscordConfig {
    /// Required by `bot` only, so the CLI works without it.
    pub token: Option<Secret>,
    pub prefix: String,
    pub admin_user_ids: Vec<u64>,
    pub log_channel_id: Option<u64>,
    pub scan_cooldown: Duration,
    pub max_concurrent_scans: usize,
    /// How long shutdown waits for running scans before interrupting them.
    pub shutdown_grace: Duration,
    /// Another Discord (a test server): REST and gateway go there, serenity's ratelimiter off.
    pub api_base: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub scans_dir: PathBuf,
    pub scan_timeout: Duration,
    pub sherlock: SherlockConfig,
    pub discord: DiscordConfig,
}

/// One invalid variable and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidVariable {
    pub variable: &'static str,
    pub message: String,
}

/// Every problem found while loading the configuration, so the operator fixes them in one go.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub problems: Vec<InvalidVariable>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid configuration:")?;
        for p in &self.problems {
            write!(f, "\n  {}: {}", p.variable, p.message)?;
        }
        Ok(())
    }
}

pub const MAX_SCAN_TIMEOUT_SECS: u64 = 24 * 3600;

impl Config {
    /// Reads the process environment (after `.env` has been loaded by the caller).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    /// Reads from a map; used by tests so they never touch the process environment.
    pub fn from_map(map: &HashMap<String, String>) -> Result<Self, ConfigError> {
        Self::from_lookup(|key| map.get(key).cloned())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut env = Reader {
            lookup: &lookup,
            problems: Vec::new(),
        };

        let scans_dir = env
            .string("SCANS_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("./scans"));
        let scan_timeout = env.seconds("SCAN_TIMEOUT", 300, 1, MAX_SCAN_TIMEOUT_SECS);
        let bin = env.string("SHERLOCK_BIN").map(PathBuf::from);
        let sites = match env.string("SHERLOCK_SITES").as_deref() {
            None | Some("local") => SiteList::Bundled,
            Some("remote") => SiteList::Remote,
            Some(path) => {
                let path = PathBuf::from(path);
                if !path.is_file() {
                    env.invalid(
                        "SHERLOCK_SITES",
                        format!(
                            "expected `local`, `remote` or the path of a site-list file, but {} is not a readable file",
                            path.display()
                        ),
                    );
                }
                SiteList::File(path)
            }
        };
        let site_timeout = env.seconds("SHERLOCK_SITE_TIMEOUT", 10, 1, 600);
        let nsfw = env.boolean("SHERLOCK_NSFW", false);
        let workers = env.number("SHERLOCK_WORKERS", 64, 1, 512);
        let control_check = env.boolean("SHERLOCK_CONTROL_CHECK", true);
        let control_ttl = env.seconds("SHERLOCK_CONTROL_TTL", 86_400, 0, 30 * 86_400);

        let discord = DiscordConfig {
            token: env.string("DISCORD_BOT_TOKEN").map(Secret::new),
            prefix: env.prefix("COMMAND_PREFIX", "!"),
            admin_user_ids: env.ids("ADMIN_USER_IDS"),
            log_channel_id: env.ids("LOG_CHANNEL_ID").first().copied(),
            scan_cooldown: env.seconds("SCAN_COOLDOWN", 30, 0, 86_400),
            max_concurrent_scans: env.number("MAX_CONCURRENT_SCANS", 2, 1, 32) as usize,
            shutdown_grace: env.seconds("SHUTDOWN_GRACE", 25, 0, 600),
            api_base: env.base_url("DISCORD_API_BASE"),
        };
        if env
            .string("LOG_CHANNEL_ID")
            .is_some_and(|v| v.contains(','))
        {
            env.invalid("LOG_CHANNEL_ID", "give one channel id, not a list".into());
        }

        if !env.problems.is_empty() {
            return Err(ConfigError {
                problems: env.problems,
            });
        }
        Ok(Config {
            scans_dir,
            scan_timeout,
            sherlock: SherlockConfig {
                bin,
                sites,
                site_timeout,
                nsfw,
                workers,
                control_check,
                control_ttl,
            },
            discord,
        })
    }
}

struct Reader<'a, F: Fn(&str) -> Option<String>> {
    lookup: &'a F,
    problems: Vec<InvalidVariable>,
}

impl<F: Fn(&str) -> Option<String>> Reader<'_, F> {
    fn invalid(&mut self, variable: &'static str, message: String) {
        self.problems.push(InvalidVariable { variable, message });
    }

    /// A set, non-blank value, trimmed. Blank counts as unset so `.env` placeholders like `X=` work.
    fn string(&mut self, variable: &'static str) -> Option<String> {
        debug_assert!(
            VARIABLES.contains(&variable),
            "{variable} missing from VARIABLES"
        );
        (self.lookup)(variable)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    fn seconds(&mut self, variable: &'static str, default: u64, min: u64, max: u64) -> Duration {
        let Some(raw) = self.string(variable) else {
            return Duration::from_secs(default);
        };
        match raw.parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) => Duration::from_secs(n),
            Ok(n) => {
                self.invalid(
                    variable,
                    format!(
                        "{n} is out of range: use a whole number of seconds from {min} to {max}"
                    ),
                );
                Duration::from_secs(default)
            }
            Err(_) => {
                self.invalid(
                    variable,
                    format!("`{}` is not a whole number of seconds", shorten(&raw)),
                );
                Duration::from_secs(default)
            }
        }
    }

    fn number(&mut self, variable: &'static str, default: u32, min: u32, max: u32) -> u32 {
        let Some(raw) = self.string(variable) else {
            return default;
        };
        match raw.parse::<u32>() {
            Ok(n) if (min..=max).contains(&n) => n,
            _ => {
                self.invalid(
                    variable,
                    format!(
                        "`{}` is not a whole number from {min} to {max}",
                        shorten(&raw)
                    ),
                );
                default
            }
        }
    }

    /// Comma-separated Discord ids (snowflakes).
    fn ids(&mut self, variable: &'static str) -> Vec<u64> {
        let Some(raw) = self.string(variable) else {
            return Vec::new();
        };
        let mut ids = Vec::new();
        for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part.parse::<u64>() {
                Ok(id) if id > 0 => ids.push(id),
                _ => {
                    self.invalid(
                        variable,
                        format!(
                            "`{}` is not a Discord id (a number such as 123456789012345678; enable Developer Mode and use Copy ID)",
                            shorten(part)
                        ),
                    );
                }
            }
        }
        ids
    }

    fn prefix(&mut self, variable: &'static str, default: &str) -> String {
        let Some(raw) = self.string(variable) else {
            return default.to_string();
        };
        if raw.chars().count() > 5 || raw.chars().any(char::is_whitespace) {
            self.invalid(
                variable,
                format!(
                    "`{}` must be 1-5 characters without spaces, e.g. `!`",
                    shorten(&raw)
                ),
            );
            return default.to_string();
        }
        raw
    }

    /// An `http://` or `https://` origin, without a trailing slash.
    fn base_url(&mut self, variable: &'static str) -> Option<String> {
        let raw = self.string(variable)?;
        let url = raw.trim_end_matches('/');
        let rest = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"));
        match rest {
            Some(host) if !host.is_empty() && !host.contains(char::is_whitespace) => {
                Some(url.to_string())
            }
            _ => {
                self.invalid(
                    variable,
                    format!(
                        "`{}` is not an http(s) URL such as http://127.0.0.1:8080",
                        shorten(&raw)
                    ),
                );
                None
            }
        }
    }

    fn boolean(&mut self, variable: &'static str, default: bool) -> bool {
        let Some(raw) = self.string(variable) else {
            return default;
        };
        match raw.to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => true,
            "0" | "false" | "no" | "off" => false,
            _ => {
                self.invalid(
                    variable,
                    format!("`{}` is not a boolean: use true or false", shorten(&raw)),
                );
                default
            }
        }
    }
}

/// Echoes at most 40 characters of a bad value back, escaped.
fn shorten(raw: &str) -> String {
    let mut s: String = raw.chars().take(40).flat_map(char::escape_debug).collect();
    if raw.chars().count() > 40 {
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_map(&map)
    }

    #[test]
    fn defaults_when_nothing_is_set() {
        let cfg = load(&[]).expect("defaults are valid");
        assert_eq!(cfg.scans_dir, PathBuf::from("./scans"));
        assert_eq!(cfg.scan_timeout, Duration::from_secs(300));
        assert_eq!(cfg.sherlock.sites, SiteList::Bundled);
        assert_eq!(cfg.sherlock.site_timeout, Duration::from_secs(10));
        assert!(!cfg.sherlock.nsfw);
        assert!(cfg.sherlock.bin.is_none());
        assert_eq!(cfg.sherlock.workers, 64);
        assert!(cfg.sherlock.control_check);
        assert_eq!(cfg.sherlock.control_ttl, Duration::from_secs(86_400));
    }

    #[test]
    fn every_bad_value_is_named() {
        let err = load(&[
            ("SCAN_TIMEOUT", "soon"),
            ("SHERLOCK_SITE_TIMEOUT", "0"),
            ("SHERLOCK_NSFW", "maybe"),
            ("SHERLOCK_SITES", "/nonexistent/list.json"),
        ])
        .expect_err("all four are invalid");
        let names: Vec<_> = err.problems.iter().map(|p| p.variable).collect();
        assert_eq!(
            names,
            [
                "SCAN_TIMEOUT",
                "SHERLOCK_SITES",
                "SHERLOCK_SITE_TIMEOUT",
                "SHERLOCK_NSFW"
            ]
        );
        let text = err.to_string();
        assert!(text.contains("SCAN_TIMEOUT: `soon` is not a whole number of seconds"));
        assert!(text.contains("SHERLOCK_NSFW: `maybe` is not a boolean"));
    }

    #[test]
    fn discord_settings_are_validated() {
        let cfg = load(&[
            ("ADMIN_USER_IDS", "111, 222"),
            ("LOG_CHANNEL_ID", "333"),
            ("DISCORD_API_BASE", "http://127.0.0.1:9999/"),
            ("DISCORD_BOT_TOKEN", "abc.def"),
        ])
        .expect("valid");
        assert_eq!(cfg.discord.admin_user_ids, [111, 222]);
        assert_eq!(cfg.discord.log_channel_id, Some(333));
        assert_eq!(
            cfg.discord.api_base.as_deref(),
            Some("http://127.0.0.1:9999")
        );
        assert_eq!(cfg.discord.prefix, "!");
        assert_eq!(cfg.discord.max_concurrent_scans, 2);
        assert_eq!(cfg.discord.scan_cooldown, Duration::from_secs(30));
        assert_eq!(format!("{:?}", cfg.discord.token), "Some([redacted])");

        let err = load(&[
            ("ADMIN_USER_IDS", "111,bob"),
            ("MAX_CONCURRENT_SCANS", "0"),
            ("COMMAND_PREFIX", "scan me"),
            ("DISCORD_API_BASE", "ftp://x"),
            ("LOG_CHANNEL_ID", "1,2"),
        ])
        .expect_err("invalid");
        let names: Vec<_> = err.problems.iter().map(|p| p.variable).collect();
        assert_eq!(
            names,
            [
                "COMMAND_PREFIX",
                "ADMIN_USER_IDS",
                "MAX_CONCURRENT_SCANS",
                "DISCORD_API_BASE",
                "LOG_CHANNEL_ID"
            ]
        );
        assert!(
            err.to_string()
                .contains("ADMIN_USER_IDS: `bob` is not a Discord id")
        );
    }

    #[test]
    fn blank_values_mean_unset() {
        let cfg = load(&[("SHERLOCK_BIN", "  "), ("SHERLOCK_SITES", "remote")]).expect("valid");
        assert!(cfg.sherlock.bin.is_none());
        assert_eq!(cfg.sherlock.sites, SiteList::Remote);
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "[redacted] [redacted]");
        assert_eq!(s.expose(), "hunter2");
    }
}
