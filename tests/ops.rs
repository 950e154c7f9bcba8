//! Operations: `.env.example` matches what the binary reads; `/healthz` and `/metrics` on the
//! running bot; JSON logs; retention at start; the disk-space floor; sharding.

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use serde_json::Value;
use support::bot::{Bot, WAIT, content, is_result};
use support::endpoint::{free_port, get, wait_for_status};
use support::fake_discord::{FakeDiscordConfig, MODERATOR_ID};

/// Every `NAME=` line of `.env.example`.
fn documented() -> BTreeSet<String> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/.env.example"))
        .expect(".env.example");
    text.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && l.contains('='))
        .map(|l| l.split('=').next().unwrap_or_default().trim().to_string())
        .collect()
}

/// The configuration's variables, plus every literal name the source reads directly with
/// `std::env::var`/`var_os` (outside the configuration loader).
fn read_by_the_binary() -> BTreeSet<String> {
    let mut names: BTreeSet<String> = account_scanner::config::variables()
        .map(|v| v.to_string())
        .collect();
    let mut stack = vec![std::path::PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src"
    ))];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("src").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue; // data files (the embedded toxicity model) hold no code
            }
            let text = std::fs::read_to_string(&path).expect("source file");
            // Unit tests (at the bottom of a file) are not the binary: CONFIG_DOCS_WRITE is theirs.
            let text = text.split("#[cfg(test)]").next().unwrap_or_default();
            for marker in ["env::var(\"", "env::var_os(\""] {
                for (i, _) in text.match_indices(marker) {
                    let rest = &text[i + marker.len()..];
                    if let Some(end) = rest.find('"') {
                        names.insert(rest[..end].to_string());
                    }
                }
            }
        }
    }
    // The system's own: the executable search path is not configuration.
    names.remove("PATH");
    names
}

#[test]
fn env_example_lists_exactly_the_variables_the_binary_reads() {
    let documented = documented();
    let read = read_by_the_binary();
    let undocumented: Vec<_> = read.difference(&documented).collect();
    let unread: Vec<_> = documented.difference(&read).collect();
    assert!(
        undocumented.is_empty(),
        "read but not in .env.example: {undocumented:?}"
    );
    assert!(
        unread.is_empty(),
        "in .env.example but never read: {unread:?}"
    );
    // And the configuration doc names each of them.
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/configuration.md"
    ))
    .expect("docs/configuration.md");
    let missing: Vec<_> = documented
        .iter()
        .filter(|v| !doc.contains(&format!("`{v}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "not in docs/configuration.md: {missing:?}"
    );
}

fn metric(text: &str, prefix: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn healthz_and_metrics_follow_the_bot() {
    let port = free_port();
    let port_s = port.to_string();
    let bot = Bot::start(&[
        ("HEALTH_PORT", &port_s),
        ("LOG_FORMAT", "json"),
        ("SHERLOCK_SITE_TIMEOUT", "1"),
    ]);
    let body = wait_for_status(port, "/healthz", 200);
    let health: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(health["status"], "ok");
    assert_eq!(health["gateway_connected"], true);
    assert_eq!(health["scans_dir_writable"], true);

    let (_, before) = get(port, "/metrics");
    let mark = bot.mark();
    bot.say(MODERATOR_ID, "!scan alice sherlock");
    bot.posted(mark, is_result);
    let (status, after) = get(port, "/metrics");
    assert_eq!(status, 200);
    let scans = r#"scans_total{mode="sherlock",outcome="completed"}"#;
    assert_eq!(metric(&before, scans), 0.0);
    assert_eq!(metric(&after, scans), 1.0, "{after}");
    assert!(
        metric(&after, r#"sherlock_runs_total{outcome="completed"}"#) >= 1.0,
        "{after}"
    );
    assert!(after.contains("scan_duration_seconds_bucket"), "{after}");
    assert!(after.contains("scan_queue_depth"), "{after}");

    // JSON logs: one object per line; the scan's lines carry its id, target, guild, requester.
    let log = bot.log();
    let scan_line = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["fields"]["message"] == "scan finished")
        .unwrap_or_else(|| panic!("no JSON 'scan finished' line:\n{log}"));
    let spans = scan_line["spans"].as_array().expect("spans");
    let field = |name: &str| spans.iter().find_map(|s| s.get(name).cloned());
    assert_eq!(field("target"), Some(Value::from("alice")));
    assert!(field("scan_id").is_some_and(|v| v.as_str().is_some_and(|s| s.len() == 8)));
    assert_eq!(field("requester"), Some(Value::from(MODERATOR_ID)));
    assert_eq!(
        field("guild"),
        Some(Value::from(support::fake_discord::GUILD_ID))
    );

    // A scans directory that cannot be written to: 503 with the reason.
    std::fs::remove_dir_all(bot.scans()).expect("remove scans dir");
    std::fs::write(bot.scans(), b"not a directory").expect("file in its place");
    let (status, body) = get(port, "/healthz");
    assert_eq!(status, 503, "{body}");
    let health: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(health["scans_dir_writable"], false);
    assert!(
        health["reasons"][0]
            .as_str()
            .is_some_and(|r| r.contains("not writable")),
        "{health}"
    );
    std::fs::remove_file(bot.scans()).expect("remove file");
    std::fs::create_dir(bot.scans()).expect("recreate");
    wait_for_status(port, "/healthz", 200);

    // The gateway gone for good (Discord unreachable): 503 while the bot retries.
    // Swapping in a fresh fake on another port drops (stops) the one the bot talks to.
    let mut bot = bot;
    drop(std::mem::replace(
        &mut bot.discord,
        support::fake_discord::FakeDiscord::start(),
    ));
    let body = wait_for_status(port, "/healthz", 503);
    let health: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(health["gateway_connected"], false, "{health}");
}

/// The value of the series `name{labels}` in Prometheus text (labels in any order; exactly
/// those labels), if it is there.
fn series(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (selector, value) = l.rsplit_once(' ')?;
        let (n, rest) = match selector.split_once('{') {
            Some((n, rest)) => (n, rest.strip_suffix('}')?),
            None => (selector, ""),
        };
        let have: BTreeSet<&str> = rest.split(',').filter(|p| !p.is_empty()).collect();
        let want: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
        let matches =
            n == name && have.len() == want.len() && want.iter().all(|w| have.contains(w.as_str()));
        matches.then(|| value.parse().ok()).flatten()
    })
}

fn wait_for_metrics(port: u16, what: &str, ready: impl Fn(&str) -> bool) -> String {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let (status, text) = get(port, "/metrics");
        if status == 200 && ready(&text) {
            return text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "/metrics never showed {what}:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_fresh_bot_exports_every_series_before_any_scan() {
    let port = free_port();
    let port_s = port.to_string();
    // serenity's first heartbeat comes one interval after IDENTIFY: a short one here, so the
    // latency is known within the test's patience.
    let bot = Bot::start_with(
        FakeDiscordConfig {
            heartbeat_interval_ms: 1_000,
            ..FakeDiscordConfig::default()
        },
        &[("HEALTH_PORT", &port_s), ("MIN_FREE_SPACE_MB", "5")],
    );
    wait_for_status(port, "/healthz", 200);
    let shard0 = [("shard", "0")];
    let text = wait_for_metrics(port, "the gateway's latency", |t| {
        series(t, "gateway_latency_seconds", &shard0).is_some()
    });
    let value = |name: &str, labels: &[(&str, &str)]| {
        series(&text, name, labels).unwrap_or_else(|| panic!("no {name}{labels:?} in:\n{text}"))
    };
    assert_eq!(
        value("build_info", &[("version", env!("CARGO_PKG_VERSION"))]),
        1.0
    );
    assert_eq!(value("gateway_connected", &shard0), 1.0);
    let latency = value("gateway_latency_seconds", &shard0);
    assert!((0.0..5.0).contains(&latency), "latency {latency}");
    assert_eq!(value("scan_queue_depth", &[]), 0.0);
    assert_eq!(value("scans_running", &[]), 0.0);
    for mode in ["all", "sherlock", "reddit"] {
        for outcome in ["completed", "partial", "failed"] {
            let labels = [("mode", mode), ("outcome", outcome)];
            assert_eq!(value("scans_total", &labels), 0.0);
        }
    }
    for outcome in ["completed", "stopped", "failed"] {
        assert_eq!(value("sherlock_runs_total", &[("outcome", outcome)]), 0.0);
    }
    assert_eq!(value("scan_duration_seconds_count", &[]), 0.0);
    assert!(value("scans_dir_free_bytes", &[]) > 0.0);
    assert_eq!(
        value("scans_dir_min_free_bytes", &[]),
        5.0 * 1024.0 * 1024.0
    );
    let rss = value("process_resident_memory_bytes", &[]);
    assert!(rss > 1e6, "rss {rss}");
    assert!(value("memory_limit_bytes", &[]) > rss);
    assert!(value("process_open_fds", &[]) > 3.0);
    assert!(value("process_max_fds", &[]) > 0.0);
    assert!(value("process_threads", &[]) > 1.0);
    assert!(value("process_start_time_seconds", &[]) > 1.7e9);
    value("process_cpu_seconds_total", &[]);
    value("process_virtual_memory_bytes", &[]);
    // Every exported metric is described and typed, except the two that exist per API once a
    // request was made (their `api` label is not known before).
    for name in account_scanner::ops::telemetry::METRICS {
        if ["outbound_requests_total", "rate_limiter_wait_seconds"].contains(name) {
            continue;
        }
        assert!(
            text.contains(&format!("# TYPE {name} ")),
            "{name} missing:\n{text}"
        );
    }

    // The gateway gone: its gauge says so (this is what the alert reads).
    let mut bot = bot;
    drop(std::mem::replace(
        &mut bot.discord,
        support::fake_discord::FakeDiscord::start(),
    ));
    wait_for_metrics(port, "gateway_connected 0", |t| {
        series(t, "gateway_connected", &shard0) == Some(0.0)
    });
}

/// `deploy/prometheus/alerts.yml` as Prometheus reads it (unknown keys refused).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    groups: Vec<RuleGroup>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleGroup {
    name: String,
    #[serde(default)]
    interval: Option<String>,
    rules: Vec<AlertRule>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertRule {
    alert: String,
    expr: String,
    #[serde(rename = "for", default)]
    for_: Option<String>,
    #[serde(default)]
    labels: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    annotations: std::collections::BTreeMap<String, String>,
}

/// The metric names an expression selects (`None` for a selector without a name).
#[derive(Default)]
struct SelectedNames(Vec<Option<String>>);

impl promql_parser::util::ExprVisitor for SelectedNames {
    type Error = std::convert::Infallible;
    fn pre_visit(&mut self, expr: &promql_parser::parser::Expr) -> Result<bool, Self::Error> {
        use promql_parser::parser::Expr;
        match expr {
            Expr::VectorSelector(vs) => self.0.push(vs.name.clone()),
            Expr::MatrixSelector(ms) => self.0.push(ms.vs.name.clone()),
            _ => {}
        }
        Ok(true)
    }
}

const ALERT_RULES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/prometheus/alerts.yml");

#[test]
fn alert_rules_parse_and_name_only_metrics_the_bot_exports() {
    use account_scanner::ops::telemetry::{HISTOGRAMS, METRICS};
    let text = std::fs::read_to_string(ALERT_RULES).expect("deploy/prometheus/alerts.yml");
    let file: RuleFile = serde_yaml_ng::from_str(&text).expect("a Prometheus rule file");
    let mut exported: BTreeSet<String> = METRICS.iter().map(|m| m.to_string()).collect();
    for h in HISTOGRAMS {
        for suffix in ["_bucket", "_sum", "_count"] {
            exported.insert(format!("{h}{suffix}"));
        }
    }
    let mut alerts = BTreeSet::new();
    let mut read_by_alert = BTreeSet::new();
    assert!(!file.groups.is_empty());
    for group in &file.groups {
        assert!(!group.name.is_empty());
        if let Some(i) = &group.interval {
            promql_parser::util::parse_duration(i).expect("group interval");
        }
        for rule in &group.rules {
            let name = &rule.alert;
            assert!(alerts.insert(name.clone()), "{name} twice");
            let expr = promql_parser::parser::parse(&rule.expr)
                .unwrap_or_else(|e| panic!("{name}: not PromQL: {e}\n{}", rule.expr));
            let mut names = SelectedNames::default();
            let _ = promql_parser::util::walk_expr(&mut names, &expr);
            assert!(!names.0.is_empty(), "{name} reads no metric");
            for metric in names.0 {
                let metric = metric.unwrap_or_else(|| panic!("{name}: a selector without a name"));
                assert!(
                    exported.contains(&metric),
                    "{name} reads {metric}, which the bot does not export"
                );
                read_by_alert.insert(metric);
            }
            if let Some(d) = &rule.for_ {
                promql_parser::util::parse_duration(d)
                    .unwrap_or_else(|e| panic!("{name}: for {d}: {e}"));
            }
            assert!(
                matches!(
                    rule.labels.get("severity").map(String::as_str),
                    Some("warning" | "critical")
                ),
                "{name}: severity"
            );
            for key in ["summary", "description"] {
                assert!(rule.annotations.contains_key(key), "{name}: no {key}");
            }
        }
    }
    // What issue 12 asks the rules to cover.
    for metric in [
        "gateway_connected",
        "scans_total",
        "outbound_requests_total",
        "rate_limiter_wait_seconds_sum",
        "scans_dir_free_bytes",
        "process_resident_memory_bytes",
        "memory_limit_bytes",
    ] {
        assert!(read_by_alert.contains(metric), "no alert reads {metric}");
    }
    let gateway = file
        .groups
        .iter()
        .flat_map(|g| &g.rules)
        .find(|r| r.alert == "DiscordGatewayDisconnected")
        .expect("the gateway alert");
    assert_eq!(gateway.for_.as_deref(), Some("2m"));

    // Where promtool is installed (Debian: `apt-get install prometheus`), it checks too.
    match std::process::Command::new("promtool")
        .args(["check", "rules", ALERT_RULES])
        .output()
    {
        Ok(out) => assert!(
            out.status.success(),
            "promtool check rules: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => eprintln!("note: promtool not run ({e}); the rules were parsed above"),
    }
}

#[test]
fn retention_at_start_removes_only_old_reports() {
    let dir = tempfile::tempdir().expect("tempdir");
    let scans = dir.path().join("scans");
    std::fs::create_dir_all(&scans).expect("mkdir");
    let day = Duration::from_secs(86_400);
    for (name, age) in [
        ("old_20250101T000000.000Z.json", 10),
        ("old_20250101T000000.000Z_sherlock.csv", 10),
        ("recent_20261120T000000.000Z.json", 2),
    ] {
        let path = scans.join(name);
        std::fs::write(&path, b"{}").expect("write");
        std::fs::File::options()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_modified(SystemTime::now() - day * age))
            .expect("mtime");
    }
    let scans_s = scans.to_str().expect("utf-8").to_string();
    let bot = Bot::start(&[("SCANS_DIR", &scans_s), ("SCAN_RETENTION_DAYS", "7")]);
    assert_eq!(
        support::files_in(&scans),
        ["recent_20261120T000000.000Z.json"]
    );
    assert!(
        bot.log().contains("retention removed an old report"),
        "{}",
        bot.log()
    );
}

#[test]
fn scans_refuse_politely_below_the_disk_floor() {
    let bot = Bot::start(&[("MIN_FREE_SPACE_MB", "1000000")]);
    let mark = bot.mark();
    bot.say(MODERATOR_ID, "!scan alice sherlock");
    let reply = bot.posted(mark, |r| content(r).contains("disk is almost full"));
    assert!(content(&reply).starts_with("Sorry, the bot's disk is almost full"));
    assert!(support::files_in(&bot.scans()).is_empty());

    // The CLI refuses the same way, before running anything.
    let dir = tempfile::tempdir().expect("tempdir");
    let out = support::scanner(dir.path())
        .env("MIN_FREE_SPACE_MB", "1000000")
        .env("SHERLOCK_BIN", "/bin/false")
        .args(["scan", "alice"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(3));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("free some space or lower MIN_FREE_SPACE_MB")
    );
}

#[test]
fn two_shards_identify_separately() {
    let bot = Bot::start_with(FakeDiscordConfig::default(), &[("SHARD_COUNT", "2")]);
    assert!(
        bot.discord
            .wait_until(WAIT, || bot.discord.identify_count() >= 2),
        "{}",
        bot.log()
    );
    let shards: BTreeSet<_> = bot.discord.identifies().iter().map(|i| i.shard).collect();
    assert_eq!(shards, BTreeSet::from([Some((0, 2)), Some((1, 2))]));
}
