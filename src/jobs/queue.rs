//! At most `MAX_CONCURRENT_SCANS` scans at once; the rest wait in FIFO order and know their place.
//! Automatic scans (the join screen's) wait in a line of their own and take a slot only when no
//! moderator's scan is waiting: a moderator never waits behind them.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};

use tokio::sync::{AcquireError, Notify, OwnedSemaphorePermit, Semaphore};

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the bot is shutting down and takes no new scans")]
pub struct QueueClosed;

#[derive(Debug)]
pub struct ScanQueue {
    // tokio's semaphore hands permits to waiters in the order they asked: that is the FIFO.
    slots: Arc<Semaphore>,
    counts: Arc<Counts>,
    /// Automatic scans' own FIFO: the first in it is the only one looking for a slot.
    automatic_line: Arc<Semaphore>,
    /// A job was handed to the queue every machine shares from this process: this process's
    /// worker looks for it at once instead of at its next poll.
    arrivals: Notify,
}

#[derive(Debug, Default)]
struct Counts {
    /// Moderators' scans waiting for a slot.
    waiting: AtomicUsize,
    waiting_automatic: AtomicUsize,
    running: AtomicUsize,
    /// Woken when a slot frees or a moderator's scan stops waiting.
    changed: Notify,
}

impl Counts {
    fn publish(&self) {
        crate::ops::telemetry::queue(
            self.waiting.load(Ordering::SeqCst) + self.waiting_automatic.load(Ordering::SeqCst),
            self.running.load(Ordering::SeqCst),
        );
        self.changed.notify_waiters();
    }
}

/// Who a scan is for: a moderator's request, or the join screen's automatic scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    Moderator,
    Automatic,
}

impl ScanQueue {
    pub fn new(max_concurrent: usize) -> Self {
        ScanQueue {
            slots: Arc::new(Semaphore::new(max_concurrent.max(1))),
            counts: Arc::new(Counts::default()),
            automatic_line: Arc::new(Semaphore::new(1)),
            arrivals: Notify::new(),
        }
    }

    /// Resolves when a slot frees or the line changes (registered once first polled or
    /// `enable`d).
    pub fn changed(&self) -> tokio::sync::futures::Notified<'_> {
        self.counts.changed.notified()
    }

    /// Tells this process's worker that a job was just queued in the shared queue.
    pub fn nudge(&self) {
        self.arrivals.notify_one();
    }

    /// Resolves after a [`ScanQueue::nudge`] (at once if one came since the last wait).
    pub async fn arrived(&self) {
        self.arrivals.notified().await;
    }

    pub fn running(&self) -> usize {
        self.counts.running.load(Ordering::SeqCst)
    }

    /// Scans waiting, moderators' and automatic ones.
    pub fn waiting(&self) -> usize {
        self.counts.waiting.load(Ordering::SeqCst)
            + self.counts.waiting_automatic.load(Ordering::SeqCst)
    }

    /// A free slot now, only when nobody waits here (how a worker of the shared queue takes a
    /// job: it claims one only with a slot in hand).
    pub fn try_start(&self) -> Option<Running> {
        if self.is_closed() || self.waiting() > 0 {
            return None;
        }
        self.slots
            .clone()
            .try_acquire_owned()
            .ok()
            .map(|permit| self.run(permit))
    }

    pub fn is_closed(&self) -> bool {
        self.slots.is_closed()
    }

    /// Takes no new scans; scans still waiting are told so when they wake.
    pub fn close(&self) {
        self.slots.close();
        self.automatic_line.close();
        self.counts.changed.notify_waiters();
    }

    /// Joins the queue at `priority` (see [`ScanQueue::enqueue`] and
    /// [`ScanQueue::enqueue_automatic`]).
    pub fn enqueue_at(&self, priority: Priority) -> Result<Ticket<'_>, QueueClosed> {
        match priority {
            Priority::Moderator => self.enqueue(),
            Priority::Automatic => self.enqueue_automatic(),
        }
    }

    /// Joins the automatic scans' line: a free slot at once only when nobody (moderator or
    /// automatic) waits; else its place among the automatic scans. It takes a slot only while no
    /// moderator's scan waits.
    pub fn enqueue_automatic(&self) -> Result<Ticket<'_>, QueueClosed> {
        if self.is_closed() {
            return Err(QueueClosed);
        }
        if self.waiting() == 0
            && let Ok(permit) = self.slots.clone().try_acquire_owned()
        {
            return Ok(Ticket {
                queue: self,
                slot: Some(self.run(permit)),
                waiting: None,
                position: None,
                automatic: false,
            });
        }
        let ahead = self.counts.waiting_automatic.fetch_add(1, Ordering::SeqCst);
        self.counts.publish();
        Ok(Ticket {
            queue: self,
            slot: None,
            waiting: None,
            position: Some(ahead + 1),
            automatic: true,
        })
    }

    /// An automatic scan's wait: first in its own line, then for a slot no moderator wants.
    async fn wait_automatic(&self) -> Result<OwnedSemaphorePermit, QueueClosed> {
        let _first_in_line = self
            .automatic_line
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| QueueClosed)?;
        loop {
            let changed = self.counts.changed.notified();
            tokio::pin!(changed);
            // Registered before the check, so a change between the check and the await wakes it.
            changed.as_mut().enable();
            if self.slots.is_closed() {
                return Err(QueueClosed);
            }
            if self.counts.waiting.load(Ordering::SeqCst) == 0 {
                match self.slots.clone().try_acquire_owned() {
                    Ok(permit) => return Ok(permit),
                    Err(tokio::sync::TryAcquireError::Closed) => return Err(QueueClosed),
                    Err(tokio::sync::TryAcquireError::NoPermits) => {}
                }
            }
            changed.await;
        }
    }

    /// Joins the queue: takes a free slot at once if there is one, else a place in line.
    ///
    /// The place is taken here, not when the ticket is first awaited: the acquire future is
    /// polled once now, which puts it in the semaphore's FIFO list, so a slot freed before
    /// `start` goes to this ticket and not to a newer scan's `enqueue`.
    pub fn enqueue(&self) -> Result<Ticket<'_>, QueueClosed> {
        match self.slots.clone().try_acquire_owned() {
            Ok(permit) => Ok(Ticket {
                queue: self,
                slot: Some(self.run(permit)),
                waiting: None,
                position: None,
                automatic: false,
            }),
            Err(tokio::sync::TryAcquireError::Closed) => Err(QueueClosed),
            Err(tokio::sync::TryAcquireError::NoPermits) => {
                let mut acquire: PendingSlot = Box::pin(self.slots.clone().acquire_owned());
                let mut first_poll = Context::from_waker(Waker::noop());
                match acquire.as_mut().poll(&mut first_poll) {
                    // A slot freed between the two calls above.
                    Poll::Ready(Ok(permit)) => Ok(Ticket {
                        queue: self,
                        slot: Some(self.run(permit)),
                        waiting: None,
                        position: None,
                        automatic: false,
                    }),
                    Poll::Ready(Err(_)) => Err(QueueClosed),
                    Poll::Pending => {
                        let ahead = self.counts.waiting.fetch_add(1, Ordering::SeqCst);
                        self.counts.publish();
                        Ok(Ticket {
                            queue: self,
                            slot: None,
                            waiting: Some(acquire),
                            position: Some(ahead + 1),
                            automatic: false,
                        })
                    }
                }
            }
        }
    }
}

impl ScanQueue {
    /// A slot counts as running from the moment it is taken, not when the scan first awaits
    /// it: shutdown must wait for a scan whose acknowledgement is still on its way.
    fn run(&self, permit: OwnedSemaphorePermit) -> Running {
        self.counts.running.fetch_add(1, Ordering::SeqCst);
        self.counts.publish();
        Running {
            _permit: permit,
            counts: self.counts.clone(),
        }
    }
}

/// A place in the semaphore's line, already registered there.
type PendingSlot =
    Pin<Box<dyn Future<Output = Result<OwnedSemaphorePermit, AcquireError>> + Send + Sync>>;

/// A place in the queue (or a slot already taken); dropping it leaves the queue.
pub struct Ticket<'a> {
    queue: &'a ScanQueue,
    slot: Option<Running>,
    waiting: Option<PendingSlot>,
    position: Option<usize>,
    /// Waiting in the automatic scans' line.
    automatic: bool,
}

impl std::fmt::Debug for Ticket<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ticket")
            .field("has_slot", &self.slot.is_some())
            .field("position", &self.position)
            .finish()
    }
}

impl Ticket<'_> {
    /// `None` when the scan starts at once, else its 1-based place among the waiting scans of
    /// its priority.
    pub fn position(&self) -> Option<usize> {
        self.position
    }

    /// Waits for a free slot (FIFO) unless it already has one.
    pub async fn start(mut self) -> Result<Running, QueueClosed> {
        let permit = match self.slot.take() {
            Some(running) => return Ok(running),
            None if self.automatic => {
                let permit = self.queue.wait_automatic().await;
                self.queue
                    .counts
                    .waiting_automatic
                    .fetch_sub(1, Ordering::SeqCst);
                self.position = None;
                permit?
            }
            None => {
                let permit = match self.waiting.take() {
                    Some(acquire) => acquire.await,
                    None => self.queue.slots.clone().acquire_owned().await,
                };
                self.queue.counts.waiting.fetch_sub(1, Ordering::SeqCst);
                self.position = None;
                permit.map_err(|_| QueueClosed)?
            }
        };
        Ok(self.queue.run(permit))
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        // Still in line (never started): leave it.
        if self.slot.is_none() && self.position.is_some() {
            let line = if self.automatic {
                &self.queue.counts.waiting_automatic
            } else {
                &self.queue.counts.waiting
            };
            line.fetch_sub(1, Ordering::SeqCst);
            self.queue.counts.publish();
        }
    }
}

/// A running scan's slot, released on drop.
#[derive(Debug)]
pub struct Running {
    _permit: OwnedSemaphorePermit,
    counts: Arc<Counts>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.counts.running.fetch_sub(1, Ordering::SeqCst);
        self.counts.publish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Polls once (the runtime's later awaits poll it again with a real waker).
    fn poll_once<F: Future + Unpin>(f: &mut F) -> Poll<F::Output> {
        Pin::new(f).poll(&mut Context::from_waker(Waker::noop()))
    }

    #[tokio::test]
    async fn third_scan_waits_first_in_line_and_runs_when_a_slot_frees() {
        let q = ScanQueue::new(2);
        let a = q.enqueue().expect("open");
        assert_eq!(a.position(), None);
        let a = a.start().await.expect("starts");
        let b = q.enqueue().expect("open").start().await.expect("starts");
        let c = q.enqueue().expect("open");
        assert_eq!(c.position(), Some(1));
        let d = q.enqueue().expect("open");
        assert_eq!(d.position(), Some(2));
        assert_eq!((q.running(), q.waiting()), (2, 2));

        let (c_running, ()) = tokio::join!(c.start(), async move { drop(a) });
        assert!(c_running.is_ok(), "c starts once a finishes");
        drop(b);
        let d = d.start().await.expect("d starts after b");
        assert_eq!(q.waiting(), 0);
        drop((c_running, d));
        assert_eq!(q.running(), 0);
    }

    /// The window between `enqueue` (place announced) and `start` (first await): the bot spends
    /// it sending the acknowledgement to Discord. A slot freed then must go to the scan that
    /// was announced first, not to a newer one.
    #[tokio::test]
    async fn a_slot_freed_before_the_waiter_starts_goes_to_the_waiter_not_a_newer_scan() {
        let q = ScanQueue::new(1);
        let running = q.enqueue().expect("open").start().await.expect("starts");
        let first = q.enqueue().expect("open");
        assert_eq!(first.position(), Some(1));
        drop(running);
        let newer = q.enqueue().expect("open");
        assert_eq!(
            newer.position(),
            Some(2),
            "the newer scan waits behind the one announced first (not started yet)"
        );
        let first = tokio::time::timeout(std::time::Duration::from_secs(1), first.start())
            .await
            .expect("the first waiter has the freed slot")
            .expect("open");
        assert_eq!((q.running(), q.waiting()), (1, 1));
        drop(first);
        let newer = newer.start().await.expect("the newer one runs next");
        assert_eq!((q.running(), q.waiting()), (1, 0));
        drop(newer);
        assert_eq!(q.running(), 0);
    }

    #[tokio::test]
    async fn a_waiter_that_leaves_the_line_passes_its_slot_on() {
        let q = ScanQueue::new(1);
        let running = q.enqueue().expect("open").start().await.expect("starts");
        let leaving = q.enqueue().expect("open");
        let next = q.enqueue().expect("open");
        assert_eq!(next.position(), Some(2));
        drop(running);
        drop(leaving);
        let next = tokio::time::timeout(std::time::Duration::from_secs(1), next.start())
            .await
            .expect("the slot passed on")
            .expect("open");
        assert_eq!((q.running(), q.waiting()), (1, 0));
        drop(next);
    }

    #[tokio::test]
    async fn a_slot_taken_at_enqueue_counts_as_running_before_the_scan_starts() {
        let q = ScanQueue::new(2);
        let ticket = q.enqueue().expect("open");
        assert_eq!(q.running(), 1, "shutdown must wait for it");
        drop(ticket);
        assert_eq!(
            q.running(),
            0,
            "a ticket dropped unstarted gives its slot back"
        );
        let running = q.enqueue().expect("open").start().await.expect("starts");
        assert_eq!(q.running(), 1);
        drop(running);
        assert_eq!(q.running(), 0);
    }

    #[tokio::test]
    async fn a_moderators_scan_overtakes_automatic_scans_waiting_before_it() {
        let q = ScanQueue::new(1);
        let running = q.enqueue().expect("open").start().await.expect("starts");
        let auto1 = q.enqueue_automatic().expect("open");
        let auto2 = q.enqueue_automatic().expect("open");
        assert_eq!((auto1.position(), auto2.position()), (Some(1), Some(2)));
        let moderator = q.enqueue().expect("open");
        assert_eq!(
            moderator.position(),
            Some(1),
            "automatic scans are not ahead of a moderator"
        );
        assert_eq!(q.waiting(), 3);
        let auto1 = auto1.start();
        tokio::pin!(auto1);
        assert!(poll_once(&mut auto1).is_pending(), "no free slot yet");
        drop(running);
        assert!(
            poll_once(&mut auto1).is_pending(),
            "a moderator waits: the freed slot is not for an automatic scan"
        );
        let moderator = tokio::time::timeout(std::time::Duration::from_secs(1), moderator.start())
            .await
            .expect("the moderator has the freed slot")
            .expect("open");
        assert!(poll_once(&mut auto1).is_pending(), "the slot is taken");
        drop(moderator);
        let auto1 = tokio::time::timeout(std::time::Duration::from_secs(1), auto1)
            .await
            .expect("the first automatic scan runs next")
            .expect("open");
        drop(auto1);
        let auto2 = tokio::time::timeout(std::time::Duration::from_secs(1), auto2.start())
            .await
            .expect("then the second")
            .expect("open");
        assert_eq!((q.running(), q.waiting()), (1, 0));
        drop(auto2);
        let auto3 = q.enqueue_automatic().expect("open");
        assert_eq!(auto3.position(), None, "a free slot with nobody waiting");
        q.close();
        assert!(q.enqueue_automatic().is_err());
    }

    #[tokio::test]
    async fn closing_refuses_new_scans_and_releases_waiters() {
        let q = ScanQueue::new(1);
        let _running = q.enqueue().expect("open").start().await.expect("starts");
        let waiting = q.enqueue().expect("open");
        q.close();
        assert_eq!(q.enqueue().map(|_| ()), Err(QueueClosed));
        assert_eq!(waiting.start().await.map(|_| ()), Err(QueueClosed));
        assert_eq!(q.waiting(), 0);
        assert_eq!(q.running(), 1, "a running scan keeps its slot");
    }
}
