//! The real `account-scanner bot` binary against the fake Discord and the fake sites, with
//! the real Sherlock: a harness shared by the bot tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use super::child_log::collect_stderr;
use super::fake_discord::{
    ADMIN_ID, FakeDiscord, FakeDiscordConfig, GENERAL_CHANNEL_ID, RecordedRequest,
};
use super::fake_sites::{FakeSites, FakeSitesConfig};

pub const CH: u64 = GENERAL_CHANNEL_ID;
pub const WAIT: Duration = Duration::from_secs(30);

/// How to start the bot beyond its environment.
#[derive(Default)]
pub struct BotOptions {
    pub discord: FakeDiscordConfig,
    /// Leave HangSite out of the site list: a Sherlock run then takes about a second, not
    /// `SHERLOCK_SITE_TIMEOUT` (for tests that run many scans).
    pub fast_sites: bool,
    /// `SCANS_DIR` (default: `scans` in the bot's temp directory).
    pub scans_dir: Option<PathBuf>,
}

/// The fake sites' list without HangSite.
pub fn write_fast_site_list(sites: &FakeSites, path: &std::path::Path) {
    let entries: serde_json::Map<String, serde_json::Value> = sites
        .site_entries()
        .into_iter()
        .filter(|(name, _)| name != "HangSite")
        .collect();
    std::fs::write(
        path,
        serde_json::to_string_pretty(&entries).expect("site list json"),
    )
    .expect("write site list");
}

/// Starts `account-scanner bot` against the fake, its stderr collected into `log`.
fn spawn(
    discord: &FakeDiscord,
    dir: &std::path::Path,
    list: &std::path::Path,
    scans: &std::path::Path,
    env: &[(String, String)],
    log: &Arc<Mutex<String>>,
) -> Child {
    let mut cmd = super::scanner(dir);
    cmd.env("DISCORD_BOT_TOKEN", super::fake_discord::BOT_TOKEN)
        .env("DISCORD_API_BASE", discord.base_url())
        .env("ADMIN_USER_IDS", ADMIN_ID.to_string())
        .env("SCANS_DIR", scans)
        .env("SHERLOCK_SITES", list)
        // HangSite answers never: every Sherlock run takes this long, so progress shows.
        .env("SHERLOCK_SITE_TIMEOUT", "3")
        .env("SHUTDOWN_GRACE", "20")
        .env("RUST_LOG", "info")
        .arg("bot")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("start the bot");
    collect_stderr(&mut child, log);
    child
}

pub struct Bot {
    pub discord: FakeDiscord,
    pub sites: FakeSites,
    pub dir: tempfile::TempDir,
    list: PathBuf,
    scans: PathBuf,
    env: Vec<(String, String)>,
    child: Option<Child>,
    stderr: Arc<Mutex<String>>,
}

impl Bot {
    pub fn start(env: &[(&str, &str)]) -> Bot {
        Bot::start_with(FakeDiscordConfig::default(), env)
    }

    pub fn start_with(cfg: FakeDiscordConfig, env: &[(&str, &str)]) -> Bot {
        Bot::start_opts(
            BotOptions {
                discord: cfg,
                ..BotOptions::default()
            },
            env,
        )
    }

    pub fn start_opts(opts: BotOptions, env: &[(&str, &str)]) -> Bot {
        let bot = Bot::launch(opts, env);
        bot.wait_connected();
        bot
    }

    /// Starts the bot without waiting for it to connect (for a start that is meant to fail).
    pub fn launch(opts: BotOptions, env: &[(&str, &str)]) -> Bot {
        super::sherlock();
        let discord = FakeDiscord::start_with(opts.discord);
        let sites = FakeSites::start(FakeSitesConfig::default());
        let dir = tempfile::tempdir().expect("tempdir");
        let list = dir.path().join("sites.json");
        if opts.fast_sites {
            write_fast_site_list(&sites, &list);
        } else {
            sites.write_site_list(&list).expect("site list");
        }
        let scans = opts.scans_dir.unwrap_or_else(|| dir.path().join("scans"));
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let stderr = Arc::new(Mutex::new(String::new()));
        let child = spawn(&discord, dir.path(), &list, &scans, &env, &stderr);
        Bot {
            discord,
            sites,
            dir,
            list,
            scans,
            env,
            child: Some(child),
            stderr,
        }
    }

    /// Kills the bot (SIGKILL) and starts it again with the same environment, against the same
    /// fake Discord and scans directory; returns once it is ready again.
    pub fn restart(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let identified = self.discord.identify_count();
        assert!(
            self.discord.wait_until(WAIT, || !self.discord.is_ready()),
            "the fake still sees the killed bot"
        );
        self.child = Some(spawn(
            &self.discord,
            self.dir.path(),
            &self.list,
            &self.scans,
            &self.env,
            &self.stderr,
        ));
        assert!(
            self.discord
                .wait_until(WAIT, || self.discord.identify_count() > identified),
            "the restarted bot never identified:\n{}",
            self.log()
        );
        self.wait_connected();
    }

    fn wait_connected(&self) {
        let bot = self;
        assert!(
            bot.discord.wait_ready(WAIT),
            "the bot never became ready:\n{}",
            bot.log()
        );
        assert!(
            bot.discord
                .wait_until(WAIT, || !bot.discord.registered_commands().is_empty()),
            "slash commands were not registered:\n{}",
            bot.log()
        );
    }

    pub fn log(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn scans(&self) -> PathBuf {
        self.scans.clone()
    }

    pub fn say(&self, author: u64, content: &str) -> u64 {
        self.discord.send_message(CH, author, content)
    }

    /// The next message the bot posts in the channel after `after` requests, satisfying `pred`.
    pub fn posted(&self, after: usize, pred: impl Fn(&RecordedRequest) -> bool) -> RecordedRequest {
        self.posted_in(CH, after, pred)
    }

    /// The next message the bot posts in `channel` after `after` requests, satisfying `pred`.
    pub fn posted_in(
        &self,
        channel: u64,
        after: usize,
        pred: impl Fn(&RecordedRequest) -> bool,
    ) -> RecordedRequest {
        self.discord
            .wait_for(
                |r| {
                    r.index >= after
                        && r.is("POST", "/channels/*/messages")
                        && r.path.contains(&format!("/channels/{channel}/"))
                        && pred(r)
                },
                WAIT,
            )
            .unwrap_or_else(|| {
                panic!(
                    "no such message in {channel}; bot sent: {:#?}\nlog:\n{}",
                    self.discord
                        .requests()
                        .iter()
                        .skip(after)
                        .map(|r| (&r.method, &r.path, r.content()))
                        .collect::<Vec<_>>(),
                    self.log()
                )
            })
    }

    /// The titles of the scan results posted in `channel` ("Scan of alice"), in order.
    pub fn result_titles(&self, channel: u64) -> Vec<String> {
        self.discord
            .messages_posted(channel)
            .iter()
            .filter_map(|r| r.embeds().first()?["title"].as_str().map(str::to_string))
            .filter(|t| t.starts_with("Scan of "))
            .collect()
    }

    pub fn mark(&self) -> usize {
        self.discord.requests().len()
    }

    pub fn wait_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        let child = self.child.as_mut().expect("running");
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                self.child = None;
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the bot did not exit in time:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().expect("try_wait").is_none())
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn assert_clean(&self) {
        assert_clean(&self.discord, &[self.log()]);
    }
}

/// Every request the bot processes sent the fake was within Discord's spec and expected, and
/// no log shows the token.
pub fn assert_clean(discord: &FakeDiscord, logs: &[String]) {
    let violations = discord.spec_violations();
    assert!(violations.is_empty(), "spec violations: {violations:#?}");
    let unexpected = discord.unexpected_requests();
    assert!(
        unexpected.is_empty(),
        "unexpected requests: {unexpected:#?}"
    );
    for log in logs {
        assert!(!log.contains("DISCORD_BOT_TOKEN="), "token in log");
        assert!(
            !log.contains(super::fake_discord::BOT_TOKEN),
            "the token appeared in the log"
        );
    }
}

impl Drop for Bot {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub fn content(r: &RecordedRequest) -> String {
    r.content().unwrap_or_default().to_string()
}

pub fn is_result(r: &RecordedRequest) -> bool {
    !r.embeds().is_empty()
}

pub fn allowed_mentions_empty(r: &RecordedRequest) -> bool {
    let Some(p) = r.payload() else {
        return false;
    };
    let am = &p["allowed_mentions"];
    am["parse"].as_array().is_some_and(|a| a.is_empty())
        && am["users"].as_array().is_none_or(|a| a.is_empty())
        && am["roles"].as_array().is_none_or(|a| a.is_empty())
}

pub fn report_files(bot: &Bot) -> Vec<(String, Vec<u8>)> {
    super::files_in(&bot.scans())
        .into_iter()
        .map(|f| {
            let bytes = std::fs::read(bot.scans().join(&f)).expect("read report");
            (f, bytes)
        })
        .collect()
}
