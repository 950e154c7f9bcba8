//! Several machines, one bot (issue 17): one scan queue for every machine in a real
//! PostgreSQL. Real processes against one fake Discord, one fake Reddit, one fake Perspective,
//! real Sherlock against the fake sites:
//! - two bots (`SHARD_RANGE` 0-0 and 1-1 of 2) and one `worker` take 12 scans asked on both
//!   shards within a second: each request answered once with its true place across the machines
//!   (a per-machine queue would announce other places), each result posted once, every machine
//!   ran some, Reddit never paced faster than one process alone, one OAuth token per process;
//! - the process running a scan is killed (`kill -9`): its Sherlock dies with it, another
//!   process takes the job over when its lease runs out and posts the result once;
//! - the process running a scan is stopped (SIGTERM, as a deploy does): it gives the job back to
//!   the queue, another process runs it whole and posts it once, the moderator is told;
//! - the same target asked twice at once in one server is scanned once and both get the result;
//! - `worker` without PostgreSQL refuses to start and says why.

mod support;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use support::bot::{WAIT, content, write_fast_site_list};
use support::fake_discord::{
    ADMIN_ID, BOT_TOKEN, FakeDiscord, FakeDiscordConfig, GENERAL_CHANNEL_ID, GENERAL2_CHANNEL_ID,
    GUILD_ID, GUILD2_ID, MODERATOR_ID, RecordedRequest,
};
use support::fake_perspective::{FakePerspective, FakePerspectiveConfig};
use support::fake_reddit::{FakeAccount, FakeReddit, FakeRedditConfig};
use support::fake_server::max_in_window;
use support::fake_sites::{FakeSites, FakeSitesConfig};
use support::machine::Machine;
use support::postgres::TestPostgres;

/// One process alone may send Reddit at most this many requests in any 0.9 s at 300 a minute
/// and 5 a second (one per 207 ms with the limiter's margin).
const ONE_ALONE_PER_WINDOW: usize = 5;

/// The fakes every machine talks to, and the database they share.
struct World {
    discord: FakeDiscord,
    _sites: FakeSites,
    reddit: FakeReddit,
    perspective: FakePerspective,
    pg: TestPostgres,
    list: PathBuf,
    dir: tempfile::TempDir,
}

impl World {
    /// `fast`: no HangSite, a Sherlock run takes about a second; else every run takes
    /// `SHERLOCK_SITE_TIMEOUT`.
    fn start(names: &[&str], fast: bool) -> World {
        support::sherlock();
        let sites = FakeSites::start(FakeSitesConfig::default());
        let dir = tempfile::tempdir().expect("tempdir");
        let list = dir.path().join("sites.json");
        if fast {
            write_fast_site_list(&sites, &list);
        } else {
            sites.write_site_list(&list).expect("site list");
        }
        World {
            discord: FakeDiscord::start_with(FakeDiscordConfig::default()),
            _sites: sites,
            reddit: FakeReddit::start(FakeRedditConfig {
                accounts: names
                    .iter()
                    .map(|n| {
                        FakeAccount::new(n)
                            .with_comments(3, |i| format!("comment {i} about gardening"))
                    })
                    .collect(),
                ..FakeRedditConfig::default()
            }),
            perspective: FakePerspective::start(FakePerspectiveConfig::default()),
            pg: TestPostgres::new(),
            list,
            dir,
        }
    }

    /// Starts `account-scanner <face>` (bot or worker) with `env` on top of the shared setup.
    fn spawn(&self, face: &str, name: &str, env: &[(&str, &str)]) -> Machine {
        let home = self.dir.path().join(name);
        std::fs::create_dir_all(&home).expect("machine dir");
        let scans = home.join("scans");
        let mut cmd = support::scanner(&home);
        cmd.env("DISCORD_BOT_TOKEN", BOT_TOKEN)
            .env("DISCORD_API_BASE", self.discord.base_url())
            .env("ADMIN_USER_IDS", ADMIN_ID.to_string())
            .env("DATABASE_URL", &self.pg.url)
            .env("SCANS_DIR", &scans)
            .env("SHERLOCK_SITES", &self.list)
            .env("SHERLOCK_SITE_TIMEOUT", "3")
            .env("SCAN_COOLDOWN", "0")
            .env("MAX_CONCURRENT_SCANS", "2")
            .env("REDDIT_RATE_PER_MIN", "300")
            .env("PERSPECTIVE_QPS", "5")
            .env("RUST_LOG", "info");
        for (k, v) in self.reddit.env().into_iter().chain(self.perspective.env()) {
            cmd.env(k, v);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd
            .arg(face)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start account-scanner");
        Machine::new(child, scans)
    }

    /// A bot and a worker with `env`, both taking scans from the queue.
    fn bot_and_worker(&self, env: &[(&str, &str)]) -> (Machine, Machine) {
        let bot = self.spawn("bot", "bot", env);
        let worker = self.spawn("worker", "worker", env);
        assert!(self.discord.wait_guild_ready(GUILD_ID, WAIT));
        bot.wait_log("taking scans from the queue every machine shares", WAIT);
        worker.wait_log("taking scans from the queue every machine shares", WAIT);
        (bot, worker)
    }

    fn assert_clean(&self, machines: &[&Machine]) {
        let logs: Vec<String> = machines.iter().map(|m| m.log()).collect();
        support::bot::assert_clean(&self.discord, &logs);
    }

    /// The results a channel holds now (what moderators see), by scanned name.
    fn results_in(&self, channel: u64) -> Vec<String> {
        self.discord
            .channel_messages(channel)
            .iter()
            .filter_map(|m| m["embeds"][0]["title"].as_str().map(str::to_string))
            .filter_map(|t| t.strip_prefix("Scan of ").map(str::to_string))
            .collect()
    }

    /// The bot's first answer to each command, by the name it names.
    fn acks(&self, channel: u64) -> Vec<RecordedRequest> {
        self.discord
            .messages_posted(channel)
            .into_iter()
            .filter(|r| {
                let c = content(r);
                c.starts_with("🔎 Scanning") || c.starts_with("⏳ Queued")
            })
            .collect()
    }

    /// The jobs' (state, attempts) once `settled` holds for them (or after `WAIT`).
    fn jobs_when(&self, settled: impl Fn(&[Vec<String>]) -> bool) -> Vec<Vec<String>> {
        let deadline = Instant::now() + WAIT;
        loop {
            let jobs = self
                .pg
                .rows("SELECT state, attempts::text FROM scan_jobs ORDER BY job_key");
            if settled(&jobs) || Instant::now() >= deadline {
                return jobs;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn wait_results(&self, want: usize, machines: &[&Machine]) {
        let ok = self.discord.wait_until(Duration::from_secs(90), || {
            self.results_in(GENERAL_CHANNEL_ID).len() + self.results_in(GENERAL2_CHANNEL_ID).len()
                >= want
        });
        assert!(
            ok,
            "{want} results were not posted; logs:\n{}",
            machines
                .iter()
                .map(|m| m.log())
                .collect::<Vec<_>>()
                .join("\n----\n")
        );
    }
}

fn username_in(text: &str) -> String {
    text.split("**").nth(1).unwrap_or_default().to_string()
}

#[test]
fn two_shards_and_a_worker_share_one_queue_true_places_one_result_each_one_quota() {
    let names: Vec<String> = (1..=12).map(|i| format!("queued{i:02}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    // Slow Sherlock runs (3 s each): no scan ends before the last request is queued, so the
    // places announced are exactly those of one FIFO over 6 slots.
    let world = World::start(&refs, false);
    let first = world.spawn(
        "bot",
        "first",
        &[("SHARD_COUNT", "2"), ("SHARD_RANGE", "0-0")],
    );
    let second = world.spawn(
        "bot",
        "second",
        &[("SHARD_COUNT", "2"), ("SHARD_RANGE", "1-1")],
    );
    let worker = world.spawn("worker", "worker", &[]);
    let machines = [&first, &second, &worker];
    for guild in [GUILD_ID, GUILD2_ID] {
        assert!(
            world.discord.wait_guild_ready(guild, WAIT),
            "guild {guild} has no ready shard"
        );
    }
    for m in machines {
        m.wait_log("taking scans from the queue every machine shares", WAIT);
    }
    // Every worker has beaten (each beats as it starts): six slots are known.
    let started = Instant::now();
    for (i, name) in names.iter().enumerate() {
        let channel = if i % 2 == 0 {
            GENERAL_CHANNEL_ID
        } else {
            GENERAL2_CHANNEL_ID
        };
        world
            .discord
            .send_message(channel, MODERATOR_ID, &format!("!scan {name} all"));
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "the 12 requests took {:?}",
        started.elapsed()
    );
    world.wait_results(12, &machines);

    // Each request answered once, in its own channel.
    let mut places = Vec::new();
    let mut at_once = 0;
    let mut answered = Vec::new();
    for (channel, parity) in [(GENERAL_CHANNEL_ID, 0), (GENERAL2_CHANNEL_ID, 1)] {
        for ack in world.acks(channel) {
            let text = content(&ack);
            let name = username_in(&text);
            let asked_here = names
                .iter()
                .position(|n| *n == name)
                .is_some_and(|i| i % 2 == parity);
            assert!(asked_here, "{name} answered in the wrong channel: {text}");
            answered.push(name);
            match text.split("is number ").nth(1) {
                Some(rest) => places.push(
                    rest.split(' ')
                        .next()
                        .and_then(|n| n.parse::<usize>().ok())
                        .unwrap_or_else(|| panic!("no place in {text}")),
                ),
                None => at_once += 1,
            }
        }
    }
    answered.sort();
    assert_eq!(answered, names, "each request answered exactly once");
    // Three machines with two slots each: six start at once, the others learn their place in
    // the one line of every machine.
    places.sort();
    assert_eq!(at_once, 6, "places: {places:?}");
    assert_eq!(places, vec![1, 2, 3, 4, 5, 6]);

    // Each result once, where it was asked.
    let mut results: Vec<String> = world
        .results_in(GENERAL_CHANNEL_ID)
        .into_iter()
        .chain(world.results_in(GENERAL2_CHANNEL_ID))
        .collect();
    results.sort();
    assert_eq!(results, names, "every result posted once");
    for (i, name) in names.iter().enumerate() {
        let channel = if i % 2 == 0 {
            GENERAL_CHANNEL_ID
        } else {
            GENERAL2_CHANNEL_ID
        };
        assert!(world.results_in(channel).contains(name), "{name}");
    }
    // Every machine ran scans (each holds two slots of the six the first requests needed).
    for m in machines {
        assert!(m.reports() >= 1, "a machine ran no scan:\n{}", m.log());
    }
    assert_eq!(machines.iter().map(|m| m.reports()).sum::<usize>(), 12);
    // The database agrees: twelve jobs done (each marked so just after its post), each run once.
    let jobs = world.jobs_when(|jobs| jobs.iter().all(|j| j[0] == "done"));
    assert_eq!(jobs.len(), 12);
    assert!(jobs.iter().all(|j| j[1] == "1"), "{jobs:?}");

    // Reddit: never faster than one process alone, one token per process at most.
    let reddit: Vec<Instant> = world.reddit.api_requests().iter().map(|r| r.when).collect();
    assert!(reddit.len() >= 24, "12 accounts read: {}", reddit.len());
    let busiest = max_in_window(&reddit, Duration::from_millis(900));
    assert!(
        busiest <= ONE_ALONE_PER_WINDOW,
        "Reddit got {busiest} requests within 0.9 s from three processes"
    );
    assert!(world.reddit.token_requests().len() <= 3);

    // One control probe result serves every machine.
    let control = world
        .pg
        .rows("SELECT cache_key, (result::json ->> 'complete') FROM control_results");
    assert_eq!(control.len(), 1, "{control:?}");
    assert_eq!(control[0][1], "true");

    // `health` on a shard lists the three workers and the shared line.
    let mark = world.discord.requests().len();
    world
        .discord
        .send_message(GENERAL_CHANNEL_ID, MODERATOR_ID, "!health");
    let health = world
        .discord
        .wait_for(|r| r.index >= mark && content(r).contains("Workers:"), WAIT)
        .unwrap_or_else(|| panic!("no health:\n{}", first.log()));
    let text = content(&health);
    assert!(
        text.contains("Workers: 3 live, 6 slots · 0 waiting in the shared line")
            && text.contains("(bot, shards 0-0 of 2) 0/2 busy")
            && text.contains("(bot, shards 1-1 of 2) 0/2 busy")
            && text.contains("(worker) 0/2 busy"),
        "{text}"
    );

    // A scan another machine ran: `history … files` attaches files rebuilt from the database's
    // copy, and says so.
    let (channel, answering) = [
        (GENERAL_CHANNEL_ID, 0, &first),
        (GENERAL2_CHANNEL_ID, 1, &second),
    ]
    .into_iter()
    .find_map(|(channel, parity, bot)| {
        names
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 2 == parity)
            .map(|(_, n)| n)
            .find(|n| {
                !support::files_in(&bot.scans)
                    .iter()
                    .any(|f| f.starts_with(n.as_str()))
            })
            .map(|n| (channel, n.clone()))
    })
    .expect("some scan ran on a machine other than the shard that was asked");
    let mark = world.discord.requests().len();
    world.discord.send_slash_command(
        MODERATOR_ID,
        channel,
        "history",
        serde_json::json!({"target": answering, "files": true}),
    );
    let history = world
        .discord
        .wait_for(
            |r| r.index >= mark && r.path.contains("/webhooks/") && !r.files().is_empty(),
            WAIT,
        )
        .unwrap_or_else(|| panic!("no history with files"));
    assert!(
        content(&history).contains("rebuilt from the database's copy"),
        "{}",
        content(&history)
    );
    let mut files: Vec<String> = history
        .files()
        .iter()
        .filter_map(|f| f.filename.clone())
        .collect();
    files.sort();
    assert_eq!(files.len(), 3, "{files:?}");
    assert!(
        files.iter().any(|f| f.ends_with(".json"))
            && files.iter().any(|f| f.ends_with("_sherlock.csv"))
            && files.iter().any(|f| f.ends_with("_reddit.csv")),
        "{files:?}"
    );
    world.assert_clean(&machines);
}

#[test]
fn a_killed_machines_scan_is_taken_over_and_posted_once_and_its_sherlock_dies_with_it() {
    let world = World::start(&[], false);
    // A 4 s lease: a takeover within seconds. Slow sites: the scan runs long enough to kill.
    let env = [
        ("JOB_LEASE", "4"),
        ("MAX_CONCURRENT_SCANS", "1"),
        ("SHERLOCK_SITE_TIMEOUT", "6"),
    ];
    let (mut bot, mut worker) = world.bot_and_worker(&env);

    let mark = world.discord.requests().len();
    world.discord.send_message(
        GENERAL_CHANNEL_ID,
        MODERATOR_ID,
        "!scan takeoverdan sherlock",
    );
    // Running: its Sherlock is in the process table, child of the machine that claimed it.
    let (victim, survivor, sherlock) = running_it("takeoverdan", &mut bot, &mut worker);
    victim.kill();
    // The kernel ends the killed machine's Sherlock (no orphan keeps probing sites).
    let gone_by = Instant::now() + Duration::from_secs(5);
    while support::processes_mentioning("takeoverdan").contains(&sherlock) {
        assert!(
            Instant::now() < gone_by,
            "Sherlock outlived its killed machine"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    world.wait_results(1, &[survivor]);
    survivor.wait_log("taking over a job whose worker stopped", WAIT);
    let done = Instant::now() + WAIT;
    loop {
        let jobs = world.pg.rows("SELECT state, attempts::text FROM scan_jobs");
        if jobs == vec![vec!["done".to_string(), "2".to_string()]] {
            break;
        }
        assert!(
            Instant::now() < done,
            "the job did not end done after two runs: {jobs:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Done, so nobody posts it again: one result in the channel.
    assert_eq!(world.results_in(GENERAL_CHANNEL_ID), vec!["takeoverdan"]);
    assert!(
        world
            .discord
            .requests()
            .iter()
            .skip(mark)
            .any(|r| content(r).contains("Scanning **takeoverdan**")),
        "the request was acknowledged"
    );
    world.assert_clean(&[survivor]);
}

/// The process running `name`'s scan (its Sherlock's parent): (victim, survivor), and that
/// Sherlock's pid.
fn running_it<'m>(
    name: &str,
    bot: &'m mut Machine,
    worker: &'m mut Machine,
) -> (&'m mut Machine, &'m mut Machine, u32) {
    let deadline = Instant::now() + WAIT;
    let sherlock = loop {
        if let Some(pid) = support::processes_mentioning(name).first() {
            break *pid;
        }
        assert!(Instant::now() < deadline, "Sherlock never started");
        std::thread::sleep(Duration::from_millis(50));
    };
    let parent = parent_of(sherlock);
    if parent == bot.pid() {
        (bot, worker, sherlock)
    } else {
        assert_eq!(
            parent,
            worker.pid(),
            "Sherlock's parent is one of the machines"
        );
        (worker, bot, sherlock)
    }
}

#[test]
fn a_machine_stopped_mid_scan_gives_the_job_to_another_which_posts_it_whole_once() {
    let world = World::start(&[], false);
    // SHUTDOWN_GRACE 3: running scans may finish for about 2 s of it; the slow sites keep this
    // one running for 6 s, so shutdown's interrupt meets it.
    let env = [
        ("MAX_CONCURRENT_SCANS", "1"),
        ("SHERLOCK_SITE_TIMEOUT", "6"),
        ("SHUTDOWN_GRACE", "3"),
    ];
    let (mut bot, mut worker) = world.bot_and_worker(&env);

    let mark = world.discord.requests().len();
    world.discord.send_message(
        GENERAL_CHANNEL_ID,
        MODERATOR_ID,
        "!scan handoverhal sherlock",
    );
    let (victim, survivor, sherlock) = running_it("handoverhal", &mut bot, &mut worker);
    let status = victim.terminate(Duration::from_secs(10));
    assert!(status.success(), "{status:?}\n{}", victim.log());
    assert!(
        victim
            .log()
            .contains("the job is back in the shared queue for another machine"),
        "{}",
        victim.log()
    );
    assert!(
        !support::processes_mentioning("handoverhal").contains(&sherlock),
        "the stopped machine's Sherlock is gone"
    );
    world.wait_results(1, &[survivor]);
    // One run counted (the stopped machine's was given back), done, posted once, whole.
    let jobs = world.jobs_when(|jobs| jobs.iter().all(|j| j[0] == "done"));
    assert_eq!(jobs, vec![vec!["done".to_string(), "1".to_string()]]);
    assert_eq!(world.results_in(GENERAL_CHANNEL_ID), vec!["handoverhal"]);
    assert_eq!(
        victim.reports(),
        0,
        "no partial report on the stopped machine"
    );
    assert_eq!(survivor.reports(), 1);
    let said: Vec<String> = world
        .discord
        .requests()
        .iter()
        .skip(mark)
        .map(content)
        .collect();
    assert!(
        said.iter().any(|c| c.contains(
            "The machine scanning **handoverhal** is restarting: another machine takes the scan over"
        )),
        "the moderator was told: {said:?}"
    );
    assert!(
        said.iter()
            .any(|c| c == "✅ Scan of **handoverhal** finished."),
        "the acknowledgement ends finished, not partial: {said:?}"
    );
    assert!(!said.iter().any(|c| c.contains("(partial)")), "{said:?}");
    world.assert_clean(&[survivor]);
}

#[test]
fn the_same_target_asked_twice_at_once_is_scanned_once_and_both_get_the_result() {
    let world = World::start(&["twicebob"], false);
    let bot = world.spawn("bot", "bot", &[]);
    assert!(world.discord.wait_guild_ready(GUILD_ID, WAIT));
    bot.wait_log("taking scans from the queue every machine shares", WAIT);
    world
        .discord
        .send_message(GENERAL_CHANNEL_ID, MODERATOR_ID, "!scan twicebob sherlock");
    world
        .discord
        .send_message(GENERAL_CHANNEL_ID, ADMIN_ID, "!scan twicebob sherlock");
    world.wait_results(2, &[&bot]);
    assert_eq!(
        world.results_in(GENERAL_CHANNEL_ID),
        vec!["twicebob", "twicebob"]
    );
    let following: Vec<String> = world
        .discord
        .messages_posted(GENERAL_CHANNEL_ID)
        .iter()
        .map(content)
        .filter(|c| c.contains("is being scanned in this server already"))
        .collect();
    assert_eq!(following.len(), 1, "{following:?}");
    assert_eq!(bot.reports(), 1, "one Sherlock scan, one report");
    world.jobs_when(|jobs| jobs.len() == 2 && jobs.iter().all(|j| j[0] == "done"));
    let jobs = world
        .pg
        .rows("SELECT state, (leader_key IS NOT NULL)::text FROM scan_jobs ORDER BY enqueued_us");
    assert_eq!(
        jobs,
        vec![
            vec!["done".to_string(), "false".to_string()],
            vec!["done".to_string(), "true".to_string()]
        ]
    );
    world.assert_clean(&[&bot]);
}

#[test]
fn a_worker_needs_postgresql_and_says_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = support::scanner(dir.path())
        .env("DISCORD_BOT_TOKEN", BOT_TOKEN)
        .arg("worker")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(3), "a configuration error");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("a worker takes scans from the queue the machines share in PostgreSQL")
            && err.contains("DATABASE_URL=postgres://"),
        "{err}"
    );
}

fn parent_of(pid: u32) -> u32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    // pid (comm) state ppid ...: comm may hold spaces, so read after its closing parenthesis.
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .unwrap_or_default();
    after
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("ppid")
}

/// The queue's statements against a real PostgreSQL, without processes: places, duplicates,
/// followers, concurrent claims (each job to one worker, moderators' first), a takeover after
/// the lease ran out (the old holder may no longer post), and a job failed after its runs.
#[test]
fn the_queue_rows_claim_once_in_order_and_guard_posting_by_the_lease() {
    use account_scanner::db::Db;
    use account_scanner::db::jobs::{Enqueued, NewJob};

    let pg = TestPostgres::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let target = account_scanner::config::parse_database_url(&pg.url, dir.path()).expect("url");
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(async {
            let db = Db::open(&target).await.expect("open");
            let q = db.shared().expect("PostgreSQL shares");
            let job = |key: &str, priority: i32, target: &str| NewJob {
                key: key.into(),
                priority,
                guild: Some(7),
                channel: 8,
                target: target.into(),
                request: format!("{{\"for\":\"{key}\"}}"),
                reply: "{}".into(),
                deadline: Duration::from_secs(900),
            };
            // No worker is live: every job waits, automatic ones behind every moderator's.
            let auto = q.enqueue_job(&job("a1", 1, "zed|")).await.expect("enqueue");
            assert_eq!(auto, Enqueued::Queued { position: Some(1) });
            for (i, key) in ["m1", "m2", "m3"].iter().enumerate() {
                let placed = q
                    .enqueue_job(&job(key, 0, &format!("name{i}|")))
                    .await
                    .expect("enqueue");
                assert_eq!(
                    placed,
                    Enqueued::Queued {
                        position: Some(i as u64 + 1)
                    }
                );
            }
            assert_eq!(
                q.enqueue_job(&job("m1", 0, "other|")).await.expect("dup"),
                Enqueued::Duplicate
            );
            match q
                .enqueue_job(&job("f1", 0, "name1|"))
                .await
                .expect("follow")
            {
                Enqueued::Following { leader, request } => {
                    assert_eq!(leader, "m2");
                    assert_eq!(request, "{\"for\":\"m2\"}");
                }
                other => panic!("not following: {other:?}"),
            }
            assert_eq!(q.jobs_waiting().await.expect("count"), 4);

            // Two workers claim at once: each job once, moderators' in FIFO order first.
            let lease = Duration::from_secs(30);
            let (a, b) = tokio::join!(
                async {
                    let mut got = Vec::new();
                    while let Some(j) = q.claim_job("wa", lease, 3).await.expect("claim") {
                        got.push(j.key);
                    }
                    got
                },
                async {
                    let mut got = Vec::new();
                    while let Some(j) = q.claim_job("wb", lease, 3).await.expect("claim") {
                        got.push(j.key);
                    }
                    got
                }
            );
            let mut all: Vec<String> = a.iter().chain(b.iter()).cloned().collect();
            all.sort();
            assert_eq!(all, ["a1", "m1", "m2", "m3"], "a: {a:?} b: {b:?}");
            for got in [&a, &b] {
                let order: Vec<&str> = ["m1", "m2", "m3", "a1"]
                    .into_iter()
                    .filter(|k| got.iter().any(|g| g == k))
                    .collect();
                assert_eq!(got.iter().map(String::as_str).collect::<Vec<_>>(), order);
            }
            // The follower waits until its leader is done, then gets the leader's result.
            let owner = |key: &str| {
                if a.iter().any(|k| k == key) {
                    "wa"
                } else {
                    "wb"
                }
            };
            assert!(
                q.start_posting("m2", owner("m2"), "scan-m2", "{\"r\":2}")
                    .await
                    .expect("post")
            );
            assert!(q.claim_job("wc", lease, 3).await.expect("claim").is_none());
            assert!(
                q.finish_job("m2", owner("m2"), "done")
                    .await
                    .expect("finish")
            );
            let follower = q
                .claim_job("wc", lease, 3)
                .await
                .expect("claim")
                .expect("f1");
            assert_eq!(follower.key, "f1");
            assert_eq!(follower.state, "posting");
            assert_eq!(follower.result.as_deref(), Some("{\"r\":2}"));
            assert_eq!(follower.scan_id.as_deref(), Some("scan-m2"));

            // m1's worker stops renewing: a short lease runs out and another takes it over.
            assert!(
                q.renew_lease("m1", owner("m1"), Duration::from_millis(1))
                    .await
                    .expect("renew")
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
            let taken = q
                .claim_job("wd", lease, 3)
                .await
                .expect("claim")
                .expect("m1 again");
            assert_eq!((taken.key.as_str(), taken.attempts), ("m1", 2));
            assert!(
                !q.renew_lease("m1", owner("m1"), lease)
                    .await
                    .expect("renew")
            );
            assert!(
                !q.start_posting("m1", owner("m1"), "late", "{}")
                    .await
                    .expect("post"),
                "the old holder may not post"
            );
            assert!(
                q.start_posting("m1", "wd", "scan-m1", "{}")
                    .await
                    .expect("post")
            );

            // a1's machine shuts down and gives it back: only its holder can, only before its
            // result is stored; the next claim gets it with the given-back run not counted.
            assert!(!q.release_job("a1", "wd").await.expect("release"));
            assert!(
                !q.release_job("m1", "wd").await.expect("release"),
                "a result being posted stays with its worker"
            );
            assert!(q.release_job("a1", owner("a1")).await.expect("release"));
            assert_eq!(q.jobs_waiting().await.expect("count"), 1);
            let again = q
                .claim_job("wg", lease, 3)
                .await
                .expect("claim")
                .expect("a1 again");
            assert_eq!((again.key.as_str(), again.attempts), ("a1", 1));

            // m3's machines die on every run: after 2 runs (the maximum here) it is failed once.
            for attempt in 1..=2 {
                if attempt > 1 {
                    let again = q
                        .claim_job("we", Duration::from_millis(1), 2)
                        .await
                        .expect("claim");
                    assert_eq!(again.map(|j| j.key).as_deref(), Some("m3"));
                } else {
                    assert!(
                        q.renew_lease("m3", owner("m3"), Duration::from_millis(1))
                            .await
                            .expect("renew")
                    );
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            assert!(q.claim_job("wf", lease, 2).await.expect("claim").is_none());
            let failed = q.sweep_failed_jobs(2).await.expect("sweep");
            assert_eq!(
                failed.iter().map(|f| f.key.as_str()).collect::<Vec<_>>(),
                ["m3"]
            );
            assert!(
                q.sweep_failed_jobs(2).await.expect("sweep").is_empty(),
                "failed once"
            );
        });
}

/// PostgreSQL goes away while one scan runs and another waits in the shared line: the running
/// one posts, a new request is refused politely, the waiting one is not lost (it runs once the
/// database is back), and each result is posted once.
#[test]
fn a_job_waiting_when_postgresql_goes_away_runs_once_it_is_back() {
    let world = World::start(&[], false);
    let bot = world.spawn("bot", "bot", &[("MAX_CONCURRENT_SCANS", "1")]);
    assert!(world.discord.wait_guild_ready(GUILD_ID, WAIT));
    bot.wait_log("taking scans from the queue every machine shares", WAIT);
    let said = |text: &str, mark: usize| {
        world
            .discord
            .wait_for(|r| r.index >= mark && content(r).contains(text), WAIT)
            .unwrap_or_else(|| panic!("no `{text}`:\n{}", bot.log()))
    };
    let mark = world.discord.requests().len();
    world
        .discord
        .send_message(GENERAL_CHANNEL_ID, MODERATOR_ID, "!scan runsnow sherlock");
    said("sites ", mark); // its progress: a worker holds it
    world
        .discord
        .send_message(GENERAL_CHANNEL_ID, MODERATOR_ID, "!scan waitsfor sherlock");
    said("**waitsfor** (mode `sherlock`) is number 1 in line", mark);
    world.pg.block();
    world.wait_results(1, &[&bot]);
    assert_eq!(world.results_in(GENERAL_CHANNEL_ID), vec!["runsnow"]);
    let mark = world.discord.requests().len();
    world.discord.send_message(
        GENERAL_CHANNEL_ID,
        MODERATOR_ID,
        "!scan comeslater sherlock",
    );
    said("cannot reach its database, so scans are paused", mark);
    world.pg.unblock();
    world.wait_results(2, &[&bot]);
    let jobs = world.jobs_when(|jobs| jobs.len() == 2 && jobs.iter().all(|j| j[0] == "done"));
    assert!(jobs.iter().all(|j| j[0] == "done"), "{jobs:?}");
    let mut results = world.results_in(GENERAL_CHANNEL_ID);
    results.sort();
    assert_eq!(results, vec!["runsnow", "waitsfor"], "each once, none lost");
    world.assert_clean(&[&bot]);
}

/// A gateway machine that runs no scan (`MAX_CONCURRENT_SCANS=0`) and a worker: a slash
/// command, a context menu and a result button are queued by the gateway and finished by the
/// worker through each interaction's webhook (progress in the original response, the result as
/// a follow-up), each once; the worker never connected to the gateway.
#[test]
fn interactions_are_finished_by_a_worker_through_their_webhooks() {
    let world = World::start(&[], true);
    let gateway = world.spawn("bot", "gateway", &[("MAX_CONCURRENT_SCANS", "0")]);
    assert!(world.discord.wait_guild_ready(GUILD_ID, WAIT));
    gateway.wait_log("this machine runs no scan", WAIT);
    let worker = world.spawn("worker", "worker", &[]);
    worker.wait_log("taking scans from the queue every machine shares", WAIT);
    let result_after = |mark: usize| {
        world
            .discord
            .wait_for(
                |r| {
                    r.index >= mark
                        && r.method == "POST"
                        && r.path.contains("/webhooks/")
                        && !r.embeds().is_empty()
                },
                WAIT,
            )
            .unwrap_or_else(|| panic!("no follow-up:\n{}\n----\n{}", gateway.log(), worker.log()))
    };
    let answered = |id: u64| {
        let delay = world
            .discord
            .interaction_ack_delay(id)
            .unwrap_or_else(|| panic!("interaction {id} never answered"));
        assert!(delay < Duration::from_secs(3), "answered after {delay:?}");
    };

    let mark = world.discord.requests().len();
    let slash = world.discord.send_slash_command(
        MODERATOR_ID,
        GENERAL_CHANNEL_ID,
        "scan",
        serde_json::json!({"target": "webhookann", "mode": "sherlock"}),
    );
    let result = result_after(mark);
    answered(slash);
    assert_eq!(result.embeds()[0]["title"], "Scan of webhookann");
    // The worker edited the deferred answer through the webhook (progress, then finished).
    let edits: Vec<String> = world
        .discord
        .requests()
        .iter()
        .skip(mark)
        .filter(|r| r.method == "PATCH" && r.path.contains("/messages/@original"))
        .map(content)
        .collect();
    assert!(
        edits
            .iter()
            .any(|e| e.contains("Scan of **webhookann** finished")),
        "{edits:?}"
    );
    assert_eq!(world.results_in(GENERAL_CHANNEL_ID), vec!["webhookann"]);
    assert_eq!(worker.reports(), 1, "the worker ran it");
    assert_eq!(gateway.reports(), 0, "the gateway ran nothing");

    // The result's Rescan button: queued by the gateway, finished by the worker.
    let message = result.message_id().expect("result id");
    let rescan = result
        .components()
        .iter()
        .flat_map(|row| row["components"].as_array().cloned().unwrap_or_default())
        .find(|b| b["label"] == "Rescan")
        .and_then(|b| b["custom_id"].as_str().map(str::to_string))
        .expect("a Rescan button");
    let mark = world.discord.requests().len();
    let press = world.discord.press_button(MODERATOR_ID, message, &rescan);
    let again = result_after(mark);
    answered(press);
    assert_eq!(again.embeds()[0]["title"], "Scan of webhookann");
    // A context menu on a member.
    let mark = world.discord.requests().len();
    let menu = world.discord.send_user_command(
        MODERATOR_ID,
        GENERAL_CHANNEL_ID,
        "Scan account",
        support::fake_discord::MEMBER_ID,
    );
    let member = result_after(mark);
    answered(menu);
    assert_eq!(member.embeds()[0]["title"], "Scan of alice");
    let jobs = world.jobs_when(|jobs| jobs.len() == 3 && jobs.iter().all(|j| j[0] == "done"));
    assert!(
        jobs.len() == 3 && jobs.iter().all(|j| j[0] == "done"),
        "{jobs:?}"
    );
    assert_eq!(worker.reports(), 3);
    assert_eq!(
        world.discord.identify_count(),
        1,
        "only the gateway machine connected"
    );
    world.assert_clean(&[&gateway, &worker]);
}
