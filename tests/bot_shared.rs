//! Several machines, one bot (issue 17), through the real bot against the fake Discord: with
//! PostgreSQL a moderator's cooldown lives in the database, so it holds on the process that runs
//! the server's shard next (here the same shard, after the first process was killed); with
//! SQLite it is the process's own and a new process starts afresh (the check can fail).

mod support;

use support::bot::{Bot, BotOptions, WAIT, content, is_result};
use support::fake_discord::{GENERAL_CHANNEL_ID, MODERATOR_ID, RecordedRequest};
use support::postgres::TestPostgres;

fn start(database: Option<&str>) -> Bot {
    let mut env = vec![("SCAN_COOLDOWN", "600")];
    if let Some(url) = database {
        env.push(("DATABASE_URL", url));
    }
    Bot::start_opts(
        BotOptions {
            fast_sites: true,
            ..BotOptions::default()
        },
        &env,
    )
}

/// The moderator's `!scan alice sherlock`: the bot's answer that is a result or a refusal.
fn scan(bot: &Bot) -> RecordedRequest {
    let mark = bot.mark();
    bot.discord
        .send_message(GENERAL_CHANNEL_ID, MODERATOR_ID, "!scan alice sherlock");
    bot.discord
        .wait_for(
            |r| r.index >= mark && (is_result(r) || content(r).contains("too fast")),
            WAIT,
        )
        .unwrap_or_else(|| panic!("no answer:\n{}", bot.log()))
}

#[test]
fn a_cooldown_holds_on_the_next_process_with_postgresql_and_not_without() {
    let pg = TestPostgres::new();
    let mut bot = start(Some(&pg.url));
    assert!(is_result(&scan(&bot)), "the first scan runs");
    let refused = scan(&bot);
    assert!(
        content(&refused).contains("Please wait"),
        "{}",
        content(&refused)
    );
    // The machine dies; another process takes the shard over.
    bot.restart();
    let refused = scan(&bot);
    let text = content(&refused);
    assert!(
        text.starts_with("You're too fast. Please wait 5")
            && text.ends_with("seconds before retrying"),
        "{text}"
    );
    bot.assert_clean();

    // Without PostgreSQL the new process knows nothing of the old one's cooldown.
    let mut bot = start(None);
    assert!(is_result(&scan(&bot)));
    bot.restart();
    assert!(
        is_result(&scan(&bot)),
        "SQLite: the cooldown was the process's own"
    );
}
