//! Fault drills for the bot (issue 7): the real `account-scanner bot` binary against the fake
//! Discord, with the real Sherlock checking the fake sites, while the process is signalled, the
//! gateway drops, twenty members scan at once, or the scans directory goes away. Each drill
//! asserts what the moderator sees on Discord and what is on disk.

mod support;

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use support::bot::{Bot, BotOptions, CH, WAIT, allowed_mentions_empty, content, is_result};
use support::fake_discord::{ADMIN_ID, FakeDiscordConfig, MEMBER_ID, MODERATOR_ID, OWNER_ID};
use support::tmpfs::{Tmpfs, with_mount_rights};

fn sigterm(bot: &Bot) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(bot.pid() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("SIGTERM");
}

/// Every file in the scans directory, hidden ones included (temp files start with a dot),
/// but not the control-probe cache directory nor the history database's files.
fn all_entries(dir: &Path) -> Vec<String> {
    support::entries(dir)
        .into_iter()
        .filter(|n| n != ".cache" && !n.starts_with(".account-scanner.db"))
        .collect()
}

/// The JSON reports in the scans directory, parsed, keyed by username.
fn json_reports(dir: &Path) -> Vec<(String, Value)> {
    support::files_in(dir)
        .into_iter()
        .filter(|n| n.ends_with(".json"))
        .map(|n| {
            let bytes = std::fs::read(dir.join(&n)).expect("read report");
            let v: Value = serde_json::from_slice(&bytes).expect("a whole JSON report");
            (
                v["request"]["username"].as_str().unwrap_or("").to_string(),
                v,
            )
        })
        .collect()
}

fn titles(results: &[support::fake_discord::RecordedRequest]) -> Vec<String> {
    let mut t: Vec<String> = results
        .iter()
        .map(|r| r.embeds()[0]["title"].as_str().unwrap_or("").to_string())
        .collect();
    t.sort();
    t
}

// ---------------------------------------------------------------------------------------------
// Process: SIGTERM with two scans running
// ---------------------------------------------------------------------------------------------

/// Two moderators' scans are running (MAX_CONCURRENT_SCANS=2) when SIGTERM arrives.
fn sigterm_with_two_scans(
    env: &[(&str, &str)],
) -> (Bot, Vec<support::fake_discord::RecordedRequest>) {
    let mut vars = vec![("MAX_CONCURRENT_SCANS", "2")];
    vars.extend_from_slice(env);
    let mut bot = Bot::start(&vars);
    let mark = bot.mark();
    bot.say(MODERATOR_ID, "!scan alice sherlock");
    bot.say(ADMIN_ID, "!scan bob sherlock");
    let acks = bot.discord.wait_for_count(
        |r| r.index >= mark && content(r).contains("🔎 Scanning"),
        2,
        WAIT,
    );
    assert_eq!(acks.len(), 2, "both scans started:\n{}", bot.log());
    // A third waits in line; shutdown tells it that it will not run.
    bot.say(OWNER_ID, "!scan carol sherlock");
    let queued = bot.posted(mark, |r| content(r).starts_with("⏳ Queued"));
    sigterm(&bot);
    let queued_id = queued.message_id().expect("queued ack id").to_string();
    let not_started = bot
        .discord
        .wait_for(
            |r| r.is("PATCH", "/channels/*/messages/*") && r.path.ends_with(&queued_id),
            WAIT,
        )
        .expect("the queued scan's acknowledgement edited");
    assert_eq!(
        content(&not_started),
        "⏹️ The scan of **carol** did not start: the bot is shutting down and takes no new scans."
    );
    let results = bot.discord.wait_for_count(
        |r| r.index >= mark && r.is("POST", "/channels/*/messages") && is_result(r),
        2,
        Duration::from_secs(40),
    );
    assert_eq!(
        titles(&results),
        ["Scan of alice", "Scan of bob"],
        "both results posted:\n{}",
        bot.log()
    );
    let status = bot.wait_exit(Duration::from_secs(40));
    assert!(status.success(), "exit {status:?}:\n{}", bot.log());
    assert!(bot.log().contains("SIGTERM"), "{}", bot.log());
    assert!(
        !support::files_in(&bot.scans())
            .iter()
            .any(|f| f.starts_with("carol")),
        "the queued scan ran"
    );
    (bot, results)
}

#[test]
fn sigterm_with_two_scans_running_posts_both_results_then_exits_0() {
    let (bot, results) = sigterm_with_two_scans(&[]);
    for r in &results {
        assert!(allowed_mentions_empty(r));
        let description = r.embeds()[0]["description"]
            .as_str()
            .unwrap_or("")
            .to_string();
        assert!(!description.contains("Partial"), "{description}");
        assert_eq!(r.files().len(), 2, "JSON and CSV attached");
    }
    // Both finished whole within the grace period: two complete reports each, no temp file.
    let reports = json_reports(&bot.scans());
    assert_eq!(reports.len(), 2, "{:?}", all_entries(&bot.scans()));
    for (user, report) in &reports {
        assert_eq!(report["partial"], false, "{user}: {report:#}");
    }
    assert_eq!(
        all_entries(&bot.scans()).len(),
        4,
        "{:?}",
        all_entries(&bot.scans())
    );
    assert!(!bot.log().contains("grace period over"), "{}", bot.log());
    bot.assert_clean();
}

#[test]
fn sigterm_with_a_too_short_grace_reports_both_scans_as_interrupted_partial_results() {
    // HangSite holds every Sherlock run for 60 s: neither scan can finish in a 1 s grace.
    let (bot, results) =
        sigterm_with_two_scans(&[("SHUTDOWN_GRACE", "1"), ("SHERLOCK_SITE_TIMEOUT", "60")]);
    assert!(bot.log().contains("grace period over"), "{}", bot.log());
    for r in &results {
        let description = r.embeds()[0]["description"]
            .as_str()
            .unwrap_or("")
            .to_string();
        assert!(
            description.contains("⚠️ **Partial results:** the scan was interrupted"),
            "{description}"
        );
        assert_eq!(r.files().len(), 2, "the partial reports are attached");
    }
    // The acknowledgements say partial too.
    let finals: Vec<String> = bot
        .discord
        .message_edits(CH)
        .iter()
        .map(content)
        .filter(|c| c.starts_with("✅"))
        .collect();
    assert_eq!(finals.len(), 2, "{finals:?}");
    assert!(
        finals.iter().all(|c| c.ends_with("finished (partial).")),
        "{finals:?}"
    );
    // On disk: two whole reports marked partial with the reason, their CSVs, nothing else.
    let reports = json_reports(&bot.scans());
    assert_eq!(reports.len(), 2, "{:?}", all_entries(&bot.scans()));
    for (user, report) in &reports {
        assert_eq!(report["partial"], true, "{user}");
        assert!(
            report["partial_reason"]
                .as_str()
                .is_some_and(|r| r.contains("interrupted")),
            "{user}: {}",
            report["partial_reason"]
        );
    }
    assert_eq!(
        all_entries(&bot.scans()).len(),
        4,
        "{:?}",
        all_entries(&bot.scans())
    );
    // No Sherlock outlives the bot.
    let list = bot.dir.path().join("sites.json");
    assert!(
        support::processes_mentioning(&list.display().to_string()).is_empty(),
        "a Sherlock child survived"
    );
    bot.assert_clean();
}

// ---------------------------------------------------------------------------------------------
// Gateway: the connection goes away while a scan runs
// ---------------------------------------------------------------------------------------------

/// Starts a scan, runs `fault` once it is acknowledged, and checks the result still arrives
/// and a later command is still answered on the new connection.
fn gateway_fault_mid_scan(fault: impl FnOnce(&Bot)) -> Bot {
    let bot = Bot::start(&[]);
    assert_eq!(
        (bot.discord.identify_count(), bot.discord.resume_count()),
        (1, 0)
    );
    let connections = bot.discord.connection_count();
    let mark = bot.mark();
    bot.say(MODERATOR_ID, "!scan alice sherlock");
    bot.posted(mark, |r| content(r).contains("Scanning **alice**"));
    fault(&bot);
    // The scan goes on over REST and posts its result.
    let result = bot.posted(mark, is_result);
    assert_eq!(result.embeds()[0]["title"], "Scan of alice");
    assert_eq!(result.files().len(), 2);
    assert_eq!(support::files_in(&bot.scans()).len(), 2);
    // The bot is connected again and hears commands.
    assert!(
        bot.discord.wait_ready(WAIT),
        "no new gateway session:\n{}",
        bot.log()
    );
    assert!(bot.discord.connection_count() > connections);
    let mark = bot.mark();
    bot.say(MEMBER_ID, "!health");
    bot.posted(mark, |r| content(r).contains("account-scanner"));
    bot
}

#[test]
fn a_dropped_gateway_mid_scan_is_resumed_and_the_result_still_posted() {
    let bot = gateway_fault_mid_scan(|bot| bot.discord.drop_gateway());
    // Resumed, not re-identified: the session (and events sent while away) survive.
    assert_eq!(
        (bot.discord.identify_count(), bot.discord.resume_count()),
        (1, 1),
        "{}",
        bot.log()
    );
    bot.assert_clean();
}

#[test]
fn a_message_sent_while_the_gateway_is_down_is_replayed_on_resume_and_answered() {
    let bot = Bot::start(&[]);
    bot.discord.drop_gateway();
    // Dispatched while no connection is live: the RESUME replays it.
    let mark = bot.mark();
    assert!(!bot.discord.is_connected());
    bot.discord.send_message_now(CH, MEMBER_ID, "!health");
    bot.posted(mark, |r| content(r).contains("account-scanner"));
    assert_eq!(bot.discord.resume_count(), 1, "{}", bot.log());
    assert_eq!(bot.discord.identify_count(), 1);
    bot.assert_clean();
}

#[test]
fn a_non_resumable_invalid_session_mid_scan_re_identifies_and_the_result_still_posted() {
    let bot = gateway_fault_mid_scan(|bot| bot.discord.invalidate_session(false));
    assert_eq!(
        (bot.discord.identify_count(), bot.discord.resume_count()),
        (2, 0),
        "{}",
        bot.log()
    );
    bot.assert_clean();
}

#[test]
fn a_session_timeout_close_mid_scan_re_identifies_and_the_result_still_posted() {
    // 4009 "Session timed out": Discord says reconnect and start a new session.
    let bot = gateway_fault_mid_scan(|bot| bot.discord.close_gateway(4009));
    assert_eq!(bot.discord.identify_count(), 2, "{}", bot.log());
    bot.assert_clean();
}

// ---------------------------------------------------------------------------------------------
// Storage: the scans directory goes read-only, fills up or disappears while the bot runs
// ---------------------------------------------------------------------------------------------

/// The bot writing its reports to `dir` (a tmpfs); cooldown off so one moderator can retry.
fn bot_on(dir: &Path, env: &[(&str, &str)]) -> Bot {
    // The history database lives beside, in the bot's working directory: these drills are about
    // the report files, and a tmpfs of a few KB holds no database (an open database would also
    // make `remount,ro` busy, like the control probe's lock file).
    let mut vars = vec![
        ("SCAN_COOLDOWN", "0"),
        ("DATABASE_URL", "sqlite://history.db"),
    ];
    vars.extend_from_slice(env);
    Bot::start_opts(
        BotOptions {
            scans_dir: Some(dir.to_path_buf()),
            ..BotOptions::default()
        },
        &vars,
    )
}

/// What the moderator is told must not leak internals: no path, no OS error text.
fn assert_polite(text: &str, dir: &Path) {
    for leak in [
        dir.display().to_string().as_str(),
        "os error",
        "Read-only",
        "No space",
        "No such file",
        "/tmp",
    ] {
        assert!(!text.contains(leak), "{leak:?} leaked to Discord: {text}");
    }
    let reference = text
        .split('`')
        .nth(1)
        .unwrap_or_else(|| panic!("no reference id in {text}"));
    assert!(
        reference.len() == 6 && reference.chars().all(|c| c.is_ascii_hexdigit()),
        "{text}"
    );
}

/// The reference id in a message, and that the log has the details under it.
fn assert_reference_logged(bot: &Bot, text: &str, detail: &str) {
    let reference = text.split('`').nth(1).expect("reference");
    let line = bot
        .log()
        .lines()
        .find(|l| l.contains(reference))
        .unwrap_or_else(|| panic!("reference {reference} not in the log:\n{}", bot.log()))
        .to_string();
    assert!(line.contains(detail), "{line}");
}

/// After a storage fault: `!health` is still answered, and once `restore` has put the storage
/// back a scan writes its two files again.
fn still_serving_after(bot: &Bot, restore: impl FnOnce()) {
    let mark = bot.mark();
    bot.say(MEMBER_ID, "!health");
    bot.posted(mark, |r| content(r).contains("account-scanner"));
    restore();
    let mark = bot.mark();
    bot.say(MODERATOR_ID, "!scan carol sherlock");
    let result = bot.posted(mark, is_result);
    assert_eq!(result.embeds()[0]["title"], "Scan of carol");
    assert_eq!(result.files().len(), 2, "{:?}", content(&result));
    let files = support::files_in(&bot.scans());
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(files.iter().all(|f| f.starts_with("carol_")), "{files:?}");
}

#[test]
fn scans_dir_read_only_mid_scan_tells_the_moderator_politely_and_the_bot_keeps_serving() {
    with_mount_rights(
        "scans_dir_read_only_mid_scan_tells_the_moderator_politely_and_the_bot_keeps_serving",
        || {
            let fs = Tmpfs::new(300 * 1024);
            // The control probe keeps its cache's lock file open for writing while it runs, which
            // makes `remount,ro` fail as busy: leave it out so the remount lands mid-scan.
            let bot = bot_on(fs.path(), &[("SHERLOCK_CONTROL_CHECK", "false")]);
            let mark = bot.mark();
            bot.say(MODERATOR_ID, "!scan alice sherlock");
            bot.posted(mark, |r| content(r).contains("Scanning **alice**"));
            fs.read_only();
            // The scan's results are still shown, without files, with a polite notice.
            let result = bot.posted(mark, is_result);
            assert_eq!(result.embeds()[0]["title"], "Scan of alice");
            assert!(result.files().is_empty());
            let text = content(&result);
            assert!(
                text.starts_with("⚠️ The report files could not be written on the bot's server"),
                "{text}"
            );
            assert_polite(&text, fs.path());
            assert_reference_logged(&bot, &text, "Read-only file system");
            assert!(
                all_entries(fs.path()).is_empty(),
                "{:?}",
                all_entries(fs.path())
            );

            // A scan asked for while the directory is still read-only is refused before it runs.
            let mark = bot.mark();
            bot.say(MODERATOR_ID, "!scan bob sherlock");
            let refusal = bot.posted(mark, |r| content(r).contains("cannot save reports"));
            assert_polite(&content(&refusal), fs.path());
            assert_reference_logged(&bot, &content(&refusal), "Read-only file system");
            assert!(
                !bot.discord
                    .requests()
                    .iter()
                    .skip(mark)
                    .any(|r| content(r).contains("Scanning **bob**")),
                "the scan started anyway"
            );
            still_serving_after(&bot, || fs.read_write());
            bot.assert_clean();
        },
    );
}

#[test]
fn scans_dir_full_mid_scan_leaves_no_partial_file_and_the_bot_keeps_serving() {
    with_mount_rights(
        "scans_dir_full_mid_scan_leaves_no_partial_file_and_the_bot_keeps_serving",
        || {
            let fs = Tmpfs::new(64);
            // The free-space floor is what normally refuses first; here the disk fills during the scan.
            let bot = bot_on(fs.path(), &[("MIN_FREE_SPACE_MB", "0")]);
            let mark = bot.mark();
            bot.say(MODERATOR_ID, "!scan alice sherlock");
            bot.posted(mark, |r| content(r).contains("Scanning **alice**"));
            let filler = fs.path().join("filler.bin");
            {
                use std::io::Write;
                let mut f = std::fs::File::create(&filler).expect("filler");
                let chunk = [0u8; 4096];
                let full = loop {
                    if let Err(e) = f.write_all(&chunk).and_then(|()| f.sync_all()) {
                        break e;
                    }
                };
                assert_eq!(full.raw_os_error(), Some(nix::libc::ENOSPC), "{full}");
            }
            let result = bot.posted(mark, is_result);
            assert!(result.files().is_empty());
            let text = content(&result);
            assert!(
                text.starts_with("⚠️ The report files could not be written on the bot's server"),
                "{text}"
            );
            assert_polite(&text, fs.path());
            assert_reference_logged(&bot, &text, "No space left on device");
            // Nothing half-written: only the filler.
            assert_eq!(all_entries(fs.path()), ["filler.bin"]);

            let mark = bot.mark();
            bot.say(MODERATOR_ID, "!scan bob sherlock");
            let refusal = bot.posted(mark, |r| content(r).contains("cannot save reports"));
            assert_polite(&content(&refusal), fs.path());
            still_serving_after(&bot, || {
                std::fs::remove_file(&filler).expect("free the space")
            });
            bot.assert_clean();
        },
    );
}

#[test]
fn scans_dir_removed_mid_scan_is_made_again_and_the_report_still_written() {
    let parent = tempfile::tempdir().expect("tempdir");
    let dir = parent.path().join("scans");
    let bot = bot_on(&dir, &[]);
    let mark = bot.mark();
    bot.say(MODERATOR_ID, "!scan alice sherlock");
    bot.posted(mark, |r| content(r).contains("Scanning **alice**"));
    std::fs::remove_dir_all(&dir).expect("remove the scans directory");
    let result = bot.posted(mark, is_result);
    assert_eq!(result.files().len(), 2, "{}", content(&result));
    assert!(content(&result).is_empty(), "{}", content(&result));
    let files = support::files_in(&dir);
    assert_eq!(files.len(), 2, "{files:?}");
    for f in &result.files() {
        let name = f.filename.as_deref().expect("file name");
        assert_eq!(std::fs::read(dir.join(name)).expect("on disk"), f.data);
    }
    // Removed between scans: the next scan makes it again before it starts.
    std::fs::remove_dir_all(&dir).expect("remove the scans directory");
    still_serving_after(&bot, || {});
    bot.assert_clean();
}

// ---------------------------------------------------------------------------------------------
// Load: twenty members scan within one second
// ---------------------------------------------------------------------------------------------

#[test]
fn twenty_members_scanning_at_once_are_all_answered_within_bounds() {
    use support::fake_reddit::{FakeAccount, FakeReddit, FakeRedditConfig};
    let reddit = FakeReddit::start(FakeRedditConfig {
        accounts: (1..=20)
            .map(|i| {
                FakeAccount::new(&format!("target{i:02}"))
                    .with_comments(3, |n| format!("comment number {n}"))
                    .with_posts(1, |_| "a post".to_string())
            })
            .collect(),
        ..FakeRedditConfig::default()
    });
    // 300 a minute: one Reddit request every 200 ms for the whole process, whatever the load.
    const REDDIT_PER_MIN: usize = 300;
    let vars: Vec<(&str, String)> = reddit
        .env()
        .into_iter()
        .chain([
            ("REDDIT_RATE_PER_MIN", REDDIT_PER_MIN.to_string()),
            ("MAX_CONCURRENT_SCANS", "2".to_string()),
            ("SHERLOCK_SITE_TIMEOUT", "2".to_string()),
        ])
        .collect();
    let env: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let bot = Bot::start_opts(
        BotOptions {
            discord: FakeDiscordConfig {
                extra_members: 20,
                extra_members_moderators: true,
                ..FakeDiscordConfig::default()
            },
            fast_sites: true,
            ..BotOptions::default()
        },
        &env,
    );
    let members = bot.discord.extra_member_ids();
    assert_eq!(members.len(), 20);
    let mark = bot.mark();
    for (i, m) in members.iter().enumerate() {
        bot.say(*m, &format!("!scan target{:02}", i + 1));
    }
    // Every request is answered at once: scanning, or queued with its place.
    let acks = bot.discord.wait_for_count(
        |r| {
            r.index >= mark
                && r.is("POST", "/channels/*/messages")
                && (content(r).starts_with("🔎 Scanning") || content(r).starts_with("⏳ Queued"))
        },
        20,
        WAIT,
    );
    assert_eq!(acks.len(), 20, "{}", bot.log());
    let mut places: Vec<usize> = acks
        .iter()
        .filter_map(|r| {
            let c = content(r);
            let place = c.split("is number ").nth(1)?.split(' ').next()?;
            Some(place.parse().expect("a place number"))
        })
        .collect();
    places.sort();
    assert!(places.len() >= 10, "most waited in line: {places:?}");
    let distinct: std::collections::BTreeSet<_> = places.iter().collect();
    assert_eq!(
        distinct.len(),
        places.len(),
        "two share a place: {places:?}"
    );
    assert!(places.iter().all(|p| (1..=18).contains(p)), "{places:?}");
    // Every one gets its result, and its two files.
    let results = bot.discord.wait_for_count(
        |r| r.index >= mark && r.is("POST", "/channels/*/messages") && is_result(r),
        20,
        Duration::from_secs(90),
    );
    let expected: Vec<String> = (1..=20).map(|i| format!("Scan of target{i:02}")).collect();
    assert_eq!(titles(&results), expected, "{}", bot.log());
    // Sherlock and Reddit halves: two embeds, three files (JSON, Sherlock CSV, Reddit CSV).
    assert!(
        results
            .iter()
            .all(|r| r.embeds().len() == 2 && r.files().len() == 3),
        "{}",
        bot.log()
    );
    assert_eq!(support::files_in(&bot.scans()).len(), 60);
    assert!(
        all_entries(&bot.scans())
            .iter()
            .all(|n| !n.starts_with('.'))
    );

    // Peak RSS and the requests per second at Discord are figures, not rules the code enforces
    // (serenity's ratelimiter paces Discord in production): `scripts/bench --only bot`
    // measures both on this same burst.
    // Reddit's pace held across the concurrent scans: in any 3 s, at most 3 s worth of
    // requests (+2 for arrival jitter), and every account fetched.
    reddit.assert_no_unexpected();
    let at: Vec<_> = reddit
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/user/"))
        .map(|r| r.when)
        .collect();
    assert!(at.len() >= 60, "{} Reddit requests", at.len());
    let most = (0..at.len())
        .map(|i| {
            at.iter()
                .filter(|b| **b >= at[i] && b.duration_since(at[i]) < Duration::from_secs(3))
                .count()
        })
        .max()
        .unwrap_or(0);
    eprintln!(
        "at most {most} of {} Reddit requests in 3 s; {} token requests",
        at.len(),
        reddit.token_requests().len()
    );
    // One OAuth token for the whole process, not one per scan.
    assert_eq!(reddit.token_requests().len(), 1);
    assert!(
        most <= REDDIT_PER_MIN / 20 + 2,
        "{most} Reddit requests within 3 s"
    );
    // Progress edits are throttled per message (one per 2 s, plus the final one).
    for ack in &acks {
        let id = ack.message_id().expect("ack id").to_string();
        let edits: Vec<_> = bot
            .discord
            .message_edits(CH)
            .into_iter()
            .filter(|r| r.path.ends_with(&id))
            .collect();
        let (Some(first), Some(last)) = (edits.first(), edits.last()) else {
            panic!("the acknowledgement {id} was never edited to say it finished");
        };
        assert!(content(last).starts_with("✅"), "{}", content(last));
        let span = last.at.duration_since(ack.at).as_secs_f64();
        assert!(
            edits.len() as f64 <= span / 2.0 + 2.0,
            "{} edits of one message in {span:.1} s (first {:?})",
            edits.len(),
            content(first)
        );
    }
    // MAX_CONCURRENT_SCANS holds, read from the reports on disk: no instant is inside more
    // than two scans' [started_at, finished_at].
    let spans: Vec<_> = json_reports(&bot.scans())
        .into_iter()
        .map(|(_, r)| {
            let t = |k: &str| {
                chrono::DateTime::parse_from_rfc3339(r[k].as_str().expect("a time"))
                    .expect("RFC 3339")
            };
            (t("started_at"), t("finished_at"))
        })
        .collect();
    assert_eq!(spans.len(), 20);
    let most = spans
        .iter()
        .map(|(start, _)| {
            spans
                .iter()
                .filter(|(s, f)| s <= start && start < f)
                .count()
        })
        .max()
        .unwrap_or(0);
    assert!(most <= 2, "{most} scans ran at once: {spans:#?}");
    assert_eq!(most, 2, "the two slots were used together: {spans:#?}");
    bot.assert_clean();
}

// ---------------------------------------------------------------------------------------------
// REST: Discord fails the result post once
// ---------------------------------------------------------------------------------------------

/// The next message post after the acknowledgement is the result (progress goes out as edits):
/// `fault` makes Discord refuse it once.
fn result_post_refused_once(fault: impl FnOnce(&Bot)) {
    let bot = Bot::start(&[]);
    let mark = bot.mark();
    bot.say(MODERATOR_ID, "!scan alice sherlock");
    bot.posted(mark, |r| content(r).contains("Scanning **alice**"));
    fault(&bot);
    let result = bot
        .discord
        .wait_for(
            |r| {
                r.index >= mark
                    && r.is("POST", "/channels/*/messages")
                    && is_result(r)
                    && !r.faulted
            },
            WAIT,
        )
        .unwrap_or_else(|| panic!("the result never arrived:\n{}", bot.log()));
    let failed: Vec<_> = bot
        .discord
        .requests()
        .into_iter()
        .filter(|r| r.faulted)
        .collect();
    assert_eq!(failed.len(), 1);
    assert!(is_result(&failed[0]), "the failed post was the result");
    assert_eq!(result.files().len(), 2);
    assert_eq!(support::files_in(&bot.scans()).len(), 2);
    assert!(
        !bot.discord
            .requests()
            .iter()
            .any(|r| content(r).contains("went wrong")),
        "an error was shown although the result arrived"
    );
    assert!(bot.log().contains("trying again"), "{}", bot.log());
    bot.assert_clean();
}

#[test]
fn a_result_post_that_discord_fails_once_is_sent_again() {
    result_post_refused_once(|bot| {
        bot.discord
            .fail_next("POST", "/channels/*/messages", 502, 1)
    });
}

#[test]
fn a_result_post_that_discord_rate_limits_once_is_sent_again() {
    result_post_refused_once(|bot| {
        bot.discord
            .rate_limit_next("POST", "/channels/*/messages", 0.5, 1)
    });
}

#[test]
fn failed_edits_of_the_acknowledgement_do_not_lose_the_result() {
    let bot = Bot::start(&[]);
    let mark = bot.mark();
    bot.say(MODERATOR_ID, "!scan alice sherlock");
    bot.posted(mark, |r| content(r).contains("Scanning **alice**"));
    // As when a moderator deleted the "Scanning" message: every edit is answered 404.
    bot.discord
        .fail_next("PATCH", "/channels/*/messages/*", 404, 1000);
    let result = bot.posted(mark, is_result);
    assert_eq!(result.embeds()[0]["title"], "Scan of alice");
    assert_eq!(result.files().len(), 2);
    let failed_edits = bot
        .discord
        .requests()
        .iter()
        .filter(|r| r.faulted && r.is("PATCH", "/channels/*/messages/*"))
        .count();
    assert!(failed_edits >= 1, "the final edit was refused");
    assert!(
        !bot.discord
            .requests()
            .iter()
            .any(|r| content(r).contains("went wrong")),
        "an error was shown although the result arrived"
    );
    bot.assert_clean();
}
