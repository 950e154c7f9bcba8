//! Measures the bot against the fake Discord (run by `scripts/bench`; prints one JSON object).
//!
//! ```text
//! bench_bot --bin target/release/account-scanner --data-home DIR [--scans 3] [--max-concurrent 2]
//! ```
//!
//! Start to READY handled (slash commands registered), `!health` latency (MESSAGE_CREATE sent →
//! reply request received, median of 10), RSS idle after READY, peak RSS while `--scans` scans
//! run at once (VmHWM of the bot process; Sherlock's children are separate processes); then
//! `--burst` members each asking for a scan within one second (the load drill of
//! `tests/drills_bot.rs`): the most requests the bot sent the fake Discord in any one second
//! (Discord's global limit is 50/s; serenity's ratelimiter is off against the fake, so this is
//! the bot's own pace) and the peak RSS through it; last, the gateway dropped: time until the
//! session is RESUMEd and a `!health` answered again.

#[path = "common/bench.rs"]
mod bench;
#[path = "../tests/support/fake_discord/mod.rs"]
mod fake_discord;
#[path = "../tests/support/fake_server.rs"]
mod fake_server;
#[path = "../tests/support/fake_sites.rs"]
mod fake_sites;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bench::{arg, proc_kib};
use fake_discord::{FakeDiscord, FakeDiscordConfig, GENERAL_CHANNEL_ID};
use fake_sites::{FakeSites, FakeSitesConfig};

const WAIT: Duration = Duration::from_secs(60);

fn main() {
    let bin = std::fs::canonicalize(arg("--bin").expect("--bin PATH")).expect("--bin exists");
    let data_home = std::fs::canonicalize(arg("--data-home").expect("--data-home DIR"))
        .expect("--data-home exists");
    let scans: usize = arg("--scans").and_then(|v| v.parse().ok()).unwrap_or(3);
    let max_concurrent = arg("--max-concurrent").unwrap_or_else(|| "2".into());
    let burst: usize = arg("--burst").and_then(|v| v.parse().ok()).unwrap_or(20);

    let discord = FakeDiscord::start_with(FakeDiscordConfig {
        extra_members: burst,
        extra_members_moderators: true,
        ..FakeDiscordConfig::default()
    });
    let sites = FakeSites::start(FakeSitesConfig {
        bulk_sites: 100,
        latency_ms: (100, 300),
        hang_secs: 1,
        ..Default::default()
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let list = dir.path().join("sites.json");
    sites.write_site_list(&list).expect("site list");

    let started = Instant::now();
    let mut child = Command::new(&bin)
        .arg("bot")
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", dir.path())
        .env("XDG_DATA_HOME", &data_home)
        .env("DISCORD_BOT_TOKEN", fake_discord::BOT_TOKEN)
        .env("DISCORD_API_BASE", discord.base_url())
        .env("SCANS_DIR", dir.path().join("scans"))
        .env("SHERLOCK_SITES", &list)
        .env("SHERLOCK_SITE_TIMEOUT", "5")
        .env("SCAN_COOLDOWN", "0")
        .env("MAX_CONCURRENT_SCANS", &max_concurrent)
        .env("RUST_LOG", "warn")
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start bot");
    let pid = child.id();
    let registered = discord.wait_for(|r| r.method == "PUT" && r.path.contains("/commands"), WAIT);
    let ready_ms = registered
        .map(|r| r.at.duration_since(started).as_secs_f64() * 1000.0)
        .expect("bot never registered its commands");

    std::thread::sleep(Duration::from_secs(2));
    let idle_rss_kib = proc_kib(pid, "VmRSS:");

    let mut health_ms = Vec::new();
    for _ in 0..10 {
        let mark = discord.requests().len();
        let sent = Instant::now();
        discord.send_message(GENERAL_CHANNEL_ID, fake_discord::MEMBER_ID, "!health");
        let reply = discord
            .wait_for(
                |r| {
                    r.index >= mark
                        && r.method == "POST"
                        && r.content().is_some_and(|c| c.contains("account-scanner"))
                },
                WAIT,
            )
            .expect("health reply");
        health_ms.push(reply.at.duration_since(sent).as_secs_f64() * 1000.0);
        std::thread::sleep(Duration::from_millis(100));
    }
    health_ms.sort_by(f64::total_cmp);

    // SCAN_COOLDOWN=0, so the three members allowed to scan can start any number of scans.
    let moderators = [
        fake_discord::MODERATOR_ID,
        fake_discord::ADMIN_ID,
        fake_discord::OWNER_ID,
    ];
    let mark = discord.requests().len();
    let scan_start = Instant::now();
    for i in 0..scans {
        discord.send_message(
            GENERAL_CHANNEL_ID,
            moderators[i % moderators.len()],
            "!scan alice sherlock",
        );
    }
    let mut peak_rss_kib = 0;
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        peak_rss_kib = peak_rss_kib.max(proc_kib(pid, "VmRSS:"));
        let done = discord
            .requests()
            .iter()
            .filter(|r| r.index >= mark && !r.embeds().is_empty())
            .count();
        if done >= scans || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let scans_s = scan_start.elapsed().as_secs_f64();
    let hwm_kib = proc_kib(pid, "VmHWM:");

    // The burst: every extra member asks for a scan of its own within one second.
    let mark = discord.requests().len();
    let burst_start = Instant::now();
    for (i, member) in discord.extra_member_ids().iter().enumerate() {
        discord.send_message(
            GENERAL_CHANNEL_ID,
            *member,
            &format!("!scan burst{i:02} sherlock"),
        );
    }
    let burst_done = discord
        .wait_for_count(
            |r| r.index >= mark && !r.embeds().is_empty(),
            burst,
            Duration::from_secs(600),
        )
        .len();
    let burst_s = burst_start.elapsed().as_secs_f64();
    let burst_max_per_s = discord.max_in_window(Duration::from_secs(1), |r| {
        r.index >= mark && r.path.starts_with("/api/")
    });
    let burst_hwm_kib = proc_kib(pid, "VmHWM:");

    // The gateway dropped: RESUMEd, then serving again.
    let resumes = discord.resume_count();
    let mark = discord.requests().len();
    let dropped = Instant::now();
    discord.drop_gateway();
    let resumed = discord.wait_until(WAIT, || discord.resume_count() > resumes);
    let resume_ms = dropped.elapsed().as_secs_f64() * 1000.0;
    discord.send_message(GENERAL_CHANNEL_ID, fake_discord::MEMBER_ID, "!health");
    let served = discord.wait_for(
        |r| r.index >= mark && r.content().is_some_and(|c| c.contains("account-scanner")),
        WAIT,
    );
    let serving_again_ms = dropped.elapsed().as_secs_f64() * 1000.0;
    let _ = child.kill();
    let _ = child.wait();
    println!(
        "{}",
        serde_json::json!({
            "ready_ms": ready_ms,
            "health_ms_median": health_ms[health_ms.len() / 2],
            "health_ms_max": health_ms[health_ms.len() - 1],
            "idle_rss_mib": idle_rss_kib as f64 / 1024.0,
            "scans": scans,
            "max_concurrent": max_concurrent,
            "scans_wall_s": scans_s,
            "peak_rss_sampled_mib": peak_rss_kib as f64 / 1024.0,
            "peak_rss_hwm_mib": hwm_kib as f64 / 1024.0,
            "burst": burst,
            "burst_done": burst_done,
            "burst_wall_s": burst_s,
            "burst_max_discord_requests_per_s": burst_max_per_s,
            "burst_peak_rss_hwm_mib": burst_hwm_kib as f64 / 1024.0,
            "resumed": resumed,
            "resume_ms": resume_ms,
            "serving_again_ms": served.map(|_| serving_again_ms),
        })
    );
}
