//! A shared-queue job's words in Discord over REST only (no gateway): progress in the
//! acknowledgement, the result as a channel message with a nonce or as the interaction's
//! follow-up, the audit in the log channels. Any machine holding the bot's token can finish any
//! job this way: the bot's own worker and `account-scanner worker` alike.

use std::sync::{Arc, Mutex};

use poise::serenity_prelude as serenity;
use serenity::builder::Builder as _;

use crate::bot::commands::scan::{
    already_posted, post_error, prepare_result, result_message, status_text,
};
use crate::bot::{BotState, audit};
use crate::db::shared::SharedState;
use crate::jobs::scan::{Outcome, PostError, Replies, Services, Status};
use crate::jobs::shared::ReplyTarget;
use crate::jobs::worker::{Identity, WorkerHost};
use crate::model::{ScanMode, Username};

/// The bot's side of a worker: its state, its REST client and its own user id.
pub struct BotHost {
    pub state: Arc<BotState>,
    pub http: Arc<serenity::Http>,
    pub me: serenity::UserId,
}

impl WorkerHost for BotHost {
    type Replies<'a> = RestReplies<'a>;

    fn services(&self) -> Services<'_> {
        self.state.services()
    }

    fn replies(&self, key: &str, target: ReplyTarget) -> RestReplies<'_> {
        RestReplies {
            host: self,
            key: key.to_string(),
            target: Mutex::new(target),
        }
    }
}

/// Starts this process's worker of the shared queue; it stops taking jobs at shutdown.
pub fn start_worker(host: Arc<BotHost>, shared: SharedState, kind: &'static str) {
    if host.state.config.discord.max_concurrent_scans == 0 {
        tracing::info!("MAX_CONCURRENT_SCANS=0: this machine runs no scan; worker machines do");
        return;
    }
    let me = Identity::new(
        kind,
        crate::bot::status::shards(&host.state.config),
        host.state.config.discord.max_concurrent_scans,
        host.state.config.discord.job_lease,
    );
    let stop = host.state.stop_accepting.clone();
    tokio::spawn(crate::jobs::worker::work(host, shared, me, stop));
}

pub struct RestReplies<'a> {
    host: &'a BotHost,
    key: String,
    target: Mutex<ReplyTarget>,
}

impl RestReplies<'_> {
    fn target(&self) -> ReplyTarget {
        self.target
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The acknowledgement's id, read again from the job while unknown (the machine that
    /// acknowledged stores it just after the job is queued).
    async fn ack(&self) -> Option<u64> {
        if let ReplyTarget::Message { ack: Some(ack), .. } = self.target() {
            return Some(ack);
        }
        let shared = self.host.state.shared.as_ref()?;
        let stored = shared.job_reply(&self.key).await.ok().flatten()?;
        let stored = ReplyTarget::parse(&self.key, &stored).ok()?;
        let ack = match &stored {
            ReplyTarget::Message { ack, .. } => *ack,
            ReplyTarget::Interaction { .. } => None,
        };
        *self.target.lock().unwrap_or_else(|e| e.into_inner()) = stored;
        ack
    }

    /// A notice as its own channel message (no acknowledgement to edit), posted once.
    async fn say_in_channel(
        &self,
        channel: u64,
        reply_to: Option<u64>,
        text: String,
    ) -> Result<(), PostError> {
        let mut message = serenity::CreateMessage::new()
            .content(text)
            .allowed_mentions(serenity::CreateAllowedMentions::new())
            .nonce(serenity::Nonce::String(
                format!("note-{}", self.key).chars().take(25).collect(),
            ))
            .enforce_nonce(true);
        if let Some(id) = reply_to {
            message = message.reference_message((
                serenity::ChannelId::new(channel),
                serenity::MessageId::new(id),
            ));
        }
        serenity::ChannelId::new(channel)
            .send_message(&self.host.http, message)
            .await
            .map(|_| ())
            .map_err(post_error)
    }
}

fn now_unix() -> i64 {
    chrono::Utc::now().timestamp()
}

impl Replies for RestReplies<'_> {
    type Ack = ();
    type Result = poise::CreateReply;

    async fn acknowledge(
        &self,
        username: &Username,
        mode: ScanMode,
        status: Status<'_>,
    ) -> Result<(), PostError> {
        self.edit(&(), username, mode, status).await
    }

    async fn edit(
        &self,
        _: &(),
        username: &Username,
        mode: ScanMode,
        status: Status<'_>,
    ) -> Result<(), PostError> {
        let abandoned = matches!(status, Status::Abandoned { .. });
        let text = status_text(username, mode, &status);
        match self.target() {
            ReplyTarget::Message {
                channel,
                reply_to,
                quiet,
                ..
            } => match (self.ack().await, quiet) {
                (Some(ack), _) => serenity::ChannelId::new(channel)
                    .edit_message(
                        &self.host.http,
                        serenity::MessageId::new(ack),
                        serenity::EditMessage::new()
                            .content(text)
                            .allowed_mentions(serenity::CreateAllowedMentions::new()),
                    )
                    .await
                    .map(|_| ())
                    .map_err(post_error),
                // A job without an acknowledgement is told only what ends it.
                (None, _) if abandoned => self.say_in_channel(channel, reply_to, text).await,
                (None, _) => Ok(()),
            },
            ReplyTarget::Interaction {
                token,
                channel,
                expires,
                ..
            } => {
                if now_unix() >= expires {
                    return if abandoned {
                        self.say_in_channel(channel, None, text).await
                    } else {
                        Ok(())
                    };
                }
                serenity::EditInteractionResponse::new()
                    .content(text)
                    .allowed_mentions(serenity::CreateAllowedMentions::new())
                    .execute(&self.host.http, &token)
                    .await
                    .map(|_| ())
                    .map_err(post_error)
            }
        }
    }

    async fn prepare(&self, outcome: Outcome<'_>) -> poise::CreateReply {
        prepare_result(outcome, self.host.state.config.discord.button_lifetime).await
    }

    async fn post(&self, reply: &poise::CreateReply, _: &str) -> Result<(), PostError> {
        let http = &self.host.http;
        match self.target() {
            ReplyTarget::Interaction { token, expires, .. } if now_unix() < expires => {
                let followup = reply
                    .clone()
                    .allowed_mentions(serenity::CreateAllowedMentions::new())
                    .to_slash_followup_response(serenity::CreateInteractionResponseFollowup::new());
                followup
                    .execute(http, (None, &token))
                    .await
                    .map(|_| ())
                    .map_err(post_error)
            }
            target => {
                let (channel, reply_to) = match target {
                    ReplyTarget::Message {
                        channel, reply_to, ..
                    } => (channel, reply_to),
                    ReplyTarget::Interaction { channel, .. } => (channel, None),
                };
                let channel = serenity::ChannelId::new(channel);
                // Keyed by the job, not the scan: a takeover's result carries the same nonce,
                // so Discord keeps the first.
                // poise puts `invocation` on replies marked as such only (results are not).
                let invocation = serenity::MessageReference::from((
                    channel,
                    serenity::MessageId::new(reply_to.unwrap_or(1)),
                ));
                let mut message = result_message(reply, invocation, &self.key);
                if let Some(id) = reply_to {
                    message = message.reference_message((channel, serenity::MessageId::new(id)));
                }
                channel
                    .send_message(http, message)
                    .await
                    .map(|_| ())
                    .map_err(post_error)
            }
        }
    }

    async fn already_posted(&self, scan_id: &str) -> bool {
        match self.target() {
            // The nonce makes a second post return the first.
            ReplyTarget::Message { .. } => false,
            ReplyTarget::Interaction { channel, .. } => {
                already_posted(
                    &self.host.http,
                    serenity::ChannelId::new(channel),
                    self.host.me,
                    scan_id,
                )
                .await
            }
        }
    }

    async fn audit(&self, entry: audit::Entry) {
        audit::post(&self.host.state, &entry).await;
    }
}
