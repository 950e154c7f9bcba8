//! The table of every environment variable the binary reads: its name, default, allowed values,
//! whether it is a secret, its meaning and which commands use it. The reader takes defaults and
//! ranges from here; `.env.example` and `docs/configuration.md` are generated from it (the test
//! at the bottom fails when the committed files differ: `CONFIG_DOCS_WRITE=1 cargo test --lib
//! config::spec` rewrites them). Adding a variable is one row here and one read in `mod.rs`.

/// What values a variable takes; the reader checks them, the docs describe them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// Any text (trimmed; blank means unset).
    Text,
    /// Text that is never printed or logged.
    Secret,
    /// A path, made absolute against the working directory at start.
    Path,
    /// An `http(s)://host[:port][/path]` base URL.
    Url,
    Seconds {
        min: u64,
        max: u64,
    },
    Count {
        min: u64,
        max: u64,
    },
    Number {
        min: f64,
        max: f64,
    },
    Flag,
    Choice(&'static [&'static str]),
    /// Comma-separated Discord ids.
    Ids,
    /// A rule of its own, checked in `mod.rs`; the text says what is allowed.
    Rule(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Section {
    Discord,
    Scanning,
    Reddit,
    Toxicity,
    Storage,
    Observability,
}

impl Section {
    pub const ALL: [Section; 6] = [
        Section::Discord,
        Section::Scanning,
        Section::Reddit,
        Section::Toxicity,
        Section::Storage,
        Section::Observability,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Section::Discord => "Discord",
            Section::Scanning => "Scanning",
            Section::Reddit => "Reddit",
            Section::Toxicity => "Toxicity scoring",
            Section::Storage => "Storage",
            Section::Observability => "Observability",
        }
    }
}

/// Which subcommands use a variable.
pub const ALL_COMMANDS: &[&str] = &[
    "scan",
    "check",
    "bot",
    "setup",
    "eval-toxicity",
    "history",
    "backup",
    "restore",
];
const SCANNING: &[&str] = &["scan", "check", "bot"];
const INSTALL: &[&str] = &["scan", "check", "bot", "setup"];
const BOT: &[&str] = &["bot"];
const DATABASE: &[&str] = &["scan", "bot", "history", "backup", "restore"];
const SCORING: &[&str] = &["scan", "check", "bot", "eval-toxicity"];

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spec {
    pub name: &'static str,
    pub section: Section,
    /// The value used when unset, as `.env.example` writes it; `None`: unset means off/none.
    pub default: Option<&'static str>,
    /// How the docs describe the default when it is not a plain value (e.g. computed).
    pub default_doc: Option<&'static str>,
    pub kind: Kind,
    /// One line, Markdown.
    pub meaning: &'static str,
    pub read_by: &'static [&'static str],
    /// Read by the terminal output directly (`NO_COLOR`), not by the configuration reader.
    pub terminal_only: bool,
}

impl Spec {
    pub fn secret(&self) -> bool {
        self.kind == Kind::Secret
    }

    /// The allowed values in words.
    pub fn allowed(&self) -> String {
        match self.kind {
            Kind::Text => "text".into(),
            Kind::Secret => "text (secret)".into(),
            Kind::Path => "a path".into(),
            Kind::Url => "http(s) base URL".into(),
            Kind::Seconds { min, max } => format!("{min}-{max} s"),
            Kind::Count { min, max } => format!("{min}-{max}"),
            Kind::Number { min, max } => format!("{min}-{max}"),
            Kind::Flag => "true or false".into(),
            Kind::Choice(values) => values.join(", "),
            Kind::Ids => "comma-separated ids".into(),
            Kind::Rule(rule) => rule.into(),
        }
    }
}

const fn spec(
    name: &'static str,
    section: Section,
    default: Option<&'static str>,
    kind: Kind,
    read_by: &'static [&'static str],
    meaning: &'static str,
) -> Spec {
    Spec {
        name,
        section,
        default,
        default_doc: None,
        kind,
        meaning,
        read_by,
        terminal_only: false,
    }
}

const fn documented(mut s: Spec, default_doc: &'static str) -> Spec {
    s.default_doc = Some(default_doc);
    s
}

use Kind::*;
use Section::*;

pub const SPECS: &[Spec] = &[
    // --- Discord
    spec(
        "DISCORD_BOT_TOKEN",
        Discord,
        None,
        Secret,
        BOT,
        "the bot's token from the developer portal (required for `bot`; a secret: never logged)",
    ),
    spec(
        "COMMAND_PREFIX",
        Discord,
        Some("!"),
        Rule("1-5 characters, no spaces"),
        BOT,
        "prefix for prefix commands",
    ),
    spec(
        "ADMIN_USER_IDS",
        Discord,
        None,
        Ids,
        BOT,
        "Discord user ids allowed to `!shutdown` (empty: nobody)",
    ),
    spec(
        "LOG_CHANNEL_ID",
        Discord,
        None,
        Rule("one channel id"),
        BOT,
        "channel id for the audit trail (who scanned whom, refusals, shutdowns)",
    ),
    spec(
        "SCAN_COOLDOWN",
        Discord,
        Some("30"),
        Seconds {
            min: 0,
            max: 86_400,
        },
        BOT,
        "seconds between two scans by the same user (0 disables); a server may set its own with `settings cooldown`",
    ),
    spec(
        "BUTTON_LIFETIME",
        Discord,
        Some("86400"),
        Seconds {
            min: 1,
            max: 2_592_000,
        },
        BOT,
        "how long the buttons on a scan result work (Rescan, History, the skipped half); a press after that is answered and the buttons disabled",
    ),
    spec(
        "DISCORD_MEMBERS_INTENT",
        Discord,
        Some("false"),
        Flag,
        BOT,
        "request Discord's privileged *Server Members* intent, which the join screen needs (enable it for the application in the developer portal first: Bot → Privileged Gateway Intents)",
    ),
    spec(
        "JOIN_BATCH_DELAY",
        Discord,
        Some("2"),
        Seconds { min: 0, max: 30 },
        BOT,
        "the join screen waits this long after a join for more before posting, so a burst becomes one summary",
    ),
    spec(
        "RAID_JOINS",
        Discord,
        Some("20"),
        Count {
            min: 2,
            max: 10_000,
        },
        BOT,
        "this many joins to one server within `RAID_WINDOW` are a raid: one summary message instead of one post per member, and automatic scans paused",
    ),
    spec(
        "RAID_WINDOW",
        Discord,
        Some("60"),
        Seconds { min: 1, max: 3_600 },
        BOT,
        "the window `RAID_JOINS` is counted over; a raid ends when a whole window passes with fewer joins",
    ),
    spec(
        "MAX_CONCURRENT_SCANS",
        Discord,
        Some("2"),
        Count { min: 0, max: 32 },
        BOT,
        "scans running at once on this machine; more wait in a FIFO queue (with PostgreSQL one queue for every machine, whose capacity is the sum; 0: a gateway machine that runs no scan, only with PostgreSQL)",
    ),
    spec(
        "JOB_LEASE",
        Discord,
        Some("30"),
        Seconds { min: 3, max: 600 },
        BOT,
        "with PostgreSQL: a machine that has not renewed its running scan's lease for this long is taken for dead, and another machine's worker takes the scan over (renewed every third of it)",
    ),
    spec(
        "SHUTDOWN_GRACE",
        Discord,
        Some("25"),
        Seconds { min: 0, max: 600 },
        BOT,
        "shutdown's whole budget, from SIGTERM or `!shutdown` to the exit: running scans get the first part, interrupted scans the rest to post partial results (with the shared queue and another machine's worker alive they are handed to it instead); keep it below fly's `kill_timeout` (30), see [Shutdown](operations.md#shutdown)",
    ),
    spec(
        "DISCORD_HTTP_TIMEOUT",
        Discord,
        Some("30"),
        Seconds { min: 1, max: 300 },
        BOT,
        "seconds before any one Discord REST request is abandoned (connecting gives up after at most 10 s)",
    ),
    spec(
        "DISCORD_API_BASE",
        Discord,
        None,
        Url,
        BOT,
        "unset in production; set (e.g. `http://127.0.0.1:8080`), REST and the gateway go to that server instead of Discord, with serenity's ratelimiter disabled (tests use it)",
    ),
    spec(
        "SHARD_COUNT",
        Discord,
        Some("1"),
        Rule("1-1024 or auto"),
        BOT,
        "gateway shards: a number or `auto` (Discord's recommended count)",
    ),
    spec(
        "SHARD_RANGE",
        Discord,
        None,
        Rule("FIRST-LAST, below a fixed SHARD_COUNT"),
        BOT,
        "run only shards `FIRST-LAST` (inclusive) of a fixed `SHARD_COUNT`: one range per machine",
    ),
    // --- Scanning
    spec(
        "SCAN_TIMEOUT",
        Scanning,
        Some("300"),
        Seconds {
            min: 1,
            max: 86_400,
        },
        SCANNING,
        "seconds before a scan stops and returns what it has, marked partial",
    ),
    documented(
        spec(
            "SHERLOCK_BIN",
            Scanning,
            None,
            Path,
            INSTALL,
            "an explicit Sherlock executable, run exactly as given (a relative path is resolved from the working directory, not searched on `PATH`)",
        ),
        "`sherlock` on `PATH`, else the managed virtualenv",
    ),
    spec(
        "SHERLOCK_SITES",
        Scanning,
        Some("local"),
        Rule("local, remote or a file"),
        SCANNING,
        "`local`: the list bundled with the pinned Sherlock (reproducible); `remote`: Sherlock downloads its newest list at every run; or a path to a site-list file in Sherlock's `data.json` format",
    ),
    spec(
        "SHERLOCK_SITE_TIMEOUT",
        Scanning,
        Some("10"),
        Seconds { min: 1, max: 600 },
        SCANNING,
        "per-request timeout handed to Sherlock",
    ),
    spec(
        "SHERLOCK_NSFW",
        Scanning,
        Some("false"),
        Flag,
        SCANNING,
        "include NSFW sites",
    ),
    spec(
        "SHERLOCK_WORKERS",
        Scanning,
        Some("64"),
        Count { min: 1, max: 512 },
        SCANNING,
        "Sherlock's worker pool, set by the project's launcher (Sherlock alone uses 20); not applied to an explicit `SHERLOCK_BIN`",
    ),
    spec(
        "SHERLOCK_CONTROL_CHECK",
        Scanning,
        Some("true"),
        Flag,
        SCANNING,
        "run the control probe that flags sites claiming every username, so their hits are not counted",
    ),
    spec(
        "SHERLOCK_CONTROL_TTL",
        Scanning,
        Some("86400"),
        Seconds {
            min: 0,
            max: 2_592_000,
        },
        SCANNING,
        "seconds a control result is reused (cached under `SCANS_DIR/.cache`; 0 disables the cache)",
    ),
    spec(
        "PYTHON",
        Scanning,
        Some("python3"),
        Text,
        INSTALL,
        "the Python that `setup` (or the first scan) uses to create the managed virtualenv: a name looked up on `PATH`, or a path",
    ),
    documented(
        spec(
            "XDG_DATA_HOME",
            Scanning,
            None,
            Rule("an absolute path"),
            INSTALL,
            "where the managed virtualenv lives (`$XDG_DATA_HOME/account-scanner/sherlock-<version>`); must be absolute (a relative value is an error, as the XDG spec says)",
        ),
        "`$HOME/.local/share`",
    ),
    spec(
        "HTTP_TIMEOUT",
        Scanning,
        Some("30"),
        Seconds { min: 1, max: 600 },
        SCANNING,
        "seconds before any one Reddit, Perspective or OpenAI request is abandoned",
    ),
    // --- Reddit
    spec(
        "REDDIT_CLIENT_ID",
        Reddit,
        None,
        Text,
        SCANNING,
        "Reddit app (\"script\" or \"web app\") id; with the next two enables Reddit. All three or none: a partial set is a configuration error naming what is missing",
    ),
    spec(
        "REDDIT_CLIENT_SECRET",
        Reddit,
        None,
        Secret,
        SCANNING,
        "the app's secret (never printed or logged)",
    ),
    spec(
        "REDDIT_USER_AGENT",
        Reddit,
        None,
        Text,
        SCANNING,
        "what Reddit asks for, e.g. `linux:account-scanner:v0.1.0 (by /u/NAME)`",
    ),
    spec(
        "REDDIT_AUTH_BASE",
        Reddit,
        Some("https://www.reddit.com"),
        Url,
        SCANNING,
        "where tokens come from (`/api/v1/access_token`); tests point it at a fake",
    ),
    spec(
        "REDDIT_API_BASE",
        Reddit,
        Some("https://oauth.reddit.com"),
        Url,
        SCANNING,
        "where the API is (`/user/NAME/about`, `/comments`, `/submitted`)",
    ),
    spec(
        "REDDIT_MAX_COMMENTS",
        Reddit,
        Some("50"),
        Count { min: 0, max: 1000 },
        SCANNING,
        "newest comments fetched and scored",
    ),
    spec(
        "REDDIT_MAX_POSTS",
        Reddit,
        Some("25"),
        Count { min: 0, max: 1000 },
        SCANNING,
        "newest posts fetched and scored",
    ),
    spec(
        "REDDIT_RATE_PER_MIN",
        Reddit,
        Some("60"),
        Count {
            min: 1,
            max: 60_000,
        },
        SCANNING,
        "Reddit requests per minute for the whole process, evenly spaced (Reddit's free tier allows 100)",
    ),
    // --- Toxicity
    spec(
        "TOXICITY_BACKEND",
        Toxicity,
        Some("auto"),
        Choice(&["auto", "perspective", "openai", "local"]),
        SCANNING,
        "`auto`: Perspective if `PERSPECTIVE_API_KEY` is set, else OpenAI if `OPENAI_API_KEY` is set, else `local` (embedded, offline: a fine-tuned sentence encoder plus word lists); naming a backend whose key is unset is an error. See [toxicity scoring](toxicity.md)",
    ),
    spec(
        "PERSPECTIVE_API_KEY",
        Toxicity,
        None,
        Secret,
        SCANNING,
        "Google Perspective API key (sent only in the `x-goog-api-key` header, never printed). Perspective accepts no new users and closes at the end of 2026",
    ),
    spec(
        "PERSPECTIVE_API_BASE",
        Toxicity,
        Some("https://commentanalyzer.googleapis.com"),
        Url,
        SCANNING,
        "where Perspective is",
    ),
    spec(
        "PERSPECTIVE_QPS",
        Toxicity,
        Some("1"),
        Number {
            min: 0.01,
            max: 1000.0,
        },
        SCANNING,
        "Perspective requests per second for the whole process (may be fractional)",
    ),
    spec(
        "OPENAI_API_KEY",
        Toxicity,
        None,
        Secret,
        SCANNING,
        "OpenAI API key for the moderation endpoint (sent only in `Authorization: Bearer`, never printed)",
    ),
    spec(
        "OPENAI_API_BASE",
        Toxicity,
        Some("https://api.openai.com"),
        Url,
        SCANNING,
        "where OpenAI is (`/v1/moderations`)",
    ),
    spec(
        "OPENAI_MODERATION_MODEL",
        Toxicity,
        Some("omni-moderation-latest"),
        Text,
        SCANNING,
        "the moderation model",
    ),
    spec(
        "OPENAI_BATCH_SIZE",
        Toxicity,
        Some("32"),
        Count { min: 1, max: 256 },
        SCANNING,
        "texts per moderation request",
    ),
    spec(
        "OPENAI_RATE_PER_MIN",
        Toxicity,
        Some("60"),
        Count {
            min: 1,
            max: 100_000,
        },
        SCANNING,
        "OpenAI moderation requests per minute for the whole process, evenly spaced. OpenAI's tier 1 allows 500/min but only 10,000 tokens/min for `omni-moderation` (about 5 batches of 32 typical comments), free accounts 3/min: lower it to match your account",
    ),
    documented(
        spec(
            "TOXICITY_THRESHOLD",
            Toxicity,
            None,
            Number { min: 0.0, max: 1.0 },
            SCORING,
            "items scoring at or above it are counted and flagged; unset: 0.7 for `perspective` and `openai`, the threshold chosen with the model for `local` (in `models/toxicity/combination.json`; 0.7 when it falls back to its word lists)",
        ),
        "the backend's",
    ),
    documented(
        spec(
            "TOXICITY_MODEL_DIR",
            Toxicity,
            None,
            Path,
            SCORING,
            "the `local` backend's model files (`model.safetensors`, `tokenizer.json`, `head.json`, `combination.json`, as in `models/toxicity/`) instead of the copy built into the binary; checked against the sha256 in `head.json`",
        ),
        "built into the binary",
    ),
    // --- Storage
    spec(
        "SCANS_DIR",
        Storage,
        Some("./scans"),
        Path,
        SCANNING,
        "where JSON and CSV reports are written (relative: from the working directory)",
    ),
    spec(
        "SCAN_RETENTION_DAYS",
        Storage,
        Some("30"),
        Count {
            min: 0,
            max: 36_500,
        },
        BOT,
        "report files older than this many days are removed when the bot starts and daily, with their history rows, each removal logged (0 keeps everything)",
    ),
    documented(
        spec(
            "DATABASE_URL",
            Storage,
            None,
            Secret,
            DATABASE,
            "where scan history, per-server settings and the audit trail live: `sqlite:///path/file.db`, or `postgres://user:password@host/db` when several machines share the bot, which also shares each API key's quota between them (a secret: may hold a password)",
        ),
        "SQLite file `.account-scanner.db` in `SCANS_DIR`",
    ),
    spec(
        "MIN_FREE_SPACE_MB",
        Storage,
        Some("200"),
        Count {
            min: 0,
            max: 1_000_000,
        },
        SCANNING,
        "a scan refuses to start (politely, in Discord and the CLI) when the scans directory has less free space, in MB",
    ),
    // --- Observability
    documented(
        spec(
            "RUST_LOG",
            Observability,
            None,
            Rule("an EnvFilter"),
            ALL_COMMANDS,
            "log filter ([EnvFilter](https://docs.rs/tracing-subscriber/latest/tracing_subscriber/filter/struct.EnvFilter.html) syntax, e.g. `warn,account_scanner=debug`); logs go to stderr; an invalid filter is a configuration error",
        ),
        "`warn` (`info` for `bot`)",
    ),
    spec(
        "LOG_FORMAT",
        Observability,
        Some("text"),
        Choice(&["text", "json"]),
        ALL_COMMANDS,
        "`json`: one JSON object per line, with the scan id, target, mode, guild and requester of the enclosing spans",
    ),
    spec(
        "HEALTH_PORT",
        Observability,
        None,
        Count {
            min: 1,
            max: 65_535,
        },
        BOT,
        "serve `/healthz` and `/metrics` on this port (unset: no endpoint; the Docker image sets 8080)",
    ),
    Spec {
        terminal_only: true,
        ..spec(
            "NO_COLOR",
            Observability,
            None,
            Rule("set or unset"),
            &["scan", "setup"],
            "set (not empty): plain progress lines instead of a progress bar, no colours in logs",
        )
    },
];

/// Every variable of the table (`NO_COLOR` included).
pub fn names() -> impl Iterator<Item = &'static str> {
    SPECS.iter().map(|s| s.name)
}

pub fn find(name: &str) -> Option<&'static Spec> {
    SPECS.iter().find(|s| s.name == name)
}

/// The system's variables: read by the binary or its libraries, never configuration.
const SYSTEM_VARIABLES: &str = "\
# Not set in this file: the binary or its libraries read these from the environment it runs in.
# Child processes (Sherlock, its --version, setup's python and pip) start from an empty
# environment and get only these, never a secret or anything above:
#   PATH, PYTHONPATH, HOME (the default data directory), USER, LOGNAME, LANG, LANGUAGE, LC_*, TZ,
#   TMPDIR (where Sherlock's temp dirs go),
#   HTTP_PROXY, HTTPS_PROXY, ALL_PROXY, NO_PROXY (also lower-case; the HTTP client honours them too),
#   SSL_CERT_FILE, SSL_CERT_DIR, REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE,
#   and PIP_* (pip's own settings, e.g. PIP_INDEX_URL) for setup's pip only.
# Read by the binary's libraries only, none of them needing a value: TERM, COLUMNS (the progress
# bar), RUST_BACKTRACE, RUST_MIN_STACK, TOKIO_WORKER_THREADS, TOKIO_UNSTABLE_SHARDED_BLOCKING_QUEUE
# (the async runtime), OPENSSL_ia32cap (the TLS library's CPU features), REQUEST_METHOD (the HTTP
# client ignores proxy variables under CGI).
# Read by the local toxicity model's maths (candle, rayon) when it first scores: RAYON_NUM_THREADS
# (threads for matrix products; unset: one per core; 1 keeps inference on one core),
# RAYON_RS_NUM_CPUS, CANDLE_NUM_THREADS, CANDLE_CPU_MASK, CANDLE_CPU_AFFINITY,
# CANDLE_BARRIER_POOL_SPIN_LIMIT (candle's worker pool for element-wise work).
";

/// Markdown links `[text](url)` as `text`, for the plain-text `.env.example`.
fn plain(markdown: &str) -> String {
    let mut out = String::new();
    let mut rest = markdown;
    while let Some(open) = rest.find('[') {
        let Some(close) = rest[open..].find("](").map(|i| open + i) else {
            break;
        };
        let Some(end) = rest[close..].find(')').map(|i| close + i) else {
            break;
        };
        out.push_str(&rest[..open]);
        out.push_str(&rest[open + 1..close]);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// `# `-prefixed lines of at most 95 characters.
fn comment(text: &str) -> String {
    let mut out = String::new();
    let mut line = String::from("#");
    for word in text.split_whitespace() {
        if line.len() + 1 + word.len() > 95 && line.len() > 1 {
            out.push_str(&line);
            out.push('\n');
            line = String::from("#");
        }
        line.push(' ');
        line.push_str(word);
    }
    out.push_str(&line);
    out.push('\n');
    out
}

fn default_words(s: &Spec) -> String {
    match (s.default_doc, s.default) {
        (Some(doc), _) => doc.to_string(),
        (None, Some(v)) => format!("`{v}`"),
        (None, None) => "unset".to_string(),
    }
}

/// `.env.example`, generated.
pub fn env_example() -> String {
    let mut out = String::from(
        "# account-scanner configuration, generated from src/config/spec.rs (do not edit by hand).\n\
         # Copy to .env (loaded from the working directory when present) or set these in the\n\
         # environment. Blank means unset. Every variable the binary reads is here.\n",
    );
    for section in Section::ALL {
        out.push_str(&format!(
            "\n# --- {} {}\n",
            section.title(),
            "-".repeat(90usize.saturating_sub(section.title().len()))
        ));
        for s in SPECS.iter().filter(|s| s.section == section) {
            let mut text = plain(s.meaning);
            if let Some(first) = text.get(..1) {
                text = first.to_uppercase() + &text[1..];
            }
            text.push_str(&format!(
                ". Default: {}; allowed: {}. Used by: {}.",
                plain(&default_words(s)).replace('`', ""),
                s.allowed(),
                s.read_by.join(", ")
            ));
            out.push_str(&comment(&text));
            out.push_str(&format!("{}={}\n", s.name, s.default.unwrap_or("")));
        }
    }
    out.push_str(&format!(
        "\n# --- Read from the system, not configuration {}\n{SYSTEM_VARIABLES}",
        "-".repeat(48)
    ));
    out
}

/// `docs/configuration.md`, generated.
pub fn configuration_doc() -> String {
    let mut out = String::from(
        "# Configuration\n\n\
         <!-- Generated from src/config/spec.rs by `CONFIG_DOCS_WRITE=1 cargo test --lib config::spec`; do not edit by hand. -->\n\n\
         Read once at start from the environment, and from `.env` in the working directory when\n\
         present (see [`.env.example`](../.env.example), generated from the same table), by one\n\
         reader (`src/config/`): every invalid value is reported with the variable's name, all at\n\
         once (`RUST_LOG` included). Blank values count as unset. Relative paths (`SCANS_DIR`,\n\
         `SHERLOCK_SITES`, `SHERLOCK_BIN`, `TOXICITY_MODEL_DIR`, `--out`) are taken from the\n\
         directory the binary starts in and made absolute once, at start. Variables of the system\n\
         rather than of the configuration (`PATH`, `HOME`, the locale, `TMPDIR`, proxies, CA\n\
         bundles) are listed at the end of `.env.example`; they are the only ones a child process\n\
         gets (see [how a scan runs](design.md)). Secrets are never printed, logged or passed to a\n\
         child process.\n",
    );
    for section in Section::ALL {
        out.push_str(&format!(
            "\n## {}\n\n| variable | default | allowed | secret | used by | meaning |\n|---|---|---|---|---|---|\n",
            section.title()
        ));
        for s in SPECS.iter().filter(|s| s.section == section) {
            out.push_str(&format!(
                "| `{}` | {} | {} | {} | {} | {} |\n",
                s.name,
                default_words(s),
                s.allowed().replace('|', "\\|"),
                if s.secret() { "yes" } else { "" },
                s.read_by.join(", "),
                s.meaning.replace('|', "\\|")
            ));
        }
    }
    out.push_str(
        "\nWhich Sherlock runs: `SHERLOCK_BIN` if set; else `sherlock` on `PATH`; else the managed\n\
         virtualenv (installed on first use). The version is pinned in one place,\n\
         [`sherlock/requirements.txt`](../sherlock/requirements.txt) (sherlock-project 0.16.2 with its\n\
         dependencies frozen); the binary embeds that file, so `setup`, the tests and the Docker image\n\
         install the same thing.\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn check_or_write(relative: &str, generated: &str) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
        if std::env::var_os("CONFIG_DOCS_WRITE").is_some() {
            std::fs::write(&path, generated).expect("write generated file");
            return;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "{relative} differs from what src/config/spec.rs generates: run `CONFIG_DOCS_WRITE=1 cargo test --lib config::spec` and commit it"
        );
    }

    #[test]
    fn env_example_is_generated_from_the_table() {
        check_or_write(".env.example", &env_example());
    }

    #[test]
    fn the_configuration_doc_is_generated_from_the_table() {
        check_or_write("docs/configuration.md", &configuration_doc());
    }

    #[test]
    fn names_are_unique_and_every_section_has_variables() {
        let mut seen = std::collections::BTreeSet::new();
        for s in SPECS {
            assert!(seen.insert(s.name), "{} twice", s.name);
            assert!(!s.read_by.is_empty(), "{}", s.name);
            assert!(
                s.read_by.iter().all(|c| ALL_COMMANDS.contains(c)),
                "{}",
                s.name
            );
        }
        for section in Section::ALL {
            assert!(SPECS.iter().any(|s| s.section == section), "{section:?}");
        }
    }

    #[test]
    fn defaults_fit_their_kind() {
        for s in SPECS {
            let Some(d) = s.default else { continue };
            match s.kind {
                Kind::Seconds { min, max } | Kind::Count { min, max } => {
                    let n: u64 = d.parse().unwrap_or_else(|_| panic!("{}: {d}", s.name));
                    assert!((min..=max).contains(&n), "{}", s.name);
                }
                Kind::Number { min, max } => {
                    let n: f64 = d.parse().unwrap_or_else(|_| panic!("{}: {d}", s.name));
                    assert!((min..=max).contains(&n), "{}", s.name);
                }
                Kind::Flag => assert!(d == "true" || d == "false", "{}", s.name),
                Kind::Choice(values) => assert!(values.contains(&d), "{}", s.name),
                Kind::Secret => panic!("{}: a secret has no default", s.name),
                _ => {}
            }
        }
    }
}
