//! The command line: `scan`, `check`, `setup`, `bot`, `history`, `backup`, `restore`. Parses, loads the configuration, calls the
//! scanner, renders. Exit codes are documented in `--help` and the README.

mod check;
mod eval;
mod history;
mod progress;
pub mod summary;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use tokio_util::sync::CancellationToken;

use crate::config::{Config, ConfigError};
use crate::model::{EventSink, ScanMode, SectionStatus, Username};
use crate::scanner::Scanner;
use crate::sources::sherlock::install;
use crate::store::ReportStore;

/// Exit codes, also listed in `--help`.
pub mod exit {
    pub const DONE: u8 = 0;
    pub const SCAN_FAILED: u8 = 1;
    pub const BAD_INPUT: u8 = 2;
    pub const CONFIGURATION: u8 = 3;
}

const EXIT_CODES_HELP: &str = "Exit codes:
  0  done (a scan stopped at its deadline is done: its report says partial)
  1  the scan failed (e.g. Sherlock could not run, Reddit kept answering 500: the report
     still holds the other half), or its report could not be written; for `bot`: the
     Discord connection failed
  2  bad usage or input (e.g. an invalid username)
  3  configuration problem (an invalid variable, an unusable scans directory, a bad SHERLOCK_BIN,
     --mode reddit without Reddit credentials)";

#[derive(Debug, Parser)]
#[command(
    name = "account-scanner",
    version,
    about = "Find where a username exists (Sherlock) and what its Reddit history says",
    after_help = EXIT_CODES_HELP
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Scan one username and write JSON and CSV reports to the scans directory.
    Scan(ScanArgs),
    /// Show what is configured and what is missing (Sherlock, scans directory, integrations).
    Check,
    /// Install the pinned Sherlock into a managed virtualenv in the user's data directory.
    Setup,
    /// Run the Discord bot (needs DISCORD_BOT_TOKEN) until !shutdown, SIGINT or SIGTERM.
    Bot,
    /// Run scans from the queue the machines share in PostgreSQL (needs DATABASE_URL and
    /// DISCORD_BOT_TOKEN), posting results over Discord's REST API; no gateway connection.
    Worker,
    /// Precision, recall, F1, false-positive rate and ROC AUC of the local toxicity backend on a
    /// labelled set.
    EvalToxicity(eval::EvalArgs),
    /// List a username's scans from the database, every server's (the operator's view).
    History(history::HistoryArgs),
    /// Write a consistent copy of the SQLite database to FILE (safe while the bot runs).
    Backup(history::FileArg),
    /// Check FILE (integrity, schema) and put it in place of the SQLite database; while a bot
    /// runs, it is staged and put in place at the bot's next start.
    Restore(history::FileArg),
}

#[derive(Debug, clap::Args)]
struct ScanArgs {
    /// The username to look up (letters, digits, '_', '.', '-'; at most 64 characters).
    #[arg(allow_hyphen_values = true)]
    username: String,
    /// Which halves to run.
    #[arg(long, value_enum, default_value_t = ModeArg::All)]
    mode: ModeArg,
    /// Write the report files here instead of SCANS_DIR.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Print the JSON report on stdout instead of the summary.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ModeArg {
    All,
    Sherlock,
    Reddit,
}

impl From<ModeArg> for ScanMode {
    fn from(m: ModeArg) -> Self {
        match m {
            ModeArg::All => ScanMode::All,
            ModeArg::Sherlock => ScanMode::Sherlock,
            ModeArg::Reddit => ScanMode::Reddit,
        }
    }
}

/// Entry point used by `main.rs`.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = dotenvy::dotenv()
        && !e.not_found()
    {
        eprintln!("error: the .env file could not be read: {e}");
        return ExitCode::from(exit::CONFIGURATION);
    }
    // Read once, for every command: the log filter and format come from it too. An invalid
    // configuration is reported by the command (with every problem named), after tracing is
    // set up with the defaults.
    let config = Config::from_env();
    init_tracing(
        matches!(cli.command, Command::Bot | Command::Worker),
        config.as_ref().ok(),
    );
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::SCAN_FAILED);
        }
    };
    let code = runtime.block_on(async {
        match cli.command {
            Command::Scan(args) => scan(args, config).await,
            Command::Check => check::run(config).await,
            Command::Setup => setup(config).await,
            Command::Bot => bot(config, Face::Bot).await,
            Command::Worker => bot(config, Face::Worker).await,
            Command::EvalToxicity(args) => eval::run(args, config),
            Command::History(args) => history::history(args, config).await,
            Command::Backup(args) => history::backup(args, config).await,
            Command::Restore(args) => history::restore_cmd(args, config).await,
        }
    });
    // A task still waiting (a request Discord never answered) must not hold the exit past the
    // bot's shutdown budget: dropping the runtime would wait for blocking work without limit.
    runtime.shutdown_timeout(std::time::Duration::from_millis(250));
    ExitCode::from(code)
}

/// Logs go to stderr; by default `info` for the bot (an operator reads them), `warn` for the CLI.
/// `LOG_FORMAT=json` writes one JSON object per line with the fields of the enclosing spans
/// (scan id, target, mode; guild and requester for the bot's scans). `RUST_LOG` and `LOG_FORMAT`
/// were validated by the configuration; with an invalid configuration the defaults apply until
/// the command reports it.
fn init_tracing(bot: bool, config: Option<&Config>) {
    let default = if bot { "info" } else { "warn" };
    let filter = config
        .and_then(|c| c.ops.log_filter.as_deref())
        .and_then(|v| tracing_subscriber::EnvFilter::try_new(v).ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new(default));
    let json = config.is_some_and(|c| c.ops.log_format == crate::config::LogFormat::Json);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(crate::redact::RedactingStderr::new(
            crate::redact::Redactor::from_env(),
        ));
    let _ = if json {
        builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .try_init()
    } else {
        builder
            .with_ansi(std::io::stderr().is_terminal() && !no_color())
            .try_init()
    };
}

/// The NO_COLOR convention: set and not empty.
pub(crate) fn no_color() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

fn load_config(config: Result<Config, ConfigError>) -> Result<Config, u8> {
    config.map_err(|e| {
        eprintln!("error: {e}");
        exit::CONFIGURATION
    })
}

async fn scan(args: ScanArgs, config: Result<Config, ConfigError>) -> u8 {
    let username = match Username::parse(&args.username) {
        Ok(u) => u,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::BAD_INPUT;
        }
    };
    let mode = ScanMode::from(args.mode);
    let mut config = match load_config(config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let indexed = args.out.is_none();
    if let Some(out) = args.out {
        // Absolute, like SCANS_DIR: the summary names where the files are.
        config.scans_dir = std::path::absolute(&out).unwrap_or(out);
    }
    let store = match ReportStore::open(&config.scans_dir) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::CONFIGURATION;
        }
    };
    if let Err(e) = store.check_free_space(config.ops.min_free_bytes) {
        eprintln!("error: {e}");
        return exit::CONFIGURATION;
    }
    if mode == ScanMode::Reddit && config.reddit.is_none() {
        eprintln!(
            "error: {}",
            crate::model::RedditSection::not_configured()
                .message
                .unwrap_or_default()
        );
        return exit::CONFIGURATION;
    }

    let install = if mode.runs_sherlock() {
        match find_or_install_sherlock(&config).await {
            Ok(i) => Some(i),
            Err(code) => return code,
        }
    } else {
        None
    };

    // With PostgreSQL the API quotas are shared with every machine: opened before the scan, and
    // no scan without it (never a quota of this process's own). SQLite (one machine) is opened
    // once the scan is done, so it is held no longer than needed.
    let shared_db = match &config.database {
        crate::config::DatabaseTarget::Postgres(_) => {
            match crate::db::Db::open(&config.database).await {
                Ok(db) => Some(db),
                Err(e) => {
                    eprintln!(
                        "error: the database that holds the shared API quotas cannot be reached, so no scan starts: {e}"
                    );
                    return exit::CONFIGURATION;
                }
            }
        }
        crate::config::DatabaseTarget::Sqlite(_) => None,
    };
    let database = indexed.then(|| config.database.clone());
    let scanner = Scanner::new(config, install);
    if let Some(quotas) = shared_db.as_ref().and_then(|db| db.shared()) {
        scanner.share(&quotas);
    }
    let mut request = scanner.request(username, mode);
    request.requested_by = Some("cli".to_string());

    let cancel = CancellationToken::new();
    let on_ctrl_c = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("\ninterrupted: stopping the scan and writing what was found so far");
            on_ctrl_c.cancel();
        }
    });
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let renderer = tokio::spawn(progress::render(rx, progress::Style::detect()));
    let mut report = scanner.scan(request, EventSink::channel(tx), cancel).await;
    let _ = renderer.await;

    // History (only for reports written to SCANS_DIR, the directory it indexes).
    let db = match (&database, shared_db) {
        (None, Some(db)) => {
            db.close().await;
            None
        }
        (Some(_), Some(db)) => Some(db),
        (Some(target), None) => match crate::db::Db::open(target).await {
            Ok(db) => Some(db),
            Err(e) => {
                eprintln!("warning: this scan will not be added to history: {e}");
                None
            }
        },
        (None, None) => None,
    };
    let target = crate::db::TargetKey::username(&report.request.username);
    report.previous = crate::jobs::scan::previous_scan(db.as_ref(), None, &target, &report).await;
    let saved = store.save(&report);
    if let (Ok(saved), Some(db)) = (&saved, &db) {
        let place = crate::db::scans::Place::default();
        if let Some(reference) = crate::jobs::scan::index_scan(db, &place, &report, saved).await {
            eprintln!(
                "warning: this scan could not be added to history (reference {reference} in the log)"
            );
        }
        db.close().await;
    }
    if args.json {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(&report.to_json()).and_then(|_| out.flush());
    }
    let saved = match saved {
        Ok(saved) => saved,
        Err(e) => {
            if !args.json {
                print!("{}", summary::render(&report, None));
            }
            eprintln!("error: the report could not be saved: {e}");
            return exit::SCAN_FAILED;
        }
    };
    if !args.json {
        print!("{}", summary::render(&report, Some(&saved)));
    }
    if report.sherlock.status == SectionStatus::Failed
        || report.reddit.status == SectionStatus::Failed
    {
        return exit::SCAN_FAILED;
    }
    exit::DONE
}

/// Sherlock from SHERLOCK_BIN, PATH or the managed venv; installs the managed venv on first use.
async fn find_or_install_sherlock(config: &Config) -> Result<install::SherlockInstall, u8> {
    match install::locate(&config.sherlock) {
        Ok(Some(found)) => Ok(found),
        Ok(None) => {
            eprintln!("Sherlock was not found on PATH; installing it once for this user.");
            install::setup(&config.sherlock, |line| eprintln!("{line}"))
                .await
                .context("setting up Sherlock")
                .map_err(|e| {
                    eprintln!("error: {e:#}");
                    exit::SCAN_FAILED
                })
        }
        Err(e) => {
            eprintln!("error: {e}");
            Err(exit::CONFIGURATION)
        }
    }
}

/// The long-running processes: the bot, or a worker without a gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Face {
    Bot,
    Worker,
}

async fn bot(config: Result<Config, ConfigError>, face: Face) -> u8 {
    let config = match load_config(config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if config.discord.token.is_none() {
        eprintln!(
            "error: DISCORD_BOT_TOKEN is not set: the bot needs its token (Discord developer portal → your application → Bot → Reset Token)"
        );
        return exit::CONFIGURATION;
    }
    let install = match find_or_install_sherlock(&config).await {
        Ok(i) => Some(i),
        Err(code) => return code,
    };
    if face == Face::Worker
        && !matches!(config.database, crate::config::DatabaseTarget::Postgres(_))
    {
        eprintln!(
            "error: a worker takes scans from the queue the machines share in PostgreSQL: set DATABASE_URL=postgres://… (the bots' database)"
        );
        return exit::CONFIGURATION;
    }
    let ran = match face {
        Face::Bot => crate::bot::run(config, install).await,
        Face::Worker => crate::bot::worker::run(config, install).await,
    };
    match ran {
        Ok(()) => exit::DONE,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "the bot stopped on an error");
            eprintln!("error: {e:#}");
            exit::SCAN_FAILED
        }
    }
}

async fn setup(config: Result<Config, ConfigError>) -> u8 {
    let config = match load_config(config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    match install::setup(&config.sherlock, |line| eprintln!("{line}")).await {
        Ok(found) => {
            println!("{}", found.program.display());
            exit::DONE
        }
        Err(e) => {
            eprintln!("error: {e}");
            exit::SCAN_FAILED
        }
    }
}
