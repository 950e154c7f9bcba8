//! The one scanner the CLI, the bot and the tests call: a [`ScanRequest`] in, progress events
//! out, and a [`ScanReport`] at the end. Sources that fail are reported, not raised.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::OnceCell;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::db::shared::SharedState;
use crate::model::{
    EventSink, RedditSection, RequestInfo, SCHEMA_VERSION, ScanEvent, ScanMode, ScanReport,
    ScanRequest, SectionStatus, SherlockSection, StatusCounts, StopReason, ToolVersions, Username,
    millis,
};
use crate::net::Limits;
use crate::sources::reddit::client::RedditClient;
use crate::sources::reddit::section::{self, RedditSource};
use crate::sources::sherlock::control::{self, ControlCache};
use crate::sources::sherlock::{RunOutcome, SherlockError, SherlockInstall, SherlockRunner};
use crate::toxicity::{self, ToxicityScorer};

pub struct Scanner {
    config: Config,
    sherlock: Option<SherlockRunner>,
    sherlock_version: OnceCell<Option<String>>,
    /// One limiter per API for the whole process: create one `Scanner` and share it.
    limits: Limits,
    reddit: RedditSetup,
    scorer: Arc<dyn ToxicityScorer>,
    /// With PostgreSQL: what this scanner shares with every machine (the control results).
    shared: std::sync::OnceLock<SharedState>,
}

/// The Reddit client, if credentials are configured and the HTTP client could be built.
enum RedditSetup {
    NotConfigured,
    Ready(Box<RedditClient>),
    Broken(String),
}

impl Scanner {
    /// `install` is `None` when Sherlock is not available: Sherlock scans then fail politely.
    pub fn new(config: Config, install: Option<SherlockInstall>) -> Self {
        let limits = Limits::from_config(&config);
        Self::with_limits(config, install, limits)
    }

    /// [`Scanner::new`] with limiters made elsewhere: to share one API quota between several
    /// scanners of a process, or to test pacing on a shorter window than a minute.
    pub fn with_limits(config: Config, install: Option<SherlockInstall>, limits: Limits) -> Self {
        let sherlock = install.map(|i| SherlockRunner::new(i, &config.sherlock));
        // Built only when some API will be called: loading the system's roots costs a few ms.
        let http = (config.reddit.is_some()
            || config.toxicity_backend != crate::config::ToxicityBackend::Local)
            .then(|| crate::net::http_client(config.http_timeout));
        let reddit = match (&config.reddit, &http) {
            (None, _) | (Some(_), None) => RedditSetup::NotConfigured,
            (Some(_), Some(Err(e))) => {
                RedditSetup::Broken(format!("the HTTP client could not be set up: {e}"))
            }
            (Some(r), Some(Ok(http))) => {
                match RedditClient::new(r.clone(), http.clone(), limits.reddit.clone()) {
                    Ok(client) => RedditSetup::Ready(Box::new(client)),
                    Err(e) => RedditSetup::Broken(e.to_string()),
                }
            }
        };
        let http = http.and_then(Result::ok);
        let scorer = toxicity::from_config(&config, http.as_ref(), &limits);
        Scanner {
            config,
            sherlock,
            sherlock_version: OnceCell::new(),
            limits,
            reddit,
            scorer,
            shared: std::sync::OnceLock::new(),
        }
    }

    /// Shares the API quotas and the control probe's results with every machine through the
    /// database (PostgreSQL), from now on.
    pub fn share(&self, shared: &SharedState) {
        self.limits.share(shared, &self.config);
        let _ = self.shared.set(shared.clone());
    }

    /// The process-wide API limiters (for their wait counters).
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Whether the Reddit half can run (credentials set).
    pub fn reddit_configured(&self) -> bool {
        !matches!(self.reddit, RedditSetup::NotConfigured)
    }

    /// The toxicity backend's name, model and heuristic flag.
    pub fn scorer_info(&self) -> crate::model::ScorerInfo {
        self.scorer.info()
    }

    /// Loads what the toxicity backend needs (the local model) now rather than at the first
    /// score; `Err` says why it cannot be used (the local backend then scores with its word
    /// lists alone).
    pub async fn prepare_scorer(&self) -> Result<(), String> {
        self.scorer.prepare().await
    }

    /// `TOXICITY_THRESHOLD`, else the backend's own.
    pub fn toxicity_threshold(&self) -> f64 {
        toxicity::threshold(self.config.toxicity_threshold, self.scorer.as_ref())
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn sherlock(&self) -> Option<&SherlockRunner> {
        self.sherlock.as_ref()
    }

    /// A request with the configured deadline.
    pub fn request(&self, username: Username, mode: ScanMode) -> ScanRequest {
        ScanRequest {
            username,
            mode,
            timeout: self.config.scan_timeout,
            requested_by: None,
            discord_member: None,
            toxicity_threshold: None,
        }
    }

    /// Sherlock's version: from its venv when known, else asked once and remembered.
    pub async fn sherlock_version(&self) -> Option<String> {
        let runner = self.sherlock.as_ref()?;
        self.sherlock_version
            .get_or_init(|| async {
                match &runner.install.version {
                    Some(v) => Some(v.clone()),
                    None => {
                        crate::sources::sherlock::install::query_version(&runner.install.program)
                            .await
                    }
                }
            })
            .await
            .clone()
    }

    /// [`Scanner::sherlock_version`], given up at the scan's deadline or cancellation (asking
    /// an explicit `SHERLOCK_BIN` can take up to its own timeout).
    async fn sherlock_version_until(
        &self,
        deadline: Instant,
        cancel: &CancellationToken,
    ) -> Option<String> {
        tokio::select! {
            version = self.sherlock_version() => version,
            _ = tokio::time::sleep_until(deadline) => None,
            _ = cancel.cancelled() => None,
        }
    }

    /// Runs one scan to its end (or deadline, or `cancel`) and returns its report. Its log
    /// lines carry the scan id, target and mode.
    pub async fn scan(
        &self,
        request: ScanRequest,
        events: EventSink,
        cancel: CancellationToken,
    ) -> ScanReport {
        use tracing::Instrument;
        let scan_id = new_scan_id();
        let span = tracing::info_span!("scan", scan_id = %scan_id, target = %request.username, mode = %request.mode);
        self.run_scan(scan_id, request, events, cancel)
            .instrument(span)
            .await
    }

    async fn run_scan(
        &self,
        scan_id: String,
        request: ScanRequest,
        events: EventSink,
        cancel: CancellationToken,
    ) -> ScanReport {
        let started_at = Utc::now();
        let clock = Instant::now();
        let deadline = clock + request.timeout;
        tracing::info!("scan started");

        let sherlock_half = async {
            if !request.mode.runs_sherlock() {
                return (SherlockSection::skipped(), None);
            }
            let (section, stopped) = self
                .run_sherlock(&request.username, deadline, &cancel, &events)
                .await;
            events.emit(ScanEvent::SherlockFinished {
                status: section.status,
            });
            (section, stopped)
        };
        let reddit_half = async {
            if !request.mode.runs_reddit() {
                return (RedditSection::skipped(), None);
            }
            let (section, stopped) = self
                .run_reddit(
                    &request.username,
                    request.toxicity_threshold,
                    deadline,
                    &cancel,
                    &events,
                )
                .await;
            events.emit(ScanEvent::RedditFinished {
                status: section.status,
            });
            (section, stopped)
        };
        let version = async {
            if request.mode.runs_sherlock() {
                self.sherlock_version_until(deadline, &cancel).await
            } else {
                None
            }
        };
        let ((sherlock, stopped), (reddit, reddit_stopped), sherlock_version) =
            tokio::join!(sherlock_half, reddit_half, version);

        let partial_reason = stopped
            .map(|why| partial_reason(why, &sherlock, request.timeout))
            .or_else(|| reddit_stopped.map(|why| stop_reason_text(why, request.timeout)))
            .map(|reason| match reddit_stopped {
                Some(_) => format!("{reason}; {}", section::partial_note(&reddit)),
                None => reason,
            });
        let report = ScanReport {
            schema_version: SCHEMA_VERSION,
            scan_id,
            request: RequestInfo {
                username: request.username.to_string(),
                mode: request.mode,
                timeout_s: request.timeout.as_secs(),
                requested_by: request.requested_by,
                discord_member: request.discord_member,
            },
            started_at,
            finished_at: Utc::now(),
            duration_ms: millis(clock.elapsed()),
            tools: ToolVersions {
                account_scanner: env!("CARGO_PKG_VERSION").to_string(),
                sherlock: sherlock_version,
            },
            partial: partial_reason.is_some(),
            partial_reason,
            sherlock,
            reddit,
            previous: None,
        };
        tracing::info!(
            partial = report.partial,
            hits = report.sherlock.counts.claimed,
            unverified = report.sherlock.counts.unverified,
            duration_ms = report.duration_ms,
            "scan finished"
        );
        let outcome = if report.sherlock.status == SectionStatus::Failed
            || report.reddit.status == SectionStatus::Failed
        {
            "failed"
        } else if report.partial {
            "partial"
        } else {
            "completed"
        };
        crate::ops::telemetry::scan_finished(
            request.mode.as_str(),
            outcome,
            Duration::from_millis(report.duration_ms),
        );
        report
    }

    async fn run_sherlock(
        &self,
        username: &Username,
        deadline: Instant,
        cancel: &CancellationToken,
        events: &EventSink,
    ) -> (SherlockSection, Option<StopReason>) {
        let site_list = self.config.sherlock.sites.to_string();
        let Some(runner) = &self.sherlock else {
            let section = SherlockSection {
                status: SectionStatus::Failed,
                error: Some(SherlockError::NotInstalled.to_string()),
                site_list,
                ..SherlockSection::skipped()
            };
            return (section, None);
        };
        let clock = Instant::now();
        let control = async {
            if !self.config.sherlock.control_check {
                return None;
            }
            let cache = (!self.config.sherlock.control_ttl.is_zero()).then(|| {
                ControlCache::new(&self.config.scans_dir, self.config.sherlock.control_ttl)
                    .shared_with(self.shared.get().cloned())
            });
            let version = self.sherlock_version_until(deadline, cancel).await;
            Some(control::guard(runner, cache.as_ref(), version.as_deref(), deadline, cancel).await)
        };
        let (mut run, control) =
            tokio::join!(runner.run(username, deadline, cancel, events), control);
        let (control, control_error) = match control {
            Some(Ok(result)) => {
                for site in run.sites.iter_mut() {
                    site.unreliable = site.status == crate::model::SiteStatus::Claimed
                        && result.claims_any_username.contains(&site.site);
                }
                (Some(result), None)
            }
            Some(Err(error)) => {
                tracing::warn!(%error, "control probe failed");
                (None, Some(error))
            }
            None => (None, None),
        };
        let (status, error, stopped) = match &run.outcome {
            RunOutcome::Completed => (SectionStatus::Completed, None, None),
            RunOutcome::Stopped(why) => (SectionStatus::Partial, None, Some(*why)),
            RunOutcome::Failed(e) => {
                tracing::error!(error = %e, checked = run.sites.len(), "sherlock failed");
                // What it printed before it died is real: kept, and said so.
                let error = match run.sites.len() {
                    0 => e.to_string(),
                    1 => format!("{e}; the 1 site result it printed before is kept"),
                    n => format!("{e}; the {n} site results it printed before are kept"),
                };
                (SectionStatus::Failed, Some(error), None)
            }
        };
        let section = SherlockSection {
            status,
            error,
            site_list,
            sites_total: run.sites_total,
            sites_checked: run.sites.len(),
            duration_ms: millis(clock.elapsed()),
            counts: StatusCounts::of(&run.sites),
            sites: run.sites,
            control_check: self.config.sherlock.control_check,
            control,
            control_error,
        };
        (section, stopped)
    }
}

impl Scanner {
    async fn run_reddit(
        &self,
        username: &Username,
        threshold: Option<f64>,
        deadline: Instant,
        cancel: &CancellationToken,
        events: &EventSink,
    ) -> (RedditSection, Option<StopReason>) {
        let client = match &self.reddit {
            RedditSetup::NotConfigured => return (RedditSection::not_configured(), None),
            RedditSetup::Broken(e) => return (RedditSection::failed(e.clone()), None),
            RedditSetup::Ready(client) => client,
        };
        let half = RedditSource {
            client,
            scorer: &self.scorer,
            threshold: threshold.or(self.config.toxicity_threshold),
            events,
        };
        half.run(username, deadline, cancel).await
    }
}

fn stop_reason_text(why: StopReason, timeout: Duration) -> String {
    match why {
        StopReason::Deadline => format!(
            "the scan reached its {}s deadline (SCAN_TIMEOUT)",
            timeout.as_secs()
        ),
        StopReason::Cancelled => "the scan was interrupted".to_string(),
    }
}

fn partial_reason(why: StopReason, sherlock: &SherlockSection, timeout: Duration) -> String {
    let checked = match sherlock.sites_total {
        Some(total) => format!("{} of {total} sites", sherlock.sites_checked),
        None if sherlock.sites_checked == 1 => "1 site".to_string(),
        None => format!("{} sites", sherlock.sites_checked),
    };
    match why {
        StopReason::Deadline => format!(
            "the scan reached its {}s deadline (SCAN_TIMEOUT); {checked} had been checked",
            timeout.as_secs()
        ),
        StopReason::Cancelled => format!("the scan was interrupted; {checked} had been checked"),
    }
}

fn new_scan_id() -> String {
    format!("{:08x}", rand::random::<u32>())
}

#[cfg(test)]
mod tests {
    use super::*;
    #[allow(dead_code)]
    fn assert_send<T: Send>(_: T) {}
    #[allow(dead_code)]
    fn scan_is_send(s: &Scanner, r: ScanRequest) {
        assert_send(s.scan(r, EventSink::none(), CancellationToken::new()));
    }
}
