//! A worker of the queue every machine shares: it claims jobs while this machine has a free
//! slot (`MAX_CONCURRENT_SCANS` per machine; the total is the sum), keeps each job's lease while
//! the scan runs, stores the result in the job's row before posting it (so a takeover posts
//! that result instead of scanning again) and posts only while it still holds the job. The bot
//! runs one beside its gateway; `account-scanner worker` runs one alone.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::scan::{
    JobError, Outcome, Replies, ScanOrder, Scanned, Services, Status, post_and_audit, scan_and_save,
};
use super::shared::{ReplyTarget, StoredOrder};
use crate::db::jobs::{ClaimedJob, FailedJob, WorkerSeen, state};
use crate::db::shared::SharedState;
use crate::model::ScanReport;

/// How soon a worker with a free slot asks again after finding no job; each empty answer in a
/// row doubles the wait up to [`POLL_AT_MOST`]. A job queued by this process, or a slot that
/// frees, wakes it at once; jobs queued by other machines are found within the current wait.
pub const POLL_EVERY: Duration = Duration::from_millis(200);
pub const POLL_AT_MOST: Duration = Duration::from_secs(1);
const BEAT_EVERY: Duration = Duration::from_secs(5);
/// Runs of one job (its machines died each time) before it is failed: a job that kills its
/// machine must not kill them all.
pub const MAX_ATTEMPTS: i32 = 3;
/// Finished jobs are deleted after this (their rows hold results; they are not history).
const KEEP_FINISHED_JOBS: Duration = Duration::from_secs(3600);
/// Tries at marking a posted job done before leaving it to the lease.
const FINISH_TRIES: u32 = 5;

/// What a worker needs from the process that runs it.
pub trait WorkerHost: Send + Sync + 'static {
    type Replies<'a>: Replies<Ack = ()> + Send
    where
        Self: 'a;

    fn services(&self) -> Services<'_>;

    /// Replies that reach the job's target from this machine.
    fn replies(&self, key: &str, target: ReplyTarget) -> Self::Replies<'_>;
}

/// Who this worker is, for the heartbeat and `health`.
#[derive(Debug, Clone)]
pub struct Identity {
    pub worker_id: String,
    pub machine: String,
    /// `bot` (beside a gateway) or `worker`.
    pub kind: &'static str,
    pub shards: String,
    pub slots: usize,
    /// A job's lease (`JOB_LEASE`): a worker that has not renewed it for this long is taken
    /// for dead. Renewed every third of it.
    pub lease: Duration,
}

impl Identity {
    pub fn new(kind: &'static str, shards: String, slots: usize, lease: Duration) -> Identity {
        let machine = crate::ops::host::hostname().unwrap_or_else(|| "unknown".into());
        Identity {
            worker_id: format!(
                "{machine}-{}-{:08x}",
                std::process::id(),
                rand::random::<u32>()
            ),
            machine,
            kind,
            shards,
            slots,
            lease,
        }
    }
}

/// Claims and runs jobs until `stop` fires; jobs already running go on (the caller's shutdown
/// plan waits for them through the local queue's slots).
pub async fn work<H: WorkerHost>(
    host: Arc<H>,
    shared: SharedState,
    me: Identity,
    stop: CancellationToken,
) {
    let started = chrono::Utc::now();
    tracing::info!(worker = %me.worker_id, slots = me.slots, "taking scans from the queue every machine shares");
    let mut next_beat = Instant::now();
    let mut disk_ok = true;
    let mut claim_failing = false;
    // The wait before asking again after an empty answer (doubles up to POLL_AT_MOST).
    let mut idle = POLL_EVERY;
    while !stop.is_cancelled() {
        if Instant::now() >= next_beat {
            next_beat = Instant::now() + BEAT_EVERY;
            disk_ok = beat(&*host, &shared, &me, started).await;
            for failed in shared
                .sweep_failed_jobs(MAX_ATTEMPTS)
                .await
                .unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "could not look for abandoned jobs");
                    Vec::new()
                })
            {
                tell_failed(&*host, failed).await;
            }
            if let Err(e) = shared.purge_finished_jobs(KEEP_FINISHED_JOBS).await {
                tracing::warn!(error = %e, "could not delete finished jobs");
            }
        }
        let services = host.services();
        // Registered before the slots are looked at, so one freed meanwhile still wakes it.
        let slot_freed = services.queue.changed();
        tokio::pin!(slot_freed);
        slot_freed.as_mut().enable();
        let free = disk_ok.then(|| services.queue.try_start()).flatten();
        // Every slot busy: the next job is looked for when one frees, not on a timer.
        let all_busy = disk_ok && free.is_none();
        let claimed = match free {
            Some(slot) => match shared
                .claim_job(&me.worker_id, me.lease, MAX_ATTEMPTS)
                .await
            {
                Ok(Some(job)) => Some((job, slot)),
                Ok(None) => {
                    if claim_failing {
                        tracing::info!("the shared queue answers again");
                    }
                    claim_failing = false;
                    idle = (idle * 2).min(POLL_AT_MOST);
                    None
                }
                Err(e) => {
                    if !claim_failing {
                        tracing::error!(error = %e, "cannot take jobs from the shared queue; trying again");
                    }
                    claim_failing = true;
                    None
                }
            },
            None => None,
        };
        if let Some((job, slot)) = claimed {
            claim_failing = false;
            idle = POLL_EVERY;
            let (host, shared, worker) = (host.clone(), shared.clone(), me.worker_id.clone());
            let lease = me.lease;
            tokio::spawn(
                async move { run_claimed(&*host, &shared, (&worker, lease), job, slot).await },
            );
            continue;
        }
        tokio::select! {
            () = tokio::time::sleep(idle) => {}
            () = &mut slot_freed, if all_busy => {}
            () = services.queue.arrived() => idle = POLL_EVERY,
            () = stop.cancelled() => {}
        }
    }
    if let Err(e) = shared.retire_worker(&me.worker_id).await {
        tracing::warn!(error = %e, "could not remove this worker's heartbeat");
    }
    tracing::info!(worker = %me.worker_id, "no longer taking scans");
}

/// Records the heartbeat; returns whether this machine can save reports (it claims no job
/// otherwise: another machine may).
async fn beat<H: WorkerHost>(
    host: &H,
    shared: &SharedState,
    me: &Identity,
    started: chrono::DateTime<chrono::Utc>,
) -> bool {
    let services = host.services();
    let seen = WorkerSeen {
        worker_id: me.worker_id.clone(),
        machine: me.machine.clone(),
        kind: me.kind.into(),
        shards: me.shards.clone(),
        slots: u32::try_from(me.slots).unwrap_or(u32::MAX),
        running: u32::try_from(services.queue.running()).unwrap_or(u32::MAX),
        seen_ago: Duration::ZERO,
    };
    if let Err(e) = shared.beat(&seen, started).await {
        tracing::warn!(error = %e, "could not record this worker's heartbeat");
    }
    let store = services.store.clone();
    let min_free = services.min_free_bytes;
    let writable = tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(store.dir())?;
        store
            .check_writable()
            .and_then(|()| store.check_free_space(min_free))
            .map_err(std::io::Error::other)
    })
    .await;
    match writable {
        Ok(Ok(())) => true,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "this machine cannot save reports: it takes no scan until it can");
            false
        }
        Err(e) => {
            tracing::error!(error = %e, "the storage check did not finish");
            false
        }
    }
}

/// Keeps the job's lease until dropped; fires `lost` when another worker holds the job. Its
/// `held_until` says until when this worker surely holds it (by its own clock, from the last
/// renewal that succeeded).
struct LeaseKeeper {
    lost: CancellationToken,
    held_until: Arc<std::sync::Mutex<Instant>>,
    task: tokio::task::JoinHandle<()>,
}

impl LeaseKeeper {
    fn start(
        shared: &SharedState,
        key: &str,
        (worker, lease): (&str, Duration),
        claimed_at: Instant,
    ) -> LeaseKeeper {
        let lost = CancellationToken::new();
        // A tenth less than the lease: the database's clock started it a little later.
        let margin = lease / 10;
        let held_until = Arc::new(std::sync::Mutex::new(claimed_at + lease - margin));
        let task = {
            let (shared, key, worker) = (shared.clone(), key.to_string(), worker.to_string());
            let (lost, held_until) = (lost.clone(), held_until.clone());
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(lease / 3).await;
                    let asked = Instant::now();
                    match shared.renew_lease(&key, &worker, lease).await {
                        Ok(true) => {
                            *held_until.lock().unwrap_or_else(|e| e.into_inner()) =
                                asked + lease - margin;
                        }
                        Ok(false) => {
                            tracing::warn!(job = %key, "another worker holds this job now: this one stops");
                            lost.cancel();
                            return;
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, job = %key, "could not renew the job's lease")
                        }
                    }
                }
            })
        };
        LeaseKeeper {
            lost,
            held_until,
            task,
        }
    }

    fn surely_held(&self) -> bool {
        !self.lost.is_cancelled()
            && Instant::now() < *self.held_until.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for LeaseKeeper {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Runs (or, when its result is stored, posts) one claimed job to its end.
async fn run_claimed<H: WorkerHost>(
    host: &H,
    shared: &SharedState,
    (worker, lease): (&str, Duration),
    job: ClaimedJob,
    slot: super::queue::Running,
) {
    let key = job.key.clone();
    let claimed_at = Instant::now();
    let (order, target) = match StoredOrder::parse(&key, &job.request)
        .and_then(|o| o.into_order(&key))
        .and_then(|o| Ok((o, ReplyTarget::parse(&key, &job.reply)?)))
    {
        Ok(read) => read,
        Err(e) => {
            tracing::error!(error = %e, "a queued job cannot be read; it is failed");
            let _ = shared.finish_job(&key, worker, state::FAILED).await;
            return;
        }
    };
    if job.attempts > 1 {
        tracing::warn!(job = %key, attempt = job.attempts, "taking over a job whose worker stopped");
    }
    let keeper = LeaseKeeper::start(shared, &key, (worker, lease), claimed_at);
    let services = host.services();
    let replies = host.replies(&key, target);
    let ran = match (job.state.as_str(), job.result.as_deref(), job.scan_id) {
        (state::POSTING, Some(result), Some(scan_id)) => {
            drop(slot);
            post_stored(&services, &replies, &order, &scan_id, result).await
        }
        _ => {
            let settings = super::settings::effective(
                services.db,
                services.scanner.config(),
                order.requester.guild,
            )
            .await;
            let stop = CancellationToken::new();
            let watch = watch_job(&services, shared, (&key, worker), &keeper, &stop);
            let scanned = tokio::select! {
                scanned = scan_and_save(
                    &services,
                    &replies,
                    &(),
                    &order,
                    settings.toxicity_threshold,
                    slot,
                    stop.clone(),
                ) => scanned,
                // The scan (its Sherlock killed on drop) ends here unsaved and unposted.
                _telling = watch => {
                    tracing::info!(job = %key, "this machine is shutting down: the job is back in the shared queue for another machine");
                    if let Err(e) = replies
                        .edit(&(), &order.username, order.mode, Status::HandedOver)
                        .await
                    {
                        tracing::warn!(error = %e, job = %key, "could not tell the moderator the scan moved to another machine");
                    }
                    return;
                }
            };
            match scanned {
                Ok(scanned) => {
                    post_if_held(
                        &services,
                        &replies,
                        shared,
                        (&key, worker),
                        &keeper,
                        &order,
                        &scanned,
                    )
                    .await
                }
                Err(e) => Err(e),
            }
        }
    };
    let final_state = match &ran {
        Ok(true) => state::DONE,
        Ok(false) => return,
        Err(e) => {
            let reference = super::scan::reference_id();
            tracing::error!(error = %e, job = %key, reference = %reference, "the job failed");
            let why = format!(
                "something went wrong on the bot's side (reference `{reference}` in its log)"
            );
            if let Err(e) = replies
                .edit(&(), &order.username, order.mode, Status::Abandoned { why })
                .await
            {
                tracing::warn!(error = %e, job = %key, "could not tell the moderator the job failed");
            }
            state::FAILED
        }
    };
    drop(keeper);
    for attempt in 1..=FINISH_TRIES {
        match shared.finish_job(&key, worker, final_state).await {
            Ok(_) => return,
            Err(e) if attempt < FINISH_TRIES => {
                tracing::warn!(error = %e, job = %key, "could not mark the job {final_state}; trying again");
                tokio::time::sleep(Duration::from_secs(u64::from(attempt))).await;
            }
            Err(e) => {
                tracing::error!(error = %e, job = %key, "could not mark the job {final_state}; its lease will run out and a takeover will find it posted")
            }
        }
    }
}

/// Watches a running job: a lost lease stops its scan (another worker has it); shutdown's
/// interrupt gives it back to the line when another machine's worker can run it from the start
/// (this one resolves, holding shutdown's wait until the moderator is told), else stops it so
/// this machine posts a partial result as a lone machine does.
async fn watch_job<'a>(
    services: &Services<'a>,
    shared: &SharedState,
    (key, worker): (&str, &str),
    keeper: &LeaseKeeper,
    stop: &CancellationToken,
) -> super::scan::Posting<'a> {
    tokio::select! {
        () = keeper.lost.cancelled() => {}
        () = services.interrupt.cancelled() => {
            let telling = super::scan::Posting::start(services.posting);
            if another_worker_lives(shared, worker).await {
                match shared.release_job(key, worker).await {
                    Ok(true) => return telling,
                    Ok(false) => {}
                    Err(e) => tracing::warn!(error = %e, job = %key, "could not give the job back to the shared queue; interrupting it here"),
                }
            }
        }
    }
    stop.cancel();
    std::future::pending().await
}

/// Whether a worker of another machine (or process) is alive and runs scans.
async fn another_worker_lives(shared: &SharedState, me: &str) -> bool {
    match shared.live_workers().await {
        Ok(workers) => workers.iter().any(|w| w.worker_id != me && w.slots > 0),
        Err(e) => {
            tracing::warn!(error = %e, "could not see the other workers");
            false
        }
    }
}

/// Stores the result in the job's row, then posts it if this worker still holds the job:
/// `Ok(false)` when another worker took it over (it posts instead).
async fn post_if_held<R: Replies<Ack = ()>>(
    services: &Services<'_>,
    replies: &R,
    shared: &SharedState,
    (key, worker): (&str, &str),
    keeper: &LeaseKeeper,
    order: &ScanOrder,
    scanned: &Scanned<'_, R::Result>,
) -> Result<bool, JobError> {
    let report = &scanned.report;
    let json = String::from_utf8_lossy(&report.to_json()).into_owned();
    match shared
        .start_posting(key, worker, &report.scan_id, &json)
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!(scan_id = %report.scan_id, "another worker took this job over: its result is not posted from here");
            return Ok(false);
        }
        // The database is away: post while the lease is surely still this worker's (nobody
        // can take the job over before it runs out).
        Err(e) if keeper.surely_held() => {
            tracing::warn!(error = %e, "the result could not be stored with its job; posting it while this worker surely holds the job");
        }
        Err(e) => {
            tracing::error!(error = %e, scan_id = %report.scan_id, "the result could not be stored and this worker's lease may have run out: not posted from here");
            return Ok(false);
        }
    }
    post_and_audit(services, replies, &(), order, scanned).await?;
    Ok(true)
}

/// Posts a result an earlier run (or the job it followed) stored, unless the channel shows it.
async fn post_stored<R: Replies<Ack = ()>>(
    services: &Services<'_>,
    replies: &R,
    order: &ScanOrder,
    scan_id: &str,
    result: &str,
) -> Result<bool, JobError> {
    if replies.already_posted(scan_id).await {
        tracing::info!(
            scan_id,
            "the result was posted before the last worker stopped"
        );
        return Ok(true);
    }
    let report: ScanReport =
        serde_json::from_str(result).map_err(|e| JobError::Internal(e.into()))?;
    let store = services.store.clone();
    let found = report.clone();
    // This machine may not have the files (another wrote them): it writes its own copy.
    let saved = tokio::task::spawn_blocking(move || match store.find_saved(&found) {
        Some(saved) => Ok(saved),
        None => store.save(&found),
    })
    .await
    .map_err(|e| JobError::Internal(e.into()))?;
    let not_saved_reference = saved.as_ref().err().map(|e| {
        let reference = super::scan::reference_id();
        tracing::error!(error = %e, reference = %reference, "report not saved on this machine");
        reference
    });
    let result = replies
        .prepare(Outcome {
            report: &report,
            saved: saved.as_ref().ok(),
            not_saved_reference,
            history_not_saved_reference: None,
        })
        .await;
    let scanned = Scanned::earlier(services, report, result);
    post_and_audit(services, replies, &(), order, &scanned).await?;
    Ok(true)
}

/// Tells the moderator a job will not finish.
async fn tell_failed<H: WorkerHost>(host: &H, failed: FailedJob) {
    let order =
        StoredOrder::parse(&failed.key, &failed.request).and_then(|o| o.into_order(&failed.key));
    let target = ReplyTarget::parse(&failed.key, &failed.reply);
    let (Ok(order), Ok(target)) = (order, target) else {
        tracing::error!(job = %failed.key, "a failed job cannot be read: nobody was told");
        return;
    };
    let why = if failed.followed {
        "the scan it was waiting for could not be finished".to_string()
    } else if failed.attempts >= MAX_ATTEMPTS {
        format!("the machine running it stopped {} times", failed.attempts)
    } else {
        "the machine running it stopped and it is too late to run it again".to_string()
    };
    tracing::warn!(job = %failed.key, guild = failed.guild, channel = failed.channel, why, "a job failed");
    let replies = host.replies(&failed.key, target);
    if let Err(e) = replies
        .edit(&(), &order.username, order.mode, Status::Abandoned { why })
        .await
    {
        tracing::warn!(error = %e, job = %failed.key, "could not tell the moderator the job failed");
    }
}
