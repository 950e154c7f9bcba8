//! `history`, `backup` and `restore`: the operator's view of the database. `history` sees every
//! server's scans (the operator's right); the bot shows each server only its own.

use std::path::PathBuf;

use crate::cli::exit;
use crate::config::{Config, ConfigError};
use crate::db::backup::{Restored, restore};
use crate::db::scans::{Scope, TargetKey};
use crate::db::{Db, HistoryEntry};

#[derive(Debug, clap::Args)]
pub struct HistoryArgs {
    /// The username whose scans to list (any case).
    username: String,
    /// At most this many scans, newest first.
    #[arg(long, default_value_t = 20)]
    limit: u32,
    /// Print JSON (one object: total and entries) instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub struct FileArg {
    /// The backup file.
    file: PathBuf,
}

async fn open(config: Result<Config, ConfigError>) -> Result<(Config, Db), u8> {
    let config = config.map_err(|e| {
        eprintln!("error: {e}");
        exit::CONFIGURATION
    })?;
    let db = Db::open(&config.database).await.map_err(|e| {
        eprintln!("error: {e}");
        exit::CONFIGURATION
    })?;
    Ok((config, db))
}

pub async fn history(args: HistoryArgs, config: Result<Config, ConfigError>) -> u8 {
    let (_, db) = match open(config).await {
        Ok(x) => x,
        Err(code) => return code,
    };
    let page = db
        .history(
            Scope::All,
            &TargetKey::username(&args.username),
            args.limit,
            0,
        )
        .await;
    db.close().await;
    let page = match page {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::SCAN_FAILED;
        }
    };
    if args.json {
        match serde_json::to_string_pretty(&page) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("error: {e}");
                return exit::SCAN_FAILED;
            }
        }
        return exit::DONE;
    }
    if page.entries.is_empty() {
        println!("No scans of {} in the database.", args.username);
        return exit::DONE;
    }
    println!(
        "{} scan(s) of {} (newest first, {} shown):",
        page.total,
        args.username,
        page.entries.len()
    );
    for e in &page.entries {
        println!("{}", line(e));
    }
    exit::DONE
}

fn line(e: &HistoryEntry) -> String {
    let place = match e.guild_id {
        Some(g) => format!(
            "server {g} by {}",
            e.requester_name.as_deref().unwrap_or("?")
        ),
        None => "command line".into(),
    };
    let mut s = format!(
        "{}  {:<8} {:<9} {:<40} {} hit(s)",
        e.finished_at.format("%Y-%m-%d %H:%M"),
        e.mode,
        e.outcome,
        place,
        e.hits
    );
    if let Some(r) = &e.reddit {
        s.push_str(&format!("  reddit {}", r.status));
        if let Some(m) = r.max_toxicity {
            s.push_str(&format!(" max toxicity {m:.2}"));
        }
    }
    s.push_str(&format!("  {}", e.files.first().map_or("", String::as_str)));
    if !e.files_present {
        s.push_str(" (files gone)");
    }
    s
}

pub async fn backup(args: FileArg, config: Result<Config, ConfigError>) -> u8 {
    let (_, db) = match open(config).await {
        Ok(x) => x,
        Err(code) => return code,
    };
    let done = db.backup(&args.file).await;
    db.close().await;
    match done {
        Ok(scans) => {
            println!(
                "Backed up {scans} scan(s) with settings and audit trail to {}",
                args.file.display()
            );
            exit::DONE
        }
        Err(e) => {
            eprintln!("error: {e}");
            exit::SCAN_FAILED
        }
    }
}

pub async fn restore_cmd(args: FileArg, config: Result<Config, ConfigError>) -> u8 {
    let config = match config {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::CONFIGURATION;
        }
    };
    match restore(&config.database, &args.file).await {
        Ok(Restored::InPlace { scans }) => {
            println!(
                "Restored {} ({scans} scan(s)) as {}",
                args.file.display(),
                config.database.describe()
            );
            exit::DONE
        }
        Ok(Restored::Staged { scans, staged }) => {
            println!(
                "A bot is running on this database: {} ({scans} scan(s)) is checked and staged as {}; it is put in place when the bot next starts (restart it now).",
                args.file.display(),
                staged.display()
            );
            exit::DONE
        }
        Err(e) => {
            eprintln!("error: {e}");
            exit::BAD_INPUT
        }
    }
}
