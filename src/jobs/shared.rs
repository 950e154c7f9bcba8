//! Handing a scan job to the queue every machine shares (PostgreSQL): what the job asks and
//! where its words go, written so a worker on any machine can run it and post its result.

use serde::{Deserialize, Serialize};

use super::scan::{JobError, Priority, Replies, Requester, ScanOrder, Status, database_paused};
use crate::db::jobs::{Enqueued, NewJob};
use crate::db::shared::SharedState;
use crate::model::{DiscordMember, ScanMode, Username};

/// How long after it was asked a job whose machine died may still be taken over; later it is
/// failed with a notice. An interaction's follow-up webhook lives 15 minutes.
pub const TAKEOVER_DEADLINE: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// A job's key and where its words go (see [`Replies::handoff`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Handoff {
    /// The Discord message or interaction that asked (a snowflake): the job's idempotency key.
    pub key: String,
    pub target: ReplyTarget,
}

/// Where a job's acknowledgement, progress and result go, in a form any machine can use over
/// Discord's REST API (not tied to a gateway shard).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ReplyTarget {
    /// Channel messages: the acknowledgement `ack` (once sent) is edited with progress; the
    /// result is a new message (a reply to `reply_to` when set) with a nonce Discord enforces,
    /// so it is posted once however many machines try. `quiet`: no acknowledgement at all.
    Message {
        channel: u64,
        guild: Option<u64>,
        reply_to: Option<u64>,
        ack: Option<u64>,
        quiet: bool,
    },
    /// An interaction's webhook: the acknowledgement is its original response, the result a
    /// follow-up, until `expires` (unix seconds, 15 minutes after the interaction); later the
    /// result is a channel message.
    Interaction {
        application: u64,
        token: String,
        channel: u64,
        guild: Option<u64>,
        expires: i64,
    },
}

impl std::fmt::Debug for ReplyTarget {
    // The interaction token lets whoever holds it post as the bot: never in a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReplyTarget::Message {
                channel,
                reply_to,
                ack,
                quiet,
                ..
            } => f
                .debug_struct("Message")
                .field("channel", channel)
                .field("reply_to", reply_to)
                .field("ack", ack)
                .field("quiet", quiet)
                .finish(),
            ReplyTarget::Interaction {
                channel, expires, ..
            } => f
                .debug_struct("Interaction")
                .field("channel", channel)
                .field("expires", expires)
                .finish_non_exhaustive(),
        }
    }
}

impl ReplyTarget {
    pub fn channel(&self) -> u64 {
        match self {
            ReplyTarget::Message { channel, .. } | ReplyTarget::Interaction { channel, .. } => {
                *channel
            }
        }
    }
}

/// A [`ScanOrder`] as the job row holds it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredOrder {
    pub username: String,
    pub member: Option<DiscordMember>,
    pub mode: ScanMode,
    pub requester_id: u64,
    pub requester_name: String,
    pub channel: u64,
    pub guild: Option<u64>,
    pub automatic: bool,
}

impl From<&ScanOrder> for StoredOrder {
    fn from(order: &ScanOrder) -> Self {
        StoredOrder {
            username: order.username.to_string(),
            member: order.member.clone(),
            mode: order.mode,
            requester_id: order.requester.user_id,
            requester_name: order.requester.user_name.clone(),
            channel: order.requester.channel,
            guild: order.requester.guild,
            automatic: order.priority == Priority::Automatic,
        }
    }
}

/// Why a stored job cannot be read back (a row written by another version, or damaged).
#[derive(Debug, thiserror::Error)]
#[error("job {key}: {what}")]
pub struct UnreadableJob {
    pub key: String,
    pub what: String,
}

impl StoredOrder {
    pub fn parse(key: &str, json: &str) -> Result<StoredOrder, UnreadableJob> {
        serde_json::from_str(json).map_err(|e| UnreadableJob {
            key: key.into(),
            what: format!("its request is unreadable: {e}"),
        })
    }

    pub fn into_order(self, key: &str) -> Result<ScanOrder, UnreadableJob> {
        let username = Username::parse(&self.username).map_err(|e| UnreadableJob {
            key: key.into(),
            what: format!("its username is invalid: {e}"),
        })?;
        Ok(ScanOrder {
            username,
            member: self.member,
            mode: self.mode,
            requester: Requester {
                user_id: self.requester_id,
                user_name: self.requester_name,
                channel: self.channel,
                guild: self.guild,
            },
            priority: if self.automatic {
                Priority::Automatic
            } else {
                Priority::Moderator
            },
        })
    }
}

impl ReplyTarget {
    pub fn parse(key: &str, json: &str) -> Result<ReplyTarget, UnreadableJob> {
        serde_json::from_str(json).map_err(|e| UnreadableJob {
            key: key.into(),
            what: format!("its reply target is unreadable: {e}"),
        })
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The in-flight key: one scan at a time of the same name (and member) in one server.
fn in_flight_key(order: &ScanOrder) -> String {
    let target = super::scan::target_key(&order.username, order.member.as_ref());
    format!(
        "{}|{}",
        target.username,
        target.member.map(|m| m.to_string()).unwrap_or_default()
    )
}

/// Queues the job for any machine's worker and acknowledges it with its true place across
/// machines (or says which request's scan it will share). The worker posts the result.
pub async fn hand_over<R: Replies>(
    shared: &SharedState,
    local: &super::queue::ScanQueue,
    replies: &R,
    handoff: Handoff,
    order: &ScanOrder,
) -> Result<(), JobError> {
    let request = serde_json::to_string(&StoredOrder::from(order))
        .map_err(|e| JobError::Internal(e.into()))?;
    let job = NewJob {
        key: handoff.key.clone(),
        priority: match order.priority {
            Priority::Moderator => 0,
            Priority::Automatic => 1,
        },
        guild: order.requester.guild,
        channel: order.requester.channel,
        target: in_flight_key(order),
        request,
        reply: handoff.target.to_json(),
        deadline: TAKEOVER_DEADLINE,
    };
    let status = match shared.enqueue_job(&job).await {
        Ok(Enqueued::Duplicate) => {
            tracing::info!(job = %job.key, "this request is queued already (Discord delivered it twice)");
            return Ok(());
        }
        Ok(Enqueued::Queued { position }) => Status::Accepted {
            position: position.map(|p| usize::try_from(p).unwrap_or(usize::MAX)),
        },
        Ok(Enqueued::Following { leader, request }) => {
            let requested_by = StoredOrder::parse(&leader, &request)
                .map(|o| o.requester_id)
                .unwrap_or_default();
            Status::Following { requested_by }
        }
        Err(e) => return Err(database_paused(&e.to_string())),
    };
    tracing::info!(job = %job.key, status = ?status, "scan queued for every machine's workers");
    local.nudge();
    let ack = replies
        .acknowledge(&order.username, order.mode, status)
        .await?;
    if let Some(acked) = replies.handoff(Some(&ack)).await
        && acked.target != handoff.target
        && let Err(e) = shared
            .set_job_reply(&job.key, &acked.target.to_json())
            .await
    {
        tracing::warn!(error = %e, job = %job.key, "the acknowledgement's id was not stored: the worker cannot show progress in it");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_target_round_trips_and_never_shows_its_token() {
        let target = ReplyTarget::Interaction {
            application: 7,
            token: "secret-interaction-token".into(),
            channel: 9,
            guild: Some(3),
            expires: 1_800_000_000,
        };
        assert_eq!(
            ReplyTarget::parse("k", &target.to_json()).expect("parses"),
            target
        );
        assert!(!format!("{target:?}").contains("secret"));
        assert!(ReplyTarget::parse("k", "{\"kind\":\"pigeon\"}").is_err());
    }
}
