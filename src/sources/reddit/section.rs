//! The Reddit half of a scan: who the account is, what it wrote, how toxic that was.
//!
//! Fetching and scoring overlap: each page of comments or posts is queued for scoring as soon as
//! it arrives, so the scan takes about as long as the slower of the two quotas, not their sum.
//! The half keeps everything it learned in one [`RedditSection`] outside the work future, so a
//! deadline or Ctrl-C that drops the work still leaves the items fetched and scored by then.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::model::events::{EventSink, ScanEvent};
use crate::model::reddit::{
    AccountStatus, ItemKind, ItemScore, RedditAccount, RedditItem, RedditSection, RedditSummary,
    ScoringInfo,
};
use crate::model::{SectionStatus, StopReason, TextScore, Username, millis};
use crate::sources::reddit::client::{About, Listing, RedditClient, RedditError, RedditName};
use crate::toxicity::{self, ScorerError, ToxicityScorer};

const STOPPED_FIRST: &str = "not scored: the scan stopped first";

pub(crate) struct RedditSource<'a> {
    pub client: &'a RedditClient,
    pub scorer: &'a Arc<dyn ToxicityScorer>,
    /// `TOXICITY_THRESHOLD`, else the scorer's own.
    pub threshold: Option<f64>,
    pub events: &'a EventSink,
}

type ItemRef = (ItemKind, usize);
type Batch = (Vec<ItemRef>, Result<Vec<TextScore>, ScorerError>);

impl RedditSource<'_> {
    fn threshold(&self) -> f64 {
        toxicity::threshold(self.threshold, self.scorer.as_ref())
    }

    pub async fn run(
        &self,
        username: &Username,
        deadline: Instant,
        cancel: &CancellationToken,
    ) -> (RedditSection, Option<StopReason>) {
        let clock = Instant::now();
        let mut section = RedditSection {
            status: SectionStatus::Completed,
            scoring: Some(ScoringInfo::new(&self.scorer.info(), self.threshold())),
            ..RedditSection::skipped()
        };
        let stopped = {
            let work = self.work(username, &mut section);
            tokio::select! {
                result = work => {
                    if let Err(e) = result {
                        tracing::error!(error = %e, "reddit failed");
                        section.status = SectionStatus::Failed;
                        section.error = Some(e.to_string());
                    }
                    None
                }
                _ = tokio::time::sleep_until(deadline) => Some(StopReason::Deadline),
                _ = cancel.cancelled() => Some(StopReason::Cancelled),
            }
        };
        if stopped.is_some() {
            section.status = SectionStatus::Partial;
        }
        // What scored, as it stands now: a local model that failed to load fell back to the word
        // lists (and their threshold) while the half ran.
        let threshold = self.threshold();
        if let Some(info) = section.scoring.as_mut() {
            let error = info.error.take();
            *info = ScoringInfo::new(&self.scorer.info(), threshold);
            info.error = error;
        }
        for item in section.comments.iter_mut().chain(section.posts.iter_mut()) {
            if item.toxicity.toxicity.is_none() && item.toxicity.unscored_reason.is_none() {
                item.toxicity = ItemScore::unscored(STOPPED_FIRST);
            }
        }
        if section
            .account
            .as_ref()
            .is_some_and(|a| a.status == AccountStatus::Found)
        {
            section.summary = Some(RedditSummary::of(&section, threshold));
        }
        section.duration_ms = millis(clock.elapsed());
        tracing::info!(
            status = section.status.as_str(),
            account = section.account.as_ref().map(|a| a.status.as_str()),
            comments = section.comments.len(),
            posts = section.posts.len(),
            scored = section.summary.as_ref().map(|s| s.scored),
            duration_ms = section.duration_ms,
            "reddit finished"
        );
        (section, stopped)
    }

    async fn work(
        &self,
        username: &Username,
        section: &mut RedditSection,
    ) -> Result<(), RedditError> {
        let name = match RedditName::parse(username) {
            Ok(name) => name,
            Err(invalid) => {
                section.account = Some(RedditAccount::bare(
                    AccountStatus::InvalidName,
                    username.to_string(),
                ));
                section.message = Some(invalid.to_string());
                self.account_event(section);
                return Ok(());
            }
        };
        match self.client.about(&name).await? {
            About::NotFound => {
                section.account = Some(RedditAccount::bare(AccountStatus::NotFound, name.as_str()));
                section.message = Some(
                    "Reddit has no account by this name (never created, deleted, or shadowbanned)"
                        .to_string(),
                );
                self.account_event(section);
                Ok(())
            }
            About::Suspended(account) => {
                section.account = Some(account);
                section.message =
                    Some("the account is suspended: Reddit shows none of its history".to_string());
                self.account_event(section);
                Ok(())
            }
            About::Found(account) => {
                section.account = Some(account);
                self.account_event(section);
                self.history(&name, section).await
            }
        }
    }

    fn account_event(&self, section: &RedditSection) {
        if let Some(account) = &section.account {
            self.events.emit(ScanEvent::RedditAccount {
                status: account.status,
                name: account.name.clone(),
            });
        }
    }

    /// Fetches comments then posts while scoring what has arrived.
    async fn history(
        &self,
        name: &RedditName,
        section: &mut RedditSection,
    ) -> Result<(), RedditError> {
        let (tx, rx) = mpsc::unbounded_channel::<Vec<RedditItem>>();
        let config = self.client.config();
        let fetch = async move {
            let send = |items: Vec<RedditItem>| {
                let _ = tx.send(items);
            };
            self.client
                .fetch(name, Listing::Comments, config.max_comments, send)
                .await?;
            self.client
                .fetch(name, Listing::Submitted, config.max_posts, send)
                .await?;
            // `tx` is dropped here: the scorer sees the end of the stream.
            Ok::<(), RedditError>(())
        };
        let ((), fetched) = tokio::join!(self.score_as_fetched(rx, section), fetch);
        fetched
    }

    async fn score_as_fetched(
        &self,
        mut pages: mpsc::UnboundedReceiver<Vec<RedditItem>>,
        section: &mut RedditSection,
    ) {
        let batch_size = self.scorer.batch_size().max(1);
        let concurrency = self.scorer.concurrency().max(1);
        let mut queue: VecDeque<ItemRef> = VecDeque::new();
        let mut in_flight: JoinSet<Batch> = JoinSet::new();
        let mut batches: HashMap<tokio::task::Id, Vec<ItemRef>> = HashMap::new();
        let mut failed: Option<String> = None;
        let mut open = true;
        let mut done = 0usize;
        loop {
            while failed.is_none() && in_flight.len() < concurrency && !queue.is_empty() {
                let refs: Vec<ItemRef> = queue.drain(..batch_size.min(queue.len())).collect();
                let texts: Vec<String> = refs
                    .iter()
                    .map(|&r| item_mut(section, r).text.clone())
                    .collect();
                let scorer = Arc::clone(self.scorer);
                let task_refs = refs.clone();
                let task = in_flight.spawn(
                    async move {
                        let result = scorer.score(&texts).await;
                        (task_refs, result)
                    }
                    .instrument(tracing::Span::current()),
                );
                batches.insert(task.id(), refs);
            }
            if !open && in_flight.is_empty() && (queue.is_empty() || failed.is_some()) {
                break;
            }
            tokio::select! {
                page = pages.recv(), if open => {
                    let Some(items) = page else {
                        open = false;
                        continue;
                    };
                    for item in items {
                        let kind = item.kind;
                        let list = match kind {
                            ItemKind::Comment => &mut section.comments,
                            ItemKind::Post => &mut section.posts,
                        };
                        list.push(item);
                        let r = (kind, list.len() - 1);
                        let item = item_mut(section, r);
                        if let Some(reason) = toxicity::not_sent_reason(&item.text) {
                            item.toxicity = ItemScore::unscored(reason);
                            done += 1;
                        } else if let Some(error) = &failed {
                            item.toxicity = ItemScore::unscored(format!("not scored: {error}"));
                            done += 1;
                        } else {
                            queue.push_back(r);
                        }
                    }
                    self.events.emit(ScanEvent::RedditFetched {
                        comments: section.comments.len(),
                        posts: section.posts.len(),
                    });
                }
                Some(joined) = in_flight.join_next_with_id(), if !in_flight.is_empty() => {
                    let (refs, result) = match joined {
                        Ok((id, batch)) => {
                            batches.remove(&id);
                            batch
                        }
                        Err(e) => {
                            // A panicking backend is a bug; its items stay unscored and the scan
                            // goes on with the others.
                            tracing::error!(error = %e, "a scoring task failed");
                            let refs = batches.remove(&e.id()).unwrap_or_default();
                            for r in &refs {
                                item_mut(section, *r).toxicity =
                                    ItemScore::unscored("not scored: the scorer failed unexpectedly");
                            }
                            done += refs.len();
                            continue;
                        }
                    };
                    match result {
                        Ok(scores) if scores.len() == refs.len() => {
                            for (r, score) in refs.iter().zip(scores) {
                                item_mut(section, *r).toxicity = score.into();
                            }
                        }
                        Ok(scores) => {
                            let reason = format!(
                                "not scored: the backend returned {} results for {} texts",
                                scores.len(),
                                refs.len()
                            );
                            for r in &refs {
                                item_mut(section, *r).toxicity = ItemScore::unscored(&reason);
                            }
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "toxicity scoring failed: the remaining items stay unscored");
                            let reason = format!("not scored: {e}");
                            for r in refs.iter().chain(queue.iter()) {
                                item_mut(section, *r).toxicity = ItemScore::unscored(&reason);
                            }
                            done += queue.len();
                            queue.clear();
                            if let Some(info) = section.scoring.as_mut() {
                                info.error = Some(e.to_string());
                            }
                            failed = Some(e.to_string());
                        }
                    }
                    done += refs.len();
                    self.events.emit(ScanEvent::RedditScored {
                        done,
                        total: section.comments.len() + section.posts.len(),
                    });
                }
            }
        }
        // Batches still in flight after a failure are abandoned; their items say why.
        in_flight.abort_all();
        if let Some(error) = failed {
            for item in section.comments.iter_mut().chain(section.posts.iter_mut()) {
                if item.toxicity.toxicity.is_none() && item.toxicity.unscored_reason.is_none() {
                    item.toxicity = ItemScore::unscored(format!("not scored: {error}"));
                }
            }
        }
    }
}

fn item_mut(section: &mut RedditSection, (kind, i): ItemRef) -> &mut RedditItem {
    match kind {
        ItemKind::Comment => &mut section.comments[i],
        ItemKind::Post => &mut section.posts[i],
    }
}

/// The Reddit part of a partial scan's reason.
pub(crate) fn partial_note(section: &RedditSection) -> String {
    let scored = section
        .items()
        .filter(|i| i.toxicity.toxicity.is_some())
        .count();
    format!(
        "Reddit: {} comments and {} posts fetched, {scored} scored",
        section.comments.len(),
        section.posts.len()
    )
}

#[cfg(test)]
mod send_check {
    use super::*;
    #[allow(dead_code)]
    fn assert_send<T: Send>(_: T) {}
    #[allow(dead_code)]
    fn half_is_send(h: &RedditSource<'_>, u: &Username, c: &CancellationToken) {
        assert_send(h.run(u, Instant::now(), c));
    }
}
