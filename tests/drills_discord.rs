//! Drills for what a real deployment meets first on Discord's side (issue 12): requests Discord
//! never answers, answers that are lost after Discord acted, a shutdown that must fit inside the
//! platform's kill window, slash scans that must be deferred before anything slow, shard ranges
//! split over two processes, and interaction tokens that must never reach the log. Each runs
//! the real `account-scanner bot` against the fake Discord and the real Sherlock.

mod support;

use std::collections::BTreeMap;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::bot::{Bot, BotOptions, CH, WAIT, content, is_result};
use support::fake_discord::{
    ADMIN_ID, BOT_TOKEN, FakeDiscord, FakeDiscordConfig, MEMBER_ID, MODERATOR_ID,
};

fn sigterm(pid: u32) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("SIGTERM");
}

fn fast_bot(env: &[(&str, &str)]) -> Bot {
    Bot::start_opts(
        BotOptions {
            fast_sites: true,
            ..BotOptions::default()
        },
        env,
    )
}

/// The stored messages of the channel that are scan results (an embed titled "Scan of ...").
fn results_shown(discord: &FakeDiscord) -> Vec<Value> {
    discord
        .channel_messages(CH)
        .into_iter()
        .filter(|m| {
            m["embeds"].as_array().is_some_and(|e| {
                e.iter().any(|e| {
                    e["title"]
                        .as_str()
                        .is_some_and(|t| t.starts_with("Scan of"))
                })
            })
        })
        .collect()
}

/// Starts a slash scan of alice's sites and waits for its acknowledgement follow-up; returns the
/// interaction token.
fn slash_scan_acknowledged(bot: &Bot) -> String {
    let id = bot.discord.send_slash_command(
        MODERATOR_ID,
        CH,
        "scan",
        serde_json::json!({"target": "alice", "mode": "sherlock"}),
    );
    let token = bot.discord.interaction_token(id).expect("token");
    bot.discord
        .wait_for(
            |r| r.is("POST", "/webhooks/*/*") && r.path.contains(&token),
            WAIT,
        )
        .unwrap_or_else(|| panic!("no acknowledgement follow-up:\n{}", bot.log()));
    token
}

// ---------------------------------------------------------------------------------------------
// Requests Discord never answers
// ---------------------------------------------------------------------------------------------

/// Every edit of the "Scanning…" message hangs (a half-open connection): the result is still
/// posted as soon as the scan ends, and the next scan runs (the slot was not held).
#[test]
fn hung_edits_of_the_acknowledgement_never_hold_back_the_result_or_the_next_scan() {
    let bot = Bot::start(&[("MAX_CONCURRENT_SCANS", "1"), ("SCAN_COOLDOWN", "0")]);
    let mark = bot.mark();
    bot.say(MODERATOR_ID, "!scan alice sherlock");
    bot.posted(mark, |r| content(r).contains("Scanning **alice**"));
    bot.discord
        .hang_next("PATCH", "/channels/*/messages/*", 1000);
    let first_hung = bot
        .discord
        .wait_for_arrival(
            |r| r.index >= mark && r.is("PATCH", "/channels/*/messages/*"),
            WAIT,
        )
        .unwrap_or_else(|| panic!("no progress edit was tried:\n{}", bot.log()));
    let result = bot.posted(mark, is_result);
    assert_eq!(result.embeds()[0]["title"], "Scan of alice");
    assert_eq!(result.files().len(), 2);
    eprintln!(
        "measured: first hung edit -> result posted: {} ms",
        result.at.duration_since(first_hung.at).as_millis()
    );

    let mark = bot.mark();
    bot.say(MODERATOR_ID, "!scan bob sherlock");
    let second = bot.posted(mark, |r| {
        is_result(r) && r.embeds()[0]["title"] == "Scan of bob"
    });
    assert_eq!(second.files().len(), 2);
    assert!(
        !bot.discord
            .requests()
            .iter()
            .any(|r| content(r).contains("went wrong")),
        "an error was shown although the results arrived"
    );
    bot.assert_clean();
}

/// The result post itself is never answered once: after `DISCORD_HTTP_TIMEOUT` it is sent
/// again, and the channel shows it once.
#[test]
fn a_result_post_that_is_never_answered_is_sent_again_after_the_timeout() {
    let bot = fast_bot(&[("DISCORD_HTTP_TIMEOUT", "2")]);
    let mark = bot.mark();
    bot.say(MODERATOR_ID, "!scan alice sherlock");
    bot.posted(mark, |r| content(r).contains("Scanning **alice**"));
    bot.discord.hang_next("POST", "/channels/*/messages", 1);
    let answered = bot
        .discord
        .wait_for(|r| r.index >= mark && is_result(r) && r.status == 200, WAIT)
        .unwrap_or_else(|| panic!("the result never arrived:\n{}", bot.log()));
    let tries: Vec<_> = bot
        .discord
        .requests()
        .into_iter()
        .filter(|r| r.index >= mark && r.is("POST", "/channels/*/messages") && is_result(r))
        .collect();
    assert_eq!(tries.len(), 2, "one hung post, one answered");
    assert!(
        answered.at.duration_since(tries[0].at) >= Duration::from_secs(2),
        "tried again only after the timeout"
    );
    assert_eq!(results_shown(&bot.discord).len(), 1);
    assert!(bot.log().contains("trying again"), "{}", bot.log());
    bot.assert_clean();
}

/// Discord created the result message but the answer was lost: the retry carries the same
/// nonce with `enforce_nonce`, so Discord hands back the first message and none is added.
#[test]
fn a_result_post_whose_answer_was_lost_is_not_shown_twice() {
    let bot = fast_bot(&[("DISCORD_HTTP_TIMEOUT", "2")]);
    let mark = bot.mark();
    bot.say(MODERATOR_ID, "!scan alice sherlock");
    bot.posted(mark, |r| content(r).contains("Scanning **alice**"));
    bot.discord
        .lose_answer_next("POST", "/channels/*/messages", 1);
    bot.discord
        .wait_for(|r| r.index >= mark && is_result(r) && r.status == 200, WAIT)
        .unwrap_or_else(|| panic!("the retry was never answered:\n{}", bot.log()));
    let tries: Vec<_> = bot
        .discord
        .requests()
        .into_iter()
        .filter(|r| r.index >= mark && is_result(r))
        .collect();
    assert_eq!(tries.len(), 2);
    let nonces: Vec<_> = tries
        .iter()
        .map(|r| {
            r.payload()
                .map(|p| (p["nonce"].clone(), p["enforce_nonce"].clone()))
        })
        .collect();
    assert_eq!(nonces[0], nonces[1], "the retry carries the same nonce");
    assert_eq!(
        nonces[0].as_ref().map(|(_, e)| e.clone()),
        Some(Value::Bool(true))
    );
    assert_eq!(results_shown(&bot.discord).len(), 1, "shown once");
    bot.assert_clean();
}

/// The same for a slash scan, whose follow-ups carry no nonce: before sending again, the bot
/// looks for the result among the channel's messages and finds it.
#[test]
fn a_slash_result_whose_answer_was_lost_is_not_shown_twice() {
    let bot = fast_bot(&[("DISCORD_HTTP_TIMEOUT", "2")]);
    slash_scan_acknowledged(&bot);
    bot.discord.lose_answer_next("POST", "/webhooks/*/*", 1);
    let looked = bot
        .discord
        .wait_for(|r| r.is("GET", "/channels/*/messages"), WAIT)
        .unwrap_or_else(|| panic!("the bot never looked for its result:\n{}", bot.log()));
    assert!(
        bot.discord
            .wait_until(WAIT, || bot.log().contains("had arrived after all")),
        "{}",
        bot.log()
    );
    let result_posts = bot
        .discord
        .requests()
        .into_iter()
        .filter(|r| r.is("POST", "/webhooks/*/*") && is_result(r))
        .count();
    assert_eq!(result_posts, 1, "not sent again");
    assert!(looked.status == 200);
    assert_eq!(results_shown(&bot.discord).len(), 1);
    bot.assert_clean();
}

// ---------------------------------------------------------------------------------------------
// Shutdown: one budget inside the kill window
// ---------------------------------------------------------------------------------------------

/// SIGTERM while a scan runs that would take far longer than the budget: the scan is
/// interrupted, its partial result is posted, and the process has exited within
/// `SHUTDOWN_GRACE` (what it is measured against: fly's `kill_timeout` is 30 s for 25 s).
#[test]
fn shutdown_posts_the_partial_result_and_exits_within_its_budget() {
    let mut bot = Bot::start(&[
        ("SHUTDOWN_GRACE", "6"),
        // HangSite keeps Sherlock busy for this long: the scan cannot finish in the budget.
        ("SHERLOCK_SITE_TIMEOUT", "60"),
        ("SCAN_TIMEOUT", "300"),
    ]);
    let mark = bot.mark();
    bot.say(MODERATOR_ID, "!scan alice sherlock");
    bot.posted(mark, |r| content(r).contains("Scanning **alice**"));
    let signalled = Instant::now();
    sigterm(bot.pid());
    let status = bot.wait_exit(Duration::from_secs(20));
    let took = signalled.elapsed();
    eprintln!(
        "measured: SIGTERM -> exit {} ms (budget 6000 ms)",
        took.as_millis()
    );
    assert!(status.success(), "{status:?}\n{}", bot.log());
    assert!(
        took < Duration::from_millis(6_000 + 1_000),
        "exit took {took:?}, budget 6 s:\n{}",
        bot.log()
    );
    let result = bot.posted(mark, is_result);
    assert!(
        result.embeds()[0]["description"]
            .as_str()
            .unwrap_or_default()
            .contains("partial")
            || content(&result).contains("partial")
            || result
                .embeds()
                .iter()
                .any(|e| e.to_string().contains("artial")),
        "the result says it is partial: {:?}",
        result.embeds()
    );
}

/// The same while Discord never answers the result post: the budget still holds (before, the
/// bot waited 10 s more after the grace period, and the post itself for ever).
#[test]
fn shutdown_keeps_its_budget_when_discord_does_not_answer() {
    let mut bot = Bot::start(&[
        ("SHUTDOWN_GRACE", "6"),
        ("SHERLOCK_SITE_TIMEOUT", "60"),
        ("SCAN_TIMEOUT", "300"),
    ]);
    let mark = bot.mark();
    bot.say(MODERATOR_ID, "!scan alice sherlock");
    bot.posted(mark, |r| content(r).contains("Scanning **alice**"));
    bot.discord.hang_next("POST", "/channels/*/messages", 1000);
    bot.discord
        .hang_next("PATCH", "/channels/*/messages/*", 1000);
    let signalled = Instant::now();
    sigterm(bot.pid());
    let status = bot.wait_exit(Duration::from_secs(30));
    let took = signalled.elapsed();
    eprintln!(
        "measured: SIGTERM -> exit with Discord hanging {} ms (budget 6000 ms)",
        took.as_millis()
    );
    assert!(status.success(), "{status:?}\n{}", bot.log());
    assert!(
        took < Duration::from_millis(6_000 + 1_000),
        "exit took {took:?}, budget 6 s:\n{}",
        bot.log()
    );
    assert!(
        bot.discord
            .requests()
            .iter()
            .any(|r| r.index >= mark && is_result(r)),
        "the partial result was tried"
    );
}

// ---------------------------------------------------------------------------------------------
// Slash scans defer first
// ---------------------------------------------------------------------------------------------

/// The member fetch of a mention is slow: the interaction is deferred before it is made (Discord
/// refuses a first answer after 3 s).
#[test]
fn a_slash_scan_is_deferred_before_the_member_is_fetched() {
    // Members as Discord sends them to a bot without GUILD_PRESENCES: not cached, so fetched.
    let bot = Bot::start_opts(
        BotOptions {
            fast_sites: true,
            discord: FakeDiscordConfig {
                members_as_discord_sends: true,
                ..FakeDiscordConfig::default()
            },
            ..BotOptions::default()
        },
        &[],
    );
    bot.discord
        .delay_next("GET", "/guilds/*/members/*", Duration::from_secs(2), 10);
    let id = bot.discord.send_slash_command(
        MODERATOR_ID,
        CH,
        "scan",
        serde_json::json!({"target": format!("<@{MEMBER_ID}>"), "mode": "sherlock"}),
    );
    let callback = bot
        .discord
        .wait_for(|r| r.path.contains(&format!("/interactions/{id}/")), WAIT)
        .unwrap_or_else(|| panic!("no callback:\n{}", bot.log()));
    let fetch = bot
        .discord
        .wait_for(|r| r.is("GET", "/guilds/*/members/*"), WAIT)
        .unwrap_or_else(|| panic!("the member was not fetched:\n{}", bot.log()));
    assert!(
        callback.index < fetch.index,
        "deferred (request {}) before the member fetch (request {})",
        callback.index,
        fetch.index
    );
    assert_eq!(
        callback.json.as_ref().map(|j| j["type"].clone()),
        Some(Value::from(5))
    );
    let token = bot.discord.interaction_token(id).expect("token");
    bot.discord
        .wait_for(
            |r| r.is("POST", "/webhooks/*/*") && r.path.contains(&token) && is_result(r),
            WAIT,
        )
        .unwrap_or_else(|| panic!("no result:\n{}", bot.log()));
    bot.assert_clean();
}

// ---------------------------------------------------------------------------------------------
// Secrets at trace
// ---------------------------------------------------------------------------------------------

/// At `RUST_LOG=trace`, with Discord failing a slash scan's edits and every try of its result
/// follow-up, so that each error is logged (the last one as the command's failure, with the
/// request's URL), neither the interaction token nor the bot token appears in the log.
#[test]
fn no_interaction_token_or_bot_token_reaches_the_log_at_trace() {
    let bot = fast_bot(&[("RUST_LOG", "trace")]);
    let token = slash_scan_acknowledged(&bot);
    bot.discord
        .fail_next("PATCH", "/webhooks/*/*/messages/*", 404, 1000);
    bot.discord.fail_next("POST", "/webhooks/*/*", 502, 3);
    let apology = bot
        .discord
        .wait_for(
            |r| {
                r.is("POST", "/webhooks/*/*")
                    && r.path.contains(&token)
                    && content(r).contains("went wrong")
            },
            WAIT,
        )
        .unwrap_or_else(|| panic!("no apology after the result failed:\n{}", bot.log()));
    assert_eq!(apology.status, 200);
    let log = bot.log();
    assert!(log.contains("TRACE"), "trace logging is on");
    assert!(log.contains("command failed"), "{log}");
    assert!(
        log.contains("/webhooks/") && log.contains("[token]"),
        "the failed request's URL is logged, its token taken out:\n{log}"
    );
    for secret in [token.as_str(), BOT_TOKEN] {
        let leaks: Vec<String> = log
            .lines()
            .filter(|l| l.contains(secret))
            .map(|l| l.replace(secret, "<SECRET>").chars().take(400).collect())
            .collect();
        assert!(leaks.is_empty(), "a secret reached the log: {leaks:#?}");
    }
    // The token's distinctive part alone must not appear either.
    assert!(!log.contains(&token[16..40]));
    bot.assert_clean();
}

// ---------------------------------------------------------------------------------------------
// Shard ranges over two processes
// ---------------------------------------------------------------------------------------------

fn start_shard_process(discord: &FakeDiscord, dir: &std::path::Path, range: &str) -> Child {
    support::sherlock();
    support::scanner(dir)
        .env("DISCORD_BOT_TOKEN", BOT_TOKEN)
        .env("DISCORD_API_BASE", discord.base_url())
        .env("ADMIN_USER_IDS", ADMIN_ID.to_string())
        .env("SCANS_DIR", dir.join("scans"))
        .env("SHARD_COUNT", "2")
        .env("SHARD_RANGE", range)
        .env("RUST_LOG", "info")
        .arg("bot")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the bot")
}

/// Two machines, `0-0` and `1-1` of `SHARD_COUNT=2`, against one Discord: exactly shards 0 and
/// 1 identify, once each. Watched for 12 s: serenity waits 5 s between identifies, so a third
/// shard would show by then.
#[test]
fn two_processes_with_ranges_0_0_and_1_1_run_shards_0_and_1_once_each() {
    let discord = FakeDiscord::start_with(FakeDiscordConfig::default());
    let (a, b) = (
        tempfile::tempdir().expect("tmp"),
        tempfile::tempdir().expect("tmp"),
    );
    let mut first = start_shard_process(&discord, a.path(), "0-0");
    let mut second = start_shard_process(&discord, b.path(), "1-1");
    assert!(
        discord.wait_until(WAIT, || discord.identify_count() >= 2),
        "two identifies"
    );
    // A positive signal first: both shards are ready. Then the quiet window serenity needs.
    let watch_until = Instant::now() + Duration::from_secs(12);
    while Instant::now() < watch_until {
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for i in discord.identifies() {
        *seen.entry(format!("{:?}", i.shard)).or_default() += 1;
    }
    for child in [&mut first, &mut second] {
        let _ = child.kill();
        let _ = child.wait();
    }
    assert_eq!(
        seen,
        BTreeMap::from([
            (format!("{:?}", Some((0u64, 2u64))), 1),
            (format!("{:?}", Some((1u64, 2u64))), 1)
        ]),
        "identifies by shard"
    );
}
