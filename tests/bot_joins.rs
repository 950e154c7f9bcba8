//! The join screen (issue 16) through the real bot against the fake Discord, whose members join
//! with GUILD_MEMBER_ADD (sent only to a bot that asked for the Server Members intent): one post
//! per member with the account's age, avatar and earlier scans here and a Scan button; nothing
//! with the screen off; automatic scans of young accounts only, capped per hour, overtaken by a
//! moderator's scan; a burst of 30 joins as one summary with no scan; and without the intent,
//! `settings` says what the operator must enable.

mod support;

use std::time::Duration;

use support::bot::{Bot, BotOptions, WAIT, content};
use support::fake_discord::{
    FakeDiscordConfig, FakeJoiner, GENERAL_CHANNEL_ID, GENERAL2_CHANNEL_ID, GUILD_ID, GUILD2_ID,
    MEMBER_ID, MODERATOR_ID, OWNER_ID, RecordedRequest,
};

const DAY: Duration = Duration::from_secs(86_400);

fn start(joiners: Vec<FakeJoiner>, fast_sites: bool, env: &[(&str, &str)]) -> Bot {
    let mut all = vec![("SCAN_COOLDOWN", "0"), ("JOIN_BATCH_DELAY", "0")];
    all.extend_from_slice(env);
    Bot::start_opts(
        BotOptions {
            discord: FakeDiscordConfig {
                joiners,
                ..FakeDiscordConfig::default()
            },
            fast_sites,
            ..BotOptions::default()
        },
        &all,
    )
}

fn with_intent(joiners: Vec<FakeJoiner>, fast_sites: bool, env: &[(&str, &str)]) -> Bot {
    let mut all = vec![("DISCORD_MEMBERS_INTENT", "true")];
    all.extend_from_slice(env);
    start(joiners, fast_sites, &all)
}

/// Sends a command and waits for the bot's message in that channel containing `expect`.
fn says(bot: &Bot, channel: u64, user: u64, command: &str, expect: &str) -> RecordedRequest {
    let mark = bot.mark();
    bot.discord.send_message(channel, user, command);
    posted(bot, channel, mark, |r| text(r).contains(expect))
}

/// Content and embeds of a request, as text.
fn text(r: &RecordedRequest) -> String {
    let mut t = content(r);
    for e in r.embeds() {
        t.push_str(&e.to_string());
    }
    t
}

fn posted(
    bot: &Bot,
    channel: u64,
    after: usize,
    pred: impl Fn(&RecordedRequest) -> bool,
) -> RecordedRequest {
    bot.posted_in(channel, after, pred)
}

/// The owner changes the first server's settings, one by one.
fn set(bot: &Bot, settings: &[(&str, String)]) {
    for (setting, value) in settings {
        says(
            bot,
            GENERAL_CHANNEL_ID,
            OWNER_ID,
            &format!("!settings {setting} {value}"),
            &format!("`{setting}`:"),
        );
    }
}

/// The join screen's post about `user`.
fn screening_post(bot: &Bot, channel: u64, user: u64) -> RecordedRequest {
    posted(bot, channel, 0, |r| {
        r.embeds()
            .first()
            .is_some_and(|e| e["footer"]["text"] == format!("join screen · user {user}"))
    })
}

fn field(r: &RecordedRequest, name: &str) -> Option<String> {
    r.embeds().first().and_then(|e| {
        e["fields"].as_array()?.iter().find_map(|f| {
            (f["name"] == name).then(|| f["value"].as_str().unwrap_or_default().to_string())
        })
    })
}

/// The scan result for `name` posted in `channel`.
fn result_for(bot: &Bot, channel: u64, name: &str) -> RecordedRequest {
    posted(bot, channel, 0, |r| {
        is_result(r) && r.embeds()[0]["title"] == format!("Scan of {name}")
    })
}

/// A scan's result (not a screening post or a burst summary, which carry embeds too).
fn is_result(r: &RecordedRequest) -> bool {
    r.embeds()
        .first()
        .and_then(|e| e["title"].as_str())
        .is_some_and(|t| t.starts_with("Scan of "))
}

/// Waits until the bot's log has `line` (the bot's own word that it handled something).
fn logged(bot: &Bot, line: &str) {
    assert!(
        bot.discord.wait_until(WAIT, || bot.log().contains(line)),
        "the bot never logged {line:?}:\n{}",
        bot.log()
    );
}

#[test]
fn each_join_is_posted_with_age_avatar_history_and_a_scan_button_and_nothing_with_the_screen_off() {
    let bot = with_intent(
        vec![
            FakeJoiner::aged("fresh.face", 2 * DAY + Duration::from_secs(3600)),
            FakeJoiner::aged("old.hand", 400 * DAY)
                .with_avatar("a_1f2e3d4c5b6a79880716253443526170"),
        ],
        true,
        &[],
    );
    let fresh = bot.discord.joiner_id("fresh.face");
    let old = bot.discord.joiner_id("old.hand");

    // The second server has no screen: the bot sees the join and posts nothing.
    let mark = bot.mark();
    assert_eq!(bot.discord.join_member(GUILD2_ID, "old.hand"), Some(old));
    logged(&bot, "the join screen is off in this server");
    assert!(
        bot.discord
            .requests()
            .iter()
            .all(|r| r.index < mark || r.method == "GET"),
        "nothing posted for a join with the screen off"
    );

    // A scan of the name before the account joins is its history here.
    says(
        &bot,
        GENERAL_CHANNEL_ID,
        MODERATOR_ID,
        "!scan fresh.face sherlock",
        "Scan of fresh.face",
    );
    says(
        &bot,
        GENERAL_CHANNEL_ID,
        OWNER_ID,
        &format!("!settings screening <#{GENERAL_CHANNEL_ID}>"),
        &format!("`screening`: off → <#{GENERAL_CHANNEL_ID}>"),
    );

    assert_eq!(bot.discord.join_member(GUILD_ID, "fresh.face"), Some(fresh));
    let post = screening_post(&bot, GENERAL_CHANNEL_ID, fresh);
    let embed = &post.embeds()[0];
    assert_eq!(embed["title"], "⚠️ Member joined: fresh.face");
    assert_eq!(
        embed["description"],
        format!("<@{fresh}> joined the server.")
    );
    let age = field(&post, "Account age").expect("age");
    assert!(
        age.starts_with("2 days (created ")
            && age.ends_with("⚠️ **new account** (younger than 7 days)"),
        "{age}"
    );
    assert_eq!(
        field(&post, "Avatar").as_deref(),
        Some("default avatar (none set)")
    );
    let earlier = field(&post, "Previous scans").expect("history");
    assert!(
        earlier.starts_with("1 scan(s) in this server")
            && earlier.contains(&format!("by <@{MODERATOR_ID}>"))
            && earlier.contains("`sherlock`"),
        "{earlier}"
    );
    assert_eq!(field(&post, "Automatic scan"), None, "auto_scan is off");
    assert_eq!(
        post.components()[0]["components"][0]["label"],
        "Scan",
        "{:?}",
        post.components()
    );

    assert_eq!(bot.discord.join_member(GUILD_ID, "old.hand"), Some(old));
    let post = screening_post(&bot, GENERAL_CHANNEL_ID, old);
    assert_eq!(post.embeds()[0]["title"], "👋 Member joined: old.hand");
    let age = field(&post, "Account age").expect("age");
    assert!(age.starts_with("1 year 35 days (created "), "{age}");
    assert!(!age.contains("new account"), "{age}");
    assert_eq!(field(&post, "Avatar").as_deref(), Some("own avatar"));
    assert_eq!(
        field(&post, "Previous scans").as_deref(),
        Some("none in this server")
    );

    // The Scan button: a member is refused, a moderator gets the scan of the member who joined.
    let message = post.message_id().expect("posted");
    let scan = post.custom_ids()[0].clone();
    let mark = bot.mark();
    let press = bot.discord.press_button(MEMBER_ID, message, &scan);
    bot.discord
        .wait_for(
            |r| r.index >= mark && text(r).contains("lacking permissions for this button"),
            WAIT,
        )
        .expect("refused");
    let press2 = bot.discord.press_button(MODERATOR_ID, message, &scan);
    let result = bot
        .discord
        .wait_for(
            |r| r.index >= mark && is_result(r) && r.embeds()[0]["title"] == "Scan of old.hand",
            WAIT,
        )
        .unwrap_or_else(|| panic!("no result:\n{}", bot.log()));
    assert!(
        result
            .embeds()
            .iter()
            .any(|e| e.to_string().contains("Discord member")),
        "the member's facts are in the result"
    );
    for id in [press, press2] {
        let delay = bot.discord.interaction_ack_delay(id).expect("answered");
        assert!(delay < Duration::from_secs(3), "{delay:?}");
    }
    // The second server still posts nothing of the first's.
    assert!(bot.discord.messages_posted(GENERAL2_CHANNEL_ID).is_empty());
    bot.assert_clean();
}

#[test]
fn without_the_members_intent_the_screen_cannot_be_turned_on_and_says_what_to_enable() {
    let bot = start(vec![FakeJoiner::aged("quiet.one", DAY)], true, &[]);
    let identify = bot.discord.last_identify().expect("identified");
    assert_eq!(
        identify.intents & (1 << 1),
        0,
        "GUILD_MEMBERS not requested"
    );
    let refusal = says(
        &bot,
        GENERAL_CHANNEL_ID,
        OWNER_ID,
        &format!("!settings screening <#{GENERAL_CHANNEL_ID}>"),
        "Server Members",
    );
    let t = text(&refusal);
    assert!(
        t.contains("DISCORD_MEMBERS_INTENT=true")
            && t.contains("developer portal")
            && t.contains("restart the bot"),
        "{t}"
    );
    let view = says(
        &bot,
        GENERAL_CHANNEL_ID,
        OWNER_ID,
        "!settings",
        "This server's scan settings",
    );
    assert!(
        text(&view).contains("`screening` (join screen): off")
            && text(&view).contains("Server Members"),
        "{}",
        text(&view)
    );
    // Discord sends no joins to such a bot.
    assert_eq!(bot.discord.join_member(GUILD_ID, "quiet.one"), None);
    bot.assert_clean();
}

#[test]
fn automatic_scans_take_young_accounts_only_within_the_cap_and_moderators_go_first() {
    automatic_scans(&[]);
}

/// The same through the queue every machine shares (PostgreSQL): automatic scans are jobs of a
/// lower priority, their results posted over REST as replies to the member's post.
#[test]
fn automatic_scans_through_the_shared_queue_keep_the_same_rules() {
    let pg = support::postgres::TestPostgres::new();
    automatic_scans(&[("DATABASE_URL", pg.url.as_str())]);
}

fn automatic_scans(env: &[(&str, &str)]) {
    // One scan at a time, and every Sherlock run takes SHERLOCK_SITE_TIMEOUT (HangSite): the
    // automatic scans queue up behind the first.
    let mut all = vec![("MAX_CONCURRENT_SCANS", "1")];
    all.extend_from_slice(env);
    let bot = with_intent(
        vec![
            FakeJoiner::aged("young.one", DAY),
            FakeJoiner::aged("young.two", DAY),
            FakeJoiner::aged("young.three", 3 * DAY),
            FakeJoiner::aged("veteran", 3 * 365 * DAY),
        ],
        false,
        &all,
    );
    set(
        &bot,
        &[
            ("screening", format!("<#{GENERAL_CHANNEL_ID}>")),
            ("auto_scan", "on".into()),
            ("auto_scan_cap", "2".into()),
            ("mode", "sherlock".into()),
        ],
    );
    let ids: Vec<u64> = ["young.one", "young.two", "young.three", "veteran"]
        .iter()
        .map(|n| {
            bot.discord
                .join_member(GUILD_ID, n)
                .expect("the bot asked for joins")
        })
        .collect();
    let posts: Vec<RecordedRequest> = ids
        .iter()
        .map(|id| screening_post(&bot, GENERAL_CHANNEL_ID, *id))
        .collect();
    // Which two of the three young accounts take the hour's two automatic scans depends on the
    // order the bot handles their joins (events are handled concurrently, and Discord promises
    // no order either); the third is told the cap is reached, the old account is not scanned.
    let auto = |p: &RecordedRequest| field(p, "Automatic scan").unwrap_or_default();
    let young = ["young.one", "young.two", "young.three"];
    let started: Vec<usize> = (0..3)
        .filter(|i| auto(&posts[*i]).starts_with("started (new account; "))
        .collect();
    assert_eq!(
        started.len(),
        2,
        "{:?}",
        posts[..3].iter().map(auto).collect::<Vec<_>>()
    );
    let mut nths: Vec<String> = started.iter().map(|i| auto(&posts[*i])).collect();
    nths.sort();
    assert!(
        nths[0].starts_with("started (new account; 1 of this server's 2 per hour)")
            && nths[1].starts_with("started (new account; 2 of this server's 2 per hour)"),
        "{nths:?}"
    );
    let capped = (0..3).find(|i| !started.contains(i)).expect("one left");
    assert!(
        auto(&posts[capped]).contains("cap of 2 automatic scans per hour is reached"),
        "{}",
        auto(&posts[capped])
    );
    assert_eq!(field(&posts[3], "Automatic scan"), None, "an old account");

    // A moderator asks while the first automatic scan runs (a Sherlock of this bot's, found by
    // its site list, is up) and the second waits: the moderator's runs before the second.
    let list = bot.dir.path().join("sites.json").display().to_string();
    let running_by = std::time::Instant::now() + support::bot::WAIT;
    while support::processes_mentioning(&list).is_empty() {
        assert!(
            std::time::Instant::now() < running_by,
            "no automatic scan started:\n{}",
            bot.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let mark = bot.mark();
    bot.discord
        .send_message(GENERAL_CHANNEL_ID, MODERATOR_ID, "!scan alice sherlock");
    let ack = posted(&bot, GENERAL_CHANNEL_ID, mark, |r| {
        content(r).contains("alice")
    });
    let moderator = result_for(&bot, GENERAL_CHANNEL_ID, "alice");
    let automatic: Vec<RecordedRequest> = started
        .iter()
        .map(|i| result_for(&bot, GENERAL_CHANNEL_ID, young[*i]))
        .collect();
    let (first, second) = if automatic[0].index < automatic[1].index {
        (&automatic[0], &automatic[1])
    } else {
        (&automatic[1], &automatic[0])
    };
    assert!(
        first.index < moderator.index && moderator.index < second.index,
        "order: {} alice {} {}; ack: {}",
        first.index,
        moderator.index,
        second.index,
        content(&ack)
    );
    // Automatic results answer the member's post.
    for (i, result) in started.iter().zip(&automatic) {
        let reply_to = result.payload().expect("json")["message_reference"]["message_id"].clone();
        assert_eq!(
            reply_to.as_str().and_then(|s| s.parse::<u64>().ok()),
            posts[*i].message_id()
        );
    }
    // Only the two within the cap were scanned (their results came after the posts said so).
    assert_eq!(bot.result_titles(GENERAL_CHANNEL_ID).len(), 3);
    bot.assert_clean();
}

#[test]
fn a_burst_of_30_joins_is_one_summary_and_starts_no_scan() {
    let joiners: Vec<FakeJoiner> = (1..=30)
        .map(|n| FakeJoiner::aged(&format!("raider{n:02}"), DAY))
        .collect();
    let bot = with_intent(
        joiners,
        true,
        &[("JOIN_BATCH_DELAY", "2"), ("RAID_JOINS", "20")],
    );
    set(
        &bot,
        &[
            ("screening", format!("<#{GENERAL_CHANNEL_ID}>")),
            ("auto_scan", "on".into()),
        ],
    );
    let mark = bot.mark();
    for n in 1..=30 {
        bot.discord
            .join_member(GUILD_ID, &format!("raider{n:02}"))
            .expect("dispatched");
    }
    let summary = posted(&bot, GENERAL_CHANNEL_ID, mark, |r| {
        text(r).contains("Join burst")
    });
    let id = summary.message_id().expect("posted");
    // Joins after the first batch edit the same summary; it ends up counting all 30.
    assert!(
        bot.discord
            .wait_until(WAIT, || bot.discord.message(id).is_some_and(
                |m| m["embeds"][0]["title"] == "🚨 Join burst: 30 members"
            )),
        "{:?}",
        bot.discord.message(id)
    );
    let shown = bot.discord.message(id).expect("stored")["embeds"][0].to_string();
    assert!(shown.contains("Automatic scans are paused"), "{shown}");
    assert!(shown.contains("30 of the 30 listed"), "{shown}");

    // A moderator's scan afterwards is the only scan: none started for the burst.
    says(
        &bot,
        GENERAL_CHANNEL_ID,
        MODERATOR_ID,
        "!scan alice sherlock",
        "Scan of alice",
    );
    let posts = bot.discord.messages_posted(GENERAL_CHANNEL_ID);
    let after: Vec<&RecordedRequest> = posts.iter().filter(|r| r.index >= mark).collect();
    assert_eq!(
        after
            .iter()
            .filter(|r| text(r).contains("Join burst"))
            .count(),
        1,
        "one summary"
    );
    assert!(
        !after.iter().any(|r| text(r).contains("Member joined")),
        "no post per member"
    );
    let results: Vec<_> = after.iter().filter(|r| is_result(r)).collect();
    assert_eq!(results.len(), 1, "only the moderator's scan");
    let reports = support::files_in(&bot.scans())
        .into_iter()
        .filter(|f| f.ends_with(".json"))
        .count();
    assert_eq!(reports, 1, "one report: alice's");
    bot.assert_clean();
}

#[test]
fn asking_for_the_intent_without_the_portal_switch_stops_with_what_to_enable() {
    let mut bot = Bot::launch(
        BotOptions {
            discord: FakeDiscordConfig {
                privileged_intents_enabled: false,
                ..FakeDiscordConfig::default()
            },
            fast_sites: true,
            ..BotOptions::default()
        },
        &[("DISCORD_MEMBERS_INTENT", "true")],
    );
    let status = bot.wait_exit(WAIT);
    assert!(!status.success(), "{status:?}");
    let identify = bot.discord.last_identify().expect("identified");
    assert_ne!(identify.intents & (1 << 1), 0, "GUILD_MEMBERS requested");
    let log = bot.log();
    assert!(
        log.contains("close code 4014")
            && log.contains("enable Message Content Intent and Server Members Intent")
            && log.contains("unset DISCORD_MEMBERS_INTENT"),
        "{log}"
    );
}
