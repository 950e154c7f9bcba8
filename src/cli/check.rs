//! `account-scanner check`: what is configured, what is missing.

use crate::cli::exit;
use crate::config::{Config, ConfigError, ToxicityBackend};
use crate::ops::host::{free_space, human_bytes};
use crate::scanner::Scanner;
use crate::sources::sherlock::install;
use crate::store::ReportStore;

pub async fn run(config: Result<Config, ConfigError>) -> u8 {
    println!("account-scanner {}", env!("CARGO_PKG_VERSION"));
    let config = match config {
        Ok(c) => {
            println!("configuration: ok");
            c
        }
        Err(e) => {
            println!("configuration: {e}");
            return exit::CONFIGURATION;
        }
    };
    let mut problems = 0;

    match ReportStore::open(&config.scans_dir) {
        Ok(store) => {
            let free = free_space(store.dir())
                .map(|b| format!(", {} free", human_bytes(b)))
                .unwrap_or_default();
            println!(
                "scans directory: {} (writable{free})",
                store.dir().display()
            );
        }
        Err(e) => {
            problems += 1;
            println!("scans directory: PROBLEM: {e}");
        }
    }

    let install = match install::locate(&config.sherlock) {
        Ok(found) => found,
        Err(e) => {
            problems += 1;
            println!("sherlock: PROBLEM: {e}");
            None
        }
    };
    let sherlock_configured = config.sherlock.bin.is_some();
    let scanner = Scanner::new(config.clone(), install);
    match scanner.sherlock() {
        Some(runner) => {
            let version = scanner
                .sherlock_version()
                .await
                .unwrap_or_else(|| "unknown version".into());
            println!(
                "sherlock: {} {version} (from {}; pinned version {})",
                runner.install.program.display(),
                runner.install.origin.describe(),
                install::pinned_version()
            );
            let sites = runner
                .count_sites()
                .await
                .map(|n| format!(", {n} sites"))
                .unwrap_or_default();
            println!("site list: {}{sites}", config.sherlock.sites);
        }
        None if !sherlock_configured => {
            let dir = install::managed_venv_dir(&config.sherlock)
                .map(|d| d.display().to_string())
                .unwrap_or_else(|| {
                    "(no data directory: set XDG_DATA_HOME, HOME or SHERLOCK_BIN)".into()
                });
            println!(
                "sherlock: not installed; `account-scanner setup` (or the first scan) installs {} into {dir}",
                install::pinned_version()
            );
            println!("site list: {}", config.sherlock.sites);
        }
        None => {}
    }
    println!(
        "timeouts: scan {} s, per site {} s; NSFW sites {}",
        config.scan_timeout.as_secs(),
        config.sherlock.site_timeout.as_secs(),
        if config.sherlock.nsfw {
            "included"
        } else {
            "excluded"
        }
    );
    match &config.reddit {
        Some(r) => println!(
            "reddit: configured (client id {}, user agent {:?}; API {}, auth {}; up to {} comments and {} posts; {} requests/min)",
            r.client_id,
            r.user_agent,
            r.api_base,
            r.auth_base,
            r.max_comments,
            r.max_posts,
            r.rate_per_min
        ),
        None => println!(
            "reddit: not configured (needs REDDIT_CLIENT_ID, REDDIT_CLIENT_SECRET, REDDIT_USER_AGENT)"
        ),
    }
    let prepared = scanner.prepare_scorer().await;
    let scorer = scanner.scorer_info();
    let threshold = scanner.toxicity_threshold();
    match (config.toxicity_backend, &config.perspective, &config.openai) {
        _ if prepared.is_err() => {
            problems += 1;
            println!(
                "toxicity: PROBLEM: {} ({}; threshold {threshold}): fix TOXICITY_MODEL_DIR or unset it to use the model built into the binary",
                scorer.name, scorer.model
            );
        }
        _ if !scorer.configured => {
            problems += 1;
            println!(
                "toxicity: PROBLEM: {} could not be set up (the HTTP client failed); Reddit items would be left unscored",
                config.toxicity_backend.as_str()
            );
        }
        (ToxicityBackend::Perspective, Some(p), _) => println!(
            "toxicity: {} ({}; {}, {} requests/s; threshold {threshold})",
            scorer.name, scorer.model, p.api_base, p.qps
        ),
        (ToxicityBackend::OpenAi, _, Some(o)) => println!(
            "toxicity: {} ({}; {}, batches of {}, {} requests/min; threshold {threshold})",
            scorer.name, scorer.model, o.api_base, o.batch_size, o.rate_per_min
        ),
        _ => println!(
            "toxicity: {} ({}; offline, an automated signal for a human to read; threshold {threshold}){}",
            scorer.name,
            scorer.model,
            if config.perspective.is_none() && config.openai.is_none() {
                "; set OPENAI_API_KEY or PERSPECTIVE_API_KEY for a hosted model"
            } else {
                ""
            }
        ),
    }
    if problems > 0 {
        exit::CONFIGURATION
    } else {
        exit::DONE
    }
}
