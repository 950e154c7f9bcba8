//! Progress events a scan emits while it runs; front ends render them.

use tokio::sync::mpsc::UnboundedSender;

use super::SectionStatus;
use super::reddit::AccountStatus;
use super::sites::SiteResult;

#[derive(Debug, Clone)]
pub enum ScanEvent {
    /// Sherlock was launched; the total is known when the site list is a readable file.
    SherlockStarted {
        sites_total: Option<usize>,
    },
    /// One more site reported, in Sherlock's order.
    SiteChecked {
        result: SiteResult,
        checked: usize,
        sites_total: Option<usize>,
    },
    SherlockFinished {
        status: SectionStatus,
    },
    /// What Reddit said about the name (before any history is fetched).
    RedditAccount {
        status: AccountStatus,
        name: String,
    },
    /// Another page of history arrived; running totals.
    RedditFetched {
        comments: usize,
        posts: usize,
    },
    /// More items have a final score (or a reason for none); `total` is the items fetched so far.
    RedditScored {
        done: usize,
        total: usize,
    },
    RedditFinished {
        status: SectionStatus,
    },
}

/// Where events go: nowhere, or an unbounded channel (a scan never waits for a slow renderer).
#[derive(Debug, Clone, Default)]
pub struct EventSink(Option<UnboundedSender<ScanEvent>>);

impl EventSink {
    pub fn none() -> Self {
        EventSink(None)
    }

    pub fn channel(tx: UnboundedSender<ScanEvent>) -> Self {
        EventSink(Some(tx))
    }

    pub fn emit(&self, event: ScanEvent) {
        if let Some(tx) = &self.0 {
            // A renderer that went away is not the scan's problem.
            let _ = tx.send(event);
        }
    }
}
