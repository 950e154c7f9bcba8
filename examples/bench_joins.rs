//! Measures the join screen against the fake Discord (run by `scripts/bench-joins`; prints one
//! JSON object).
//!
//! ```text
//! bench_joins --bin target/release/account-scanner --data-home DIR [--joins 40] [--burst 100]
//! ```
//!
//! With the screen on (and automatic scans off): `--joins` members join one at a time (400 ms
//! apart, `RAID_JOINS` out of reach so none is a burst), with `JOIN_BATCH_DELAY` 0 and then at
//! its default of 2 s: the time from
//! GUILD_MEMBER_ADD sent to the screening post received (p50/p95) and the requests the bot sent
//! Discord per join. Then `--burst` members join within about a second: the requests it costs
//! (posts and edits of the one summary) and the bot's RSS before and after (VmRSS, VmHWM).

#[path = "common/bench.rs"]
mod bench;
#[path = "../tests/support/fake_discord/mod.rs"]
mod fake_discord;
#[path = "../tests/support/fake_server.rs"]
mod fake_server;
#[path = "../tests/support/fake_sites.rs"]
mod fake_sites;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bench::{arg, proc_kib};
use fake_discord::{
    FakeDiscord, FakeDiscordConfig, FakeJoiner, GENERAL_CHANNEL_ID, GUILD_ID, OWNER_ID,
};
use fake_sites::{FakeSites, FakeSitesConfig};

const WAIT: Duration = Duration::from_secs(60);
const DAY: Duration = Duration::from_secs(86_400);

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

struct Run {
    discord: FakeDiscord,
    child: Child,
    _sites: FakeSites,
    _dir: tempfile::TempDir,
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The release bot with the join screen on in the first server's #general.
fn start(
    bin: &std::path::Path,
    data_home: &std::path::Path,
    joiners: Vec<FakeJoiner>,
    delay: &str,
    raid_joins: &str,
) -> Run {
    let discord = FakeDiscord::start_with(FakeDiscordConfig {
        joiners,
        ..FakeDiscordConfig::default()
    });
    let sites = FakeSites::start(FakeSitesConfig::default());
    let dir = tempfile::tempdir().expect("tempdir");
    let list = dir.path().join("sites.json");
    sites.write_site_list(&list).expect("site list");
    let child = Command::new(bin)
        .arg("bot")
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", dir.path())
        .env("XDG_DATA_HOME", data_home)
        .env("DISCORD_BOT_TOKEN", fake_discord::BOT_TOKEN)
        .env("DISCORD_API_BASE", discord.base_url())
        .env("DISCORD_MEMBERS_INTENT", "true")
        .env("JOIN_BATCH_DELAY", delay)
        .env("RAID_JOINS", raid_joins)
        .env("SCANS_DIR", dir.path().join("scans"))
        .env("SHERLOCK_SITES", &list)
        .env("RUST_LOG", "warn")
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start bot");
    discord
        .wait_for(|r| r.method == "PUT" && r.path.contains("/commands"), WAIT)
        .expect("bot never registered its commands");
    let mark = discord.requests().len();
    discord.send_message(
        GENERAL_CHANNEL_ID,
        OWNER_ID,
        &format!("!settings screening <#{GENERAL_CHANNEL_ID}>"),
    );
    discord
        .wait_for(
            |r| r.index >= mark && r.content().is_some_and(|c| c.contains("`screening`")),
            WAIT,
        )
        .expect("screen on");
    Run {
        discord,
        child,
        _sites: sites,
        _dir: dir,
    }
}

/// Joins one at a time; (latencies in ms, requests per join).
fn one_by_one(run: &Run, names: &[String]) -> (Vec<f64>, f64) {
    let d = &run.discord;
    let mark = d.requests().len();
    let mut ms = Vec::new();
    for name in names {
        let before = d.requests().len();
        let sent = Instant::now();
        let id = d.join_member(GUILD_ID, name).expect("dispatched");
        let footer = format!("join screen · user {id}");
        let post = d
            .wait_for(
                |r| {
                    r.index >= before
                        && r.method == "POST"
                        && r.embeds()
                            .first()
                            .is_some_and(|e| e["footer"]["text"] == footer.as_str())
                },
                WAIT,
            )
            .expect("screening post");
        ms.push(post.at.duration_since(sent).as_secs_f64() * 1000.0);
        std::thread::sleep(Duration::from_millis(400));
    }
    let requests = d.requests().len() - mark;
    ms.sort_by(f64::total_cmp);
    (ms, requests as f64 / names.len() as f64)
}

/// `list` joins `spacing` apart, the screen's defaults (`RAID_JOINS=20`): the requests the
/// burst cost until its summary counts every member, and the bot's memory.
fn one_burst(run: &Run, list: &[String], spacing: Duration) -> serde_json::Value {
    let pid = run.child.id();
    std::thread::sleep(Duration::from_secs(1));
    let rss_before = proc_kib(pid, "VmRSS:");
    let d = &run.discord;
    let mark = d.requests().len();
    let started = Instant::now();
    for name in list {
        d.join_member(GUILD_ID, name).expect("dispatched");
        std::thread::sleep(spacing);
    }
    let dispatch_ms = started.elapsed().as_secs_f64() * 1000.0;
    let title = format!("🚨 Join burst: {} members", list.len());
    let summarised = d.wait_until(WAIT, || {
        d.requests()
            .iter()
            .filter(|r| r.index >= mark && (r.method == "POST" || r.method == "PATCH"))
            .any(|r| {
                r.embeds()
                    .first()
                    .is_some_and(|e| e["title"] == title.as_str())
            })
    });
    assert!(summarised, "the summary never counted {}", list.len());
    let summary_s = started.elapsed().as_secs_f64();
    // Anything still on its way (there should be nothing).
    std::thread::sleep(Duration::from_secs(3));
    let requests: Vec<_> = d
        .requests()
        .into_iter()
        .filter(|r| r.index >= mark)
        .collect();
    let summaries = requests
        .iter()
        .filter(|r| {
            r.method == "POST"
                && r.embeds()
                    .first()
                    .is_some_and(|e| e["title"].as_str().is_some_and(|t| t.starts_with("🚨")))
        })
        .count();
    serde_json::json!({
        "joins": list.len(),
        "spacing_ms": spacing.as_millis() as u64,
        "dispatch_ms": dispatch_ms,
        "summary_complete_s": summary_s,
        "requests": requests.len(),
        "posts": requests.iter().filter(|r| r.method == "POST").count(),
        "summaries": summaries,
        "edits": requests.iter().filter(|r| r.method == "PATCH").count(),
        "rss_before_mib": rss_before as f64 / 1024.0,
        "rss_after_mib": proc_kib(pid, "VmRSS:") as f64 / 1024.0,
        "hwm_mib": proc_kib(pid, "VmHWM:") as f64 / 1024.0,
    })
}

fn main() {
    let bin = std::fs::canonicalize(arg("--bin").expect("--bin PATH")).expect("--bin exists");
    let data_home = std::fs::canonicalize(arg("--data-home").expect("--data-home DIR"))
        .expect("--data-home exists");
    let joins: usize = arg("--joins").and_then(|v| v.parse().ok()).unwrap_or(40);
    let burst: usize = arg("--burst").and_then(|v| v.parse().ok()).unwrap_or(100);

    let names = |prefix: &str, n: usize| -> Vec<String> {
        (1..=n).map(|i| format!("{prefix}{i:03}")).collect()
    };
    let joiners = |list: &[String]| -> Vec<FakeJoiner> {
        list.iter()
            .enumerate()
            .map(|(i, n)| FakeJoiner::aged(n, DAY * (1 + i as u32 % 20)))
            .collect()
    };

    let mut latency = serde_json::Map::new();
    for delay in ["0", "2"] {
        let list = names("quiet", joins);
        // No burst: these joins are one by one (RAID_JOINS out of reach).
        let run = start(&bin, &data_home, joiners(&list), delay, "10000");
        let (ms, per_join) = one_by_one(&run, &list);
        latency.insert(
            format!("delay_{delay}s"),
            serde_json::json!({
                "p50_ms": percentile(&ms, 0.5),
                "p95_ms": percentile(&ms, 0.95),
                "max_ms": percentile(&ms, 1.0),
                "requests_per_join": per_join,
            }),
        );
    }

    let mut bursts = Vec::new();
    for (prefix, spacing_ms) in [("raider", 0u64), ("slowraid", 200)] {
        let list = names(prefix, burst);
        let run = start(&bin, &data_home, joiners(&list), "2", "20");
        bursts.push(one_burst(&run, &list, Duration::from_millis(spacing_ms)));
    }
    println!(
        "{}",
        serde_json::json!({
            "joins": joins,
            "latency": latency,
            "bursts": bursts,
        })
    );
}
