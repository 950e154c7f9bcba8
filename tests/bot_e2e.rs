//! The real `account-scanner bot` binary against the fake Discord, with the real Sherlock
//! checking the fake sites. Every scenario is asserted from the requests the bot sent, and
//! every body is validated against Discord's OpenAPI spec.

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::bot::{Bot, CH, WAIT, allowed_mentions_empty, content, is_result, report_files};
use support::fake_discord::{ADMIN_ID, MEMBER_ID, MODERATOR_ID};

#[test]
fn a_moderator_scan_acknowledges_shows_progress_and_posts_embeds_with_the_files() {
    let bot = Bot::start(&[]);
    let mark = bot.mark();
    bot.say(MODERATOR_ID, "!scan alice sherlock");

    let ack = bot.posted(mark, |r| content(r).contains("Scanning **alice**"));
    assert!(allowed_mentions_empty(&ack), "{:?}", ack.payload());
    let ack_id = ack.message_id().expect("ack id");

    let result = bot.posted(mark, is_result);
    // The acknowledgement is marked finished beside the result post (never before it).
    bot.discord
        .wait_for(
            |r| {
                r.is("PATCH", "/channels/*/messages/*")
                    && r.path.ends_with(&ack_id.to_string())
                    && content(r).contains("✅ Scan of **alice** finished")
            },
            WAIT,
        )
        .unwrap_or_else(|| {
            panic!(
                "the acknowledgement was not marked finished:\n{}",
                bot.log()
            )
        });
    // At least one progress edit happened while Sherlock waited on the hanging site.
    let edits: Vec<String> = bot
        .discord
        .message_edits(CH)
        .iter()
        .filter(|r| r.index > ack.index && r.path.ends_with(&ack_id.to_string()))
        .map(content)
        .collect();
    assert!(
        edits
            .iter()
            .any(|c| c.contains("sites") && c.contains("checked")),
        "no progress edit: {edits:?}"
    );
    assert!(
        edits
            .last()
            .is_some_and(|c| c.contains("✅ Scan of **alice** finished")),
        "{edits:?}"
    );

    let embed = &result.embeds()[0];
    assert_eq!(embed["title"], "Scan of alice");
    let description = embed["description"].as_str().expect("description");
    assert!(
        description.contains("**Found on 3 site(s)**"),
        "{description}"
    );
    let fields = embed["fields"].as_array().expect("fields");
    let found = fields
        .iter()
        .find(|f| f["name"] == "Found (3)")
        .expect("found field");
    let base = bot.sites.base_url();
    assert!(
        found["value"]
            .as_str()
            .expect("value")
            .contains(&format!("[StatusHit]({base}/status/alice)")),
        "{found}"
    );
    assert!(allowed_mentions_empty(&result));

    // The attachments are byte for byte the files written under SCANS_DIR.
    let files = result.files();
    let on_disk = report_files(&bot);
    assert_eq!(files.len(), 2, "{files:?}");
    assert_eq!(on_disk.len(), 2, "{on_disk:?}");
    for (name, bytes) in &on_disk {
        let sent = files
            .iter()
            .find(|f| f.filename.as_deref() == Some(name.as_str()))
            .unwrap_or_else(|| panic!("{name} not attached"));
        assert_eq!(&sent.data, bytes, "{name} differs");
    }
    bot.assert_clean();
}

#[test]
fn a_plain_member_is_refused_and_no_scan_starts() {
    let bot = Bot::start(&[(
        "LOG_CHANNEL_ID",
        &support::fake_discord::MOD_LOG_CHANNEL_ID.to_string(),
    )]);
    let mark = bot.mark();
    bot.say(MEMBER_ID, "!scan bob");
    let refusal = bot.posted(mark, |r| content(r).contains("lacking permissions"));
    assert_eq!(
        content(&refusal),
        "You're lacking permissions for `!scan`: Moderate Members"
    );
    // The refusal is audited in the log channel.
    let audit = bot
        .discord
        .wait_for(
            |r| {
                r.is("POST", "/channels/*/messages")
                    && r.path
                        .contains(&support::fake_discord::MOD_LOG_CHANNEL_ID.to_string())
            },
            WAIT,
        )
        .expect("audit post");
    assert!(
        content(&audit).contains(&format!("<@{MEMBER_ID}> was refused `scan`")),
        "{}",
        content(&audit)
    );
    assert!(allowed_mentions_empty(&audit));
    // A positive signal after the refused command: a later `!health` answers, and says no scan
    // is running or queued (a scan that slipped through would be running: Sherlock waits on
    // the hanging site). Only then is "no scan" asserted.
    let health_mark = bot.mark();
    bot.say(MEMBER_ID, "!health");
    let health = bot.posted(health_mark, |r| content(r).contains("account-scanner"));
    assert!(
        content(&health).contains("Scans: 0 running, 0 queued"),
        "{}",
        content(&health)
    );
    assert!(!bot.scans().exists() || support::files_in(&bot.scans()).is_empty());
    assert!(
        !bot.discord
            .requests()
            .iter()
            .skip(mark)
            .any(|r| content(r).contains("Scanning")),
        "a scan started"
    );
    bot.assert_clean();
}

#[test]
fn bad_input_gets_the_validators_message_and_mentions_ping_nobody() {
    let bot = Bot::start(&[]);
    let mark = bot.mark();
    bot.say(MODERATOR_ID, "!scan ../../etc");
    let reply = bot.posted(mark, |r| content(r).contains("not a valid username"));
    assert_eq!(
        content(&reply),
        "`../../etc` is not a valid username: usernames may not contain '/' (a path separator)"
    );

    let mark = bot.mark();
    bot.say(MODERATOR_ID, "!scan @everyone");
    let reply = bot.posted(mark, |r| content(r).contains("not a valid username"));
    assert!(
        content(&reply).contains("'@' cannot appear in a profile URL"),
        "{}",
        content(&reply)
    );
    assert!(allowed_mentions_empty(&reply), "{:?}", reply.payload());

    let mark = bot.mark();
    bot.say(MODERATOR_ID, "!scan alice deep");
    let reply = bot.posted(mark, |r| content(r).contains("scan mode"));
    assert_eq!(
        content(&reply),
        "`deep` is not a scan mode: use all, sherlock or reddit"
    );
    assert!(!bot.scans().exists() || support::files_in(&bot.scans()).is_empty());
    bot.assert_clean();
}

#[test]
fn a_second_scan_within_the_cooldown_is_told_to_wait() {
    let bot = Bot::start(&[("SHERLOCK_SITE_TIMEOUT", "1")]);
    let mark = bot.mark();
    bot.say(MODERATOR_ID, "!scan alice sherlock");
    bot.posted(mark, is_result);
    let mark = bot.mark();
    bot.say(MODERATOR_ID, "!scan alice sherlock");
    let reply = bot.posted(mark, |r| content(r).contains("too fast"));
    assert!(
        content(&reply).starts_with("You're too fast. Please wait "),
        "{}",
        content(&reply)
    );
    // Another moderator is not affected by this one's cooldown.
    let mark = bot.mark();
    bot.say(ADMIN_ID, "!scan alice sherlock");
    bot.posted(mark, |r| content(r).contains("Scanning **alice**"));
    bot.assert_clean();
}

#[test]
fn a_mentioned_member_is_scanned_by_username_with_their_dates() {
    let bot = Bot::start(&[("SHERLOCK_SITE_TIMEOUT", "1")]);
    let mark = bot.mark();
    bot.say(MODERATOR_ID, &format!("!scan <@{MEMBER_ID}> sherlock"));
    let result = bot.posted(mark, is_result);
    let embed = &result.embeds()[0];
    assert_eq!(embed["title"], "Scan of alice");
    let member = embed["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .find(|f| f["name"] == "Discord member")
        .expect("member field");
    let created = &support::fake_discord::snowflake_created_at(MEMBER_ID)[..10];
    let value = member["value"].as_str().expect("value");
    assert!(
        value.contains(&format!("account created {created}")),
        "{value}"
    );
    assert!(value.contains("joined this server 2023-11-05"), "{value}");
    // ... and in the JSON report.
    let json = report_files(&bot)
        .into_iter()
        .find(|(n, _)| n.ends_with(".json"))
        .expect("json");
    let report: Value = serde_json::from_slice(&json.1).expect("report");
    assert_eq!(
        report["request"]["discord_member"]["user_id"],
        MEMBER_ID.to_string()
    );
    assert_eq!(report["request"]["discord_member"]["username"], "alice");
    bot.assert_clean();
}

#[test]
fn a_slash_scan_is_deferred_and_answered_with_follow_ups() {
    let bot = Bot::start(&[("SHERLOCK_SITE_TIMEOUT", "1")]);
    let id = bot.discord.send_slash_command(
        MODERATOR_ID,
        CH,
        "scan",
        serde_json::json!({"target": "alice", "mode": "sherlock"}),
    );
    let token = bot.discord.interaction_token(id).expect("token");
    let defer = bot
        .discord
        .wait_for(|r| r.path.contains(&format!("/interactions/{id}/")), WAIT)
        .expect("callback");
    assert_eq!(
        defer.json.as_ref().map(|j| j["type"].clone()),
        Some(Value::from(5))
    );
    let result = bot
        .discord
        .wait_for(
            |r| r.is("POST", "/webhooks/*/*") && r.path.contains(&token) && is_result(r),
            WAIT,
        )
        .unwrap_or_else(|| panic!("no follow-up result:\n{}", bot.log()));
    assert_eq!(result.embeds()[0]["title"], "Scan of alice");
    assert_eq!(result.files().len(), 2);
    for (name, bytes) in report_files(&bot) {
        let sent = result
            .files()
            .into_iter()
            .find(|f| f.filename.as_deref() == Some(name.as_str()))
            .expect("attached");
        assert_eq!(sent.data, bytes);
    }
    bot.assert_clean();
}

#[test]
fn dms_cannot_scan() {
    let bot = Bot::start(&[]);
    let mark = bot.mark();
    bot.discord.send_dm(MODERATOR_ID, "!scan alice");
    let reply = bot
        .discord
        .wait_for(
            |r| {
                r.index >= mark
                    && r.is("POST", "/channels/*/messages")
                    && content(r).contains("server channel only")
            },
            WAIT,
        )
        .expect("refusal in DM");
    assert_eq!(
        content(&reply),
        "`scan` works in a server channel only, not in direct messages."
    );
    bot.assert_clean();
}

#[test]
fn health_answers_anyone_and_non_admin_shutdown_is_refused() {
    let mut bot = Bot::start(&[]);
    let mark = bot.mark();
    bot.say(MEMBER_ID, "!health");
    let reply = bot.posted(mark, |r| content(r).contains("account-scanner"));
    let text = content(&reply);
    let version = format!("**account-scanner {}**", env!("CARGO_PKG_VERSION"));
    for line in [
        version.as_ref(),
        "Gateway latency:",
        "Sherlock: 0.16.2 (managed virtualenv)",
        "Reddit:",
        "Scans: 0 running, 0 queued (at most 2 at once)",
        "Scans directory:",
        "Memory:",
    ] {
        assert!(text.contains(line), "missing {line:?} in {text}");
    }

    let mark = bot.mark();
    bot.say(MODERATOR_ID, "!shutdown");
    let refusal = bot.posted(mark, |r| content(r).contains("only the bot's admins"));
    assert_eq!(
        content(&refusal),
        "Sorry, only the bot's admins can shut it down."
    );
    // A positive signal first: a later `!health` answers, and does not say "shutting down"
    // (which it would once a shutdown had started); then the process is still there.
    let mark = bot.mark();
    bot.say(MEMBER_ID, "!health");
    let health = bot.posted(mark, |r| content(r).contains("account-scanner"));
    assert!(
        !content(&health).contains("shutting down"),
        "a refused shutdown started one: {}",
        content(&health)
    );
    assert!(bot.is_running(), "a refused shutdown stopped the bot");
    assert!(bot.log().contains("refused"), "refusal not logged");
    bot.assert_clean();
}

fn shutdown_while_scanning(trigger: impl FnOnce(&Bot)) {
    // HangSite keeps the scan running for 8 s: time enough, even on a loaded machine, for the
    // shutdown to arrive while it runs.
    let mut bot = Bot::start(&[("SHERLOCK_SITE_TIMEOUT", "8")]);
    let mark = bot.mark();
    bot.say(MODERATOR_ID, "!scan alice sherlock");
    bot.posted(mark, |r| content(r).contains("Scanning **alice**"));
    let asked = Instant::now();
    trigger(&bot);
    // The running scan still posts its result, then the process exits 0.
    let result = bot.posted(mark, is_result);
    assert_eq!(result.embeds()[0]["title"], "Scan of alice");
    let status = bot.wait_exit(Duration::from_secs(25));
    assert!(status.success(), "exit {status:?}:\n{}", bot.log());
    assert!(asked.elapsed() < Duration::from_secs(25));
    assert_eq!(report_files(&bot).len(), 2);
    bot.assert_clean();
}

#[test]
fn admin_shutdown_lets_the_running_scan_finish_then_exits_0() {
    shutdown_while_scanning(|bot| {
        let mark = bot.mark();
        bot.say(ADMIN_ID, "!shutdown");
        let confirm = bot.posted(mark, |r| content(r).contains("Shutting down"));
        assert!(
            content(&confirm).contains("1 running scan(s)"),
            "{}",
            content(&confirm)
        );
        // New scans are refused while shutting down.
        let mark = bot.mark();
        bot.say(ADMIN_ID, "!scan carol sherlock");
        let refused = bot.posted(mark, |r| content(r).contains("shutting down"));
        assert!(
            content(&refused).contains("takes no new scans"),
            "{}",
            content(&refused)
        );
    });
}

#[test]
fn sigterm_lets_the_running_scan_finish_then_exits_0() {
    shutdown_while_scanning(|bot| {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(bot.pid() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .expect("SIGTERM");
    });
}

#[test]
fn a_third_scan_is_queued_and_still_completes() {
    let bot = Bot::start(&[("MAX_CONCURRENT_SCANS", "2")]);
    let mark = bot.mark();
    bot.say(MODERATOR_ID, "!scan alice sherlock");
    bot.say(ADMIN_ID, "!scan bob sherlock");
    bot.discord.wait_for_count(
        |r| r.index >= mark && content(r).contains("🔎 Scanning"),
        2,
        WAIT,
    );
    let third = support::fake_discord::OWNER_ID;
    bot.say(third, "!scan carol sherlock");
    let queued = bot.posted(mark, |r| content(r).contains("Queued"));
    assert_eq!(
        content(&queued),
        "⏳ Queued: **carol** (mode `sherlock`) is number 1 in line; the scan starts when a slot frees up."
    );
    let results = bot.discord.wait_for_count(
        |r| r.index >= mark && is_result(r),
        3,
        Duration::from_secs(60),
    );
    let titles: Vec<_> = results
        .iter()
        .map(|r| r.embeds()[0]["title"].clone())
        .collect();
    assert!(titles.contains(&Value::from("Scan of carol")), "{titles:?}");
    bot.assert_clean();
}

#[test]
fn a_full_scan_shows_the_reddit_half_scored_for_toxicity() {
    use support::fake_perspective::{FakePerspective, FakePerspectiveConfig};
    use support::fake_reddit::{FakeAccount, FakeReddit, FakeRedditConfig};
    let reddit = FakeReddit::start(FakeRedditConfig {
        accounts: vec![
            FakeAccount::new("alice")
                .with_comments(3, |i| match i {
                    0 => "you idiot @everyone <@123>".to_string(),
                    n => format!("nice build number {n}"),
                })
                .with_posts(1, |_| "my first post".to_string()),
        ],
        ..FakeRedditConfig::default()
    });
    let perspective = FakePerspective::start(FakePerspectiveConfig::default());
    let vars: Vec<(&str, String)> = reddit
        .env()
        .into_iter()
        .chain(perspective.env())
        .chain([
            ("REDDIT_RATE_PER_MIN", "60000".to_string()),
            ("PERSPECTIVE_QPS", "1000".to_string()),
            ("SHERLOCK_SITE_TIMEOUT", "1".to_string()),
        ])
        .collect();
    let env: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let bot = Bot::start(&env);
    let mark = bot.mark();
    bot.say(MODERATOR_ID, "!scan alice");
    let result = bot.posted(mark, is_result);
    let embeds = result.embeds();
    assert_eq!(embeds.len(), 2, "{embeds:#?}");
    let r = &embeds[1];
    assert_eq!(r["title"], "Reddit: u/alice");
    let field = |name: &str| {
        r["fields"]
            .as_array()
            .expect("fields")
            .iter()
            .find(|f| f["name"].as_str().is_some_and(|n| n.starts_with(name)))
            .unwrap_or_else(|| panic!("no {name} field in {r:#}"))["value"]
            .as_str()
            .expect("value")
            .to_string()
    };
    assert!(
        field("Activity").starts_with("3 comments, 1 posts"),
        "{r:#}"
    );
    assert!(
        field("Toxicity (perspective").contains("of 4 scored"),
        "{r:#}"
    );
    let toxic = field("Most toxic");
    assert!(
        toxic.contains("you idiot @\u{200B}everyone \\<@\u{200B}123\\>"),
        "{toxic}"
    );
    assert!(toxic.contains("](https://"), "linked: {toxic}");
    assert!(allowed_mentions_empty(&result));
    // Three report files, byte for byte.
    let on_disk = report_files(&bot);
    assert_eq!(on_disk.len(), 3, "{on_disk:?}");
    for (name, bytes) in &on_disk {
        let sent = result
            .files()
            .into_iter()
            .find(|f| f.filename.as_deref() == Some(name.as_str()))
            .unwrap_or_else(|| panic!("{name} not attached"));
        assert_eq!(&sent.data, bytes);
    }
    reddit.assert_no_unexpected();
    bot.assert_clean();
}

/// The local model runs off the async threads: while a scan scores 1,000 Reddit comments, a
/// `!health` sent after the model has loaded is answered before that scan's result is posted,
/// and it names the loaded model.
#[test]
fn health_answers_while_a_scan_scores_a_thousand_comments_locally() {
    use support::fake_reddit::{FakeAccount, FakeReddit, FakeRedditConfig};
    let reddit = FakeReddit::start(FakeRedditConfig {
        accounts: vec![FakeAccount::new("alice").with_comments(1000, |i| {
            format!("comment {i}: honestly the new patch ruined ranked for everyone, what a mess")
        })],
        ..FakeRedditConfig::default()
    });
    let vars: Vec<(&str, String)> = reddit
        .env()
        .into_iter()
        .chain([
            ("REDDIT_RATE_PER_MIN", "60000".to_string()),
            ("REDDIT_MAX_COMMENTS", "1000".to_string()),
            ("REDDIT_MAX_POSTS", "0".to_string()),
        ])
        .collect();
    let env: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let bot = Bot::start(&env);
    let mark = bot.mark();
    bot.say(MODERATOR_ID, "!scan alice reddit");
    let deadline = Instant::now() + WAIT;
    while !bot.log().contains("toxicity model loaded") {
        assert!(
            Instant::now() < deadline,
            "the model never loaded:\n{}",
            bot.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    bot.say(MEMBER_ID, "!health");
    let health = bot.posted(mark, |r| content(r).contains("account-scanner"));
    let result = bot.posted(mark, is_result);
    assert!(
        health.index < result.index,
        "health was answered only after the scan's result"
    );
    let health = content(&health);
    assert!(health.contains("Scans: 1 running"), "{health}");
    assert!(
        health.contains("all-MiniLM-L6-v2 fine-tuned + head "),
        "{health}"
    );
    let scored = result.embeds().iter().any(|e| {
        e["fields"].as_array().is_some_and(|fields| {
            fields.iter().any(|f| {
                f["value"]
                    .as_str()
                    .is_some_and(|v| v.contains("of 1000 scored"))
            })
        })
    });
    assert!(scored, "{:#?}", result.embeds());
    reddit.assert_no_unexpected();
    bot.assert_clean();
}
