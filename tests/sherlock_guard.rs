//! The false-positive guard (control probe + cache) and the launcher, with the real Sherlock
//! against the fake sites.

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;
use support::fake_sites::{CATCH_ALL_SITES, FakeSites, FakeSitesConfig};

struct Fixture(support::SitesWorkdir);

impl std::ops::Deref for Fixture {
    type Target = support::SitesWorkdir;
    fn deref(&self) -> &support::SitesWorkdir {
        &self.0
    }
}

impl Fixture {
    fn new(cfg: FakeSitesConfig) -> Fixture {
        Fixture(support::SitesWorkdir::new(cfg))
    }

    fn catch_all() -> Fixture {
        Fixture::new(FakeSitesConfig {
            catch_all_sites: true,
            ..Default::default()
        })
    }

    /// `SHERLOCK_BIN` that logs each scan it is started for, then runs the real Sherlock.
    /// (`--version`, which the scanner asks an unknown Sherlock once per process, is not a scan.)
    fn counting_sherlock(&self) -> PathBuf {
        support::script(
            self.dir.path(),
            "counting-sherlock",
            &format!(
                "[ \"$1\" = --version ] || echo launch >> '{}'\nexec '{}' \"$@\"",
                self.launch_log().display(),
                support::sherlock().display()
            ),
        )
    }

    fn launch_log(&self) -> PathBuf {
        self.dir.path().join("launches.log")
    }

    fn launches(&self) -> usize {
        std::fs::read_to_string(self.launch_log())
            .map(|s| s.lines().count())
            .unwrap_or(0)
    }

    fn command(&self, user: &str, env: &[(&str, &str)]) -> std::process::Command {
        let mut cmd = self.0.command();
        cmd.env("SHERLOCK_SITE_TIMEOUT", "2")
            .args(["scan", user, "--mode", "sherlock", "--json"]);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd
    }

    fn scan(&self, user: &str, env: &[(&str, &str)]) -> Value {
        report(&self.command(user, env).output().expect("run"))
    }
}

fn report(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    support::stdout_json(out)
}

fn site<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["sherlock"]["sites"]
        .as_array()
        .expect("sites")
        .iter()
        .find(|s| s["site"] == name)
        .unwrap_or_else(|| panic!("no result for {name}"))
}

fn names(v: &Value) -> Vec<String> {
    let mut n: Vec<String> = v
        .as_array()
        .expect("array")
        .iter()
        .map(|s| s.as_str().expect("string").to_string())
        .collect();
    n.sort();
    n
}

fn sorted_catch_alls() -> Vec<String> {
    let mut n: Vec<String> = CATCH_ALL_SITES.iter().map(|s| s.to_string()).collect();
    n.sort();
    n
}

#[test]
fn catch_all_sites_are_marked_unreliable_and_true_hits_kept() {
    let fx = Fixture::catch_all();
    let r = fx.scan("alice", &[]);
    for name in CATCH_ALL_SITES {
        let s = site(&r, name);
        assert_eq!(
            (s["status"].as_str(), s["unreliable"].as_bool()),
            (Some("claimed"), Some(true)),
            "{name}"
        );
    }
    for name in ["StatusHit", "MessageMiss", "RedirectSite"] {
        let s = site(&r, name);
        assert_eq!(
            (s["status"].as_str(), s["unreliable"].as_bool()),
            (Some("claimed"), Some(false)),
            "{name}"
        );
    }
    let sherlock = &r["sherlock"];
    assert_eq!(sherlock["counts"]["claimed"], 3);
    assert_eq!(sherlock["counts"]["unverified"], 3);
    assert_eq!(sherlock["control_check"], true);
    let control = &sherlock["control"];
    assert_eq!(names(&control["claims_any_username"]), sorted_catch_alls());
    let control_name = control["control_username"].as_str().expect("control name");
    assert_eq!(control_name.len(), 12);
    assert!(
        control_name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    );
    assert_eq!(control["complete"], true);
    assert_eq!(control["from_cache"], false);
    assert_eq!(control["sites_checked"], 10);
    // The fake saw the control name at the catch-all sites.
    assert!(
        fx.sites
            .requests()
            .iter()
            .any(|q| q.path == format!("/any/{control_name}")),
        "the control probe did not reach the sites"
    );
}

#[test]
fn a_name_that_exists_nowhere_keeps_zero_hits_and_lists_the_catch_alls() {
    let fx = Fixture::catch_all();
    let r = fx.scan("nobody123", &[]);
    assert_eq!(r["sherlock"]["counts"]["claimed"], 0);
    assert_eq!(r["sherlock"]["counts"]["unverified"], 3);
    assert_eq!(
        names(&r["sherlock"]["control"]["claims_any_username"]),
        sorted_catch_alls()
    );

    let mut cmd = support::scanner(fx.dir.path());
    let out = cmd
        .env("SHERLOCK_SITES", fx.list())
        .env("SHERLOCK_SITE_TIMEOUT", "2")
        .env("SCANS_DIR", fx.scans())
        .args(["scan", "nobody123", "--mode", "sherlock"])
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("Found on no site."), "{stdout}");
    assert!(
        stdout.contains("Unverified: 3 site(s) claim every name, so their hits prove nothing: CatchAll, CatchAllRedirect, SoftMessage"),
        "{stdout}"
    );
    assert!(
        stdout.contains("found 0 · not found 3 · unverified 3"),
        "{stdout}"
    );
}

#[test]
fn the_guard_can_be_turned_off() {
    let fx = Fixture::catch_all();
    let bin = fx.counting_sherlock();
    let bin = bin.to_str().expect("utf-8 path");
    let r = fx.scan(
        "alice",
        &[("SHERLOCK_BIN", bin), ("SHERLOCK_CONTROL_CHECK", "false")],
    );
    assert_eq!(fx.launches(), 1);
    assert_eq!(r["sherlock"]["control_check"], false);
    assert_eq!(r["sherlock"]["control"], Value::Null);
    assert_eq!(r["sherlock"]["counts"]["claimed"], 6);
    assert_eq!(site(&r, "CatchAll")["unreliable"], false);
}

#[test]
fn the_control_result_is_cached_per_list_and_expires() {
    let fx = Fixture::catch_all();
    let bin = fx.counting_sherlock();
    let bin = bin.to_str().expect("utf-8 path");
    // One hour: the expiry below is made by ageing the cached result, not by sleeping, so a
    // slow machine cannot turn "within the TTL" into "after it".
    let env = [("SHERLOCK_BIN", bin), ("SHERLOCK_CONTROL_TTL", "3600")];

    let first = fx.scan("alice", &env);
    assert_eq!(
        fx.launches(),
        2,
        "cold cache: the scan and the control probe"
    );
    assert_eq!(first["sherlock"]["control"]["from_cache"], false);

    let second = fx.scan("alice", &env);
    assert_eq!(fx.launches(), 3, "within the TTL: one Sherlock run");
    assert_eq!(second["sherlock"]["control"]["from_cache"], true);
    assert_eq!(
        second["sherlock"]["control"]["control_username"],
        first["sherlock"]["control"]["control_username"]
    );
    assert_eq!(second["sherlock"]["counts"]["unverified"], 3);

    // A changed site list is a different key.
    let other = FakeSites::start(FakeSitesConfig {
        catch_all_sites: true,
        bulk_sites: 1,
        ..Default::default()
    });
    other.write_site_list(&fx.list()).expect("rewrite list");
    fx.scan("alice", &env);
    assert_eq!(fx.launches(), 5, "changed list: two runs");

    age_control_cache(&fx.scans(), 3601);
    let expired = fx.scan("alice", &env);
    assert_eq!(fx.launches(), 7, "after the TTL: two runs");
    assert_eq!(expired["sherlock"]["control"]["from_cache"], false);

    // TTL 0 disables the cache.
    fx.scan(
        "alice",
        &[("SHERLOCK_BIN", bin), ("SHERLOCK_CONTROL_TTL", "0")],
    );
    assert_eq!(fx.launches(), 9);
}

/// Moves every cached control result's `checked_at` back by `seconds`.
fn age_control_cache(scans: &Path, seconds: i64) {
    for entry in std::fs::read_dir(scans.join(".cache"))
        .expect("cache dir")
        .flatten()
    {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let mut v: Value =
            serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
        let at =
            chrono::DateTime::parse_from_rfc3339(v["checked_at"].as_str().expect("checked_at"))
                .expect("rfc3339");
        v["checked_at"] = Value::from((at - chrono::TimeDelta::seconds(seconds)).to_rfc3339());
        std::fs::write(&path, serde_json::to_vec(&v).expect("json")).expect("write");
    }
}

#[test]
fn concurrent_scans_share_one_probe_and_the_cache_stays_valid() {
    let fx = Fixture::catch_all();
    let bin = fx.counting_sherlock();
    let bin = bin.to_str().expect("utf-8 path");
    let children: Vec<_> = (0..4)
        .map(|_| {
            fx.command("alice", &[("SHERLOCK_BIN", bin)])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    let reports: Vec<Value> = children
        .into_iter()
        .map(|c| report(&c.wait_with_output().expect("wait")))
        .collect();
    assert_eq!(fx.launches(), 5, "four scans, one control probe");
    let control_names: std::collections::BTreeSet<_> = reports
        .iter()
        .map(|r| r["sherlock"]["control"]["control_username"].to_string())
        .collect();
    assert_eq!(control_names.len(), 1, "all four used the same probe");
    for r in &reports {
        assert_eq!(r["sherlock"]["counts"]["unverified"], 3);
    }
    let cache_dir = fx.scans().join(".cache");
    let cached: Vec<_> = std::fs::read_dir(&cache_dir)
        .expect("cache dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    assert_eq!(cached.len(), 1, "{cached:?}");
    let parsed: Value = serde_json::from_slice(&std::fs::read(&cached[0]).expect("read"))
        .expect("the cache file is whole JSON");
    assert_eq!(names(&parsed["claims_any_username"]), sorted_catch_alls());
    let leftovers: Vec<_> = std::fs::read_dir(&cache_dir)
        .expect("cache dir")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".partial"))
        .collect();
    assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");
}

#[test]
fn the_launcher_widens_the_worker_pool() {
    let fx = Fixture::new(FakeSitesConfig {
        bulk_sites: 150,
        latency_ms: (300, 300),
        ..Default::default()
    });
    let bulk_only = fx.dir.path().join("bulk.json");
    write_bulk_only(&fx.list(), &bulk_only);
    let env = |workers: &'static str| {
        [
            ("SHERLOCK_SITES", bulk_only.to_str().expect("utf-8")),
            ("SHERLOCK_CONTROL_CHECK", "false"),
            ("SHERLOCK_WORKERS", workers),
        ]
    };
    // The managed install (found in XDG_DATA_HOME) runs through the launcher.
    let r = fx.scan("alice", &env("64"));
    assert_eq!(r["sherlock"]["sites_checked"], 150);
    let wide = fx.sites.max_in_flight();
    assert!(
        wide > 20,
        "at most {wide} requests in flight with 64 workers"
    );

    // Sherlock as an explicit SHERLOCK_BIN runs unpatched: its own pool of 20.
    let plain = FakeSites::start(FakeSitesConfig {
        bulk_sites: 150,
        latency_ms: (300, 300),
        ..Default::default()
    });
    plain.write_site_list(&fx.list()).expect("list");
    write_bulk_only(&fx.list(), &bulk_only);
    let sherlock = support::sherlock().to_str().expect("utf-8").to_string();
    let mut env = env("64").to_vec();
    env.push(("SHERLOCK_BIN", &sherlock));
    fx.scan("alice", &env);
    assert!(plain.max_in_flight() <= 20, "{}", plain.max_in_flight());
}

fn write_bulk_only(full: &Path, out: &Path) {
    let text = std::fs::read_to_string(full).expect("read list");
    // Keep file order: Sherlock reports in it.
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.trim_start().starts_with("\"Bulk"))
        .map(|l| l.trim_end_matches(','))
        .collect();
    std::fs::write(out, format!("{{\n{}\n}}\n", lines.join(",\n"))).expect("write bulk list");
}

#[test]
fn sherlock_without_the_patch_points_still_runs_and_is_warned_about() {
    let fx = Fixture::new(FakeSitesConfig::default());
    // A sherlock_project that shadows the real one and lacks what the launcher patches.
    let fake = fx.dir.path().join("pythonpath/sherlock_project");
    std::fs::create_dir_all(&fake).expect("mkdir");
    std::fs::write(fake.join("__init__.py"), "").expect("write");
    std::fs::write(
        fake.join("sherlock.py"),
        "import sys\n__version__ = '9.9.9'\n\ndef main():\n    \
         print('[*] Checking username ' + sys.argv[-1] + ' on:')\n    \
         print('[+] OnlySite: https://example.invalid/' + sys.argv[-1])\n    \
         print('[*] Search completed with 1 results')\n",
    )
    .expect("write");
    let out = fx
        .command(
            "alice",
            &[
                (
                    "PYTHONPATH",
                    fx.dir.path().join("pythonpath").to_str().expect("utf-8"),
                ),
                ("SHERLOCK_CONTROL_CHECK", "false"),
            ],
        )
        .output()
        .expect("run");
    let r = report(&out);
    assert_eq!(r["sherlock"]["status"], "completed");
    assert_eq!(
        site(&r, "OnlySite")["url_user"],
        "https://example.invalid/alice"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Sherlock runs without the launcher's patches"),
        "{stderr}"
    );
    assert!(
        stderr.contains("patch points not found in sherlock-project 9.9.9 (SherlockFuturesSession, sherlock, requests, forge_api_latest_release)"),
        "{stderr}"
    );
}

#[test]
fn the_launcher_makes_no_update_check() {
    let fx = Fixture::new(FakeSitesConfig::default());
    let trap = FakeSites::start(FakeSitesConfig::default());
    // Any HTTPS request (the update check goes to api.github.com) is tunnelled through the
    // trap, which records the CONNECT; the fake sites (plain http on 127.0.0.1) are not.
    let proxy = [
        ("HTTPS_PROXY", trap.base_url()),
        ("NO_PROXY", "127.0.0.1,localhost".to_string()),
        ("SHERLOCK_CONTROL_CHECK", "false".to_string()),
    ];
    let env: Vec<(&str, &str)> = proxy.iter().map(|(k, v)| (*k, v.as_str())).collect();
    fx.scan("alice", &env);
    assert!(trap.requests().is_empty(), "{:?}", trap.requests());

    // The same run with plain Sherlock does make it: the trap is real.
    let sherlock = support::sherlock().to_str().expect("utf-8").to_string();
    let mut plain = env.clone();
    plain.push(("SHERLOCK_BIN", &sherlock));
    fx.scan("alice", &plain);
    let seen = trap.requests();
    assert!(
        seen.iter().any(|q| q.method == "CONNECT"),
        "plain Sherlock's update check did not reach the trap: {seen:?}"
    );
}
