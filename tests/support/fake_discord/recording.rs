//! The requests the fake received, and the queries tests make on them and on what the fake
//! stores (messages, attachments, registered commands).

use std::time::{Duration, Instant};

use serde_json::Value;

use super::ids::APPLICATION_ID;
use super::state::route_matches;
use super::{FakeDiscord, lock};

/// One part of a multipart body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultipartPart {
    /// Form field name: `payload_json`, `files[0]`, ...
    pub name: String,
    pub filename: Option<String>,
    pub content_type: Option<String>,
    pub data: Vec<u8>,
}

/// One HTTP request the fake received (REST or anything else, the gateway upgrade excepted).
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// Arrival order, from 0.
    pub index: usize,
    /// Arrival time.
    pub at: Instant,
    pub method: String,
    /// The path as requested, e.g. `/api/v10/channels/1/messages` (no query).
    pub path: String,
    /// `path` without the `/api/v10` prefix, e.g. `/channels/1/messages`.
    pub route: String,
    pub query: Option<String>,
    /// Header names lower-case, in arrival order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The parsed JSON body, for non-multipart bodies that parse.
    pub json: Option<Value>,
    /// Why a body that should have been JSON did not parse.
    pub json_error: Option<String>,
    /// The parts of a multipart body.
    pub multipart: Option<Vec<MultipartPart>>,
    /// The parsed `payload_json` part of a multipart body.
    pub payload_json: Option<Value>,
    /// The status answered; 0 while the request is still being handled.
    pub status: u16,
    /// The JSON answered, if any.
    pub response: Option<Value>,
    /// Answered 404/405 because the fake does not know the route or an id in it (wrong guild,
    /// channel, application, interaction token...).
    pub unexpected: bool,
    /// Answered by a fault set with `fail_next` / `rate_limit_next`.
    pub faulted: bool,
}

impl RecordedRequest {
    /// The JSON body, or a multipart request's `payload_json`.
    pub fn payload(&self) -> Option<&Value> {
        self.json.as_ref().or(self.payload_json.as_ref())
    }

    /// The `content` sent: the payload's `content`, or `data.content` of an interaction
    /// callback.
    pub fn content(&self) -> Option<&str> {
        let p = self.payload()?;
        p.get("content")
            .and_then(Value::as_str)
            .or_else(|| p.pointer("/data/content").and_then(Value::as_str))
    }

    /// The embeds sent (payload's `embeds`, or `data.embeds` of an interaction callback).
    pub fn embeds(&self) -> Vec<Value> {
        let Some(p) = self.payload() else {
            return Vec::new();
        };
        p.get("embeds")
            .or_else(|| p.pointer("/data/embeds"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    }

    /// The components sent (payload's `components`, or `data.components` of an interaction
    /// callback): action rows, each with its `components` (buttons...). Empty when none.
    pub fn components(&self) -> Vec<Value> {
        let Some(p) = self.payload() else {
            return Vec::new();
        };
        p.get("components")
            .or_else(|| p.pointer("/data/components"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    }

    /// The `custom_id`s of every component sent, in order.
    pub fn custom_ids(&self) -> Vec<String> {
        self.components()
            .iter()
            .flat_map(|row| row["components"].as_array().cloned().unwrap_or_default())
            .filter_map(|c| {
                c.get("custom_id")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .collect()
    }

    /// The uploaded files (`files[N]` parts), in the order sent.
    pub fn files(&self) -> Vec<&MultipartPart> {
        self.multipart
            .iter()
            .flatten()
            .filter(|p| p.name.starts_with("files["))
            .collect()
    }

    /// A header's value (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether this is `method` on a route matching `pattern` (`*` matches one path segment,
    /// e.g. `/channels/*/messages`); method `*` matches any.
    pub fn is(&self, method: &str, pattern: &str) -> bool {
        (method == "*" || self.method.eq_ignore_ascii_case(method))
            && route_matches(pattern, &self.route)
    }

    /// The id of the message this request created or edited (from the response).
    pub fn message_id(&self) -> Option<u64> {
        self.response
            .as_ref()
            .and_then(|r| r.get("id"))
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok())
    }
}

impl FakeDiscord {
    /// Every request, in arrival order (those still in flight have `status == 0`).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).clone()
    }

    /// Requests the fake did not expect (unknown route or an id that is not the fake's).
    pub fn unexpected_requests(&self) -> Vec<RecordedRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.unexpected)
            .collect()
    }

    /// Completed `POST /channels/{channel}/messages`, in order.
    pub fn messages_posted(&self, channel_id: u64) -> Vec<RecordedRequest> {
        let pattern = format!("/channels/{channel_id}/messages");
        self.completed()
            .filter(|r| r.is("POST", &pattern))
            .collect()
    }

    /// The messages a channel holds now (as Discord stores them: what clients see), oldest
    /// first, whoever sent them and however (a channel post or an interaction follow-up).
    pub fn channel_messages(&self, channel_id: u64) -> Vec<Value> {
        let st = lock(&self.shared.state);
        let mut msgs: Vec<(u64, Value)> = st
            .messages
            .iter()
            .filter(|(_, m)| m.channel_id == channel_id)
            .map(|(id, m)| (*id, m.json.clone()))
            .collect();
        msgs.sort_by_key(|(id, _)| *id);
        msgs.into_iter().map(|(_, v)| v).collect()
    }

    /// Completed `PATCH /channels/{channel}/messages/{id}`, in order.
    pub fn message_edits(&self, channel_id: u64) -> Vec<RecordedRequest> {
        let pattern = format!("/channels/{channel_id}/messages/*");
        self.completed()
            .filter(|r| r.is("PATCH", &pattern))
            .collect()
    }

    /// Completed requests answering an interaction: its callback and every webhook request
    /// with its token (original edits, follow-ups), in order.
    pub fn interaction_requests(&self, interaction_id: u64) -> Vec<RecordedRequest> {
        let Some(token) = self.interaction_token(interaction_id) else {
            return Vec::new();
        };
        let callback = format!("/interactions/{interaction_id}/{token}/callback");
        let webhook = format!("/webhooks/{APPLICATION_ID}/{token}");
        self.completed()
            .filter(|r| r.route == callback || r.route.starts_with(&webhook))
            .collect()
    }

    /// The first completed request matching `pred`, waiting up to `timeout`.
    pub fn wait_for(
        &self,
        pred: impl Fn(&RecordedRequest) -> bool,
        timeout: Duration,
    ) -> Option<RecordedRequest> {
        self.wait_for_arrival(|r| r.status != 0 && pred(r), timeout)
    }

    /// The first request matching `pred` that has arrived, answered or not (a hung one too).
    pub fn wait_for_arrival(
        &self,
        pred: impl Fn(&RecordedRequest) -> bool,
        timeout: Duration,
    ) -> Option<RecordedRequest> {
        let mut found = None;
        self.wait_until(timeout, || {
            found = lock(&self.shared.requests)
                .iter()
                .find(|r| pred(r))
                .cloned();
            found.is_some()
        });
        found
    }

    /// Waits until `n` completed requests match `pred` (or `timeout`) and returns the matching
    /// ones (fewer than `n` on timeout).
    pub fn wait_for_count(
        &self,
        pred: impl Fn(&RecordedRequest) -> bool,
        n: usize,
        timeout: Duration,
    ) -> Vec<RecordedRequest> {
        let mut found = Vec::new();
        self.wait_until(timeout, || {
            found = lock(&self.shared.requests)
                .iter()
                .filter(|r| r.status != 0 && pred(r))
                .cloned()
                .collect();
            found.len() >= n
        });
        found
    }

    /// Polls `cond` every 5 ms until it holds or `timeout` passes.
    pub fn wait_until(&self, timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if cond() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// A message's current state (after edits), as the fake would answer it.
    pub fn message(&self, message_id: u64) -> Option<Value> {
        lock(&self.shared.state)
            .messages
            .get(&message_id)
            .map(|m| m.json.clone())
    }

    /// The components currently on a message (its `components` after every edit, callback 7
    /// included, with the `id`s Discord gives them); None for an unknown message.
    pub fn message_components(&self, message_id: u64) -> Option<Value> {
        lock(&self.shared.state).messages.get(&message_id).map(|m| {
            m.json
                .get("components")
                .cloned()
                .unwrap_or_else(|| Value::Array(Vec::new()))
        })
    }

    /// The bytes of an uploaded attachment, by attachment id.
    pub fn attachment_bytes(&self, attachment_id: u64) -> Option<Vec<u8>> {
        lock(&self.shared.state)
            .attachments
            .get(&attachment_id)
            .map(|(_, b)| b.clone())
    }

    /// Global commands as last registered (`PUT /applications/{app}/commands`), as answered.
    pub fn registered_commands(&self) -> Vec<Value> {
        lock(&self.shared.state).global_commands.clone()
    }

    /// Guild commands as last registered for the guild, as answered.
    pub fn registered_guild_commands(&self, guild_id: u64) -> Vec<Value> {
        lock(&self.shared.state)
            .guild_commands
            .get(&guild_id)
            .cloned()
            .unwrap_or_default()
    }

    /// The most requests matching `pred` that arrived within any `span` (a sliding window over
    /// arrival times): compare with Discord's limits, e.g. 50 requests per second in all.
    pub fn max_in_window(&self, span: Duration, pred: impl Fn(&RecordedRequest) -> bool) -> usize {
        let at: Vec<Instant> = self
            .requests()
            .iter()
            .filter(|r| pred(r))
            .map(|r| r.at)
            .collect();
        (0..at.len())
            .map(|i| {
                at[i..]
                    .iter()
                    .take_while(|b| b.duration_since(at[i]) < span)
                    .count()
            })
            .max()
            .unwrap_or(0)
    }

    fn completed(&self) -> impl Iterator<Item = RecordedRequest> {
        self.requests().into_iter().filter(|r| r.status != 0)
    }
}
