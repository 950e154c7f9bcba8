//! At most `MAX_CONCURRENT_SCANS` scans at once; the rest wait in FIFO order and know their place.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the bot is shutting down and takes no new scans")]
pub struct QueueClosed;

#[derive(Debug)]
pub struct ScanQueue {
    // tokio's semaphore hands permits to waiters in the order they asked: that is the FIFO.
    slots: Arc<Semaphore>,
    counts: Arc<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    waiting: AtomicUsize,
    running: AtomicUsize,
}

impl Counts {
    fn publish(&self) {
        crate::telemetry::queue(
            self.waiting.load(Ordering::SeqCst),
            self.running.load(Ordering::SeqCst),
        );
    }
}

impl ScanQueue {
    pub fn new(max_concurrent: usize) -> Self {
        ScanQueue {
            slots: Arc::new(Semaphore::new(max_concurrent.max(1))),
            counts: Arc::new(Counts::default()),
        }
    }

    pub fn running(&self) -> usize {
        self.counts.running.load(Ordering::SeqCst)
    }

    pub fn waiting(&self) -> usize {
        self.counts.waiting.load(Ordering::SeqCst)
    }

    pub fn is_closed(&self) -> bool {
        self.slots.is_closed()
    }

    /// Takes no new scans; scans still waiting are told so when they wake.
    pub fn close(&self) {
        self.slots.close();
    }

    /// Joins the queue: takes a free slot at once if there is one, else a place in line.
    pub fn enqueue(&self) -> Result<Ticket<'_>, QueueClosed> {
        match self.slots.clone().try_acquire_owned() {
            Ok(permit) => Ok(Ticket {
                queue: self,
                slot: Some(permit),
                position: None,
            }),
            Err(tokio::sync::TryAcquireError::Closed) => Err(QueueClosed),
            Err(tokio::sync::TryAcquireError::NoPermits) => {
                let ahead = self.counts.waiting.fetch_add(1, Ordering::SeqCst);
                self.counts.publish();
                Ok(Ticket {
                    queue: self,
                    slot: None,
                    position: Some(ahead + 1),
                })
            }
        }
    }
}

/// A place in the queue (or a slot already taken); dropping it leaves the queue.
#[derive(Debug)]
pub struct Ticket<'a> {
    queue: &'a ScanQueue,
    slot: Option<OwnedSemaphorePermit>,
    position: Option<usize>,
}

impl Ticket<'_> {
    /// `None` when the scan starts at once, else its 1-based place among the waiting scans.
    pub fn position(&self) -> Option<usize> {
        self.position
    }

    /// Waits for a free slot (FIFO) unless it already has one.
    pub async fn start(mut self) -> Result<Running, QueueClosed> {
        let permit = match self.slot.take() {
            Some(permit) => permit,
            None => {
                let permit = self.queue.slots.clone().acquire_owned().await;
                self.queue.counts.waiting.fetch_sub(1, Ordering::SeqCst);
                self.position = None;
                permit.map_err(|_| QueueClosed)?
            }
        };
        self.queue.counts.running.fetch_add(1, Ordering::SeqCst);
        self.queue.counts.publish();
        Ok(Running {
            _permit: permit,
            counts: self.queue.counts.clone(),
        })
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        // Still in line (never started): leave it.
        if self.slot.is_none() && self.position.is_some() {
            self.queue.counts.waiting.fetch_sub(1, Ordering::SeqCst);
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
