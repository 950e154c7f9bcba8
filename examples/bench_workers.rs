//! Measures the scan queue every machine shares on PostgreSQL (issue 17): throughput with 1, 2
//! and 3 workers, and what the queue costs in database round trips (run by
//! `scripts/bench-workers`; prints one JSON object).
//!
//! ```text
//! bench_workers --bin target/release/account-scanner --data-home DIR
//!     [--scans 30] [--workers 1,2,3] [--scenarios fast,waiting] [--settle-secs 11]
//!     [--idle-secs 10] [--hang-secs 3] [--fast-repeats 3]
//! ```
//!
//! Each configuration gets a fresh fake Discord, fresh fake sites and a fresh database
//! (`TestPostgres::new()`: on the server `TEST_DATABASE_URL` names, else a throwaway one). One
//! `account-scanner bot` (gateway + its own worker loop) and `workers - 1` `account-scanner
//! worker` processes, each with `MAX_CONCURRENT_SCANS=1`, so `workers` scans run at once. Then:
//! 1. they wait `--settle-secs` (start-up statements reach the statistics: PostgreSQL flushes
//!    a backend's counters at most every second while busy, 10 s after it goes idle), and
//!    `--idle-secs` more with nothing queued: the idle cost;
//! 2. `--scans` requests `!scan nameNN sherlock` (distinct names) are sent at once in #general
//!    by the moderator, `SCAN_COOLDOWN=0`: the wall time from the first request to the last
//!    result's arrival at the fake Discord;
//! 3. once every job is marked done, every process is killed (its backends flush their
//!    counters as they exit) and the database's counters are read again: the cost of the scans
//!    (with whatever polling the workers did meanwhile).
//!
//! Each process's reports give its scans' start and end: how long a scan ran, and the gap from
//! one scan's end to the same process's next start (posting, claiming, the next poll), and the
//! start-to-start cycles.
//!
//! Counters: `xact_commit` + `xact_rollback` of the test database in `pg_stat_database` (one per
//! autocommit statement, one per transaction block) and, when the server preloads
//! `pg_stat_statements`, the calls (and rows) of every statement, read from the maintenance
//! database so the reads are not counted. Scenarios: `fast`, the fixed fake sites without
//! HangSite (a Sherlock run is mostly Python's own CPU, a fraction of a second); `waiting`, the fixed
//! sites with HangSite answering after `--hang-secs` (every run waits that long on the network,
//! as real sites make it wait). The fast scenario's scans take a few seconds in all, so each of
//! its configurations runs `--fast-repeats` times (each time fresh).

#[path = "common/bench.rs"]
mod bench;
#[path = "../tests/support/child_log.rs"]
mod child_log;
#[path = "../tests/support/fake_discord/mod.rs"]
mod fake_discord;
#[path = "../tests/support/fake_server.rs"]
mod fake_server;
#[path = "../tests/support/fake_sites.rs"]
mod fake_sites;
#[path = "../tests/support/machine.rs"]
mod machine;
#[path = "../tests/support/postgres.rs"]
mod postgres;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bench::{arg, proc_kib};
use fake_discord::{
    BOT_TOKEN, FakeDiscord, FakeDiscordConfig, GENERAL_CHANNEL_ID, GUILD_ID, MODERATOR_ID,
    RecordedRequest,
};
use fake_sites::{FakeSites, FakeSitesConfig};
use machine::Machine;
use postgres::{TestPostgres, block_on};
use serde_json::{Value, json};
use sqlx::{Connection, Row};

const WAIT: Duration = Duration::from_secs(60);
const READY_LINE: &str = "taking scans from the queue every machine shares";

/// (start, end) of each scan a process ran, from its reports, in order.
fn scan_times(scans: &Path) -> Vec<(chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>)> {
    let mut times: Vec<_> = std::fs::read_dir(scans)
        .map(|d| d.flatten().map(|e| e.path()).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .filter_map(|p| {
            let report: Value = serde_json::from_slice(&std::fs::read(p).ok()?).ok()?;
            let at = |k: &str| {
                report[k]
                    .as_str()
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| t.with_timezone(&chrono::Utc))
            };
            Some((at("started_at")?, at("finished_at")?))
        })
        .collect();
    times.sort();
    times
}

/// CPU seconds of a process and its reaped children (Sherlock), from `/proc/PID/stat`.
fn process_cpu_s(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command (which may hold spaces) in parentheses; utime is the 14th field.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(4)
        .filter_map(|f| f.parse().ok())
        .collect();
    fields.iter().sum::<u64>() as f64 / clock_ticks()
}

fn clock_ticks() -> f64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .map(|t| t as f64)
        .unwrap_or(100.0)
}

/// (busy, iowait, total) CPU seconds of the whole machine since boot, from `/proc/stat`.
fn machine_cpu_s() -> (f64, f64, f64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let line = stat.lines().next().unwrap_or_default();
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    let hz = clock_ticks();
    (
        (total - idle) as f64 / hz,
        v.get(4).copied().unwrap_or(0) as f64 / hz,
        total as f64 / hz,
    )
}

/// The database's counters at one moment.
struct Snapshot {
    at: Instant,
    xacts: i64,
    /// Calls and rows of each statement (by query id), when `pg_stat_statements` is loaded.
    statements: Option<BTreeMap<i64, (String, i64, i64)>>,
}

/// Reads the test database's counters from the server's maintenance database (so the reads are
/// not counted in the test database's).
struct Counters {
    maintenance: String,
    database: String,
    statements: bool,
}

impl Counters {
    fn new(pg: &TestPostgres) -> Counters {
        let (server, database) = pg.url.rsplit_once('/').expect("a database in the URL");
        let maintenance = format!("{server}/postgres");
        let statements = block_on(async {
            let mut conn = sqlx::PgConnection::connect(&maintenance).await.ok()?;
            sqlx::query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
                .execute(&mut conn)
                .await
                .ok()?;
            sqlx::query("SELECT count(*) FROM pg_stat_statements")
                .fetch_one(&mut conn)
                .await
                .ok()
        })
        .is_some();
        Counters {
            maintenance,
            database: database.to_string(),
            statements,
        }
    }

    fn read(&self) -> Snapshot {
        let at = Instant::now();
        block_on(async {
            let mut conn = sqlx::PgConnection::connect(&self.maintenance).await?;
            let row = sqlx::query(
                "SELECT (xact_commit + xact_rollback)::BIGINT AS n FROM pg_stat_database \
                 WHERE datname = $1",
            )
            .bind(&self.database)
            .fetch_one(&mut conn)
            .await?;
            let xacts: i64 = row.try_get("n")?;
            let statements = if self.statements {
                let rows = sqlx::query(
                    "SELECT queryid, query, calls, rows FROM pg_stat_statements \
                     WHERE dbid = (SELECT oid FROM pg_database WHERE datname = $1) \
                       AND queryid IS NOT NULL",
                )
                .bind(&self.database)
                .fetch_all(&mut conn)
                .await?;
                let mut map = BTreeMap::new();
                for r in rows {
                    let entry = map
                        .entry(r.try_get::<i64, _>("queryid")?)
                        .or_insert_with(|| (String::new(), 0, 0));
                    entry.0 = r.try_get("query")?;
                    entry.1 += r.try_get::<i64, _>("calls")?;
                    entry.2 += r.try_get::<i64, _>("rows")?;
                }
                Some(map)
            } else {
                None
            };
            Ok::<_, sqlx::Error>(Snapshot {
                at,
                xacts,
                statements,
            })
        })
        .expect("read the database's counters")
    }

    /// Waits until `scans` jobs are done, asking every 20 ms on one connection to the test
    /// database; returns how many times it asked (each one transaction, one statement whose text
    /// holds `bench_pending`).
    fn wait_all_done(&self, url: &str, scans: usize) -> i64 {
        let deadline = Instant::now() + WAIT;
        block_on(async {
            let mut conn = sqlx::PgConnection::connect(url).await?;
            let mut polls = 0;
            loop {
                polls += 1;
                let done = sqlx::raw_sql(
                    "SELECT count(*) AS bench_pending FROM scan_jobs WHERE state = 'done'",
                )
                .fetch_one(&mut conn)
                .await?
                .try_get::<i64, _>(0)?;
                if usize::try_from(done).unwrap_or(0) >= scans {
                    break;
                }
                assert!(Instant::now() < deadline, "the jobs were never all done");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            conn.close().await?;
            Ok::<_, sqlx::Error>(polls)
        })
        .expect("poll the jobs")
    }

    /// Waits until no backend serves the test database (its processes were killed): each
    /// flushes its counters as it exits.
    fn wait_disconnected(&self) {
        let deadline = Instant::now() + WAIT;
        loop {
            let n: i64 = block_on(async {
                let mut conn = sqlx::PgConnection::connect(&self.maintenance).await?;
                sqlx::query("SELECT count(*) AS n FROM pg_stat_activity WHERE datname = $1")
                    .bind(&self.database)
                    .fetch_one(&mut conn)
                    .await?
                    .try_get::<i64, _>("n")
            })
            .expect("read pg_stat_activity");
            if n == 0 {
                break;
            }
            assert!(Instant::now() < deadline, "{n} backends never went away");
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// What changed between two snapshots.
fn delta(before: &Snapshot, after: &Snapshot) -> Value {
    let statements = match (&before.statements, &after.statements) {
        (Some(b), Some(a)) => {
            let mut list: Vec<Value> = a
                .iter()
                .filter(|(_, (query, _, _))| !query.contains("bench_pending"))
                .filter_map(|(id, (query, calls, rows))| {
                    let (_, c0, r0) = b.get(id).cloned().unwrap_or_default();
                    (calls - c0 > 0).then(|| {
                        json!({
                            "query": query,
                            "calls": calls - c0,
                            "rows": rows - r0,
                        })
                    })
                })
                .collect();
            list.sort_by_key(|q| -q["calls"].as_i64().unwrap_or(0));
            Value::Array(list)
        }
        _ => Value::Null,
    };
    json!({
        "secs": after.at.duration_since(before.at).as_secs_f64(),
        "xacts": after.xacts - before.xacts,
        "statements": statements,
    })
}

/// The fakes and the database of one configuration.
struct World {
    discord: FakeDiscord,
    _sites: FakeSites,
    pg: TestPostgres,
    list: PathBuf,
    site_timeout: &'static str,
    dir: tempfile::TempDir,
}

impl World {
    fn start(scenario: &str, hang_secs: u64) -> World {
        let waiting = scenario == "waiting";
        let sites = FakeSites::start(FakeSitesConfig {
            hang_secs,
            ..FakeSitesConfig::default()
        });
        let dir = tempfile::tempdir().expect("tempdir");
        let list = dir.path().join("sites.json");
        // `fast`: as `write_fast_site_list` in tests/support/bot.rs, every fixed site but
        // HangSite; `waiting`: all of them, HangSite answering after `hang_secs`.
        let entries: serde_json::Map<String, Value> = sites
            .site_entries()
            .into_iter()
            .filter(|(name, _)| waiting || name != "HangSite")
            .collect();
        std::fs::write(&list, serde_json::to_string_pretty(&entries).expect("json"))
            .expect("site list");
        World {
            discord: FakeDiscord::start_with(FakeDiscordConfig::default()),
            _sites: sites,
            pg: TestPostgres::new(),
            list,
            site_timeout: if waiting { "10" } else { "3" },
            dir,
        }
    }

    fn spawn(&self, bin: &Path, data_home: &Path, face: &'static str, name: &str) -> Machine {
        let home = self.dir.path().join(name);
        std::fs::create_dir_all(&home).expect("machine dir");
        let scans = home.join("scans");
        let child = Command::new(bin)
            .arg(face)
            .env_clear()
            .current_dir(&home)
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("HOME", &home)
            .env("XDG_DATA_HOME", data_home)
            .env("NO_COLOR", "1")
            .env("DISCORD_BOT_TOKEN", BOT_TOKEN)
            .env("DISCORD_API_BASE", self.discord.base_url())
            .env("DATABASE_URL", &self.pg.url)
            .env("SCANS_DIR", &scans)
            .env("SHERLOCK_SITES", &self.list)
            .env("SHERLOCK_SITE_TIMEOUT", self.site_timeout)
            .env("SCAN_COOLDOWN", "0")
            .env("MAX_CONCURRENT_SCANS", "1")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start account-scanner");
        Machine::new(child, scans)
    }
}

fn is_result(r: &RecordedRequest) -> bool {
    r.method == "POST"
        && r.route == format!("/channels/{GENERAL_CHANNEL_ID}/messages")
        && r.embeds().first().is_some_and(|e| {
            e["title"]
                .as_str()
                .is_some_and(|t| t.starts_with("Scan of "))
        })
}

struct Options {
    bin: PathBuf,
    data_home: PathBuf,
    scans: usize,
    settle: Duration,
    idle: Duration,
    hang_secs: u64,
}

/// One configuration: `workers` processes (the bot and `workers - 1` workers) take `scans`.
fn run(o: &Options, scenario: &str, workers: usize) -> Value {
    let world = World::start(scenario, o.hang_secs);
    let counters = Counters::new(&world.pg);
    let mut machines = vec![world.spawn(&o.bin, &o.data_home, "bot", "bot")];
    for i in 1..workers {
        machines.push(world.spawn(&o.bin, &o.data_home, "worker", &format!("worker{i}")));
    }
    assert!(
        world.discord.wait_guild_ready(GUILD_ID, WAIT),
        "the bot never became ready:\n{}",
        machines[0].log()
    );
    for m in &machines {
        m.wait_log(READY_LINE, WAIT);
    }

    std::thread::sleep(o.settle);
    let idle_start = counters.read();
    std::thread::sleep(o.idle);
    let idle_end = counters.read();
    let idle = delta(&idle_start, &idle_end);

    let load = std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .next()
        .and_then(|l| l.parse::<f64>().ok())
        .unwrap_or(f64::NAN);
    let cpu_before: Vec<f64> = machines.iter().map(|m| process_cpu_s(m.pid())).collect();
    let (busy0, iowait0, total0) = machine_cpu_s();
    let mark = world.discord.requests().len();
    let names: Vec<String> = (1..=o.scans).map(|i| format!("name{i:02}")).collect();
    let sent = Instant::now();
    for name in &names {
        world.discord.send_message(
            GENERAL_CHANNEL_ID,
            MODERATOR_ID,
            &format!("!scan {name} sherlock"),
        );
    }
    let dispatched = sent.elapsed();
    let results = world.discord.wait_for_count(
        |r| r.index >= mark && is_result(r),
        o.scans,
        Duration::from_secs(60 * 30),
    );
    assert!(
        results.len() >= o.scans,
        "{} of {} results; logs:\n{}",
        results.len(),
        o.scans,
        machines
            .iter()
            .map(Machine::log)
            .collect::<Vec<_>>()
            .join("\n----\n")
    );
    let (busy1, iowait1, total1) = machine_cpu_s();
    let mut arrivals: Vec<Instant> = results.iter().map(|r| r.at).collect();
    arrivals.sort();
    let wall = arrivals[o.scans - 1].duration_since(sent).as_secs_f64();
    let first = arrivals[0].duration_since(sent).as_secs_f64();
    let processes: Vec<Value> = machines
        .iter()
        .zip(&cpu_before)
        .enumerate()
        .map(|(i, (m, before))| {
            json!({
                "kind": if i == 0 { "bot" } else { "worker" },
                "scans": m.reports(),
                "cpu_s": process_cpu_s(m.pid()) - before,
                "hwm_mib": proc_kib(m.pid(), "VmHWM:") as f64 / 1024.0,
            })
        })
        .collect();
    let discord_requests = world.discord.requests().len() - mark;
    // Each process's scans (report start to end) and the gaps between one's end and its next
    // start (posting, marking done, waiting for the next poll, claiming, the checks before
    // Sherlock starts).
    let (mut durations, mut gaps, mut cycles) = (Vec::new(), Vec::new(), Vec::new());
    for m in &machines {
        let times = scan_times(&m.scans);
        cycles.extend(
            times
                .windows(2)
                .map(|w| (w[1].0 - w[0].0).as_seconds_f64() * 1000.0),
        );
        durations.extend(
            times
                .iter()
                .map(|(a, b)| (*b - *a).as_seconds_f64() * 1000.0),
        );
        gaps.extend(
            times
                .windows(2)
                .map(|w| (w[1].0 - w[0].1).as_seconds_f64() * 1000.0),
        );
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let max = |v: &[f64]| v.iter().copied().fold(f64::NAN, f64::max);
    let min = |v: &[f64]| v.iter().copied().fold(f64::NAN, f64::min);

    // The last result is posted before its job is marked done: wait for that, then stop.
    let polls = counters.wait_all_done(&world.pg.url, o.scans);
    for m in &mut machines {
        m.kill();
    }
    let killed = Instant::now();
    counters.wait_disconnected();
    let mut after = counters.read();
    // The window of the scans ends when the processes stopped, not when the counters were read.
    after.at = killed;
    let mut scans = delta(&idle_end, &after);
    // Less this program's own polls (one simple-protocol statement, one transaction each).
    scans["xacts"] = json!(scans["xacts"].as_i64().unwrap_or(0) - polls);
    scans["bench_polls"] = json!(polls);

    // Each request scanned once and answered once.
    let mut titles: Vec<String> = results
        .iter()
        .filter_map(|r| {
            r.embeds()
                .first()
                .and_then(|e| e["title"].as_str().map(str::to_string))
        })
        .collect();
    titles.sort();
    titles.dedup();
    assert_eq!(titles.len(), o.scans, "distinct results: {titles:?}");
    let jobs = world
        .pg
        .rows("SELECT state, attempts::text FROM scan_jobs ORDER BY job_key");
    assert_eq!(jobs.len(), o.scans, "jobs: {jobs:?}");
    assert!(
        jobs.iter().all(|j| j[0] == "done" && j[1] == "1"),
        "{jobs:?}"
    );

    eprintln!(
        "{scenario}, {workers} worker(s): {wall:.2} s for {} scans; {} transactions idle in {:.1} s, {} with the scans",
        o.scans, idle["xacts"], idle["secs"], scans["xacts"],
    );
    json!({
        "scenario": scenario,
        "workers": workers,
        "dispatch_s": dispatched.as_secs_f64(),
        "first_result_s": first,
        "wall_s": wall,
        "load_before": load,
        "machine_busy_cores": (busy1 - busy0) / (total1 - total0) * cpus() as f64,
        "machine_iowait_cores": (iowait1 - iowait0) / (total1 - total0) * cpus() as f64,
        "processes": processes,
        "results": results.len(),
        "discord_requests": discord_requests,
        "scan_ms": {"mean": mean(&durations), "min": min(&durations), "max": max(&durations), "n": durations.len()},
        "gap_ms": {"mean": mean(&gaps), "min": min(&gaps), "max": max(&gaps), "n": gaps.len()},
        // From one scan's start to the same process's next start, each.
        "cycles_ms": cycles.iter().map(|c| c.round()).collect::<Vec<_>>(),
        "idle": idle,
        "scans": scans,
    })
}

fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn main() {
    let bin = std::fs::canonicalize(arg("--bin").expect("--bin PATH")).expect("--bin exists");
    let data_home = std::fs::canonicalize(arg("--data-home").expect("--data-home DIR"))
        .expect("--data-home exists");
    let secs = |name: &str, default: u64| {
        Duration::from_secs(arg(name).and_then(|v| v.parse().ok()).unwrap_or(default))
    };
    let o = Options {
        bin,
        data_home,
        scans: arg("--scans").and_then(|v| v.parse().ok()).unwrap_or(30),
        settle: secs("--settle-secs", 11),
        idle: secs("--idle-secs", 10),
        hang_secs: arg("--hang-secs").and_then(|v| v.parse().ok()).unwrap_or(3),
    };
    let workers: Vec<usize> = arg("--workers")
        .unwrap_or_else(|| "1,2,3".into())
        .split(',')
        .map(|w| w.trim().parse().expect("--workers 1,2,3"))
        .collect();
    let scenarios: Vec<String> = arg("--scenarios")
        .unwrap_or_else(|| "fast,waiting".into())
        .split(',')
        .map(|s| s.trim().to_string())
        .collect();
    for s in &scenarios {
        assert!(
            s == "fast" || s == "waiting",
            "--scenarios: fast and/or waiting, not {s}"
        );
    }
    // The fast scenario's scans take a few seconds in all: repeated (fresh each time), so the
    // spread shows.
    let fast_repeats: usize = arg("--fast-repeats")
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .max(1);
    let mut runs = Vec::new();
    for scenario in &scenarios {
        let repeats = if scenario == "fast" { fast_repeats } else { 1 };
        for repeat in 1..=repeats {
            for &n in &workers {
                let mut one = run(&o, scenario, n);
                one["repeat"] = json!(repeat);
                runs.push(one);
            }
        }
    }
    let pg_statements = runs
        .iter()
        .all(|r| !r["idle"]["statements"].is_null() && !r["scans"]["statements"].is_null());
    println!(
        "{}",
        json!({
            "cores": cpus(),
            "scans": o.scans,
            "settle_s": o.settle.as_secs(),
            "idle_s": o.idle.as_secs(),
            "hang_s": o.hang_secs,
            "fast_repeats": fast_repeats,
            "pg_stat_statements": pg_statements,
            "runs": runs,
        })
    );
}
