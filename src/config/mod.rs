//! One typed configuration, read from the environment once at start and validated.
//!
//! Every variable is a row of [`spec::SPECS`] (name, default, range, secret, meaning, users):
//! the reader below takes defaults and ranges from it, and `.env.example` and
//! `docs/configuration.md` are generated from it. Values that are secrets are held in [`Secret`]
//! so `Debug` and logs cannot print them.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

mod reader;
pub mod spec;

use reader::{Reader, shorten};

/// Every environment variable the configuration reader reads, all through
/// [`Config::from_lookup`] (`RUST_LOG` included: it is validated here and handed to the tracing
/// filter): the rows of [`spec::SPECS`] but `NO_COLOR`, which the terminal output reads itself.
/// The system's own (`PATH`, `HOME`, the locale, proxies, CA bundles) are not configuration: see
/// [`crate::sources::sherlock::child_env`] for what of them a child process gets.
pub fn variables() -> impl Iterator<Item = &'static str> {
    spec::SPECS
        .iter()
        .filter(|s| !s.terminal_only)
        .map(|s| s.name)
}

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
    /// A site-list file in Sherlock's `data.json` format (`--json FILE --ignore-exclusions`),
    /// absolute (resolved against the working directory at start).
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
    /// `SHERLOCK_BIN`: an explicit Sherlock executable, run exactly as given. Absolute: a
    /// relative value is resolved against the working directory at start, because Sherlock runs
    /// in a temp dir of its own.
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
    /// `PYTHON`: the interpreter that creates the managed virtualenv.
    pub python: String,
    /// The user's data directory, under which the managed virtualenv lives: `XDG_DATA_HOME`,
    /// else `$HOME/.local/share`; `None` when neither is known.
    pub data_dir: Option<PathBuf>,
}

/// How many gateway shards the bot runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardCount {
    Fixed(u32),
    /// Discord's recommended count (`GET /gateway/bot`).
    Auto,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    /// One JSON object per line, span fields (scan id, guild, requester, target) included.
    Json,
}

/// Operations: health endpoint, logs, retention, disk floor, sharding.
#[derive(Debug, Clone)]
pub struct OpsConfig {
    /// Serve `/healthz` and `/metrics` on 0.0.0.0:PORT; unset, no endpoint.
    pub health_port: Option<u16>,
    pub log_format: LogFormat,
    /// Report files older than this are removed at start and daily; zero keeps them forever.
    pub retention_days: u32,
    /// A scan refuses to start when the scans directory has less free space than this.
    pub min_free_bytes: u64,
    pub shards: ShardCount,
    /// The shards this process runs (inclusive), for spreading one bot over several machines.
    pub shard_range: Option<(u32, u32)>,
    /// `RUST_LOG`, already checked to be a valid filter; `None`: the command's default level.
    pub log_filter: Option<String>,
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
    /// How long result buttons work (`BUTTON_LIFETIME`).
    pub button_lifetime: Duration,
    pub max_concurrent_scans: usize,
    /// With PostgreSQL: how long a running job's lease lasts without renewal.
    pub job_lease: Duration,
    /// Request the privileged Server Members intent (the join screen needs it).
    pub members_intent: bool,
    /// The join screen waits this long for more joins before posting.
    pub join_batch_delay: Duration,
    /// `raid_joins` joins within `raid_window` are a raid.
    pub raid_joins: usize,
    pub raid_window: Duration,
    /// Shutdown's whole budget, from the request to the exit (see `bot::shutdown_plan`).
    pub shutdown_grace: Duration,
    /// Any one Discord REST request is abandoned after this (connecting: at most 10 s of it).
    pub http_timeout: Duration,
    /// Another Discord (a test server): REST and gateway go there, serenity's ratelimiter off.
    pub api_base: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Config {
    /// Absolute (a relative `SCANS_DIR` is resolved against the working directory at start).
    pub scans_dir: PathBuf,
    pub scan_timeout: Duration,
    pub sherlock: SherlockConfig,
    pub discord: DiscordConfig,
    pub ops: OpsConfig,
    /// `None` when no Reddit credentials are set: the Reddit half reports "not configured".
    pub reddit: Option<RedditConfig>,
    /// `None` when `PERSPECTIVE_API_KEY` is unset.
    pub perspective: Option<PerspectiveConfig>,
    /// `None` when `OPENAI_API_KEY` is unset.
    pub openai: Option<OpenAiConfig>,
    /// Which toxicity backend scores Reddit items (`TOXICITY_BACKEND`, resolved from `auto`).
    pub toxicity_backend: ToxicityBackend,
    /// Items scoring at or above this toxicity are counted and flagged in the report; `None`:
    /// the backend's own ([`crate::toxicity::ToxicityScorer::default_threshold`]).
    pub toxicity_threshold: Option<f64>,
    /// `TOXICITY_MODEL_DIR`: the local backend's model files, instead of the ones built in
    /// (absolute).
    pub toxicity_model_dir: Option<PathBuf>,
    /// Timeout of every outbound HTTP request (Reddit, Perspective), connecting included.
    pub http_timeout: Duration,
    /// Where history, settings and the audit trail live (`DATABASE_URL`).
    pub database: DatabaseTarget,
}

/// `DATABASE_URL`, checked: an SQLite file (by default in the scans directory) or PostgreSQL.
#[derive(Debug, Clone, PartialEq)]
pub enum DatabaseTarget {
    Sqlite(PathBuf),
    /// The whole URL: it may carry a password.
    Postgres(Secret),
}

impl DatabaseTarget {
    /// The SQLite file `.account-scanner.db` in the scans directory.
    pub fn default_in(scans_dir: &std::path::Path) -> Self {
        DatabaseTarget::Sqlite(scans_dir.join(".account-scanner.db"))
    }

    /// For logs and `health`: the engine and, for SQLite, the file (never a password).
    pub fn describe(&self) -> String {
        match self {
            DatabaseTarget::Sqlite(path) => format!("SQLite {}", path.display()),
            DatabaseTarget::Postgres(_) => "PostgreSQL".into(),
        }
    }
}

/// Reads `sqlite://PATH` / `sqlite:PATH` (relative: from the working directory) or
/// `postgres://…` / `postgresql://…`.
pub fn parse_database_url(url: &str, cwd: &std::path::Path) -> Result<DatabaseTarget, String> {
    let url = url.trim();
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(DatabaseTarget::Postgres(Secret::new(url)));
    }
    if let Some(rest) = url.strip_prefix("sqlite:") {
        let path = rest.strip_prefix("//").unwrap_or(rest);
        let path = path.split('?').next().unwrap_or_default();
        if path.is_empty() || path == ":memory:" {
            return Err("give the SQLite file's path, e.g. `sqlite:///data/scans.db`".into());
        }
        let path = PathBuf::from(path);
        return Ok(DatabaseTarget::Sqlite(if path.is_absolute() {
            path
        } else {
            cwd.join(path)
        }));
    }
    Err("use `sqlite:///path/to/file.db` or `postgres://user:password@host:5432/db` (the value is not shown: it may hold a password)".into())
}

/// Reddit's app-only OAuth client (all three credentials set).
#[derive(Debug, Clone)]
pub struct RedditConfig {
    pub client_id: String,
    pub client_secret: Secret,
    pub user_agent: String,
    /// Where tokens come from (`{auth_base}/api/v1/access_token`), no trailing slash.
    pub auth_base: String,
    /// Where the API lives (`{api_base}/user/...`), no trailing slash.
    pub api_base: String,
    pub max_comments: usize,
    pub max_posts: usize,
    pub rate_per_min: u32,
}

pub const REDDIT_CREDENTIALS: [&str; 3] = [
    "REDDIT_CLIENT_ID",
    "REDDIT_CLIENT_SECRET",
    "REDDIT_USER_AGENT",
];

#[derive(Debug, Clone)]
pub struct PerspectiveConfig {
    pub api_key: Secret,
    /// No trailing slash.
    pub api_base: String,
    /// Requests per second (may be fractional).
    pub qps: f64,
}

/// OpenAI's moderation endpoint (`OPENAI_API_KEY` set).
#[derive(Debug, Clone)]
pub struct OpenAiConfig {
    pub api_key: Secret,
    /// No trailing slash; requests go to `{api_base}/v1/moderations`.
    pub api_base: String,
    pub model: String,
    /// Texts per request.
    pub batch_size: usize,
    /// Requests per minute for the whole process.
    pub rate_per_min: u32,
}

/// The toxicity backend in use, after `TOXICITY_BACKEND=auto` is resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToxicityBackend {
    Perspective,
    OpenAi,
    /// Embedded and offline: the default when no key is set.
    Local,
}

impl ToxicityBackend {
    pub fn as_str(self) -> &'static str {
        match self {
            ToxicityBackend::Perspective => "perspective",
            ToxicityBackend::OpenAi => "openai",
            ToxicityBackend::Local => "local",
        }
    }
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
            .path("SCANS_DIR")
            .unwrap_or_else(|| absolute_or_as_is(Path::new("scans")));
        let scan_timeout = env.seconds("SCAN_TIMEOUT");
        let bin = env.path("SHERLOCK_BIN");
        let sites = match env.string("SHERLOCK_SITES").as_deref() {
            None | Some("local") => SiteList::Bundled,
            Some("remote") => SiteList::Remote,
            Some(_) => match env.path("SHERLOCK_SITES") {
                Some(path) => {
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
                None => SiteList::Bundled,
            },
        };
        let site_timeout = env.seconds("SHERLOCK_SITE_TIMEOUT");
        let nsfw = env.boolean("SHERLOCK_NSFW");
        let workers = env.count("SHERLOCK_WORKERS") as u32;
        let control_check = env.boolean("SHERLOCK_CONTROL_CHECK");
        let control_ttl = env.seconds("SHERLOCK_CONTROL_TTL");
        let python = env.text("PYTHON");
        let data_dir = data_dir(&mut env);
        let log_filter = log_filter(&mut env);

        let ops = OpsConfig {
            health_port: env
                .string("HEALTH_PORT")
                .map(|_| env.count("HEALTH_PORT") as u16),
            log_format: match env.string("LOG_FORMAT").as_deref() {
                None | Some("text") => LogFormat::Text,
                Some("json") => LogFormat::Json,
                Some(other) => {
                    env.invalid(
                        "LOG_FORMAT",
                        format!("`{}` is not a log format: use text or json", shorten(other)),
                    );
                    LogFormat::Text
                }
            },
            retention_days: env.count("SCAN_RETENTION_DAYS") as u32,
            min_free_bytes: env.count("MIN_FREE_SPACE_MB") as u64 * 1024 * 1024,
            shards: match env.string("SHARD_COUNT").as_deref() {
                Some("auto") => ShardCount::Auto,
                _ => ShardCount::Fixed(env.count_in("SHARD_COUNT", 1, 1, 1024) as u32),
            },
            shard_range: None,
            log_filter,
        };
        let ops = OpsConfig {
            shard_range: env.shard_range(ops.shards),
            ..ops
        };
        let discord = DiscordConfig {
            token: env.string("DISCORD_BOT_TOKEN").map(Secret::new),
            prefix: env.prefix("COMMAND_PREFIX"),
            admin_user_ids: env.ids("ADMIN_USER_IDS"),
            log_channel_id: env.ids("LOG_CHANNEL_ID").first().copied(),
            scan_cooldown: env.seconds("SCAN_COOLDOWN"),
            button_lifetime: env.seconds("BUTTON_LIFETIME"),
            max_concurrent_scans: env.count("MAX_CONCURRENT_SCANS"),
            job_lease: env.seconds("JOB_LEASE"),
            members_intent: env.boolean("DISCORD_MEMBERS_INTENT"),
            join_batch_delay: env.seconds("JOIN_BATCH_DELAY"),
            raid_joins: env.count("RAID_JOINS"),
            raid_window: env.seconds("RAID_WINDOW"),
            shutdown_grace: env.seconds("SHUTDOWN_GRACE"),
            http_timeout: env.seconds("DISCORD_HTTP_TIMEOUT"),
            api_base: env.optional_base_url("DISCORD_API_BASE"),
        };
        if env
            .string("LOG_CHANNEL_ID")
            .is_some_and(|v| v.contains(','))
        {
            env.invalid("LOG_CHANNEL_ID", "give one channel id, not a list".into());
        }
        let reddit = reddit_config(&mut env);
        let perspective = perspective_config(&mut env);
        let openai = openai_config(&mut env);
        let toxicity_backend = toxicity_backend(&mut env, perspective.is_some(), openai.is_some());
        let toxicity_threshold = env
            .string("TOXICITY_THRESHOLD")
            .is_some()
            .then(|| env.number("TOXICITY_THRESHOLD"));
        let toxicity_model_dir = env.path("TOXICITY_MODEL_DIR");
        let http_timeout = env.seconds("HTTP_TIMEOUT");
        let database = match env.string("DATABASE_URL") {
            None => DatabaseTarget::default_in(&scans_dir),
            Some(url) => {
                let cwd = std::env::current_dir().unwrap_or_default();
                parse_database_url(&url, &cwd).unwrap_or_else(|why| {
                    env.invalid("DATABASE_URL", why);
                    DatabaseTarget::default_in(&scans_dir)
                })
            }
        };
        if discord.max_concurrent_scans == 0 && !matches!(database, DatabaseTarget::Postgres(_)) {
            env.invalid(
                "MAX_CONCURRENT_SCANS",
                "0 (this machine runs no scan) needs the queue the machines share: set DATABASE_URL=postgres://… and run `account-scanner worker` machines".into(),
            );
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
                python,
                data_dir,
            },
            discord,
            ops,
            reddit,
            perspective,
            openai,
            toxicity_backend,
            toxicity_threshold,
            toxicity_model_dir,
            http_timeout,
            database,
        })
    }
}

/// `XDG_DATA_HOME` (absolute, as the XDG base directory spec requires), else `$HOME/.local/share`.
fn data_dir<F: Fn(&str) -> Option<String>>(env: &mut Reader<'_, F>) -> Option<PathBuf> {
    match env.string("XDG_DATA_HOME").map(PathBuf::from) {
        Some(dir) if dir.is_absolute() => Some(dir),
        Some(dir) => {
            env.invalid(
                "XDG_DATA_HOME",
                format!(
                    "`{}` is relative: the XDG base directory spec allows absolute paths only",
                    shorten(&dir.display().to_string())
                ),
            );
            None
        }
        None => dirs::home_dir().map(|home| home.join(".local").join("share")),
    }
}

/// `RUST_LOG`, checked with the parser the tracing filter uses, so a typo is reported instead of
/// silently replaced by the default level.
fn log_filter<F: Fn(&str) -> Option<String>>(env: &mut Reader<'_, F>) -> Option<String> {
    let raw = env.string("RUST_LOG")?;
    match tracing_subscriber::EnvFilter::builder().parse(&raw) {
        Ok(_) => Some(raw),
        Err(e) => {
            env.invalid(
                "RUST_LOG",
                format!(
                    "`{}` is not a log filter ({e}): use a level such as warn, info or debug, or directives such as account_scanner=debug,warn",
                    shorten(&raw)
                ),
            );
            None
        }
    }
}

/// `path` made absolute against the working directory (as is if that cannot be read).
fn absolute_or_as_is(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// All three Reddit credentials, or none; the optional settings are read either way so a typo in
/// them is reported even before credentials are added.
fn reddit_config<F: Fn(&str) -> Option<String>>(env: &mut Reader<'_, F>) -> Option<RedditConfig> {
    let client_id = env.string("REDDIT_CLIENT_ID");
    let client_secret = env.string("REDDIT_CLIENT_SECRET").map(Secret::new);
    let user_agent = env.string("REDDIT_USER_AGENT");
    if user_agent
        .as_deref()
        .is_some_and(|ua| reqwest::header::HeaderValue::from_str(ua).is_err())
    {
        env.invalid(
            "REDDIT_USER_AGENT",
            "contains characters that cannot be sent in an HTTP header".to_string(),
        );
    }
    let auth_base = env.base_url("REDDIT_AUTH_BASE");
    let api_base = env.base_url("REDDIT_API_BASE");
    let max_comments = env.count("REDDIT_MAX_COMMENTS");
    let max_posts = env.count("REDDIT_MAX_POSTS");
    let rate_per_min = env.count("REDDIT_RATE_PER_MIN") as u32;
    match (client_id, client_secret, user_agent) {
        (Some(client_id), Some(client_secret), Some(user_agent)) => Some(RedditConfig {
            client_id,
            client_secret,
            user_agent,
            auth_base,
            api_base,
            max_comments,
            max_posts,
            rate_per_min,
        }),
        (None, None, None) => None,
        (id, secret, agent) => {
            let set = [id.is_some(), secret.is_some(), agent.is_some()];
            let given: Vec<&str> = REDDIT_CREDENTIALS
                .iter()
                .zip(set)
                .filter_map(|(name, set)| set.then_some(*name))
                .collect();
            for (name, set) in REDDIT_CREDENTIALS.iter().zip(set) {
                if !set {
                    env.invalid(
                        name,
                        format!(
                            "is not set, but {} is: Reddit needs all three of REDDIT_CLIENT_ID, REDDIT_CLIENT_SECRET and REDDIT_USER_AGENT (or none of them)",
                            given.join(" and ")
                        ),
                    );
                }
            }
            None
        }
    }
}

fn perspective_config<F: Fn(&str) -> Option<String>>(
    env: &mut Reader<'_, F>,
) -> Option<PerspectiveConfig> {
    let api_key = env.string("PERSPECTIVE_API_KEY").map(Secret::new);
    // The value itself is never echoed: it is a secret.
    if api_key
        .as_ref()
        .is_some_and(|k| reqwest::header::HeaderValue::from_str(k.expose()).is_err())
    {
        env.invalid(
            "PERSPECTIVE_API_KEY",
            "contains characters that cannot be sent in an HTTP header".to_string(),
        );
    }
    let api_base = env.base_url("PERSPECTIVE_API_BASE");
    let qps = env.number("PERSPECTIVE_QPS");
    api_key.map(|api_key| PerspectiveConfig {
        api_key,
        api_base,
        qps,
    })
}

fn openai_config<F: Fn(&str) -> Option<String>>(env: &mut Reader<'_, F>) -> Option<OpenAiConfig> {
    let api_key = env.string("OPENAI_API_KEY").map(Secret::new);
    if api_key
        .as_ref()
        .is_some_and(|k| reqwest::header::HeaderValue::from_str(k.expose()).is_err())
    {
        env.invalid(
            "OPENAI_API_KEY",
            "contains characters that cannot be sent in an HTTP header".to_string(),
        );
    }
    let api_base = env.base_url("OPENAI_API_BASE");
    let model = env.text("OPENAI_MODERATION_MODEL");
    let batch_size = env.count("OPENAI_BATCH_SIZE");
    let rate_per_min = env.count("OPENAI_RATE_PER_MIN") as u32;
    api_key.map(|api_key| OpenAiConfig {
        api_key,
        api_base,
        model,
        batch_size,
        rate_per_min,
    })
}

/// `TOXICITY_BACKEND`: `auto` (default) takes Perspective if its key is set, else OpenAI if its
/// key is set, else the embedded local scorer. Naming a backend whose key is unset is an error.
fn toxicity_backend<F: Fn(&str) -> Option<String>>(
    env: &mut Reader<'_, F>,
    perspective: bool,
    openai: bool,
) -> ToxicityBackend {
    let auto = if perspective {
        ToxicityBackend::Perspective
    } else if openai {
        ToxicityBackend::OpenAi
    } else {
        ToxicityBackend::Local
    };
    let Some(raw) = env.string("TOXICITY_BACKEND") else {
        return auto;
    };
    match raw.to_ascii_lowercase().as_str() {
        "auto" => auto,
        "local" => ToxicityBackend::Local,
        "perspective" => {
            if !perspective {
                env.invalid(
                    "PERSPECTIVE_API_KEY",
                    "is not set, but TOXICITY_BACKEND=perspective needs it".to_string(),
                );
            }
            ToxicityBackend::Perspective
        }
        "openai" => {
            if !openai {
                env.invalid(
                    "OPENAI_API_KEY",
                    "is not set, but TOXICITY_BACKEND=openai needs it".to_string(),
                );
            }
            ToxicityBackend::OpenAi
        }
        _ => {
            env.invalid(
                "TOXICITY_BACKEND",
                format!(
                    "`{}` is not a backend: use auto, perspective, openai or local",
                    shorten(&raw)
                ),
            );
            auto
        }
    }
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
        let cwd = std::env::current_dir().expect("cwd");
        assert_eq!(cfg.scans_dir, cwd.join("scans"));
        assert_eq!(cfg.sherlock.python, "python3");
        assert_eq!(cfg.ops.log_filter, None);
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
                "DISCORD_API_BASE",
                "LOG_CHANNEL_ID",
                "MAX_CONCURRENT_SCANS"
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
    fn path_variables_are_made_absolute_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let list = dir.path().join("sites.json");
        std::fs::write(&list, "{}").expect("write");
        let cwd = std::env::current_dir().expect("cwd");
        let cfg = load(&[
            ("SCANS_DIR", "./reports"),
            ("SHERLOCK_BIN", "bin/sherlock"),
            ("SHERLOCK_SITES", list.to_str().expect("utf-8")),
        ])
        .expect("valid");
        assert_eq!(cfg.scans_dir, cwd.join("reports"));
        assert_eq!(cfg.sherlock.bin, Some(cwd.join("bin/sherlock")));
        assert_eq!(cfg.sherlock.sites, SiteList::File(list));
    }

    #[test]
    fn blank_python_means_the_default_and_the_data_dir_follows_xdg() {
        let cfg = load(&[("PYTHON", "  "), ("XDG_DATA_HOME", "/srv/data")]).expect("valid");
        assert_eq!(cfg.sherlock.python, "python3");
        assert_eq!(cfg.sherlock.data_dir, Some(PathBuf::from("/srv/data")));
        let cfg = load(&[("PYTHON", "/opt/py/bin/python3.12")]).expect("valid");
        assert_eq!(cfg.sherlock.python, "/opt/py/bin/python3.12");
        let err = load(&[("XDG_DATA_HOME", "data")]).expect_err("relative");
        assert!(
            err.to_string()
                .contains("XDG_DATA_HOME: `data` is relative"),
            "{err}"
        );
    }

    #[test]
    fn an_invalid_rust_log_is_reported_not_replaced() {
        let cfg = load(&[("RUST_LOG", "account_scanner=debug,warn")]).expect("valid");
        assert_eq!(
            cfg.ops.log_filter.as_deref(),
            Some("account_scanner=debug,warn")
        );
        let err = load(&[("RUST_LOG", "account_scanner=loud")]).expect_err("invalid");
        assert!(
            err.to_string()
                .contains("RUST_LOG: `account_scanner=loud` is not a log filter"),
            "{err}"
        );
    }

    #[test]
    fn reddit_and_perspective_are_off_by_default() {
        let cfg = load(&[]).expect("defaults are valid");
        assert!(cfg.reddit.is_none());
        assert!(cfg.perspective.is_none());
        assert!(cfg.openai.is_none());
        assert_eq!(cfg.toxicity_backend, ToxicityBackend::Local);
        assert_eq!(cfg.toxicity_threshold, None);
        assert_eq!(cfg.http_timeout, Duration::from_secs(30));
    }

    #[test]
    fn reddit_settings_with_defaults() {
        let cfg = load(&[
            ("REDDIT_CLIENT_ID", "id"),
            ("REDDIT_CLIENT_SECRET", "shh"),
            (
                "REDDIT_USER_AGENT",
                "linux:account-scanner:v0.1.0 (by /u/me)",
            ),
            ("REDDIT_API_BASE", "http://127.0.0.1:9/"),
        ])
        .expect("valid");
        let r = cfg.reddit.expect("configured");
        assert_eq!(r.client_secret.expose(), "shh");
        assert_eq!(r.auth_base, "https://www.reddit.com");
        assert_eq!(r.api_base, "http://127.0.0.1:9", "trailing slash dropped");
        assert_eq!((r.max_comments, r.max_posts, r.rate_per_min), (50, 25, 60));
        assert!(!format!("{r:?}").contains("shh"));
    }

    #[test]
    fn partial_reddit_credentials_name_what_is_missing() {
        let err = load(&[("REDDIT_CLIENT_ID", "id")]).expect_err("partial");
        let names: Vec<_> = err.problems.iter().map(|p| p.variable).collect();
        assert_eq!(names, ["REDDIT_CLIENT_SECRET", "REDDIT_USER_AGENT"]);
        assert!(
            err.to_string().contains(
                "REDDIT_USER_AGENT: is not set, but REDDIT_CLIENT_ID is: Reddit needs all three"
            ),
            "{err}"
        );
    }

    #[test]
    fn perspective_and_threshold_values_are_checked() {
        let cfg = load(&[
            ("PERSPECTIVE_API_KEY", "k3y"),
            ("PERSPECTIVE_QPS", "0.5"),
            ("TOXICITY_THRESHOLD", "0.9"),
        ])
        .expect("valid");
        let p = cfg.perspective.expect("configured");
        assert_eq!(p.qps, 0.5);
        assert_eq!(p.api_base, "https://commentanalyzer.googleapis.com");
        assert_eq!(cfg.toxicity_threshold, Some(0.9));
        let err = load(&[
            ("PERSPECTIVE_API_KEY", "bad\nkey"),
            ("PERSPECTIVE_QPS", "0"),
            ("PERSPECTIVE_API_BASE", "ftp://x"),
            ("TOXICITY_THRESHOLD", "1.5"),
            ("REDDIT_MAX_COMMENTS", "lots"),
        ])
        .expect_err("invalid");
        let text = err.to_string();
        for name in [
            "PERSPECTIVE_API_KEY: contains characters",
            "PERSPECTIVE_QPS: `0` is not allowed",
            "PERSPECTIVE_API_BASE: `ftp://x` is not a base URL",
            "TOXICITY_THRESHOLD: `1.5` is not allowed",
            "REDDIT_MAX_COMMENTS: `lots` is not allowed",
        ] {
            assert!(text.contains(name), "{name}: {text}");
        }
        assert!(!text.contains("bad"), "the key is never echoed: {text}");
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "[redacted] [redacted]");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn auto_picks_perspective_then_openai_then_local() {
        let p = ("PERSPECTIVE_API_KEY", "pk");
        let o = ("OPENAI_API_KEY", "sk-test");
        for (pairs, expected) in [
            (vec![], ToxicityBackend::Local),
            (vec![p], ToxicityBackend::Perspective),
            (vec![o], ToxicityBackend::OpenAi),
            (vec![p, o], ToxicityBackend::Perspective),
        ] {
            for backend in [None, Some("auto"), Some("AUTO")] {
                let mut all = pairs.clone();
                if let Some(b) = backend {
                    all.push(("TOXICITY_BACKEND", b));
                }
                let cfg = load(&all).expect("valid");
                assert_eq!(cfg.toxicity_backend, expected, "{all:?}");
            }
        }
    }

    #[test]
    fn an_explicit_backend_wins_over_auto() {
        let both = [("PERSPECTIVE_API_KEY", "pk"), ("OPENAI_API_KEY", "sk-test")];
        for (name, expected) in [
            ("openai", ToxicityBackend::OpenAi),
            ("local", ToxicityBackend::Local),
            ("perspective", ToxicityBackend::Perspective),
        ] {
            let mut pairs = both.to_vec();
            pairs.push(("TOXICITY_BACKEND", name));
            assert_eq!(load(&pairs).expect("valid").toxicity_backend, expected);
        }
        assert_eq!(
            load(&[("TOXICITY_BACKEND", "local")])
                .expect("valid")
                .toxicity_backend,
            ToxicityBackend::Local
        );
    }

    #[test]
    fn a_backend_without_its_key_or_an_unknown_one_is_named() {
        let err = load(&[("TOXICITY_BACKEND", "openai")]).expect_err("no key");
        assert_eq!(
            err.to_string(),
            "invalid configuration:\n  OPENAI_API_KEY: is not set, but TOXICITY_BACKEND=openai needs it"
        );
        let err = load(&[("TOXICITY_BACKEND", "perspective"), ("OPENAI_API_KEY", "k")])
            .expect_err("no key");
        assert_eq!(
            err.to_string(),
            "invalid configuration:\n  PERSPECTIVE_API_KEY: is not set, but TOXICITY_BACKEND=perspective needs it"
        );
        let err = load(&[("TOXICITY_BACKEND", "gpt")]).expect_err("unknown");
        assert_eq!(
            err.to_string(),
            "invalid configuration:\n  TOXICITY_BACKEND: `gpt` is not a backend: use auto, perspective, openai or local"
        );
    }

    #[test]
    fn openai_settings_with_defaults_and_limits() {
        let cfg = load(&[("OPENAI_API_KEY", "sk-secret-1")]).expect("valid");
        let o = cfg.openai.expect("configured");
        assert_eq!(o.api_base, "https://api.openai.com");
        assert_eq!(o.model, "omni-moderation-latest");
        assert_eq!((o.batch_size, o.rate_per_min), (32, 60));
        assert!(!format!("{o:?}").contains("sk-secret-1"));
        let err = load(&[
            ("OPENAI_API_KEY", "bad\nkey"),
            ("OPENAI_API_BASE", "ftp://x"),
            ("OPENAI_BATCH_SIZE", "0"),
            ("OPENAI_RATE_PER_MIN", "fast"),
        ])
        .expect_err("invalid");
        let names: Vec<_> = err.problems.iter().map(|p| p.variable).collect();
        assert_eq!(
            names,
            [
                "OPENAI_API_KEY",
                "OPENAI_API_BASE",
                "OPENAI_BATCH_SIZE",
                "OPENAI_RATE_PER_MIN"
            ]
        );
        assert!(!err.to_string().contains("bad"), "the key is never echoed");
    }
}
