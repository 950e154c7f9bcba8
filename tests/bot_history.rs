//! History, "what changed", per-server settings, forget and the audit trail through the real bot
//! against the fake Discord with two servers, on SQLite (the default file in the scans
//! directory) and on a real PostgreSQL. Also: kill -9 while scans are written, and a backup
//! taken while the bot runs, restored into a fresh scans directory.

mod support;

use account_scanner::config::parse_database_url;
use account_scanner::db::Db;
use account_scanner::jobs::history;
use account_scanner::store::ReportStore;
use support::bot::{Bot, BotOptions, WAIT, content, is_result};
use support::fake_discord::{
    GENERAL_CHANNEL_ID, GENERAL2_CHANNEL_ID, MOD_LOG_CHANNEL_ID, MOD_LOG2_CHANNEL_ID, MODERATOR_ID,
    OWNER_ID, READONLY_CHANNEL_ID, RecordedRequest,
};
use support::postgres::{ENGINES, Engine, TestPostgres};

/// Starts the bot on `engine`: SQLite is the default file in the scans directory.
fn start(engine: Engine, extra: &[(&str, &str)]) -> (Bot, Option<TestPostgres>) {
    let pg = (engine == Engine::Postgres).then(TestPostgres::new);
    let mut env: Vec<(&str, &str)> = vec![("SCAN_COOLDOWN", "0")];
    if let Some(pg) = &pg {
        env.push(("DATABASE_URL", pg.url.as_str()));
    }
    env.extend_from_slice(extra);
    let bot = Bot::start_opts(
        BotOptions {
            fast_sites: true,
            ..BotOptions::default()
        },
        &env,
    );
    (bot, pg)
}

fn posted_in(
    bot: &Bot,
    channel: u64,
    after: usize,
    pred: impl Fn(&RecordedRequest) -> bool,
) -> RecordedRequest {
    bot.posted_in(channel, after, pred)
}

/// Scans `name` in `channel` as the moderator and returns the result message.
fn scan(bot: &Bot, channel: u64, command: &str) -> RecordedRequest {
    let mark = bot.mark();
    bot.discord.send_message(channel, MODERATOR_ID, command);
    posted_in(bot, channel, mark, is_result)
}

fn says(bot: &Bot, channel: u64, user: u64, command: &str, expect: &str) -> RecordedRequest {
    let mark = bot.mark();
    bot.discord.send_message(channel, user, command);
    posted_in(bot, channel, mark, |r| {
        content(r).contains(expect) || r.embeds().iter().any(|e| e.to_string().contains(expect))
    })
}

fn field(result: &RecordedRequest, name: &str) -> Option<String> {
    result.embeds().iter().find_map(|e| {
        e["fields"].as_array()?.iter().find_map(|f| {
            (f["name"] == name).then(|| f["value"].as_str().unwrap_or_default().to_string())
        })
    })
}

/// `account-scanner backup|restore FILE` with `SCANS_DIR`; its stdout, once it succeeded.
fn database_command(
    workdir: &std::path::Path,
    scans: &std::path::Path,
    command: &str,
    file: &std::path::Path,
) -> String {
    let out = support::scanner(workdir)
        .env("SCANS_DIR", scans)
        .arg(command)
        .arg(file)
        .output()
        .expect("run the binary");
    assert!(
        out.status.success(),
        "{command}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// The JSON reports in the scans directory.
fn json_reports(bot: &Bot) -> Vec<serde_json::Value> {
    support::files_in(&bot.scans())
        .into_iter()
        .filter(|f| f.ends_with(".json"))
        .map(|f| {
            serde_json::from_slice(&std::fs::read(bot.scans().join(f)).expect("read"))
                .expect("json")
        })
        .collect()
}

#[test]
fn a_second_scan_says_what_changed_history_lists_both_and_the_other_server_sees_neither() {
    for engine in ENGINES {
        let (bot, _pg) = start(engine, &[]);
        let first = scan(&bot, GENERAL_CHANNEL_ID, "!scan alice sherlock");
        assert_eq!(field(&first, "Since the last scan"), None, "{engine:?}");
        let second = scan(&bot, GENERAL_CHANNEL_ID, "!scan alice sherlock");
        let since = field(&second, "Since the last scan").unwrap_or_else(|| {
            panic!(
                "{engine:?}: no comparison in {:?}\n{}",
                second.embeds(),
                bot.log()
            )
        });
        assert!(
            since.starts_with("Last scanned ") && since.contains(&format!("by <@{MODERATOR_ID}>")),
            "{since}"
        );
        assert!(since.contains("nothing changed"), "{since}");
        // The report of record carries it too.
        let reports = json_reports(&bot);
        let with_previous: Vec<_> = reports
            .iter()
            .filter(|r| r["previous"].is_object())
            .collect();
        assert_eq!(with_previous.len(), 1, "{engine:?}");
        assert!(with_previous[0]["previous"]["sites_compared"] == true);

        // The other server scans someone else, then asks about alice.
        scan(&bot, GENERAL2_CHANNEL_ID, "!scan bob sherlock");
        let listed = says(
            &bot,
            GENERAL_CHANNEL_ID,
            MODERATOR_ID,
            "!history alice",
            "History of alice",
        );
        let embed = &listed.embeds()[0];
        let text = embed["description"].as_str().unwrap_or_default();
        assert_eq!(text.lines().count(), 2, "{engine:?}: {text}");
        assert!(
            embed["footer"]["text"]
                .as_str()
                .unwrap_or_default()
                .contains("2 scan(s)"),
            "{embed}"
        );
        let other = says(
            &bot,
            GENERAL2_CHANNEL_ID,
            MODERATOR_ID,
            "!history alice",
            "History of alice",
        );
        assert_eq!(
            other.embeds()[0]["description"],
            "No scans of this target in this server.",
            "{engine:?}"
        );
        // With the latest scan's files, on request (slash command, in guild 1).
        let mark = bot.mark();
        bot.discord.send_slash_command(
            MODERATOR_ID,
            GENERAL_CHANNEL_ID,
            "history",
            serde_json::json!({"target": "alice", "files": true}),
        );
        let with_files = bot
            .discord
            .wait_for(
                |r| r.index >= mark && !r.files().is_empty() && r.path.contains("/webhooks/"),
                WAIT,
            )
            .unwrap_or_else(|| panic!("no history with files:\n{}", bot.log()));
        let names: Vec<_> = with_files
            .files()
            .iter()
            .filter_map(|f| f.filename.clone())
            .collect();
        assert!(names.iter().any(|n| n.ends_with(".json")), "{names:?}");
        bot.assert_clean();
    }
}

#[test]
fn settings_choose_the_servers_own_log_channel_and_managers_only() {
    for engine in ENGINES {
        let (bot, _pg) = start(engine, &[]);
        // The owner (Manage Server) sets guild 1's log channel.
        says(
            &bot,
            GENERAL_CHANNEL_ID,
            OWNER_ID,
            &format!("!settings log_channel <#{MOD_LOG_CHANNEL_ID}>"),
            &format!("`log_channel`: default → <#{MOD_LOG_CHANNEL_ID}>"),
        );
        let audit = posted_in(&bot, MOD_LOG_CHANNEL_ID, 0, |r| {
            content(r).contains("changed `log_channel`")
        });
        assert!(
            content(&audit).contains(&format!("<@{OWNER_ID}>")),
            "{engine:?}"
        );
        // Bad values: a specific message, nothing changes.
        says(
            &bot,
            GENERAL_CHANNEL_ID,
            OWNER_ID,
            &format!("!settings log_channel <#{READONLY_CHANNEL_ID}>"),
            "The bot cannot post in",
        );
        says(
            &bot,
            GENERAL_CHANNEL_ID,
            OWNER_ID,
            "!settings threshold 1.5",
            "The threshold must be between 0 and 1 (got 1.5).",
        );
        says(
            &bot,
            GENERAL_CHANNEL_ID,
            OWNER_ID,
            &format!("!settings log_channel <#{GENERAL2_CHANNEL_ID}>"),
            "is not a channel of this server",
        );
        let view = says(
            &bot,
            GENERAL_CHANNEL_ID,
            OWNER_ID,
            "!settings",
            "This server's scan settings",
        );
        assert!(
            content(&view).contains(&format!("`log_channel`: <#{MOD_LOG_CHANNEL_ID}>\n")),
            "{}",
            content(&view)
        );
        assert!(
            content(&view).contains("`threshold`: ") && content(&view).contains("(default)"),
            "{}",
            content(&view)
        );

        // A scan in guild 1 is audited in guild 1's log channel; one in guild 2 is not.
        let mark = bot.mark();
        scan(&bot, GENERAL2_CHANNEL_ID, "!scan bob sherlock");
        scan(&bot, GENERAL_CHANNEL_ID, "!scan alice sherlock");
        // bob's audit entry was posted right after bob's result, long before alice's scan ended.
        posted_in(&bot, MOD_LOG_CHANNEL_ID, mark, |r| {
            content(r).contains("scanned **alice**")
        });
        let leaked: Vec<_> = bot
            .discord
            .requests()
            .into_iter()
            .filter(|r| {
                r.index >= mark
                    && r.is("POST", "/channels/*/messages")
                    && content(r).contains("bob")
            })
            .filter(|r| {
                !r.path
                    .contains(&format!("/channels/{GENERAL2_CHANNEL_ID}/"))
            })
            .map(|r| (r.path.clone(), content(&r)))
            .collect();
        assert!(
            leaked.is_empty(),
            "{engine:?}: guild 2's scan shown elsewhere: {leaked:?}"
        );

        // Guild 2 sets its own log channel; guild 1's is untouched.
        says(
            &bot,
            GENERAL2_CHANNEL_ID,
            OWNER_ID,
            &format!("!settings log_channel <#{MOD_LOG2_CHANNEL_ID}>"),
            "`log_channel`: default →",
        );
        let mark = bot.mark();
        scan(&bot, GENERAL2_CHANNEL_ID, "!scan carol sherlock");
        posted_in(&bot, MOD_LOG2_CHANNEL_ID, mark, |r| {
            content(r).contains("scanned **carol**")
        });

        // A moderator without Manage Server is refused, and the refusal is audited in guild 1.
        let mark = bot.mark();
        says(
            &bot,
            GENERAL_CHANNEL_ID,
            MODERATOR_ID,
            "!settings threshold 0.5",
            "You're lacking permissions for `!settings`: Manage Guild",
        );
        posted_in(&bot, MOD_LOG_CHANNEL_ID, mark, |r| {
            content(r).contains(&format!("<@{MODERATOR_ID}> was refused `settings`"))
        });
        // Scans limited to a channel: elsewhere they are refused with the list.
        says(
            &bot,
            GENERAL_CHANNEL_ID,
            OWNER_ID,
            &format!("!settings channels <#{MOD_LOG_CHANNEL_ID}>"),
            "`channels`: any →",
        );
        says(
            &bot,
            GENERAL_CHANNEL_ID,
            MODERATOR_ID,
            "!scan alice",
            &format!("Scans run only in <#{MOD_LOG_CHANNEL_ID}>"),
        );
        bot.assert_clean();
    }
}

#[test]
fn forget_deletes_this_servers_rows_and_files_and_says_who() {
    for engine in ENGINES {
        let (bot, _pg) = start(
            engine,
            &[("LOG_CHANNEL_ID", &MOD_LOG_CHANNEL_ID.to_string())],
        );
        scan(&bot, GENERAL_CHANNEL_ID, "!scan alice sherlock");
        scan(&bot, GENERAL_CHANNEL_ID, "!scan alice sherlock");
        scan(&bot, GENERAL2_CHANNEL_ID, "!scan alice sherlock");
        assert_eq!(json_reports(&bot).len(), 3);
        says(
            &bot,
            GENERAL_CHANNEL_ID,
            MODERATOR_ID,
            "!forget alice",
            "You're lacking permissions for `!forget`: Manage Guild",
        );
        assert_eq!(json_reports(&bot).len(), 3, "refused: nothing deleted");

        let mark = bot.mark();
        says(
            &bot,
            GENERAL_CHANNEL_ID,
            OWNER_ID,
            "!forget alice",
            "Deleted this server's 2 scan(s) of **alice** and their 4 report file(s).",
        );
        let audit = posted_in(&bot, MOD_LOG_CHANNEL_ID, mark, |r| {
            content(r).contains("made the bot forget")
        });
        assert!(
            content(&audit).contains(&format!("<@{OWNER_ID}> made the bot forget **alice**")),
            "{}",
            content(&audit)
        );
        let left = json_reports(&bot);
        assert_eq!(left.len(), 1, "{engine:?}: guild 2's report stays");
        let history = says(
            &bot,
            GENERAL_CHANNEL_ID,
            MODERATOR_ID,
            "!history alice",
            "History of alice",
        );
        assert_eq!(
            history.embeds()[0]["description"],
            "No scans of this target in this server."
        );
        let other = says(
            &bot,
            GENERAL2_CHANNEL_ID,
            MODERATOR_ID,
            "!history alice",
            "History of alice",
        );
        assert!(
            other.embeds()[0]["footer"]["text"]
                .as_str()
                .unwrap_or_default()
                .contains("1 scan(s)")
        );
        bot.assert_clean();
    }
}

#[test]
fn kill_9_while_scans_are_written_leaves_a_sound_database_and_no_row_without_its_files() {
    for engine in ENGINES {
        let (mut bot, pg) = start(engine, &[("MAX_CONCURRENT_SCANS", "2")]);
        // Rows and files being written: six scans, killed after the second result.
        let mark = bot.mark();
        for name in ["alice", "bob", "carol", "dave", "erin", "frank"] {
            bot.discord.send_message(
                GENERAL_CHANNEL_ID,
                MODERATOR_ID,
                &format!("!scan {name} sherlock"),
            );
        }
        let results = bot.discord.wait_for_count(
            |r| r.index >= mark && r.is("POST", "/channels/*/messages") && is_result(r),
            2,
            WAIT,
        );
        assert_eq!(results.len(), 2, "no results:\n{}", bot.log());
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(bot.pid() as i32),
            nix::sys::signal::Signal::SIGKILL,
        )
        .expect("kill -9");
        bot.wait_exit(WAIT);

        let url = match &pg {
            Some(pg) => pg.url.clone(),
            None => format!(
                "sqlite://{}",
                bot.scans().join(".account-scanner.db").display()
            ),
        };
        let target = parse_database_url(&url, bot.dir.path()).expect("url");
        let store = ReportStore::open(bot.scans()).expect("store");
        tokio::runtime::Runtime::new().expect("rt").block_on(async {
            let db = Db::open(&target)
                .await
                .expect("the database opens after kill -9");
            assert_eq!(
                db.integrity_check().await.expect("check"),
                "ok",
                "{engine:?}"
            );
            let found = history::reconcile(&db, &store).await.expect("reconcile");
            assert!(found.rows >= 2, "{engine:?}: {found:?}");
            assert!(
                found.files_missing.is_empty(),
                "{engine:?}: rows without files: {found:?}"
            );
            db.close().await;
        });
    }
}

#[test]
fn a_backup_taken_while_the_bot_scans_restores_into_a_fresh_scans_directory() {
    let (bot, _) = start(Engine::Sqlite, &[]);
    for name in ["alice", "bob", "carol"] {
        scan(&bot, GENERAL_CHANNEL_ID, &format!("!scan {name} sherlock"));
    }
    // More scans are being written while the backup runs.
    for name in ["alice", "bob", "carol"] {
        bot.discord.send_message(
            GENERAL_CHANNEL_ID,
            MODERATOR_ID,
            &format!("!scan {name} sherlock"),
        );
    }
    let out = tempfile::tempdir().expect("tempdir");
    let file = out.path().join("backup.db");
    let said = database_command(bot.dir.path(), &bot.scans(), "backup", &file);
    assert!(said.starts_with("Backed up "), "{said}");

    // A new machine: fresh scans directory, restore, start.
    let fresh = tempfile::tempdir().expect("tempdir");
    let scans = fresh.path().join("scans");
    let said = database_command(fresh.path(), &scans, "restore", &file);
    assert!(said.starts_with("Restored "), "{said}");
    drop(bot);
    let bot = Bot::start_opts(
        BotOptions {
            fast_sites: true,
            scans_dir: Some(scans),
            ..BotOptions::default()
        },
        &[],
    );
    for name in ["alice", "bob", "carol"] {
        let listed = says(
            &bot,
            GENERAL_CHANNEL_ID,
            MODERATOR_ID,
            &format!("!history {name}"),
            &format!("History of {name}"),
        );
        let text = listed.embeds()[0]["description"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(text.lines().count() >= 1, "{name}: {text}");
        assert!(
            text.contains("report files gone"),
            "the fresh directory has no files: {text}"
        );
    }
    bot.assert_clean();
}

#[test]
fn postgresql_unreachable_pauses_new_scans_lets_running_ones_post_and_resumes_by_itself() {
    let port = support::endpoint::free_port();
    let pg = TestPostgres::new();
    // Every Sherlock run takes SHERLOCK_SITE_TIMEOUT (HangSite): a scan is still running when
    // the database goes away.
    let bot = Bot::start_opts(
        BotOptions::default(),
        &[
            ("SCAN_COOLDOWN", "0"),
            ("DATABASE_URL", pg.url.as_str()),
            ("HEALTH_PORT", &port.to_string()),
        ],
    );
    scan(&bot, GENERAL_CHANNEL_ID, "!scan alice sherlock");
    let mark = bot.mark();
    bot.discord
        .send_message(GENERAL_CHANNEL_ID, MODERATOR_ID, "!scan bob sherlock");
    posted_in(&bot, GENERAL_CHANNEL_ID, mark, |r| {
        content(r).contains("Scanning **bob**")
    });
    // A queued job waits for the database with it; this one is running (a worker claimed it and
    // shows progress) when the database goes away.
    bot.discord
        .wait_for(
            |r| {
                r.index >= mark
                    && r.is("PATCH", "/channels/*/messages/*")
                    && content(r).contains("sites ")
            },
            WAIT,
        )
        .unwrap_or_else(|| panic!("the scan of bob shows no progress:\n{}", bot.log()));
    pg.block();
    // The running scan finishes and posts, with its files; history missed it and says so.
    let result = posted_in(&bot, GENERAL_CHANNEL_ID, mark, is_result);
    let notice = content(&result);
    assert!(
        notice.contains("could not be saved to the server's history")
            && notice.contains("reference `"),
        "{notice}"
    );
    assert!(!result.files().is_empty(), "the report files are attached");
    // New scans are refused politely meanwhile; nothing starts.
    let refusal = says(
        &bot,
        GENERAL_CHANNEL_ID,
        MODERATOR_ID,
        "!scan carol sherlock",
        "cannot reach its database",
    );
    assert!(
        content(&refusal).contains("scans are paused; they resume by themselves"),
        "{}",
        content(&refusal)
    );
    let health = says(
        &bot,
        GENERAL_CHANNEL_ID,
        MODERATOR_ID,
        "!health",
        "History database:",
    );
    let text = content(&health);
    assert!(
        text.contains("History database: PostgreSQL · ⚠️ not reachable: new scans are paused"),
        "{text}"
    );
    assert!(!text.contains(&pg.url), "no URL in health: {text}");
    // The endpoint stays 200 (restarting would not help) and warns.
    let body = support::endpoint::wait_for_status(port, "/healthz", 200);
    let healthz: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert!(
        healthz["warnings"][0]
            .as_str()
            .is_some_and(|w| w.contains("new scans are paused")),
        "{healthz}"
    );

    // Back: scans run again without a restart, and go to history.
    pg.unblock();
    let result = scan(&bot, GENERAL_CHANNEL_ID, "!scan carol sherlock");
    assert!(
        content(&result).is_empty(),
        "no notice: {}",
        content(&result)
    );
    says(
        &bot,
        GENERAL_CHANNEL_ID,
        MODERATOR_ID,
        "!history carol",
        "1 scan(s)",
    );
    // Each result once; the refused scan wrote nothing.
    let results = bot.result_titles(GENERAL_CHANNEL_ID);
    assert_eq!(results, ["Scan of alice", "Scan of bob", "Scan of carol"]);
    assert_eq!(json_reports(&bot).len(), 3);
    bot.assert_clean();
}
