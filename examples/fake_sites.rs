//! Runs the fake "social sites" server used by the Sherlock tests.
//!
//! ```text
//! cargo run --example fake_sites -- [--bulk N] [--latency-ms LO-HI|MS]
//!     [--hang-secs S] [--user NAME]... [--out PATH] [--stats] [--catch-all]
//! ```
//!
//! Prints `listening http://127.0.0.1:PORT` on stdout once ready, writes the
//! Sherlock site list to `--out` (if given) and serves until killed. With
//! `--stats`, prints `requests=N max_in_flight=M` to stderr whenever it changes.

#[path = "../tests/support/fake_server.rs"]
mod fake_server;
#[path = "../tests/support/fake_sites.rs"]
mod fake_sites;

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use fake_sites::{FakeSites, FakeSitesConfig};

const USAGE: &str = "usage: fake_sites [--bulk N] [--latency-ms LO-HI|MS] [--hang-secs S] \
                     [--user NAME]... [--out PATH] [--stats] [--catch-all]";

struct Args {
    cfg: FakeSitesConfig,
    out: Option<PathBuf>,
    stats: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut cfg = FakeSitesConfig::default();
    let mut users: Vec<String> = Vec::new();
    let mut out = None;
    let mut stats = false;
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--bulk" => {
                let v = value()?;
                cfg.bulk_sites = v.parse().map_err(|_| format!("bad --bulk {v:?}"))?;
            }
            "--latency-ms" => {
                let v = value()?;
                let bad = || format!("bad --latency-ms {v:?} (want LO-HI or MS)");
                let (lo, hi) = v.split_once('-').unwrap_or((&v, &v));
                cfg.latency_ms = (
                    lo.trim().parse().map_err(|_| bad())?,
                    hi.trim().parse().map_err(|_| bad())?,
                );
            }
            "--hang-secs" => {
                let v = value()?;
                cfg.hang_secs = v.parse().map_err(|_| format!("bad --hang-secs {v:?}"))?;
            }
            "--user" => users.push(value()?),
            "--out" => out = Some(PathBuf::from(value()?)),
            "--stats" => stats = true,
            "--catch-all" => cfg.catch_all_sites = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            _ => return Err(format!("unknown argument {arg:?}")),
        }
    }
    if !users.is_empty() {
        cfg.existing_users = users;
    }
    Ok(Args { cfg, out, stats })
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("fake_sites: {e}\n{USAGE}");
            std::process::exit(2);
        }
    };

    let sites = FakeSites::start(args.cfg);
    if let Some(path) = &args.out
        && let Err(e) = sites.write_site_list(path)
    {
        eprintln!("fake_sites: cannot write {}: {e}", path.display());
        std::process::exit(1);
    }

    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "listening {}", sites.base_url());
    let _ = stdout.flush();

    let mut last = (usize::MAX, usize::MAX);
    loop {
        std::thread::sleep(Duration::from_millis(500));
        if args.stats {
            let now = (sites.requests().len(), sites.max_in_flight());
            if now != last {
                eprintln!("requests={} max_in_flight={}", now.0, now.1);
                last = now;
            }
        }
    }
}
