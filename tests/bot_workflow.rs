//! Scans from where moderators already are (issue 16), through the real bot against the fake
//! Discord: the context menus "Scan account" and "Scan author", and the buttons on results
//! (pressed by a moderator, refused to a member, still working after a restart, answered and
//! disabled once expired). Every interaction is answered within Discord's 3 s and every body is
//! checked against Discord's spec (`assert_clean`).

mod support;

use std::time::Duration;

use serde_json::Value;
use support::bot::{Bot, BotOptions, WAIT, content, is_result};
use support::fake_discord::{
    GENERAL_CHANNEL_ID, MEMBER_ID, MOD_LOG_CHANNEL_ID, MODERATOR_ID, RecordedRequest,
};

fn start(extra: &[(&str, &str)]) -> Bot {
    let log = MOD_LOG_CHANNEL_ID.to_string();
    let mut env = vec![("SCAN_COOLDOWN", "0"), ("LOG_CHANNEL_ID", log.as_str())];
    env.extend_from_slice(extra);
    Bot::start_opts(
        BotOptions {
            fast_sites: true,
            ..BotOptions::default()
        },
        &env,
    )
}

/// The next scan result the bot posts after `mark`: a channel message or an interaction
/// follow-up.
fn result_after(bot: &Bot, mark: usize) -> RecordedRequest {
    bot.discord
        .wait_for(
            |r| {
                r.index >= mark
                    && r.method == "POST"
                    && (r.path.contains("/channels/") || r.path.contains("/webhooks/"))
                    && is_result(r)
            },
            WAIT,
        )
        .unwrap_or_else(|| panic!("no result:\n{}", bot.log()))
}

/// The first request after `mark` whose content or embeds contain `text`.
fn said_after(bot: &Bot, mark: usize, text: &str) -> RecordedRequest {
    bot.discord
        .wait_for(
            |r| {
                r.index >= mark
                    && (content(r).contains(text)
                        || r.embeds().iter().any(|e| e.to_string().contains(text))
                        || r.payload().is_some_and(|p| p.to_string().contains(text)))
            },
            WAIT,
        )
        .unwrap_or_else(|| panic!("nothing said {text:?}:\n{}", bot.log()))
}

/// A moderator's scan of bob after `mark`, waited for: any scan the steps since `mark` had
/// started would have posted by then (it started earlier and takes as long), so bob's must be
/// the only result.
fn only_result_after(bot: &Bot, mark: usize, why: &str) {
    bot.say(MODERATOR_ID, "!scan bob sherlock");
    let bob = bot
        .discord
        .wait_for(
            |r| r.index >= mark && is_result(r) && r.embeds()[0]["title"] == "Scan of bob",
            WAIT,
        )
        .unwrap_or_else(|| panic!("no result for bob:\n{}", bot.log()));
    let results: Vec<usize> = bot
        .discord
        .requests()
        .iter()
        .filter(|r| r.index >= mark && is_result(r))
        .map(|r| r.index)
        .collect();
    assert_eq!(results, [bob.index], "{why}");
}

fn answered_in_time(bot: &Bot, interaction: u64) {
    let delay = bot
        .discord
        .interaction_ack_delay(interaction)
        .unwrap_or_else(|| panic!("interaction {interaction} never answered:\n{}", bot.log()));
    assert!(delay < Duration::from_secs(3), "answered after {delay:?}");
}

/// The result's buttons: label → custom_id.
fn buttons(result: &RecordedRequest) -> Vec<(String, String)> {
    result
        .components()
        .iter()
        .flat_map(|row| row["components"].as_array().cloned().unwrap_or_default())
        .map(|b| {
            (
                b["label"].as_str().unwrap_or_default().to_string(),
                b["custom_id"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn button(result: &RecordedRequest, label: &str) -> String {
    buttons(result)
        .into_iter()
        .find(|(l, _)| l == label)
        .map(|(_, id)| id)
        .unwrap_or_else(|| panic!("no {label:?} button: {:?}", buttons(result)))
}

#[test]
fn context_menus_scan_the_member_or_the_author_and_refuse_non_moderators() {
    let bot = start(&[]);
    let mark = bot.mark();
    let id =
        bot.discord
            .send_user_command(MODERATOR_ID, GENERAL_CHANNEL_ID, "Scan account", MEMBER_ID);
    let result = result_after(&bot, mark);
    answered_in_time(&bot, id);
    assert_eq!(result.embeds()[0]["title"], "Scan of alice");
    let member = result.embeds()[0]["fields"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["name"] == "Discord member").cloned());
    assert!(
        member.is_some(),
        "the member's facts: {:?}",
        result.embeds()
    );

    let message = bot
        .discord
        .send_message(GENERAL_CHANNEL_ID, MEMBER_ID, "hello there");
    let mark = bot.mark();
    let id =
        bot.discord
            .send_message_command(MODERATOR_ID, GENERAL_CHANNEL_ID, "Scan author", message);
    let result = result_after(&bot, mark);
    answered_in_time(&bot, id);
    assert_eq!(result.embeds()[0]["title"], "Scan of alice");

    // A member without Moderate Members is refused and audited; no scan starts.
    let mark = bot.mark();
    let id =
        bot.discord
            .send_user_command(MEMBER_ID, GENERAL_CHANNEL_ID, "Scan account", MODERATOR_ID);
    said_after(&bot, mark, "You're lacking permissions");
    answered_in_time(&bot, id);
    said_after(
        &bot,
        mark,
        &format!("<@{MEMBER_ID}> was refused `Scan account`"),
    );
    only_result_after(&bot, mark, "no scan for a refused member");
    bot.assert_clean();
}

#[test]
fn result_buttons_work_for_moderators_refuse_members_and_survive_a_restart() {
    let mut bot = start(&[]);
    let mark = bot.mark();
    bot.say(MODERATOR_ID, "!scan alice sherlock");
    let result = result_after(&bot, mark);
    let message = result.message_id().expect("result id");
    let labels: Vec<String> = buttons(&result).into_iter().map(|(l, _)| l).collect();
    assert_eq!(
        labels,
        ["Scan Reddit too", "Rescan", "History"],
        "sherlock only: the Reddit half was skipped"
    );
    for (_, id) in buttons(&result) {
        assert!(id.len() <= 100, "{id}");
    }

    // History, for the moderator who pressed it.
    let mark = bot.mark();
    let id = bot
        .discord
        .press_button(MODERATOR_ID, message, &button(&result, "History"));
    let history = said_after(&bot, mark, "History of alice");
    answered_in_time(&bot, id);
    assert!(
        history.embeds()[0]["footer"]["text"]
            .as_str()
            .is_some_and(|f| f.contains("1 scan(s)"))
    );

    // A member may see the message, not use it: refused, privately, audited.
    let mark = bot.mark();
    let id = bot
        .discord
        .press_button(MEMBER_ID, message, &button(&result, "Rescan"));
    let refusal = said_after(&bot, mark, "lacking permissions for this button");
    answered_in_time(&bot, id);
    assert_eq!(
        refusal.payload().map(|p| p["data"]["flags"].clone()),
        Some(Value::from(64))
    );
    said_after(
        &bot,
        mark,
        &format!("<@{MEMBER_ID}> was refused `button: rescan`"),
    );

    // Rescan, by a moderator.
    let mark = bot.mark();
    let id = bot
        .discord
        .press_button(MODERATOR_ID, message, &button(&result, "Rescan"));
    let again = result_after(&bot, mark);
    answered_in_time(&bot, id);
    assert_eq!(again.embeds()[0]["title"], "Scan of alice");

    // After a restart the same message's button still works: it carries what it means.
    bot.restart();
    let mark = bot.mark();
    let id = bot
        .discord
        .press_button(MODERATOR_ID, message, &button(&result, "Scan Reddit too"));
    let reddit = result_after(&bot, mark);
    answered_in_time(&bot, id);
    assert_eq!(reddit.embeds()[0]["title"], "Scan of alice");
    let labels: Vec<String> = buttons(&reddit).into_iter().map(|(l, _)| l).collect();
    assert_eq!(
        labels,
        ["Scan sites too", "Rescan", "History"],
        "reddit only: the sites were skipped"
    );
    bot.assert_clean();
}

#[test]
fn an_expired_button_is_answered_and_the_buttons_disabled() {
    let bot = start(&[("BUTTON_LIFETIME", "1")]);
    let mark = bot.mark();
    bot.say(MODERATOR_ID, "!scan alice sherlock");
    let result = result_after(&bot, mark);
    let message = result.message_id().expect("result id");
    std::thread::sleep(Duration::from_millis(2500));
    let mark = bot.mark();
    let id = bot
        .discord
        .press_button(MODERATOR_ID, message, &button(&result, "Rescan"));
    said_after(&bot, mark, "These buttons expired");
    answered_in_time(&bot, id);
    let components = bot.discord.message_components(message).expect("message");
    let all: Vec<&Value> = components
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|row| row["components"].as_array().into_iter().flatten())
        .collect();
    assert!(!all.is_empty());
    assert!(all.iter().all(|b| b["disabled"] == true), "{components}");
    only_result_after(&bot, mark, "an expired button starts no scan");
    bot.assert_clean();
}
