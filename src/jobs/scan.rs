//! The scan job: everything between "scan this name" and the result in the channel, for any
//! face. Checks (disk space, a writable scans directory), the per-user cooldown, the queue, the
//! scan with throttled progress, saving the report, posting the result (retried, never twice)
//! and the audit entry.
//!
//! Where the words go is a [`Replies`]: the bot implements it for a Discord command; the tests
//! implement it with a recording fake, so this flow is tested without Discord.

use std::future::Future;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::audit;
use super::cooldown::Cooldowns;
pub use super::queue::Priority;
use super::queue::{QueueClosed, ScanQueue};
use super::settings::{self, Effective};
use super::shutdown::ShutdownPlan;
use crate::db::Db;
use crate::db::scans::{Place, Scope, TargetKey};
use crate::model::{
    DiscordMember, EventSink, ScanEvent, ScanMode, ScanReport, SectionStatus, SiteStatus, Username,
};
use crate::scanner::Scanner;
use crate::store::{ReportStore, SavedReport, StoreError};

/// Progress edits at most this often (Discord rate-limits message edits).
pub const PROGRESS_EVERY: Duration = Duration::from_secs(2);
/// The final edit of the acknowledgement waits at most this long.
pub const ACK_EDIT_BUDGET: Duration = Duration::from_secs(5);
/// Attempts at posting a scan's result: a single bad gateway must not lose it.
pub const RESULT_POST_ATTEMPTS: u32 = 3;

/// What the process shares between scan jobs.
pub struct Services<'a> {
    pub scanner: &'a Scanner,
    /// History, settings and the audit trail; `None`: none kept (a face without a database).
    pub db: Option<&'a Db>,
    pub store: &'a ReportStore,
    pub queue: &'a ScanQueue,
    /// With PostgreSQL: the queue every machine shares. Faces that can hand a job over (see
    /// [`Replies::handoff`]) queue it there; a worker on any machine runs it.
    pub shared: Option<&'a crate::db::shared::SharedState>,
    pub cooldowns: &'a Cooldowns,
    /// Scans are refused below this much free space in the scans directory.
    pub min_free_bytes: u64,
    /// Fired when shutdown is requested: posts then keep to the plan's `post_by`.
    pub stop_accepting: &'a CancellationToken,
    /// Fired when the grace period is over: running scans stop and post what they have.
    pub interrupt: &'a CancellationToken,
    pub shutdown: &'a OnceLock<ShutdownPlan>,
    /// Scans between the end of their scan and their result post: shutdown waits for them.
    pub posting: &'a AtomicUsize,
}

/// Who asked, where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requester {
    pub user_id: u64,
    pub user_name: String,
    pub channel: u64,
    pub guild: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct JobRequest {
    pub username: Username,
    /// The server member behind the name, when the target was a mention.
    pub member: Option<DiscordMember>,
    /// `None`: the server's default mode.
    pub mode: Option<ScanMode>,
    pub requester: Requester,
    /// Automatic scans (the join screen's) have no cooldown and wait behind moderators'.
    pub priority: Priority,
}

/// Live progress, shown in the acknowledgement.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Progress {
    pub sites_checked: usize,
    pub sites_total: Option<usize>,
    pub claimed: usize,
    pub sherlock_done: bool,
    pub reddit_account: Option<&'static str>,
    pub reddit_fetched: usize,
    pub reddit_scored: usize,
    pub reddit_done: bool,
}

/// What the acknowledgement says.
#[derive(Debug, Clone, PartialEq)]
pub enum Status<'a> {
    /// Just asked: `position` is `None` when the scan starts at once, else its place in line.
    Accepted {
        position: Option<usize>,
    },
    Running(&'a Progress),
    /// It never started (the queue closed for shutdown).
    NotStarted {
        why: String,
    },
    Finished {
        partial: bool,
    },
    /// The same target is already being scanned in this server for `requested_by`: this
    /// request gets that scan's result.
    Following {
        requested_by: u64,
    },
    /// It was accepted but will not finish (the machines running it stopped).
    Abandoned {
        why: String,
    },
    /// The machine running it is shutting down and gave it back to the shared queue: another
    /// machine runs it from the start.
    HandedOver,
}

/// The result to post: the report, its saved files, or why they could not be saved.
pub struct Outcome<'a> {
    pub report: &'a ScanReport,
    pub saved: Option<&'a SavedReport>,
    /// Set when the files could not be written: the reference of the log line saying why.
    pub not_saved_reference: Option<String>,
    /// Set when the scan could not be added to history (the database failed).
    pub history_not_saved_reference: Option<String>,
}

/// A post or edit that did not reach the channel.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct PostError {
    /// For the log: what failed, with no secret or token in it.
    pub detail: String,
    /// Worth another try (a 5xx, a 429, no answer).
    pub transient: bool,
    /// The request may have arrived without its answer coming back.
    pub no_answer: bool,
}

/// Where a job's words go: the acknowledgement (sent, then edited), the result, the audit.
pub trait Replies: Sync {
    /// The acknowledgement once sent, to be edited later.
    type Ack: Send + Sync;
    /// The result in the face's own form, built once and sent up to [`RESULT_POST_ATTEMPTS`] times.
    type Result: Send + Sync;

    fn acknowledge(
        &self,
        username: &Username,
        mode: ScanMode,
        status: Status<'_>,
    ) -> impl Future<Output = Result<Self::Ack, PostError>> + Send;

    fn edit(
        &self,
        ack: &Self::Ack,
        username: &Username,
        mode: ScanMode,
        status: Status<'_>,
    ) -> impl Future<Output = Result<(), PostError>> + Send;

    /// Reads the files and renders the result.
    fn prepare(&self, outcome: Outcome<'_>) -> impl Future<Output = Self::Result> + Send;

    /// One attempt at posting the result. A face whose posts carry an idempotency key (a
    /// prefix reply's nonce) may be called again after an attempt got no answer.
    fn post(
        &self,
        result: &Self::Result,
        scan_id: &str,
    ) -> impl Future<Output = Result<(), PostError>> + Send;

    /// Whether the channel already shows this scan's result; asked before posting again after
    /// an attempt that got no answer. Faces whose posts are idempotent answer `false`.
    fn already_posted(&self, scan_id: &str) -> impl Future<Output = bool> + Send;

    /// For the queue every machine shares: the job's key (the Discord message or interaction
    /// that asked: a request delivered twice is one job) and where a worker on any machine
    /// sends its words, with the acknowledgement once sent. `None`: this face's jobs run in
    /// this process only.
    fn handoff(
        &self,
        ack: Option<&Self::Ack>,
    ) -> impl Future<Output = Option<super::shared::Handoff>> + Send {
        let _ = ack;
        std::future::ready(None)
    }

    /// Shows an audit entry where the face shows them (the bot: the log channels). The job has
    /// already logged it and kept it in the database.
    fn audit(&self, entry: audit::Entry) -> impl Future<Output = ()> + Send;
}

/// Why a job ended without a result.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Refused before it started, with the words to show the user.
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Post(#[from] PostError),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// A short id that ties a message the user sees to the log line with the details.
pub fn reference_id() -> String {
    format!("{:06x}", rand::random::<u32>() & 0xff_ffff)
}

/// Runs one scan job to its end: checks, cooldown, queue, scan, save, post, audit.
pub async fn run<R: Replies>(
    services: &Services<'_>,
    replies: &R,
    job: JobRequest,
) -> Result<(), JobError> {
    let requester = job.requester.clone();
    let ran = run_job(services, replies, job).await;
    // A refusal is part of the audit trail too: who, where, why.
    if let Err(JobError::Refused(why)) = &ran {
        let entry = audit::Entry::Refused {
            user: requester.user_id,
            channel: requester.channel,
            guild: requester.guild,
            command: "scan".into(),
            why: why.clone(),
        };
        audit::keep(services.db, &entry).await;
        replies.audit(entry).await;
    }
    ran
}

async fn run_job<R: Replies>(
    services: &Services<'_>,
    replies: &R,
    job: JobRequest,
) -> Result<(), JobError> {
    let JobRequest {
        username,
        member,
        mode,
        requester,
        priority,
    } = job;
    check_shared_database(services.db).await?;
    let settings =
        settings::effective(services.db, services.scanner.config(), requester.guild).await;
    if !settings.allows_channel(requester.channel) {
        return Err(JobError::Refused(channels_refusal(&settings)));
    }
    let mode = mode.unwrap_or(settings.default_mode);
    if let Err(e) = services.store.check_free_space(services.min_free_bytes) {
        tracing::error!(error = %e, "scan refused: low disk space");
        return Err(JobError::Refused(
            "Sorry, the bot's disk is almost full, so no scan can start now. An admin can see the details in the log.".into(),
        ));
    }
    check_storage(services.store).await?;
    if priority == Priority::Moderator
        && let Err(refusal) = services
            .cooldowns
            .start((requester.guild, requester.user_id), settings.cooldown)
            .await
    {
        return Err(JobError::Refused(match refusal {
            super::cooldown::Refusal::Wait(left) => format!(
                "You're too fast. Please wait {} seconds before retrying",
                left.as_secs().max(1)
            ),
            super::cooldown::Refusal::Unavailable(why) => return Err(database_paused(&why)),
        }));
    }
    let order = ScanOrder {
        username,
        member,
        mode,
        requester,
        priority,
    };
    if let Some(shared) = services.shared
        && let Some(handoff) = replies.handoff(None).await
    {
        if services.queue.is_closed() {
            return Err(JobError::Refused(format!("Sorry, {QueueClosed}.")));
        }
        return super::shared::hand_over(shared, services.queue, replies, handoff, &order).await;
    }
    let ticket = services
        .queue
        .enqueue_at(order.priority)
        .map_err(|e| JobError::Refused(format!("Sorry, {e}.")))?;
    let ack = replies
        .acknowledge(
            &order.username,
            order.mode,
            Status::Accepted {
                position: ticket.position(),
            },
        )
        .await?;
    let slot = match ticket.start().await {
        Ok(slot) => slot,
        Err(QueueClosed) => {
            let why = QueueClosed.to_string();
            replies
                .edit(
                    &ack,
                    &order.username,
                    order.mode,
                    Status::NotStarted { why },
                )
                .await?;
            return Ok(());
        }
    };
    let scanned = scan_and_save(
        services,
        replies,
        &ack,
        &order,
        settings.toxicity_threshold,
        slot,
        services.interrupt.child_token(),
    )
    .await?;
    post_and_audit(services, replies, &ack, &order, &scanned).await
}

/// What to scan, resolved (the mode is the server's default when none was asked), for whom.
#[derive(Debug, Clone)]
pub struct ScanOrder {
    pub username: Username,
    pub member: Option<DiscordMember>,
    pub mode: ScanMode,
    pub requester: Requester,
    pub priority: Priority,
}

/// A scan done and saved, its result rendered and ready to post.
pub struct Scanned<'a, T> {
    pub report: ScanReport,
    pub result: T,
    /// Counts the scan among those still posting (shutdown waits for them) until dropped.
    _posting: Posting<'a>,
}

impl<'a, T> Scanned<'a, T> {
    /// A result scanned earlier (a job taken over after its result was stored).
    pub fn earlier(services: &Services<'a>, report: ScanReport, result: T) -> Self {
        Scanned {
            report,
            result,
            _posting: Posting::start(services.posting),
        }
    }
}

/// Runs the scan in its slot with progress in the acknowledgement, then saves the files, adds
/// the scan to history and renders the result. The slot is released when the scan ends.
pub async fn scan_and_save<'a, R: Replies>(
    services: &Services<'a>,
    replies: &R,
    ack: &R::Ack,
    order: &ScanOrder,
    toxicity_threshold: Option<f64>,
    slot: super::queue::Running,
    stop: CancellationToken,
) -> Result<Scanned<'a, R::Result>, JobError> {
    let ScanOrder {
        username,
        member,
        mode,
        requester,
        ..
    } = order;
    let (username, mode) = (username.clone(), *mode);
    let mut request = services.scanner.request(username.clone(), mode);
    request.requested_by = Some(format!(
        "discord user {} ({}) in guild {}",
        requester.user_id,
        requester.user_name,
        requester.guild.map(|g| g.to_string()).unwrap_or_default()
    ));
    let target = target_key(&username, member.as_ref());
    request.discord_member = member.clone();
    request.toxicity_threshold = toxicity_threshold;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let scan = tracing::Instrument::instrument(
        services.scanner.scan(request, EventSink::channel(tx), stop),
        tracing::info_span!(
            "discord_scan",
            guild = requester.guild,
            channel = requester.channel,
            requester = requester.user_id
        ),
    );
    // Progress never delays the result: when the scan ends, an edit still on its way (Discord
    // slow or not answering) is abandoned.
    let report = {
        tokio::pin!(scan);
        tokio::select! {
            biased;
            report = &mut scan => report,
            () = show_progress(replies, ack, &username, mode, rx) => scan.await,
        }
    };
    // The scan is done: its slot goes to the next one while this one saves and posts; shutdown
    // waits for the post (`posting`) within its budget.
    let posting = Posting::start(services.posting);
    drop(slot);

    let mut report = report;
    // A database that does not answer costs this scan its history, not its result: asked once,
    // so the post never waits for two timeouts.
    let db = answering(services.db).await;
    report.previous = previous_scan(db, requester.guild, &target, &report).await;
    let store = services.store.clone();
    let to_save = report.clone();
    // `save` makes the directory again if it was removed while the scan ran.
    let saved = tokio::task::spawn_blocking(move || store.save(&to_save))
        .await
        .map_err(|e| JobError::Internal(e.into()))?;
    let not_saved_reference = saved.as_ref().err().map(|e| {
        let reference = reference_id();
        tracing::error!(error = %e, scan_id = %report.scan_id, reference = %reference, "report not saved");
        reference
    });
    // Files first, then the row: history never points at a file that was not written.
    let history_not_saved_reference = match (&saved, services.db, db) {
        (Ok(_), Some(_), None) => {
            let reference = reference_id();
            tracing::error!(scan_id = %report.scan_id, reference = %reference, "scan not added to history: the database does not answer");
            Some(reference)
        }
        (Ok(saved), _, Some(db)) => {
            let place = Place {
                guild: requester.guild,
                channel: Some(requester.channel),
                requester: Some(requester.user_id),
                requester_name: Some(requester.user_name.clone()),
            };
            index_scan(db, &place, &report, saved).await
        }
        _ => None,
    };
    let result = replies
        .prepare(Outcome {
            report: &report,
            saved: saved.as_ref().ok(),
            not_saved_reference,
            history_not_saved_reference,
        })
        .await;
    Ok(Scanned {
        report,
        result,
        _posting: posting,
    })
}

/// The history key of a scan's target.
pub fn target_key(username: &Username, member: Option<&DiscordMember>) -> TargetKey {
    TargetKey {
        username: username.as_str().to_lowercase(),
        member: member.and_then(|m| m.user_id.parse().ok()),
    }
}

/// Posts the result (and marks the acknowledgement finished beside it), then writes the audit
/// entry.
pub async fn post_and_audit<R: Replies>(
    services: &Services<'_>,
    replies: &R,
    ack: &R::Ack,
    order: &ScanOrder,
    scanned: &Scanned<'_, R::Result>,
) -> Result<(), JobError> {
    let report = &scanned.report;
    // Best effort, beside the result and never before it: the acknowledgement may be gone
    // (deleted by a moderator) or the edit may fail or get no answer.
    let mark_finished = async {
        let finished = Status::Finished {
            partial: report.partial,
        };
        match tokio::time::timeout(
            ACK_EDIT_BUDGET,
            replies.edit(ack, &order.username, order.mode, finished),
        )
        .await
        {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "could not mark the acknowledgement finished")
            }
            Err(_) => tracing::warn!(
                "Discord did not answer the edit marking the acknowledgement finished; left as is"
            ),
        }
    };
    let (posted, ()) = tokio::join!(
        send_result(services, replies, &scanned.result, &report.scan_id),
        mark_finished
    );
    let requester = &order.requester;
    let entry = audit::Entry::Scan {
        requester: requester.user_id,
        channel: requester.channel,
        guild: requester.guild,
        target: order.username.to_string(),
        mode: order.mode.to_string(),
        scan_id: report.scan_id.clone(),
        hits: report.sherlock.counts.claimed,
        unverified: report.sherlock.counts.unverified,
        partial: report.partial,
        failed: report.sherlock.status == SectionStatus::Failed,
        duration_ms: report.duration_ms,
    };
    audit::keep(services.db, &entry).await;
    replies.audit(entry).await;
    posted?;
    Ok(())
}

/// With PostgreSQL the database holds what every machine shares (the API quotas): no scan
/// starts without it, rather than one outside the shared quotas. Scans already running finish
/// and post. SQLite is this machine's own file: a failure there costs history only.
async fn check_shared_database(db: Option<&Db>) -> Result<(), JobError> {
    match db.filter(|db| db.engine() == crate::db::Engine::Postgres) {
        Some(db) => db.answers().await.map_err(|why| database_paused(&why)),
        None => Ok(()),
    }
}

/// The refusal while PostgreSQL cannot be reached, logged with `why` under its reference.
pub(super) fn database_paused(why: &str) -> JobError {
    let reference = reference_id();
    tracing::error!(reference = %reference, error = %why, "scan refused: the database (PostgreSQL) cannot be reached");
    JobError::Refused(format!(
        "Sorry, the bot cannot reach its database, so scans are paused; they resume by themselves once it is back. An admin can find the details in the bot's log (reference `{reference}`)."
    ))
}

/// The database when it answers (else logged, `None`).
async fn answering(db: Option<&Db>) -> Option<&Db> {
    let db = db?;
    match db.answers().await {
        Ok(()) => Some(db),
        Err(why) => {
            tracing::error!(error = %why, "the database does not answer");
            None
        }
    }
}

/// The words of a refusal in a channel the server did not list for scans.
fn channels_refusal(settings: &Effective) -> String {
    let listed = settings
        .scan_channels
        .iter()
        .flatten()
        .map(|c| format!("<#{c}>"))
        .collect::<Vec<_>>()
        .join(", ");
    format!("Scans run only in {listed} in this server (an admin chose so with `settings`).")
}

/// The last earlier scan of the target in the same server, compared with this one. A database
/// that cannot be read costs the comparison only (logged).
pub async fn previous_scan(
    db: Option<&Db>,
    guild: Option<u64>,
    target: &TargetKey,
    report: &ScanReport,
) -> Option<crate::model::Previous> {
    let earlier = match db?.latest(Scope::of(guild), target).await {
        Ok(earlier) => earlier?,
        Err(e) => {
            tracing::error!(error = %e, "history unreadable; the result says nothing of earlier scans");
            return None;
        }
    };
    Some(crate::model::Previous::between(&earlier, report))
}

/// Adds the scan to history; returns the log reference when that failed.
pub async fn index_scan(
    db: &Db,
    place: &Place,
    report: &ScanReport,
    saved: &SavedReport,
) -> Option<String> {
    match db.record_scan(place, report, saved).await {
        Ok(()) => {
            db.note_success();
            None
        }
        Err(e) => {
            let reference = reference_id();
            tracing::error!(error = %e, scan_id = %report.scan_id, reference = %reference, "scan not added to history");
            db.note_failure(&reference);
            Some(reference)
        }
    }
}

/// Counts a finished scan whose result is still being saved and posted.
pub(super) struct Posting<'a>(&'a AtomicUsize);

impl<'a> Posting<'a> {
    pub(super) fn start(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Posting(count)
    }
}

impl Drop for Posting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Refuses (before the scan, not after it) when no report could be written: the scans
/// directory is read-only, full, or gone and cannot be made again. A directory removed while
/// the bot runs is made again here, so scans work once the storage is back.
async fn check_storage(store: &ReportStore) -> Result<(), JobError> {
    let store = store.clone();
    let checked = tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(store.dir()).map_err(|source| StoreError::CreateDir {
            dir: store.dir().to_path_buf(),
            source,
        })?;
        store.check_writable()
    })
    .await
    .map_err(|e| JobError::Internal(e.into()))?;
    checked.map_err(|e| {
        let reference = reference_id();
        tracing::error!(error = %e, reference = %reference, "scan refused: the scans directory is not writable");
        JobError::Refused(format!(
            "Sorry, the bot cannot save reports right now, so no scan can start. An admin can find why in the bot's log (reference `{reference}`)."
        ))
    })
}

/// Edits the acknowledgement with progress, at most every [`PROGRESS_EVERY`], until the scan
/// ends (its event channel closes).
async fn show_progress<R: Replies>(
    replies: &R,
    ack: &R::Ack,
    username: &Username,
    mode: ScanMode,
    mut events: tokio::sync::mpsc::UnboundedReceiver<ScanEvent>,
) {
    let mut p = Progress::default();
    let mut dirty = false;
    let mut tick = tokio::time::interval_at(Instant::now() + PROGRESS_EVERY, PROGRESS_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            event = events.recv() => {
                let Some(event) = event else { break };
                match event {
                    ScanEvent::SherlockStarted { sites_total } => p.sites_total = sites_total,
                    ScanEvent::SiteChecked { result, checked, sites_total } => {
                        p.sites_checked = checked;
                        p.sites_total = sites_total;
                        if result.status == SiteStatus::Claimed {
                            p.claimed += 1;
                        }
                    }
                    ScanEvent::SherlockFinished { .. } => p.sherlock_done = true,
                    ScanEvent::RedditAccount { status, .. } => p.reddit_account = Some(status.as_str()),
                    ScanEvent::RedditFetched { comments, posts } => p.reddit_fetched = comments + posts,
                    ScanEvent::RedditScored { done, .. } => p.reddit_scored = done,
                    ScanEvent::RedditFinished { .. } => p.reddit_done = true,
                }
                dirty = true;
            }
            _ = tick.tick(), if dirty => {
                dirty = false;
                if let Err(e) = replies.edit(ack, username, mode, Status::Running(&p)).await {
                    tracing::warn!(error = %e, "progress edit failed");
                }
            }
        }
    }
}

/// Sends the result, again after 1 s and 2 s when the post fails transiently, and never twice:
/// after an attempt that got no answer it first asks whether the channel already shows it.
/// During shutdown it gives up at the plan's `post_by`.
async fn send_result<R: Replies>(
    services: &Services<'_>,
    replies: &R,
    result: &R::Result,
    scan_id: &str,
) -> Result<(), JobError> {
    let attempts = async {
        let mut delay = Duration::from_secs(1);
        let mut attempt = 1;
        loop {
            match replies.post(result, scan_id).await {
                Ok(()) => return Ok(()),
                Err(e) if attempt < RESULT_POST_ATTEMPTS && e.transient => {
                    tracing::warn!(error = %e, attempt, "posting the result failed; trying again");
                    tokio::time::sleep(delay).await;
                    if e.no_answer && replies.already_posted(scan_id).await {
                        tracing::info!(scan_id, "the result had arrived after all");
                        return Ok(());
                    }
                    delay *= 2;
                    attempt += 1;
                }
                Err(e) => return Err(JobError::Post(e)),
            }
        }
    };
    // Once shutdown has started, a post may take no longer than its plan allows.
    let shutdown_budget = async {
        services.stop_accepting.cancelled().await;
        if let Some(plan) = services.shutdown.get() {
            tokio::time::sleep_until(plan.post_by).await;
        }
    };
    tokio::select! {
        posted = attempts => posted,
        () = shutdown_budget => Err(JobError::Internal(anyhow::anyhow!(
            "the shutdown budget ran out before Discord took the result"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::Mutex;

    use super::*;
    use crate::config::Config;

    /// The process side of a job, as the bot holds it.
    struct Fixture {
        scanner: Scanner,
        store: ReportStore,
        queue: ScanQueue,
        cooldowns: Cooldowns,
        min_free_bytes: u64,
        stop_accepting: CancellationToken,
        interrupt: CancellationToken,
        shutdown: OnceLock<ShutdownPlan>,
        posting: AtomicUsize,
        _dir: tempfile::TempDir,
    }

    impl Fixture {
        fn new(cooldown: Duration, slots: usize) -> Fixture {
            let dir = tempfile::tempdir().expect("tempdir");
            let scans = dir.path().join("scans");
            let config = Config::from_lookup(|k| match k {
                "SCANS_DIR" => Some(scans.display().to_string()),
                "TOXICITY_BACKEND" => Some("local".into()),
                "SCAN_COOLDOWN" => Some(cooldown.as_secs().to_string()),
                _ => None,
            })
            .expect("config");
            Fixture {
                scanner: Scanner::new(config, None),
                store: ReportStore::open(&scans).expect("store"),
                queue: ScanQueue::new(slots),
                cooldowns: Cooldowns::new(),
                min_free_bytes: 0,
                stop_accepting: CancellationToken::new(),
                interrupt: CancellationToken::new(),
                shutdown: OnceLock::new(),
                posting: AtomicUsize::new(0),
                _dir: dir,
            }
        }

        async fn hold_the_only_slot(&self) -> crate::jobs::queue::Running {
            self.queue
                .enqueue()
                .expect("open")
                .start()
                .await
                .expect("slot")
        }

        fn services(&self) -> Services<'_> {
            Services {
                scanner: &self.scanner,
                db: None,
                store: &self.store,
                queue: &self.queue,
                shared: None,
                cooldowns: &self.cooldowns,
                min_free_bytes: self.min_free_bytes,
                stop_accepting: &self.stop_accepting,
                interrupt: &self.interrupt,
                shutdown: &self.shutdown,
                posting: &self.posting,
            }
        }
    }

    /// A face that writes down what it was asked to say, and fails posts as told.
    #[derive(Default)]
    struct Recorder {
        said: Mutex<Vec<String>>,
        post_failures: Mutex<VecDeque<PostError>>,
        posts: AtomicUsize,
        result_in_channel: bool,
        audits: Mutex<Vec<audit::Entry>>,
    }

    impl Recorder {
        fn said(&self) -> Vec<String> {
            self.said.lock().expect("lock").clone()
        }

        async fn until_acknowledged(&self) {
            while self.said().is_empty() {
                tokio::task::yield_now().await;
            }
        }

        fn say(&self, line: String) {
            self.said.lock().expect("lock").push(line);
        }
    }

    fn describe(status: &Status<'_>) -> String {
        match status {
            Status::Accepted { position } => format!("accepted {position:?}"),
            Status::Running(p) => format!("running {} sites", p.sites_checked),
            Status::NotStarted { why } => format!("not started: {why}"),
            Status::Finished { partial } => format!("finished partial={partial}"),
            Status::Following { requested_by } => format!("following {requested_by}"),
            Status::Abandoned { why } => format!("abandoned: {why}"),
            Status::HandedOver => "handed over".to_string(),
        }
    }

    impl Replies for Recorder {
        type Ack = usize;
        type Result = String;

        async fn acknowledge(
            &self,
            username: &Username,
            mode: ScanMode,
            status: Status<'_>,
        ) -> Result<usize, PostError> {
            self.say(format!("ack {username} {mode}: {}", describe(&status)));
            Ok(1)
        }

        async fn edit(
            &self,
            ack: &usize,
            _: &Username,
            _: ScanMode,
            status: Status<'_>,
        ) -> Result<(), PostError> {
            self.say(format!("edit {ack}: {}", describe(&status)));
            Ok(())
        }

        async fn prepare(&self, outcome: Outcome<'_>) -> String {
            let files = outcome.saved.map(|s| s.paths().len()).unwrap_or(0);
            format!("result {} with {files} file(s)", outcome.report.scan_id)
        }

        async fn post(&self, result: &String, _: &str) -> Result<(), PostError> {
            self.posts.fetch_add(1, Ordering::SeqCst);
            if let Some(e) = self.post_failures.lock().expect("lock").pop_front() {
                return Err(e);
            }
            self.say(format!("post {result}"));
            Ok(())
        }

        async fn already_posted(&self, _: &str) -> bool {
            self.result_in_channel
        }

        async fn audit(&self, entry: audit::Entry) {
            self.audits.lock().expect("lock").push(entry);
        }
    }

    fn job(user: u64) -> JobRequest {
        JobRequest {
            username: Username::parse("alice").expect("valid"),
            member: None,
            mode: Some(ScanMode::Reddit),
            requester: Requester {
                user_id: user,
                user_name: "moderator".into(),
                channel: 20,
                guild: Some(30),
            },
            priority: Priority::Moderator,
        }
    }

    fn bad_gateway() -> PostError {
        PostError {
            detail: "502 Bad Gateway".into(),
            transient: true,
            no_answer: false,
        }
    }

    #[tokio::test]
    async fn a_job_acknowledges_scans_saves_posts_and_audits() {
        let fx = Fixture::new(Duration::ZERO, 1);
        let replies = Recorder::default();
        run(&fx.services(), &replies, job(10)).await.expect("job");
        let said = replies.said();
        assert_eq!(said[0], "ack alice reddit: accepted None");
        assert!(
            said.contains(&"edit 1: finished partial=false".to_string()),
            "{said:?}"
        );
        let posted: Vec<&String> = said.iter().filter(|l| l.starts_with("post ")).collect();
        assert_eq!(posted.len(), 1, "{said:?}");
        assert!(
            posted[0].ends_with("with 1 file(s)"),
            "the JSON report was saved: {said:?}"
        );
        let audits = replies.audits.lock().expect("lock");
        match audits.as_slice() {
            [
                audit::Entry::Scan {
                    requester,
                    channel,
                    guild,
                    target,
                    mode,
                    scan_id,
                    ..
                },
            ] => {
                assert_eq!((*requester, *channel, *guild), (10, 20, Some(30)));
                assert_eq!((target.as_str(), mode.as_str()), ("alice", "reddit"));
                assert!(posted[0].contains(scan_id.as_str()));
            }
            other => panic!("one scan entry expected: {other:?}"),
        }
        assert_eq!(fx.posting.load(Ordering::SeqCst), 0);
        assert_eq!(fx.queue.running(), 0);
    }

    #[tokio::test]
    async fn the_cooldown_starts_only_for_a_scan_that_passed_the_checks() {
        let mut fx = Fixture::new(Duration::from_secs(60), 1);
        fx.min_free_bytes = u64::MAX;
        let replies = Recorder::default();
        let refused = run(&fx.services(), &replies, job(10)).await;
        match refused {
            Err(JobError::Refused(m)) => assert!(m.contains("disk is almost full"), "{m}"),
            other => panic!("refused for space expected: {other:?}"),
        }
        assert!(
            replies.said().is_empty(),
            "nothing said before the checks pass"
        );
        fx.min_free_bytes = 0;
        run(&fx.services(), &replies, job(10))
            .await
            .expect("the storage refusal cost no cooldown");
        match run(&fx.services(), &replies, job(10)).await {
            Err(JobError::Refused(m)) => {
                let secs: u64 = m
                    .strip_prefix("You're too fast. Please wait ")
                    .and_then(|r| r.strip_suffix(" seconds before retrying"))
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_else(|| panic!("poise's wording expected: {m}"));
                assert!((58..=60).contains(&secs), "{m}");
            }
            other => panic!("cooldown expected: {other:?}"),
        }
        run(&fx.services(), &replies, job(11))
            .await
            .expect("another moderator is not cooling down");
    }

    #[tokio::test]
    async fn an_unwritable_scans_directory_refuses_before_the_scan() {
        let fx = Fixture::new(Duration::ZERO, 1);
        // A file where the directory should be: it can be neither written nor made again.
        std::fs::remove_dir_all(fx.store.dir()).expect("remove");
        std::fs::write(fx.store.dir(), b"not a directory").expect("file");
        let replies = Recorder::default();
        match run(&fx.services(), &replies, job(10)).await {
            Err(JobError::Refused(m)) => {
                assert!(m.contains("cannot save reports right now"), "{m}");
                assert!(m.contains("reference `"), "{m}");
            }
            other => panic!("refused expected: {other:?}"),
        }
        assert!(replies.said().is_empty());
        // The refusal is audited with its reason.
        match replies.audits.lock().expect("lock").as_slice() {
            [audit::Entry::Refused { command, why, .. }] => {
                assert_eq!(command, "scan");
                assert!(why.contains("cannot save reports right now"), "{why}");
            }
            other => panic!("one refusal expected: {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_queued_job_is_told_its_place_and_runs_when_a_slot_frees() {
        let fx = Fixture::new(Duration::ZERO, 1);
        let held = fx.hold_the_only_slot().await;
        let replies = Recorder::default();
        let services = fx.services();
        let job = run(&services, &replies, job(10));
        tokio::pin!(job);
        // The job acknowledges with its place, then waits for the slot.
        tokio::select! {
            _ = &mut job => panic!("the job cannot finish while the only slot is held"),
            () = replies.until_acknowledged() => {}
        }
        assert_eq!(replies.said(), vec!["ack alice reddit: accepted Some(1)"]);
        assert_eq!(fx.queue.waiting(), 1);
        drop(held);
        job.await.expect("runs once the slot is free");
        assert!(replies.said().iter().any(|l| l.starts_with("post ")));
    }

    #[tokio::test]
    async fn a_closed_queue_says_the_scan_did_not_start() {
        let fx = Fixture::new(Duration::ZERO, 1);
        let held = fx.hold_the_only_slot().await;
        let replies = Recorder::default();
        let services = fx.services();
        let job = run(&services, &replies, job(10));
        tokio::pin!(job);
        tokio::select! {
            _ = &mut job => panic!("waiting for the slot"),
            () = replies.until_acknowledged() => {}
        }
        fx.queue.close();
        job.await.expect("ends without an error");
        drop(held);
        assert_eq!(
            replies.said(),
            vec![
                "ack alice reddit: accepted Some(1)".to_string(),
                "edit 1: not started: the bot is shutting down and takes no new scans".to_string()
            ]
        );
        assert!(
            replies.audits.lock().expect("lock").is_empty(),
            "no scan, no entry"
        );
    }

    #[tokio::test]
    async fn a_result_is_posted_again_after_transient_failures_and_once_in_all() {
        let fx = Fixture::new(Duration::ZERO, 1);
        let replies = Recorder::default();
        replies
            .post_failures
            .lock()
            .expect("lock")
            .extend([bad_gateway(), bad_gateway()]);
        run(&fx.services(), &replies, job(10))
            .await
            .expect("third attempt lands");
        assert_eq!(replies.posts.load(Ordering::SeqCst), 3);
        let posted = replies
            .said()
            .iter()
            .filter(|l| l.starts_with("post "))
            .count();
        assert_eq!(posted, 1);
    }

    #[tokio::test]
    async fn a_post_without_an_answer_is_not_repeated_when_the_channel_shows_it() {
        let fx = Fixture::new(Duration::ZERO, 1);
        let replies = Recorder {
            result_in_channel: true,
            ..Recorder::default()
        };
        replies
            .post_failures
            .lock()
            .expect("lock")
            .push_back(PostError {
                detail: "timed out".into(),
                transient: true,
                no_answer: true,
            });
        run(&fx.services(), &replies, job(10))
            .await
            .expect("it had arrived");
        assert_eq!(
            replies.posts.load(Ordering::SeqCst),
            1,
            "never posted twice"
        );
    }

    #[tokio::test]
    async fn a_permanent_post_failure_is_an_error_and_still_audited() {
        let fx = Fixture::new(Duration::ZERO, 1);
        let replies = Recorder::default();
        replies
            .post_failures
            .lock()
            .expect("lock")
            .push_back(PostError {
                detail: "403 Missing Permissions".into(),
                transient: false,
                no_answer: false,
            });
        match run(&fx.services(), &replies, job(10)).await {
            Err(JobError::Post(e)) => assert_eq!(e.detail, "403 Missing Permissions"),
            other => panic!("post error expected: {other:?}"),
        }
        assert_eq!(replies.posts.load(Ordering::SeqCst), 1);
        assert_eq!(replies.audits.lock().expect("lock").len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn progress_is_edited_at_most_once_per_interval() {
        let replies = Recorder::default();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let username = Username::parse("alice").expect("valid");
        let feed = async {
            // 50 sites over 10 s: one event every 200 ms.
            for checked in 1..=50 {
                let _ = tx.send(ScanEvent::SiteChecked {
                    result: crate::model::SiteResult::new("Site", SiteStatus::Available),
                    checked,
                    sites_total: Some(50),
                });
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            drop(tx);
        };
        let started = Instant::now();
        tokio::join!(
            feed,
            show_progress(&replies, &1, &username, ScanMode::Sherlock, rx)
        );
        let edits = replies.said();
        let elapsed = started.elapsed();
        assert!(
            edits.len() as u128 <= elapsed.as_millis() / PROGRESS_EVERY.as_millis(),
            "{} edits in {elapsed:?}: {edits:?}",
            edits.len()
        );
        assert!(edits.len() >= 4, "progress is shown: {edits:?}");
        assert!(edits.iter().all(|e| e.starts_with("edit 1: running")));
    }
}
