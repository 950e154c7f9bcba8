//! A fake Discord on 127.0.0.1 for driving the real bot (serenity 0.12 + poise 0.7) in tests:
//! REST under `/api/v10/...` and a gateway WebSocket at `/gateway`, both plain HTTP on one port.
//!
//! * The bot gets [`FakeDiscord::base_url`] as `DISCORD_API_BASE` and passes it to serenity's
//!   `HttpBuilder::proxy` (with the ratelimiter disabled, see ARCHITECTURE.md §6);
//!   `GET /api/v10/gateway` (and `/gateway/bot`) hand out the `ws://` URL of the same server.
//! * Gateway: HELLO → IDENTIFY → READY (s=1) → GUILD_CREATE (s=2) with one fixed guild (ids are
//!   the `pub const`s below), heartbeats answered, RESUME answered with the missed events and a
//!   RESUMED that carries `s`. Tests inject MESSAGE_CREATE ([`FakeDiscord::send_message`],
//!   [`FakeDiscord::send_dm`]) and INTERACTION_CREATE ([`FakeDiscord::send_slash_command`]).
//! * REST: every request is recorded in arrival order ([`RecordedRequest`]: method, path, query,
//!   headers, raw body, parsed JSON or multipart parts with `payload_json` parsed) and answered
//!   with objects serenity deserializes. Anything the fake does not know is answered 404 with a
//!   Discord-style error and listed by [`FakeDiscord::unexpected_requests`].
//! * Checks: [`FakeDiscord::spec_violations`] validates every body sent against Discord's OpenAPI
//!   spec (see `discord_spec.rs`) plus Discord's documented message/embed limits;
//!   [`FakeDiscord::model_errors`] lists every payload of the fake itself that serenity 0.12.5
//!   would not deserialize (serenity drops such events silently, so the fake checks its own
//!   output against serenity's models). [`FakeDiscord::assert_clean`] asserts all three empty.
//! * Faults: per-route forced statuses (500, 429 with `retry_after`, ...), delays, and gateway
//!   drops/closes/invalid sessions.
//!
//! Realism the bot may run into: the bot's own messages come back as MESSAGE_CREATE /
//! MESSAGE_UPDATE / MESSAGE_DELETE (`echo_bot_messages`); with `members_as_discord_sends` the
//! GUILD_CREATE of a bot without the GUILD_PRESENCES intent carries only its own member, as on
//! Discord, so other members must be fetched over REST; an interaction must be acknowledged
//! within 3 s ([`FakeDiscordConfig::interaction_ack_deadline`]) or its callback gets 404 Unknown
//! Interaction; message content over 2000 characters, embeds over Discord's limits and files over
//! the upload limit are rejected as Discord rejects them (400 / 413).
//!
//! The server runs on its own `std::thread` with its own tokio runtime (like `fake_sites.rs`),
//! so it works from plain `#[test]` fns; it stops when dropped. Test-facing methods are
//! synchronous and may be called from any thread.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener as StdTcpListener};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rand::Rng;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::sync::{mpsc as tmpsc, oneshot};

use super::discord_spec;

// ---------------------------------------------------------------------------------------------
// Snowflakes and fixed ids
// ---------------------------------------------------------------------------------------------

/// Discord's epoch (2015-01-01T00:00:00Z) in Unix milliseconds.
pub const DISCORD_EPOCH_MS: u64 = 1_420_070_400_000;

/// A snowflake created at `unix_ms` (worker 1, process 0, the given increment).
pub const fn snowflake(unix_ms: u64, increment: u64) -> u64 {
    ((unix_ms - DISCORD_EPOCH_MS) << 22) | (1 << 17) | (increment & 0xFFF)
}

/// The creation time (Unix ms) encoded in a snowflake.
pub fn snowflake_unix_ms(id: u64) -> u64 {
    (id >> 22) + DISCORD_EPOCH_MS
}

/// The creation time encoded in a snowflake, as RFC 3339 (`2017-05-02T18:45:00+00:00`).
pub fn snowflake_created_at(id: u64) -> String {
    rfc3339_ms(snowflake_unix_ms(id))
}

/// The guild (created 2019-03-14T09:30:00Z).
pub const GUILD_ID: u64 = snowflake(1_552_555_800_000, 1);
pub const GUILD_NAME: &str = "Scanner Test Server";
/// `@everyone`: its id is the guild id.
pub const EVERYONE_ROLE_ID: u64 = GUILD_ID;
/// "Moderator": Moderate Members plus the basics.
pub const MODERATOR_ROLE_ID: u64 = snowflake(1_552_557_600_000, 1);
pub const MODERATOR_ROLE_NAME: &str = "Moderator";
/// The bot's managed role: send, embed, attach, read history.
pub const BOT_ROLE_ID: u64 = snowflake(1_706_860_800_000, 2);
/// Text channels, no permission overwrites.
pub const GENERAL_CHANNEL_ID: u64 = snowflake(1_552_555_800_000, 2);
pub const MOD_LOG_CHANNEL_ID: u64 = snowflake(1_552_651_200_000, 1);
/// The bot user (created 2024-02-01T12:00:00Z); as for every modern app, the application id is
/// the bot's user id.
pub const BOT_ID: u64 = snowflake(1_706_788_800_000, 1);
pub const APPLICATION_ID: u64 = BOT_ID;
pub const BOT_USERNAME: &str = "Account Scanner";
/// The token the bot should use (`DISCORD_BOT_TOKEN`); only enforced with
/// [`FakeDiscordConfig::expected_token`].
pub const BOT_TOKEN: &str = "fake-discord-bot-token.NzA2Nzg4ODAw.fake";
/// Guild owner (created 2016-02-11, no roles; owners have every permission). Also the
/// application's owner.
pub const OWNER_ID: u64 = snowflake(1_455_184_800_000, 1);
pub const OWNER_USERNAME: &str = "owner.olga";
/// A user meant for `ADMIN_USER_IDS` (created 2016-07-04); has the Moderator role.
pub const ADMIN_ID: u64 = snowflake(1_467_645_600_000, 1);
pub const ADMIN_USERNAME: &str = "admin.ada";
/// A moderator (created 2017-05-02T18:45:00Z).
pub const MODERATOR_ID: u64 = snowflake(1_493_750_700_000, 1);
pub const MODERATOR_USERNAME: &str = "mod.mia";
/// A plain member with no roles (created 2021-08-19T07:05:00Z). Their username is `alice`,
/// the name `fake_sites::CLAIMED_USER` exists under.
pub const MEMBER_ID: u64 = snowflake(1_629_356_700_000, 1);
pub const MEMBER_USERNAME: &str = "alice";

pub const OWNER_JOINED_AT: &str = "2019-03-14T09:30:00.000000+00:00";
pub const ADMIN_JOINED_AT: &str = "2019-03-14T11:02:17.331000+00:00";
pub const MODERATOR_JOINED_AT: &str = "2019-06-21T20:14:55.120000+00:00";
pub const MEMBER_JOINED_AT: &str = "2023-11-05T16:48:03.512000+00:00";
pub const BOT_JOINED_AT: &str = "2024-02-02T08:00:00.000000+00:00";

/// Permission bits used by the fixtures.
pub mod perms {
    pub const CREATE_INSTANT_INVITE: u64 = 1 << 0;
    pub const KICK_MEMBERS: u64 = 1 << 1;
    pub const BAN_MEMBERS: u64 = 1 << 2;
    pub const ADMINISTRATOR: u64 = 1 << 3;
    pub const ADD_REACTIONS: u64 = 1 << 6;
    pub const VIEW_AUDIT_LOG: u64 = 1 << 7;
    pub const VIEW_CHANNEL: u64 = 1 << 10;
    pub const SEND_MESSAGES: u64 = 1 << 11;
    pub const MANAGE_MESSAGES: u64 = 1 << 13;
    pub const EMBED_LINKS: u64 = 1 << 14;
    pub const ATTACH_FILES: u64 = 1 << 15;
    pub const READ_MESSAGE_HISTORY: u64 = 1 << 16;
    pub const MENTION_EVERYONE: u64 = 1 << 17;
    pub const USE_EXTERNAL_EMOJIS: u64 = 1 << 18;
    pub const CONNECT: u64 = 1 << 20;
    pub const SPEAK: u64 = 1 << 21;
    pub const CHANGE_NICKNAME: u64 = 1 << 26;
    pub const USE_APPLICATION_COMMANDS: u64 = 1 << 31;
    pub const CREATE_PUBLIC_THREADS: u64 = 1 << 35;
    pub const SEND_MESSAGES_IN_THREADS: u64 = 1 << 38;
    pub const MODERATE_MEMBERS: u64 = 1 << 40;
    /// What the guild owner (or an administrator) has.
    pub const ALL: u64 = (1 << 51) - 1;
}

/// `@everyone`: view, send, embed, attach, history, reactions, app commands — NOT Moderate
/// Members.
pub const EVERYONE_PERMISSIONS: u64 = perms::CREATE_INSTANT_INVITE
    | perms::ADD_REACTIONS
    | perms::VIEW_CHANNEL
    | perms::SEND_MESSAGES
    | perms::EMBED_LINKS
    | perms::ATTACH_FILES
    | perms::READ_MESSAGE_HISTORY
    | perms::USE_EXTERNAL_EMOJIS
    | perms::CONNECT
    | perms::SPEAK
    | perms::CHANGE_NICKNAME
    | perms::USE_APPLICATION_COMMANDS
    | perms::CREATE_PUBLIC_THREADS
    | perms::SEND_MESSAGES_IN_THREADS;
/// "Moderator": Moderate Members plus kick, manage messages, audit log and the basics.
pub const MODERATOR_PERMISSIONS: u64 = perms::MODERATE_MEMBERS
    | perms::KICK_MEMBERS
    | perms::MANAGE_MESSAGES
    | perms::VIEW_AUDIT_LOG
    | perms::VIEW_CHANNEL
    | perms::SEND_MESSAGES
    | perms::EMBED_LINKS
    | perms::ATTACH_FILES
    | perms::READ_MESSAGE_HISTORY;
/// The bot's managed role.
pub const BOT_ROLE_PERMISSIONS: u64 = perms::VIEW_CHANNEL
    | perms::SEND_MESSAGES
    | perms::EMBED_LINKS
    | perms::ATTACH_FILES
    | perms::READ_MESSAGE_HISTORY
    | perms::ADD_REACTIONS
    | perms::USE_EXTERNAL_EMOJIS
    | perms::SEND_MESSAGES_IN_THREADS;

/// Application flags sent in READY and `/oauth2/applications/@me`: GATEWAY_GUILD_MEMBERS_LIMITED,
/// GATEWAY_MESSAGE_CONTENT_LIMITED and APPLICATION_COMMAND_BADGE.
pub const APPLICATION_FLAGS: u64 = (1 << 15) | (1 << 19) | (1 << 23);
/// Gateway intents that Discord calls privileged.
pub const PRIVILEGED_INTENTS: u64 = (1 << 1) | (1 << 8) | (1 << 15);

/// Discord's limits that the fake enforces on what the bot sends (a violation is answered
/// 400 Invalid Form Body, as Discord does, and listed by `spec_violations`).
pub mod limits {
    pub const CONTENT: usize = 2000;
    pub const EMBEDS: usize = 10;
    pub const EMBED_TITLE: usize = 256;
    pub const EMBED_DESCRIPTION: usize = 4096;
    pub const EMBED_FIELDS: usize = 25;
    pub const EMBED_FIELD_NAME: usize = 256;
    pub const EMBED_FIELD_VALUE: usize = 1024;
    pub const EMBED_FOOTER: usize = 2048;
    pub const EMBED_AUTHOR: usize = 256;
    /// Sum of all title/description/field/footer/author characters over all embeds.
    pub const EMBED_TOTAL: usize = 6000;
    pub const ATTACHMENTS: usize = 10;
}

// ---------------------------------------------------------------------------------------------
// Configuration and recorded data
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct FakeDiscordConfig {
    /// Extra plain members `member01`, `member02`, ... (no roles), e.g. for a load test.
    pub extra_members: usize,
    /// Gives the `extra_members` the Moderator role (Moderate Members), e.g. for a load test
    /// where each of them scans.
    pub extra_members_moderators: bool,
    /// Sent in HELLO.
    pub heartbeat_interval_ms: u64,
    /// When set, REST calls with another `Authorization` get 401 and an IDENTIFY/RESUME with
    /// another token is closed with 4004 (a leading "Bot " is ignored on both sides).
    pub expected_token: Option<String>,
    /// When false, an IDENTIFY asking for a privileged intent (GUILD_MEMBERS, GUILD_PRESENCES,
    /// MESSAGE_CONTENT) is closed with 4014 "Disallowed intent(s)", as when the intent is not
    /// enabled in the developer portal.
    pub privileged_intents_enabled: bool,
    /// How long the bot has to answer an interaction (Discord: 3 s).
    pub interaction_ack_deadline: Duration,
    /// Per-file upload limit (also the interactions' `attachment_size_limit`); larger files are
    /// answered 413.
    pub upload_limit_bytes: usize,
    /// Dispatch MESSAGE_CREATE / MESSAGE_UPDATE / MESSAGE_DELETE for the bot's own messages
    /// (not ephemeral ones), as Discord does.
    pub echo_bot_messages: bool,
    /// When true, GUILD_CREATE's `members` is what Discord sends a bot that did not ask for the
    /// GUILD_PRESENCES intent: only the bot's own member (everyone with that intent). Default
    /// false: every member, so they are all in the bot's cache.
    pub members_as_discord_sends: bool,
}

impl Default for FakeDiscordConfig {
    fn default() -> Self {
        FakeDiscordConfig {
            extra_members: 0,
            extra_members_moderators: false,
            heartbeat_interval_ms: 41_250,
            expected_token: None,
            privileged_intents_enabled: true,
            interaction_ack_deadline: Duration::from_secs(3),
            upload_limit_bytes: 10 * 1024 * 1024,
            echo_bot_messages: true,
            members_as_discord_sends: false,
        }
    }
}

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

/// The IDENTIFY payload (`d`) the bot sent.
#[derive(Debug, Clone)]
pub struct Identify {
    pub token: String,
    pub intents: u64,
    pub shard: Option<(u64, u64)>,
    pub raw: Value,
}

/// A forced answer for the next `times` requests matching a method and route pattern.
#[derive(Debug, Clone)]
struct Fault {
    method: String,
    pattern: String,
    times: usize,
    delay: Duration,
    /// None: only the delay, then the normal answer.
    status: Option<u16>,
    retry_after: Option<f64>,
    hang: Hang,
}

/// A request Discord never answers (a half-open connection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hang {
    No,
    /// Never processed, never answered.
    Before,
    /// Processed (a message is created), but the answer never comes back.
    After,
}

// ---------------------------------------------------------------------------------------------
// Internal state
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct FakeUser {
    id: u64,
    username: String,
    global_name: Option<String>,
    bot: bool,
    roles: Vec<u64>,
    joined_at: String,
}

#[derive(Debug, Clone)]
struct FakeRole {
    id: u64,
    name: String,
    permissions: u64,
    position: u64,
    color: u64,
    hoist: bool,
    managed: bool,
    mentionable: bool,
    bot_id: Option<u64>,
}

#[derive(Debug, Clone)]
struct FakeChannel {
    id: u64,
    name: String,
    position: u64,
    topic: Option<String>,
}

enum Outgoing {
    Text(String),
    /// Drop the socket without a close frame.
    Drop,
    Close(u16, String),
}

struct Session {
    id: String,
    seq: u64,
    /// Every dispatch of the session, for replay on RESUME.
    log: Vec<(u64, String)>,
    /// READY and GUILD_CREATE were sent.
    readied: bool,
    shard: Option<(u64, u64)>,
}

struct Live {
    conn_id: u64,
    tx: tmpsc::UnboundedSender<Outgoing>,
}

#[derive(Default)]
struct Gateway {
    /// The session of the shard that holds the guild (shard 0 without sharding): every event
    /// goes there, as Discord sends a guild's events to `(guild_id >> 22) % num_shards`.
    session: Option<Session>,
    live: Option<Live>,
    /// Sessions of shards without the guild (another process's `SHARD_RANGE`), by shard id:
    /// they get a READY without guilds and no events.
    other_shards: HashMap<u64, (Session, Live)>,
    next_conn_id: u64,
    connections: usize,
    identifies: Vec<Identify>,
    resumes: Vec<Value>,
    received: Vec<Value>,
}

struct StoredMessage {
    channel_id: u64,
    json: Value,
}

struct InteractionState {
    id: u64,
    token: String,
    channel_id: u64,
    user_id: u64,
    name: String,
    guild: bool,
    created: Instant,
    callback_type: Option<u64>,
    original: Option<u64>,
    followups: Vec<u64>,
}

#[derive(Default)]
struct Store {
    messages: HashMap<u64, StoredMessage>,
    attachments: HashMap<u64, (String, Vec<u8>)>,
    interactions: HashMap<String, InteractionState>,
    global_commands: Vec<Value>,
    guild_commands: HashMap<u64, Vec<Value>>,
    command_ids: HashMap<String, u64>,
    dm_channels: HashMap<u64, u64>,
}

struct Shared {
    cfg: FakeDiscordConfig,
    base_url: String,
    ws_url: String,
    users: Vec<FakeUser>,
    roles: Vec<FakeRole>,
    channels: Vec<FakeChannel>,
    last_id: Mutex<u64>,
    gw: Mutex<Gateway>,
    state: Mutex<Store>,
    requests: Mutex<Vec<RecordedRequest>>,
    faults: Mutex<Vec<Fault>>,
    model_errors: Mutex<Vec<String>>,
}

/// Largest request body read.
const BODY_LIMIT: usize = 256 * 1024 * 1024;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------------------------------------
// The handle
// ---------------------------------------------------------------------------------------------

/// A running fake Discord; stopped when dropped.
pub struct FakeDiscord {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl FakeDiscord {
    /// Starts with the default configuration.
    pub fn start() -> FakeDiscord {
        FakeDiscord::start_with(FakeDiscordConfig::default())
    }

    /// Binds 127.0.0.1:0, serves on a dedicated thread, returns once accepting.
    pub fn start_with(cfg: FakeDiscordConfig) -> FakeDiscord {
        let listener = StdTcpListener::bind("127.0.0.1:0").expect("fake_discord: bind listener");
        listener
            .set_nonblocking(true)
            .expect("fake_discord: set_nonblocking");
        let addr = listener.local_addr().expect("fake_discord: local_addr");
        let base_url = format!("http://{addr}");
        let ws_url = format!("ws://{addr}/gateway");

        let shared = Arc::new(Shared {
            users: fixture_users(cfg.extra_members, cfg.extra_members_moderators),
            roles: fixture_roles(),
            channels: fixture_channels(),
            cfg,
            base_url,
            ws_url,
            last_id: Mutex::new(0),
            gw: Mutex::new(Gateway::default()),
            state: Mutex::new(Store::default()),
            requests: Mutex::new(Vec::new()),
            faults: Mutex::new(Vec::new()),
            model_errors: Mutex::new(Vec::new()),
        });

        let app = router(shared.clone());
        let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
        let (ready_tx, ready_rx) = mpsc::channel::<std::io::Result<()>>();
        let thread = std::thread::Builder::new()
            .name("fake-discord".into())
            .spawn(move || serve(listener, app, shutdown_rx, ready_tx))
            .expect("fake_discord: spawn server thread");
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("fake_discord: server failed to start: {e}"),
            Err(_) => panic!("fake_discord: server thread died during startup"),
        }
        FakeDiscord {
            addr,
            shared,
            shutdown: Some(shutdown_tx),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT` (no trailing slash): `DISCORD_API_BASE` for the bot.
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    /// `ws://127.0.0.1:PORT/gateway`, what `GET /api/v10/gateway` answers.
    pub fn gateway_url(&self) -> String {
        self.shared.ws_url.clone()
    }

    // ----- gateway --------------------------------------------------------------------------

    /// Waits until a gateway connection is live on a session that was sent READY and
    /// GUILD_CREATE (a resumed session counts). False on timeout.
    pub fn wait_ready(&self, timeout: Duration) -> bool {
        self.wait_until(timeout, || self.is_ready())
    }

    /// A live connection on a readied session.
    pub fn is_ready(&self) -> bool {
        let gw = lock(&self.shared.gw);
        gw.live.is_some() && gw.session.as_ref().is_some_and(|s| s.readied)
    }

    /// Whether a gateway connection has identified or resumed and is still open.
    pub fn is_connected(&self) -> bool {
        lock(&self.shared.gw).live.is_some()
    }

    pub fn identify_count(&self) -> usize {
        lock(&self.shared.gw).identifies.len()
    }

    /// Successful RESUMEs.
    pub fn resume_count(&self) -> usize {
        lock(&self.shared.gw).resumes.len()
    }

    /// WebSocket connections accepted so far.
    pub fn connection_count(&self) -> usize {
        lock(&self.shared.gw).connections
    }

    /// Every IDENTIFY, in order.
    pub fn identifies(&self) -> Vec<Identify> {
        lock(&self.shared.gw).identifies.clone()
    }

    pub fn last_identify(&self) -> Option<Identify> {
        lock(&self.shared.gw).identifies.last().cloned()
    }

    /// Every gateway payload received from the bot (heartbeats included), in order.
    pub fn gateway_received(&self) -> Vec<Value> {
        lock(&self.shared.gw).received.clone()
    }

    /// The last sequence number dispatched on the current session (0 without one).
    pub fn sequence(&self) -> u64 {
        lock(&self.shared.gw).session.as_ref().map_or(0, |s| s.seq)
    }

    /// The current session id.
    pub fn session_id(&self) -> Option<String> {
        lock(&self.shared.gw).session.as_ref().map(|s| s.id.clone())
    }

    /// Closes the live gateway socket abruptly (no close frame); the session stays resumable.
    pub fn drop_gateway(&self) {
        self.shared.end_live(Outgoing::Drop);
    }

    /// Closes the live gateway socket with a close frame (e.g. 4000 → the bot resumes, 4004 →
    /// authentication failed, 4009 → session timed out).
    pub fn close_gateway(&self, code: u16) {
        self.shared
            .end_live(Outgoing::Close(code, format!("fake close {code}")));
    }

    /// Sends op 9 INVALID_SESSION; with `resumable == false` the session is forgotten and the
    /// bot has to IDENTIFY again.
    pub fn invalidate_session(&self, resumable: bool) {
        let mut gw = lock(&self.shared.gw);
        if let Some(live) = &gw.live {
            let _ = live.tx.send(Outgoing::Text(
                json!({ "op": 9, "d": resumable, "s": null, "t": null }).to_string(),
            ));
        }
        if !resumable {
            gw.session = None;
        }
    }

    /// Sends op 7 RECONNECT (the bot should reconnect and resume).
    pub fn request_reconnect(&self) {
        let gw = lock(&self.shared.gw);
        if let Some(live) = &gw.live {
            let _ = live.tx.send(Outgoing::Text(
                json!({ "op": 7, "d": null, "s": null, "t": null }).to_string(),
            ));
        }
    }

    /// Dispatches any event (op 0) with the next sequence number and returns it. Without a live
    /// connection the event is only logged (a RESUME replays it). Panics without a session.
    pub fn dispatch(&self, event: &str, data: Value) -> u64 {
        self.shared
            .dispatch(event, data)
            .unwrap_or_else(|e| panic!("fake_discord: cannot dispatch {event}: {e}"))
    }

    // ----- injection ------------------------------------------------------------------------

    /// Dispatches MESSAGE_CREATE in a guild channel from a guild member, with `member`,
    /// `mentions` (`<@id>`/`<@!id>` of known users) and `mention_roles` (`<@&id>`) filled in.
    /// Waits (up to 10 s) for a ready gateway first. Returns the message id.
    pub fn send_message(&self, channel_id: u64, author_id: u64, content: &str) -> u64 {
        self.require_ready("MESSAGE_CREATE");
        self.send_message_now(channel_id, author_id, content)
    }

    /// Like [`FakeDiscord::send_message`] but without waiting for a live connection: with none
    /// (e.g. right after [`FakeDiscord::drop_gateway`]) the event is only logged on the session,
    /// and the bot gets it when it RESUMEs. Panics without a session.
    pub fn send_message_now(&self, channel_id: u64, author_id: u64, content: &str) -> u64 {
        assert!(
            self.shared.channel(channel_id).is_some(),
            "fake_discord: send_message to unknown channel {channel_id}"
        );
        let author = self
            .shared
            .user(author_id)
            .unwrap_or_else(|| panic!("fake_discord: send_message from unknown user {author_id}"));
        let id = self.shared.new_id();
        let msg = self
            .shared
            .incoming_message(id, channel_id, author, content, true);
        lock(&self.shared.state).messages.insert(
            id,
            StoredMessage {
                channel_id,
                json: msg.clone(),
            },
        );
        self.dispatch("MESSAGE_CREATE", msg);
        id
    }

    /// Dispatches MESSAGE_CREATE in the DM channel between `author_id` and the bot (no
    /// `guild_id`, no `member`). Returns the message id.
    pub fn send_dm(&self, author_id: u64, content: &str) -> u64 {
        self.require_ready("MESSAGE_CREATE");
        let author = self
            .shared
            .user(author_id)
            .unwrap_or_else(|| panic!("fake_discord: send_dm from unknown user {author_id}"));
        let channel_id = self.shared.dm_channel_id(author_id);
        let id = self.shared.new_id();
        let msg = self
            .shared
            .incoming_message(id, channel_id, author, content, false);
        lock(&self.shared.state).messages.insert(
            id,
            StoredMessage {
                channel_id,
                json: msg.clone(),
            },
        );
        self.dispatch("MESSAGE_CREATE", msg);
        id
    }

    /// The DM channel id between `user_id` and the bot (created on first use).
    pub fn dm_channel_id(&self, user_id: u64) -> u64 {
        self.shared.dm_channel_id(user_id)
    }

    /// Dispatches INTERACTION_CREATE (type 2, a chat-input command) from a guild member in a
    /// guild channel. `options` is Discord's option array
    /// (`[{"name":"target","type":3,"value":"alice"}]`), or an object shorthand
    /// (`{"target":"alice"}`: strings → type 3, integers → 4, booleans → 5, floats → 10), or
    /// null. User options (type 6) get `resolved.users`/`members`. `member.permissions` and
    /// `app_permissions` are computed from the roles. Returns the interaction id; its token is
    /// [`FakeDiscord::interaction_token`].
    pub fn send_slash_command(
        &self,
        user_id: u64,
        channel_id: u64,
        name: &str,
        options: Value,
    ) -> u64 {
        self.require_ready("INTERACTION_CREATE");
        assert!(
            self.shared.channel(channel_id).is_some(),
            "fake_discord: slash command in unknown channel {channel_id}"
        );
        let (id, payload) =
            self.shared
                .command_interaction(user_id, Some(channel_id), name, options);
        self.dispatch("INTERACTION_CREATE", payload);
        id
    }

    /// Like [`FakeDiscord::send_slash_command`] but in the user's DM with the bot (no guild,
    /// `user` instead of `member`, context 1).
    pub fn send_dm_slash_command(&self, user_id: u64, name: &str, options: Value) -> u64 {
        self.require_ready("INTERACTION_CREATE");
        let (id, payload) = self
            .shared
            .command_interaction(user_id, None, name, options);
        self.dispatch("INTERACTION_CREATE", payload);
        id
    }

    /// The token of an injected interaction.
    pub fn interaction_token(&self, interaction_id: u64) -> Option<String> {
        lock(&self.shared.state)
            .interactions
            .values()
            .find(|i| i.id == interaction_id)
            .map(|i| i.token.clone())
    }

    // ----- REST records ---------------------------------------------------------------------

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

    /// Everything the bot sent that Discord would reject or that its OpenAPI spec forbids: each
    /// JSON body and `payload_json` validated against the vendored spec (see `discord_spec.rs`;
    /// it panics if the spec is missing), bodies that are not JSON, and Discord's content,
    /// embed and attachment limits. Each entry names the request.
    pub fn spec_violations(&self) -> Vec<String> {
        let mut out = Vec::new();
        for r in self.requests() {
            if !r.path.starts_with("/api/") {
                continue;
            }
            let name = format!("request #{} {} {}", r.index, r.method, r.path);
            if let Some(e) = &r.json_error {
                out.push(format!("{name}: body is not JSON: {e}"));
            }
            let Some(body) = r.payload() else {
                continue;
            };
            if let Err(errors) = discord_spec::validate(&r.method, &r.path, body) {
                out.extend(errors.into_iter().map(|e| format!("{name}: {e}")));
            }
            for e in limit_violations(&r.method, &r.route, body) {
                out.push(format!("{name}: Discord limit: {e}"));
            }
        }
        out
    }

    /// Payloads of the fake itself (gateway events, REST answers) that serenity 0.12.5 does not
    /// deserialize — a bug in the fake; should always be empty.
    pub fn model_errors(&self) -> Vec<String> {
        lock(&self.shared.model_errors).clone()
    }

    /// Asserts no unexpected request, no spec/limit violation and no model error.
    pub fn assert_clean(&self) {
        let unexpected: Vec<String> = self
            .unexpected_requests()
            .iter()
            .map(|r| format!("{} {}{}", r.method, r.path, query_suffix(&r.query)))
            .collect();
        assert!(
            unexpected.is_empty(),
            "fake_discord: unexpected requests: {unexpected:#?}"
        );
        let violations = self.spec_violations();
        assert!(
            violations.is_empty(),
            "fake_discord: spec violations: {violations:#?}"
        );
        let model = self.model_errors();
        assert!(model.is_empty(), "fake_discord: model errors: {model:#?}");
    }

    // ----- faults ---------------------------------------------------------------------------

    /// Answers the next `times` requests matching `method` (`*` for any) and `route_pattern`
    /// (route without `/api/v10`, `*` = one segment, e.g. `/channels/*/messages`) with `status`
    /// and a Discord-style error body.
    pub fn fail_next(&self, method: &str, route_pattern: &str, status: u16, times: usize) {
        self.add_fault(
            method,
            route_pattern,
            times,
            Duration::ZERO,
            Some(status),
            None,
        );
    }

    /// Answers the next `times` matching requests with 429 and `retry_after` (seconds), with
    /// `Retry-After` / `X-RateLimit-*` headers as Discord sends them.
    pub fn rate_limit_next(
        &self,
        method: &str,
        route_pattern: &str,
        retry_after_secs: f64,
        times: usize,
    ) {
        self.add_fault(
            method,
            route_pattern,
            times,
            Duration::ZERO,
            Some(429),
            Some(retry_after_secs),
        );
    }

    /// Delays the next `times` matching requests by `delay`, then answers them normally.
    pub fn delay_next(&self, method: &str, route_pattern: &str, delay: Duration, times: usize) {
        self.add_fault(method, route_pattern, times, delay, None, None);
    }

    /// The next `times` matching requests are never answered (and not acted on): the client
    /// sees a connection that stays open until it gives up.
    pub fn hang_next(&self, method: &str, route_pattern: &str, times: usize) {
        self.add_fault_full(
            method,
            route_pattern,
            times,
            Duration::ZERO,
            None,
            None,
            Hang::Before,
        );
    }

    /// The next `times` matching requests are acted on (a message is created) but their answer
    /// is never sent, as when a connection breaks after Discord did the work.
    pub fn lose_answer_next(&self, method: &str, route_pattern: &str, times: usize) {
        self.add_fault_full(
            method,
            route_pattern,
            times,
            Duration::ZERO,
            None,
            None,
            Hang::After,
        );
    }

    pub fn clear_faults(&self) {
        lock(&self.shared.faults).clear();
    }

    // ----- fixtures -------------------------------------------------------------------------

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

    /// Every guild member's user id (owner, admin, moderator, member, extras, bot).
    pub fn member_ids(&self) -> Vec<u64> {
        self.shared.users.iter().map(|u| u.id).collect()
    }

    /// The ids of the `extra_members`, in order (`member01`, `member02`, ...).
    pub fn extra_member_ids(&self) -> Vec<u64> {
        self.shared
            .users
            .iter()
            .filter(|u| u.username.starts_with("member"))
            .map(|u| u.id)
            .collect()
    }

    /// A user's username.
    pub fn username(&self, user_id: u64) -> Option<String> {
        self.shared.user(user_id).map(|u| u.username.clone())
    }

    /// A member's `joined_at`.
    pub fn joined_at(&self, user_id: u64) -> Option<String> {
        self.shared.user(user_id).map(|u| u.joined_at.clone())
    }

    /// A member's permissions in the guild's channels (computed from roles; owner → all).
    pub fn member_permissions(&self, user_id: u64) -> u64 {
        self.shared.member_permissions(user_id)
    }

    /// The user object the fake sends for `user_id`.
    pub fn user_json(&self, user_id: u64) -> Option<Value> {
        self.shared.user(user_id).map(user_json)
    }

    /// The GUILD_CREATE payload (`d`).
    pub fn guild_create_json(&self) -> Value {
        self.shared.guild_create(u64::MAX)
    }

    // ----- private --------------------------------------------------------------------------

    fn completed(&self) -> impl Iterator<Item = RecordedRequest> {
        self.requests().into_iter().filter(|r| r.status != 0)
    }

    fn require_ready(&self, what: &str) {
        assert!(
            self.wait_ready(Duration::from_secs(10)),
            "fake_discord: no ready gateway session to dispatch {what} on within 10 s \
             (is the bot connected?)"
        );
    }

    fn add_fault(
        &self,
        method: &str,
        pattern: &str,
        times: usize,
        delay: Duration,
        status: Option<u16>,
        retry_after: Option<f64>,
    ) {
        self.add_fault_full(method, pattern, times, delay, status, retry_after, Hang::No);
    }

    #[allow(clippy::too_many_arguments)]
    fn add_fault_full(
        &self,
        method: &str,
        pattern: &str,
        times: usize,
        delay: Duration,
        status: Option<u16>,
        retry_after: Option<f64>,
        hang: Hang,
    ) {
        lock(&self.shared.faults).push(Fault {
            method: method.to_ascii_uppercase(),
            pattern: pattern.to_string(),
            times,
            delay,
            status,
            retry_after,
            hang,
        });
    }
}

impl Drop for FakeDiscord {
    fn drop(&mut self) {
        self.shared.end_live(Outgoing::Drop);
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl std::fmt::Debug for FakeDiscord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeDiscord")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

fn serve(
    listener: StdTcpListener,
    app: Router,
    shutdown: oneshot::Receiver<()>,
    ready: mpsc::Sender<std::io::Result<()>>,
) {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("fake-discord-worker")
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    rt.block_on(async move {
        let listener = match tokio::net::TcpListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let _ = ready.send(Ok(()));
        let _ = shutdown.await;
        server.abort();
    });
    rt.shutdown_timeout(Duration::from_secs(1));
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/gateway", get(gateway_upgrade))
        .fallback(rest)
        // Lifts axum's 2 MB default for the multipart parser (the fake enforces Discord's own
        // upload limit instead).
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(shared)
}

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

fn fixture_users(extra: usize, extra_moderators: bool) -> Vec<FakeUser> {
    let u =
        |id: u64, username: &str, global: Option<&str>, roles: Vec<u64>, joined: &str| FakeUser {
            id,
            username: username.to_string(),
            global_name: global.map(str::to_string),
            bot: false,
            roles,
            joined_at: joined.to_string(),
        };
    let mut users = vec![
        u(
            OWNER_ID,
            OWNER_USERNAME,
            Some("Olga"),
            vec![],
            OWNER_JOINED_AT,
        ),
        u(
            ADMIN_ID,
            ADMIN_USERNAME,
            Some("Ada"),
            vec![MODERATOR_ROLE_ID],
            ADMIN_JOINED_AT,
        ),
        u(
            MODERATOR_ID,
            MODERATOR_USERNAME,
            Some("Mia"),
            vec![MODERATOR_ROLE_ID],
            MODERATOR_JOINED_AT,
        ),
        u(
            MEMBER_ID,
            MEMBER_USERNAME,
            Some("Alice"),
            vec![],
            MEMBER_JOINED_AT,
        ),
    ];
    // Extra members: accounts created every ~9 days from 2018-01-01, joined daily from 2022.
    for i in 0..extra {
        let n = i as u64;
        let created = 1_514_764_800_000 + n * 9 * 86_400_000 + n * 3_671_000;
        let joined = 1_640_995_200_000 + n * 86_400_000 + n * 1_234_567;
        users.push(FakeUser {
            id: snowflake(created, 0x200 + n),
            username: format!("member{:02}", i + 1),
            global_name: Some(format!("Member {}", i + 1)),
            bot: false,
            roles: if extra_moderators {
                vec![MODERATOR_ROLE_ID]
            } else {
                vec![]
            },
            joined_at: rfc3339_ms(joined),
        });
    }
    users.push(FakeUser {
        id: BOT_ID,
        username: BOT_USERNAME.to_string(),
        global_name: None,
        bot: true,
        roles: vec![BOT_ROLE_ID],
        joined_at: BOT_JOINED_AT.to_string(),
    });
    users
}

fn fixture_roles() -> Vec<FakeRole> {
    vec![
        FakeRole {
            id: EVERYONE_ROLE_ID,
            name: "@everyone".into(),
            permissions: EVERYONE_PERMISSIONS,
            position: 0,
            color: 0,
            hoist: false,
            managed: false,
            mentionable: false,
            bot_id: None,
        },
        FakeRole {
            id: BOT_ROLE_ID,
            name: BOT_USERNAME.into(),
            permissions: BOT_ROLE_PERMISSIONS,
            position: 1,
            color: 0,
            hoist: false,
            managed: true,
            mentionable: false,
            bot_id: Some(BOT_ID),
        },
        FakeRole {
            id: MODERATOR_ROLE_ID,
            name: MODERATOR_ROLE_NAME.into(),
            permissions: MODERATOR_PERMISSIONS,
            position: 2,
            color: 0x3498db,
            hoist: true,
            managed: false,
            mentionable: true,
            bot_id: None,
        },
    ]
}

fn fixture_channels() -> Vec<FakeChannel> {
    vec![
        FakeChannel {
            id: GENERAL_CHANNEL_ID,
            name: "general".into(),
            position: 0,
            topic: None,
        },
        FakeChannel {
            id: MOD_LOG_CHANNEL_ID,
            name: "mod-log".into(),
            position: 1,
            topic: Some("Audit log of the account scanner".into()),
        },
    ]
}

fn user_json(u: &FakeUser) -> Value {
    let mut v = json!({
        "id": u.id.to_string(),
        "username": u.username,
        "discriminator": if u.bot { "0000" } else { "0" },
        "global_name": u.global_name,
        "avatar": null,
        "avatar_decoration_data": null,
        "banner": null,
        "accent_color": null,
        "banner_color": null,
        "clan": null,
        "primary_guild": null,
        "collectibles": null,
        "public_flags": 0,
        "flags": 0,
    });
    if u.bot {
        v["bot"] = json!(true);
    }
    v
}

fn role_json(r: &FakeRole) -> Value {
    let mut tags = json!({});
    if let Some(bot) = r.bot_id {
        tags = json!({ "bot_id": bot.to_string() });
    }
    json!({
        "id": r.id.to_string(),
        "name": r.name,
        "description": null,
        "permissions": r.permissions.to_string(),
        "position": r.position,
        "color": r.color,
        "colors": { "primary_color": r.color, "secondary_color": null, "tertiary_color": null },
        "hoist": r.hoist,
        "managed": r.managed,
        "mentionable": r.mentionable,
        "icon": null,
        "unicode_emoji": null,
        "flags": 0,
        "tags": tags,
    })
}

fn ids_json(ids: &[u64]) -> Value {
    Value::Array(ids.iter().map(|i| json!(i.to_string())).collect())
}

/// A guild member object; `with_user` adds the `user` key.
fn member_json(u: &FakeUser, with_user: bool) -> Value {
    let mut v = json!({
        "nick": null,
        "avatar": null,
        "banner": null,
        "roles": ids_json(&u.roles),
        "joined_at": u.joined_at,
        "premium_since": null,
        "deaf": false,
        "mute": false,
        "flags": 0,
        "pending": false,
        "communication_disabled_until": null,
        "unusual_dm_activity_until": null,
        "avatar_decoration_data": null,
        "collectibles": null,
    });
    if with_user {
        v["user"] = user_json(u);
    }
    v
}

fn channel_json(c: &FakeChannel, with_guild_id: bool) -> Value {
    let mut v = json!({
        "id": c.id.to_string(),
        "type": 0,
        "name": c.name,
        "position": c.position,
        "permission_overwrites": [],
        "parent_id": null,
        "topic": c.topic,
        "nsfw": false,
        "last_message_id": null,
        "rate_limit_per_user": 0,
        "flags": 0,
        "icon_emoji": null,
        "theme_color": null,
        "version": 1_700_000_000_000_u64,
    });
    if with_guild_id {
        v["guild_id"] = json!(GUILD_ID.to_string());
    }
    v
}

// ---------------------------------------------------------------------------------------------
// Shared: model and gateway logic
// ---------------------------------------------------------------------------------------------

impl Shared {
    fn new_id(&self) -> u64 {
        let now = (now_unix_ms().max(DISCORD_EPOCH_MS) - DISCORD_EPOCH_MS) << 22 | (2 << 17);
        let mut last = lock(&self.last_id);
        *last = now.max(*last + 1);
        *last
    }

    fn user(&self, id: u64) -> Option<&FakeUser> {
        self.users.iter().find(|u| u.id == id)
    }

    fn bot(&self) -> &FakeUser {
        self.user(BOT_ID)
            .expect("fake_discord: the bot user is always a fixture")
    }

    fn channel(&self, id: u64) -> Option<&FakeChannel> {
        self.channels.iter().find(|c| c.id == id)
    }

    fn dm_channel_id(&self, user_id: u64) -> u64 {
        let existing = lock(&self.state).dm_channels.get(&user_id).copied();
        if let Some(id) = existing {
            return id;
        }
        let id = self.new_id();
        *lock(&self.state).dm_channels.entry(user_id).or_insert(id)
    }

    fn dm_channel_user(&self, channel_id: u64) -> Option<u64> {
        lock(&self.state)
            .dm_channels
            .iter()
            .find(|(_, c)| **c == channel_id)
            .map(|(u, _)| *u)
    }

    fn dm_channel_json(&self, user: &FakeUser, channel_id: u64) -> Value {
        json!({
            "id": channel_id.to_string(),
            "type": 1,
            "last_message_id": null,
            "flags": 0,
            "recipients": [user_json(user)],
        })
    }

    fn member_permissions(&self, user_id: u64) -> u64 {
        if user_id == OWNER_ID {
            return perms::ALL;
        }
        let Some(user) = self.user(user_id) else {
            return 0;
        };
        let mut p = EVERYONE_PERMISSIONS;
        for r in &self.roles {
            if user.roles.contains(&r.id) {
                p |= r.permissions;
            }
        }
        if p & perms::ADMINISTRATOR != 0 {
            perms::ALL
        } else {
            p
        }
    }

    fn guild_base(&self) -> Value {
        // Two halves: one json! this big exceeds the default macro recursion limit.
        let mut g = json!({
            "id": GUILD_ID.to_string(),
            "name": GUILD_NAME,
            "icon": null,
            "icon_hash": null,
            "splash": null,
            "discovery_splash": null,
            "banner": null,
            "description": null,
            "owner_id": OWNER_ID.to_string(),
            "afk_channel_id": null,
            "afk_timeout": 300,
            "widget_enabled": false,
            "widget_channel_id": null,
            "verification_level": 1,
            "default_message_notifications": 1,
            "explicit_content_filter": 2,
            "roles": self.roles.iter().map(role_json).collect::<Vec<_>>(),
            "emojis": [],
            "stickers": [],
            "features": [],
            "mfa_level": 0,
            "application_id": null,
            "system_channel_id": GENERAL_CHANNEL_ID.to_string(),
            "system_channel_flags": 0,
            "rules_channel_id": null,
            "public_updates_channel_id": null,
            "safety_alerts_channel_id": null,
            "max_presences": null,
            "max_members": 500_000,
        });
        merge(
            &mut g,
            json!({
                "vanity_url_code": null,
                "premium_tier": 0,
                "premium_subscription_count": 0,
                "preferred_locale": "en-US",
                "max_video_channel_users": 25,
                "max_stage_video_channel_users": 50,
                "nsfw": false,
                "nsfw_level": 0,
                "premium_progress_bar_enabled": false,
                "hub_type": null,
                "incidents_data": null,
                "latest_onboarding_question_id": null,
                "home_header": null,
            }),
        );
        g
    }

    /// The members GUILD_CREATE carries for a bot that identified with `intents`.
    fn guild_create_members(&self, intents: u64) -> Vec<&FakeUser> {
        const GUILD_PRESENCES: u64 = 1 << 8;
        self.users
            .iter()
            .filter(|u| {
                !self.cfg.members_as_discord_sends
                    || intents & GUILD_PRESENCES != 0
                    || u.id == BOT_ID
            })
            .collect()
    }

    /// GUILD_CREATE's `d`: the guild with the gateway-only fields.
    fn guild_create(&self, intents: u64) -> Value {
        let mut g = self.guild_base();
        let extra = json!({
            "joined_at": BOT_JOINED_AT,
            "large": false,
            "unavailable": false,
            "lazy": true,
            "member_count": self.users.len(),
            "voice_states": [],
            "members": self.guild_create_members(intents).into_iter().map(|u| member_json(u, true)).collect::<Vec<_>>(),
            "channels": self.channels.iter().map(|c| channel_json(c, false)).collect::<Vec<_>>(),
            "threads": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "embedded_activities": [],
            "activity_instances": [],
            "application_command_counts": {},
            "version": 1_700_000_000_000_u64,
        });
        merge(&mut g, extra);
        g
    }

    fn ready(&self, session_id: &str, shard: Option<(u64, u64)>) -> Value {
        let mut user = user_json(self.bot());
        user["verified"] = json!(true);
        user["mfa_enabled"] = json!(false);
        user["email"] = Value::Null;
        let mut d = json!({
            "v": 10,
            "user_settings": {},
            "user": user,
            "session_type": "normal",
            "session_id": session_id,
            "resume_gateway_url": self.ws_url,
            "relationships": [],
            "private_channels": [],
            "presences": [],
            "guilds": [{ "id": GUILD_ID.to_string(), "unavailable": true }],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": ["fake-east", "fake-west"],
            "application": { "id": APPLICATION_ID.to_string(), "flags": APPLICATION_FLAGS },
            "auth": {},
            "_trace": ["[\"fake-discord\",{\"micros\":0}]"],
        });
        if let Some((id, total)) = shard {
            d["shard"] = json!([id, total]);
        }
        d
    }

    fn application_json(&self) -> Value {
        let owner = self
            .user(OWNER_ID)
            .expect("fake_discord: the owner is always a fixture");
        json!({
            "id": APPLICATION_ID.to_string(),
            "name": BOT_USERNAME,
            "icon": null,
            "description": "Finds where a username exists and scores its Reddit history",
            "summary": "",
            "type": null,
            "bot": user_json(self.bot()),
            "bot_public": false,
            "bot_require_code_grant": false,
            "verify_key": "6b2f0e0f4c4d8a1c0e5e4f9b1d2c3a4b5e6f708192a3b4c5d6e7f8091a2b3c4d",
            "owner": user_json(owner),
            "team": null,
            "flags": APPLICATION_FLAGS,
            "rpc_origins": [],
            "tags": ["moderation"],
            "install_params": { "scopes": ["bot", "applications.commands"], "permissions": BOT_ROLE_PERMISSIONS.to_string() },
            "integration_types_config": { "0": { "oauth2_install_params": { "scopes": ["bot", "applications.commands"], "permissions": BOT_ROLE_PERMISSIONS.to_string() } } },
            "redirect_uris": [],
            "interactions_endpoint_url": null,
            "role_connections_verification_url": null,
            "approximate_guild_count": 1,
            "approximate_user_install_count": 0,
            "hook": true,
            "is_monetized": false,
            "is_verified": false,
            "is_discoverable": false,
            "storefront_available": false,
        })
    }

    /// Users mentioned as `<@id>` / `<@!id>` and roles as `<@&id>` in `content`, known ones only,
    /// deduplicated, in order of appearance.
    fn parse_mentions(&self, content: &str) -> (Vec<u64>, Vec<u64>) {
        let mut users = Vec::new();
        let mut roles = Vec::new();
        let mut rest = content;
        while let Some(start) = rest.find("<@") {
            rest = &rest[start + 2..];
            let (is_role, body) = if let Some(b) = rest.strip_prefix('&') {
                (true, b)
            } else if let Some(b) = rest.strip_prefix('!') {
                (false, b)
            } else {
                (false, rest)
            };
            let digits: String = body.chars().take_while(char::is_ascii_digit).collect();
            if digits.is_empty() || !body[digits.len()..].starts_with('>') {
                continue;
            }
            let Ok(id) = digits.parse::<u64>() else {
                continue;
            };
            if is_role {
                if self.roles.iter().any(|r| r.id == id && r.id != GUILD_ID) && !roles.contains(&id)
                {
                    roles.push(id);
                }
            } else if self.user(id).is_some() && !users.contains(&id) {
                users.push(id);
            }
        }
        (users, roles)
    }

    /// A MESSAGE_CREATE payload for a message sent by a user.
    fn incoming_message(
        &self,
        id: u64,
        channel_id: u64,
        author: &FakeUser,
        content: &str,
        in_guild: bool,
    ) -> Value {
        let (users, roles) = self.parse_mentions(content);
        let mentions: Vec<Value> = users
            .iter()
            .filter_map(|u| self.user(*u))
            .map(|u| {
                let mut j = user_json(u);
                if in_guild {
                    j["member"] = member_json(u, false);
                }
                j
            })
            .collect();
        let can_everyone = self.member_permissions(author.id) & perms::MENTION_EVERYONE != 0;
        let mention_everyone = in_guild
            && can_everyone
            && (content.contains("@everyone") || content.contains("@here"));
        let mut v = json!({
            "id": id.to_string(),
            "channel_id": channel_id.to_string(),
            "author": user_json(author),
            "content": content,
            "timestamp": snowflake_created_at(id),
            "edited_timestamp": null,
            "tts": false,
            "mention_everyone": mention_everyone,
            "mentions": mentions,
            "mention_roles": if in_guild { ids_json(&roles) } else { json!([]) },
            "attachments": [],
            "embeds": [],
            "components": [],
            "pinned": false,
            "type": 0,
            "flags": 0,
            "nonce": id.to_string(),
            "channel_type": if in_guild { 0 } else { 1 },
        });
        if in_guild {
            v["guild_id"] = json!(GUILD_ID.to_string());
            v["member"] = member_json(author, false);
        }
        v
    }

    fn command_id(&self, name: &str, guild: bool) -> (u64, bool) {
        let st = lock(&self.state);
        let find = |cmds: &[Value]| {
            cmds.iter()
                .find(|c| c.get("name").and_then(Value::as_str) == Some(name))
                .and_then(|c| c.get("id").and_then(Value::as_str))
                .and_then(|s| s.parse::<u64>().ok())
        };
        if guild && let Some(id) = st.guild_commands.get(&GUILD_ID).and_then(|c| find(c)) {
            return (id, true);
        }
        if let Some(id) = find(&st.global_commands) {
            return (id, false);
        }
        drop(st);
        let fresh = self.new_id();
        let id = *lock(&self.state)
            .command_ids
            .entry(name.to_string())
            .or_insert(fresh);
        (id, false)
    }

    /// Builds and stores an application-command interaction; returns (id, payload).
    fn command_interaction(
        &self,
        user_id: u64,
        channel_id: Option<u64>,
        name: &str,
        options: Value,
    ) -> (u64, Value) {
        let user = self
            .user(user_id)
            .unwrap_or_else(|| panic!("fake_discord: interaction from unknown user {user_id}"));
        let in_guild = channel_id.is_some();
        let channel_id = channel_id.unwrap_or_else(|| self.dm_channel_id(user_id));
        let id = self.new_id();
        let token = format!(
            "aW50ZXJhY3Rpb246{id}OmZha2U6{:016x}{:016x}",
            rand::rng().random::<u64>(),
            rand::rng().random::<u64>()
        );
        let options = normalize_options(options);
        let (command_id, is_guild_command) = self.command_id(name, in_guild);

        let mut resolved_users = serde_json::Map::new();
        let mut resolved_members = serde_json::Map::new();
        for o in &options {
            if matches!(o.get("type").and_then(Value::as_u64), Some(6 | 9))
                && let Some(uid) = o.get("value").and_then(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .or(v.as_u64().map(|n| n.to_string()))
                })
                && let Some(u) = uid.parse().ok().and_then(|uid: u64| self.user(uid))
            {
                resolved_users.insert(uid.clone(), user_json(u));
                if in_guild {
                    let mut m = member_json(u, false);
                    m["permissions"] = json!(self.member_permissions(u.id).to_string());
                    resolved_members.insert(uid, m);
                }
            }
        }
        let mut data = json!({
            "id": command_id.to_string(),
            "name": name,
            "type": 1,
            "options": options,
        });
        if !resolved_users.is_empty() {
            data["resolved"] = json!({ "users": resolved_users, "members": resolved_members });
        }
        if is_guild_command {
            data["guild_id"] = json!(GUILD_ID.to_string());
        }

        let member_perms = self.member_permissions(user_id);
        let bot_perms = self.member_permissions(BOT_ID);
        let mut v = json!({
            "id": id.to_string(),
            "application_id": APPLICATION_ID.to_string(),
            "type": 2,
            "data": data,
            "channel_id": channel_id.to_string(),
            "token": token,
            "version": 1,
            "locale": "en-US",
            "entitlements": [],
            "entitlement_sku_ids": [],
            "attachment_size_limit": self.cfg.upload_limit_bytes,
        });
        if in_guild {
            let channel = self
                .channel(channel_id)
                .expect("fake_discord: checked by the caller");
            let mut ch = channel_json(channel, true);
            ch["permissions"] = json!(member_perms.to_string());
            let mut member = member_json(user, true);
            member["permissions"] = json!(member_perms.to_string());
            merge(
                &mut v,
                json!({
                    "guild_id": GUILD_ID.to_string(),
                    "guild": { "id": GUILD_ID.to_string(), "locale": "en-US", "features": [] },
                    "guild_locale": "en-US",
                    "channel": ch,
                    "member": member,
                    "app_permissions": bot_perms.to_string(),
                    "authorizing_integration_owners": { "0": GUILD_ID.to_string() },
                    "context": 0,
                }),
            );
        } else {
            merge(
                &mut v,
                json!({
                    "channel": self.dm_channel_json(user, channel_id),
                    "user": user_json(user),
                    "app_permissions": perms_dm().to_string(),
                    "authorizing_integration_owners": { "0": GUILD_ID.to_string() },
                    "context": 1,
                }),
            );
        }
        lock(&self.state).interactions.insert(
            token.clone(),
            InteractionState {
                id,
                token,
                channel_id,
                user_id,
                name: name.to_string(),
                guild: in_guild,
                created: Instant::now(),
                callback_type: None,
                original: None,
                followups: Vec::new(),
            },
        );
        (id, v)
    }

    /// Self-check: does serenity 0.12.5 deserialize `value` as `T`?
    fn check_model<T: DeserializeOwned>(&self, what: &str, value: &Value) -> Option<T> {
        match serde_json::from_value::<T>(value.clone()) {
            Ok(t) => Some(t),
            Err(e) => {
                self.record_model_error(format!(
                    "{what} does not deserialize as serenity's {}: {e}",
                    std::any::type_name::<T>()
                ));
                None
            }
        }
    }

    fn check_dispatch(&self, event: &str, frame: &Value) {
        use serenity::model::event::{Event, GatewayEvent};
        let d = &frame["d"];
        match event {
            "READY" => {
                self.check_model::<serenity::model::gateway::Ready>("READY", d);
            }
            "GUILD_CREATE" => {
                if let Some(g) =
                    self.check_model::<serenity::model::event::GuildCreateEvent>("GUILD_CREATE", d)
                {
                    // serenity skips channels that fail to deserialize with only a warning.
                    if g.guild.channels.len() != self.channels.len()
                        || g.guild.members.len() != d["members"].as_array().map_or(0, Vec::len)
                        || g.guild.roles.len() != self.roles.len()
                    {
                        self.record_model_error(format!(
                            "GUILD_CREATE lost items in serenity: {} channels, {} members, {} roles",
                            g.guild.channels.len(),
                            g.guild.members.len(),
                            g.guild.roles.len()
                        ));
                    }
                }
            }
            "MESSAGE_CREATE" => {
                self.check_model::<serenity::model::channel::Message>("MESSAGE_CREATE", d);
            }
            "MESSAGE_UPDATE" => {
                self.check_model::<serenity::model::event::MessageUpdateEvent>("MESSAGE_UPDATE", d);
            }
            "MESSAGE_DELETE" => {
                self.check_model::<serenity::model::event::MessageDeleteEvent>("MESSAGE_DELETE", d);
            }
            "GUILD_MEMBERS_CHUNK" => {
                self.check_model::<serenity::model::event::GuildMembersChunkEvent>(
                    "GUILD_MEMBERS_CHUNK",
                    d,
                );
            }
            "INTERACTION_CREATE" => {
                self.check_model::<serenity::model::application::Interaction>(
                    "INTERACTION_CREATE",
                    d,
                );
            }
            _ => {}
        }
        if let Some(ev) = self.check_model::<GatewayEvent>(&format!("{event} frame"), frame) {
            match ev {
                GatewayEvent::Dispatch(_, Event::Unknown(_)) => self.record_model_error(format!(
                    "{event}: serenity turns this dispatch into Event::Unknown (dropped)"
                )),
                GatewayEvent::Dispatch(..) => {}
                _ => self.record_model_error(format!("{event}: serenity does not see a dispatch")),
            }
        }
    }

    /// Sends op 0 with the next sequence number. Without a live connection the event is only
    /// logged for replay on RESUME.
    fn dispatch(&self, event: &str, data: Value) -> Result<u64, String> {
        let mut gw = lock(&self.gw);
        let Some(session) = gw.session.as_mut() else {
            return Err("no gateway session (the bot never identified)".into());
        };
        session.seq += 1;
        let seq = session.seq;
        let frame = json!({ "op": 0, "t": event, "s": seq, "d": data });
        let text = frame.to_string();
        session.log.push((seq, text.clone()));
        if let Some(live) = &gw.live {
            let _ = live.tx.send(Outgoing::Text(text));
        }
        drop(gw);
        self.check_dispatch(event, &frame);
        Ok(seq)
    }

    /// Ends the live connection (if any) with `how`; the session stays.
    fn end_live(&self, how: Outgoing) {
        let mut gw = lock(&self.gw);
        if let Some(live) = gw.live.take() {
            let _ = live.tx.send(how);
        }
    }

    fn record_model_error(&self, msg: String) {
        eprintln!("fake_discord: MODEL ERROR: {msg}");
        lock(&self.model_errors).push(msg);
    }
}

fn perms_dm() -> u64 {
    perms::VIEW_CHANNEL
        | perms::SEND_MESSAGES
        | perms::EMBED_LINKS
        | perms::ATTACH_FILES
        | perms::READ_MESSAGE_HISTORY
        | perms::ADD_REACTIONS
        | perms::USE_EXTERNAL_EMOJIS
        | perms::USE_APPLICATION_COMMANDS
}

fn normalize_options(options: Value) -> Vec<Value> {
    match options {
        Value::Null => Vec::new(),
        Value::Array(a) => a,
        Value::Object(m) => m
            .into_iter()
            .map(|(name, value)| {
                let kind = match &value {
                    Value::Bool(_) => 5,
                    Value::Number(n) if n.is_i64() || n.is_u64() => 4,
                    Value::Number(_) => 10,
                    _ => 3,
                };
                json!({ "name": name, "type": kind, "value": value })
            })
            .collect(),
        other => panic!("fake_discord: slash-command options must be an array or object: {other}"),
    }
}

fn merge(target: &mut Value, extra: Value) {
    if let (Some(t), Value::Object(e)) = (target.as_object_mut(), extra) {
        for (k, v) in e {
            t.insert(k, v);
        }
    }
}

fn now_unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn rfc3339_ms(unix_ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(unix_ms as i64)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.6f+00:00")
        .to_string()
}

fn now_rfc3339() -> String {
    rfc3339_ms(now_unix_ms())
}

fn query_suffix(q: &Option<String>) -> String {
    q.as_ref().map(|q| format!("?{q}")).unwrap_or_default()
}

/// `*` matches exactly one segment; everything else literally.
fn route_matches(pattern: &str, route: &str) -> bool {
    let p: Vec<&str> = pattern.trim_end_matches('/').split('/').collect();
    let r: Vec<&str> = route.trim_end_matches('/').split('/').collect();
    p.len() == r.len() && p.iter().zip(&r).all(|(p, r)| *p == "*" || p == r)
}

// ---------------------------------------------------------------------------------------------
// Gateway
// ---------------------------------------------------------------------------------------------

async fn gateway_upgrade(State(shared): State<Arc<Shared>>, ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(move |socket| gateway_connection(shared, socket))
}

async fn gateway_connection(shared: Arc<Shared>, mut socket: WebSocket) {
    let (tx, mut rx) = tmpsc::unbounded_channel::<Outgoing>();
    let conn_id = {
        let mut gw = lock(&shared.gw);
        gw.next_conn_id += 1;
        gw.connections += 1;
        gw.next_conn_id
    };
    let hello = json!({
        "op": 10, "s": null, "t": null,
        "d": { "heartbeat_interval": shared.cfg.heartbeat_interval_ms, "_trace": ["[\"fake-gateway\",{\"micros\":0}]"] },
    });
    if socket
        .send(WsMessage::Text(hello.to_string().into()))
        .await
        .is_err()
    {
        return;
    }
    let mut authed = false;
    loop {
        tokio::select! {
            incoming = socket.recv() => {
                let text = match incoming {
                    Some(Ok(WsMessage::Text(t))) => t.to_string(),
                    Some(Ok(WsMessage::Binary(b))) => String::from_utf8_lossy(&b).into_owned(),
                    Some(Ok(WsMessage::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => continue,
                };
                let Ok(payload) = serde_json::from_str::<Value>(&text) else {
                    let _ = socket.send(close(4002, "Error while decoding payload.")).await;
                    break;
                };
                lock(&shared.gw).received.push(payload.clone());
                let op = payload.get("op").and_then(Value::as_u64);
                let d = payload.get("d").cloned().unwrap_or(Value::Null);
                match op {
                    Some(1) => {
                        let ack = json!({ "op": 11, "s": null, "t": null, "d": null }).to_string();
                        if socket.send(WsMessage::Text(ack.into())).await.is_err() {
                            break;
                        }
                    }
                    Some(2) => {
                        if authed {
                            let _ = socket.send(close(4005, "Already authenticated.")).await;
                            break;
                        }
                        match shared.identify(conn_id, &tx, &d) {
                            Ok(()) => authed = true,
                            Err((code, reason)) => {
                                let _ = socket.send(close(code, reason)).await;
                                break;
                            }
                        }
                    }
                    Some(6) => {
                        if authed {
                            let _ = socket.send(close(4005, "Already authenticated.")).await;
                            break;
                        }
                        match shared.resume(conn_id, &tx, &d) {
                            Ok(true) => authed = true,
                            Ok(false) => {
                                let invalid = json!({ "op": 9, "d": false, "s": null, "t": null });
                                let _ = socket.send(WsMessage::Text(invalid.to_string().into())).await;
                            }
                            Err((code, reason)) => {
                                let _ = socket.send(close(code, reason)).await;
                                break;
                            }
                        }
                    }
                    Some(8) => {
                        if authed {
                            shared.members_chunk(&d);
                        }
                    }
                    Some(3 | 4 | 31) => {}
                    _ => {
                        let _ = socket.send(close(4001, "Unknown opcode.")).await;
                        break;
                    }
                }
            }
            out = rx.recv() => {
                match out {
                    Some(Outgoing::Text(t)) => {
                        if socket.send(WsMessage::Text(t.into())).await.is_err() {
                            break;
                        }
                    }
                    Some(Outgoing::Close(code, reason)) => {
                        let _ = socket.send(close(code, &reason)).await;
                        break;
                    }
                    Some(Outgoing::Drop) | None => break,
                }
            }
        }
    }
    let mut gw = lock(&shared.gw);
    if gw.live.as_ref().is_some_and(|l| l.conn_id == conn_id) {
        gw.live = None;
    }
}

fn close(code: u16, reason: &str) -> WsMessage {
    WsMessage::Close(Some(CloseFrame {
        code,
        reason: reason.to_string().into(),
    }))
}

fn token_matches(expected: &Option<String>, got: &str) -> bool {
    let strip = |t: &str| {
        t.trim()
            .strip_prefix("Bot ")
            .unwrap_or(t.trim())
            .to_string()
    };
    expected.as_ref().is_none_or(|e| strip(e) == strip(got))
}

impl Shared {
    fn identify(
        &self,
        conn_id: u64,
        tx: &tmpsc::UnboundedSender<Outgoing>,
        d: &Value,
    ) -> Result<(), (u16, &'static str)> {
        let token = d.get("token").and_then(Value::as_str).unwrap_or_default();
        let intents = d.get("intents").and_then(Value::as_u64).unwrap_or(0);
        let shard = d
            .get("shard")
            .and_then(Value::as_array)
            .and_then(|a| Some((a.first()?.as_u64()?, a.get(1)?.as_u64()?)));
        {
            let mut gw = lock(&self.gw);
            gw.identifies.push(Identify {
                token: token.to_string(),
                intents,
                shard,
                raw: d.clone(),
            });
        }
        if !token_matches(&self.cfg.expected_token, token) {
            return Err((4004, "Authentication failed."));
        }
        if !self.cfg.privileged_intents_enabled && intents & PRIVILEGED_INTENTS != 0 {
            return Err((4014, "Disallowed intent(s)."));
        }
        let session_id = format!(
            "{:016x}{:016x}",
            rand::rng().random::<u64>(),
            rand::rng().random::<u64>()
        );
        if let Some((id, total)) = shard
            && total > 0
            && (GUILD_ID >> 22) % total != id
        {
            let mut ready = self.ready(&session_id, shard);
            ready["guilds"] = json!([]);
            let frame = json!({ "op": 0, "t": "READY", "s": 1, "d": ready });
            let text = frame.to_string();
            let _ = tx.send(Outgoing::Text(text.clone()));
            let mut gw = lock(&self.gw);
            if let Some((_, old)) = gw.other_shards.remove(&id) {
                let _ = old.tx.send(Outgoing::Drop);
            }
            gw.other_shards.insert(
                id,
                (
                    Session {
                        id: session_id,
                        seq: 1,
                        log: vec![(1, text)],
                        readied: true,
                        shard,
                    },
                    Live {
                        conn_id,
                        tx: tx.clone(),
                    },
                ),
            );
            drop(gw);
            self.check_dispatch("READY", &frame);
            return Ok(());
        }
        {
            let mut gw = lock(&self.gw);
            if let Some(old) = gw.live.take() {
                let _ = old.tx.send(Outgoing::Drop);
            }
            gw.session = Some(Session {
                id: session_id.clone(),
                seq: 0,
                log: Vec::new(),
                readied: false,
                shard,
            });
            gw.live = Some(Live {
                conn_id,
                tx: tx.clone(),
            });
        }
        let ready = self.ready(&session_id, shard);
        let _ = self.dispatch("READY", ready);
        let _ = self.dispatch("GUILD_CREATE", self.guild_create(intents));
        if let Some(s) = lock(&self.gw).session.as_mut() {
            s.readied = true;
        }
        Ok(())
    }

    /// Ok(true): resumed; Ok(false): unknown session (answer op 9).
    fn resume(
        &self,
        conn_id: u64,
        tx: &tmpsc::UnboundedSender<Outgoing>,
        d: &Value,
    ) -> Result<bool, (u16, &'static str)> {
        let token = d.get("token").and_then(Value::as_str).unwrap_or_default();
        if !token_matches(&self.cfg.expected_token, token) {
            return Err((4004, "Authentication failed."));
        }
        let session_id = d
            .get("session_id")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let their_seq = d.get("seq").and_then(Value::as_u64).unwrap_or(0);
        let mut gw = lock(&self.gw);
        if let Some((session, live)) = gw
            .other_shards
            .values_mut()
            .find(|(s, _)| s.id == session_id)
        {
            if their_seq > session.seq {
                return Err((4007, "Invalid seq."));
            }
            session.seq += 1;
            let frame = json!({ "op": 0, "t": "RESUMED", "s": session.seq, "d": {} });
            let _ = tx.send(Outgoing::Text(frame.to_string()));
            let _ = live.tx.send(Outgoing::Drop);
            *live = Live {
                conn_id,
                tx: tx.clone(),
            };
            gw.resumes.push(d.clone());
            return Ok(true);
        }
        let Some(session) = gw.session.as_mut() else {
            return Ok(false);
        };
        if session.id != session_id {
            return Ok(false);
        }
        if their_seq > session.seq {
            return Err((4007, "Invalid seq."));
        }
        for (seq, text) in &session.log {
            if *seq > their_seq {
                let _ = tx.send(Outgoing::Text(text.clone()));
            }
        }
        session.seq += 1;
        let seq = session.seq;
        let frame = json!({ "op": 0, "t": "RESUMED", "s": seq, "d": { "_trace": ["[\"fake-gateway\",{\"micros\":0}]"] } });
        let text = frame.to_string();
        session.log.push((seq, text.clone()));
        let _ = tx.send(Outgoing::Text(text));
        if let Some(old) = gw.live.take() {
            let _ = old.tx.send(Outgoing::Drop);
        }
        gw.live = Some(Live {
            conn_id,
            tx: tx.clone(),
        });
        gw.resumes.push(d.clone());
        drop(gw);
        self.check_dispatch("RESUMED", &frame);
        Ok(true)
    }

    /// Answers op 8 REQUEST_GUILD_MEMBERS with one GUILD_MEMBERS_CHUNK.
    fn members_chunk(&self, d: &Value) {
        let wanted: Option<Vec<u64>> = d.get("user_ids").map(|ids| match ids {
            Value::Array(a) => a
                .iter()
                .filter_map(|v| v.as_str().and_then(|s| s.parse().ok()).or(v.as_u64()))
                .collect(),
            v => v
                .as_str()
                .and_then(|s| s.parse().ok())
                .or(v.as_u64())
                .into_iter()
                .collect(),
        });
        let query = d
            .get("query")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_lowercase();
        let members: Vec<Value> = self
            .users
            .iter()
            .filter(|u| match &wanted {
                Some(ids) => ids.contains(&u.id),
                None => u.username.to_lowercase().starts_with(&query),
            })
            .map(|u| member_json(u, true))
            .collect();
        let mut chunk = json!({
            "guild_id": GUILD_ID.to_string(),
            "members": members,
            "chunk_index": 0,
            "chunk_count": 1,
            "not_found": [],
        });
        if let Some(nonce) = d.get("nonce") {
            chunk["nonce"] = nonce.clone();
        }
        let _ = self.dispatch("GUILD_MEMBERS_CHUNK", chunk);
    }
}

// ---------------------------------------------------------------------------------------------
// REST
// ---------------------------------------------------------------------------------------------

struct Answer {
    status: u16,
    json: Option<Value>,
    headers: Vec<(&'static str, String)>,
    unexpected: bool,
    faulted: bool,
    raw: Option<(String, Vec<u8>)>,
}

impl Answer {
    fn ok(v: Value) -> Answer {
        Answer {
            status: 200,
            json: Some(v),
            headers: Vec::new(),
            unexpected: false,
            faulted: false,
            raw: None,
        }
    }

    fn no_content() -> Answer {
        Answer {
            status: 204,
            json: None,
            headers: Vec::new(),
            unexpected: false,
            faulted: false,
            raw: None,
        }
    }

    /// A Discord error the bot may legitimately meet (not "unexpected").
    fn error(status: u16, code: u64, message: &str) -> Answer {
        Answer {
            status,
            json: Some(json!({ "message": message, "code": code })),
            headers: Vec::new(),
            unexpected: false,
            faulted: false,
            raw: None,
        }
    }

    /// An error for something the fake does not know: recorded as unexpected.
    fn unexpected(status: u16, code: u64, message: &str) -> Answer {
        let mut a = Answer::error(status, code, message);
        a.unexpected = true;
        a
    }

    fn not_found() -> Answer {
        Answer::unexpected(404, 0, "404: Not Found")
    }
}

/// One parsed request as handlers see it.
struct Req {
    method: Method,
    route: String,
    query: HashMap<String, String>,
    json: Option<Value>,
    files: Vec<MultipartPart>,
}

impl Req {
    fn payload(&self) -> Value {
        self.json.clone().unwrap_or_else(|| json!({}))
    }
}

async fn rest(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let at = Instant::now();
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, BODY_LIMIT)
        .await
        .unwrap_or_default();
    let method = parts.method.clone();
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().map(str::to_string);
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_ascii_lowercase(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();

    let (mut json_body, mut json_error, mut multipart, mut payload_json) = (None, None, None, None);
    if content_type.starts_with("multipart/form-data") {
        match parse_multipart(&content_type, bytes.clone(), parts.extensions.clone()).await {
            Ok(mp) => {
                if let Some(p) = mp.iter().find(|p| p.name == "payload_json") {
                    match serde_json::from_slice::<Value>(&p.data) {
                        Ok(v) => payload_json = Some(v),
                        Err(e) => json_error = Some(format!("payload_json: {e}")),
                    }
                }
                multipart = Some(mp);
            }
            Err(e) => json_error = Some(format!("multipart: {e}")),
        }
    } else if !bytes.is_empty() {
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(v) => json_body = Some(v),
            Err(e) => json_error = Some(e.to_string()),
        }
    }

    let route = if path.starts_with("/api/") || path == "/api" {
        discord_spec::route_of(&path)
    } else {
        path.clone()
    };
    let index = {
        let mut reqs = lock(&shared.requests);
        let index = reqs.len();
        reqs.push(RecordedRequest {
            index,
            at,
            method: method.as_str().to_string(),
            path: path.clone(),
            route: route.clone(),
            query: query.clone(),
            headers,
            body: bytes.to_vec(),
            json: json_body.clone(),
            json_error: json_error.clone(),
            multipart: multipart.clone(),
            payload_json: payload_json.clone(),
            status: 0,
            response: None,
            unexpected: false,
            faulted: false,
        });
        index
    };

    let answer = answer(
        &shared,
        &parts.headers,
        Req {
            method: method.clone(),
            route: route.clone(),
            query: parse_query(query.as_deref()),
            json: json_body.or(payload_json),
            files: multipart
                .unwrap_or_default()
                .into_iter()
                .filter(|p| p.name.starts_with("files["))
                .collect(),
        },
        path.starts_with("/api/"),
        json_error.is_some(),
    )
    .await;

    {
        let mut reqs = lock(&shared.requests);
        if let Some(r) = reqs.get_mut(index) {
            r.status = answer.status;
            r.response = answer.json.clone();
            r.unexpected = answer.unexpected;
            r.faulted = answer.faulted;
        }
    }
    into_response(answer)
}

fn into_response(a: Answer) -> Response {
    let status = StatusCode::from_u16(a.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = if let Some((ct, bytes)) = a.raw {
        let mut r = Response::new(Body::from(bytes));
        if let Ok(v) = HeaderValue::from_str(&ct) {
            r.headers_mut().insert(header::CONTENT_TYPE, v);
        }
        r
    } else if let Some(j) = a.json {
        let mut r = Response::new(Body::from(j.to_string()));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        r
    } else {
        Response::new(Body::empty())
    };
    *resp.status_mut() = status;
    for (name, value) in a.headers {
        if let Ok(v) = HeaderValue::from_str(&value) {
            resp.headers_mut().insert(name, v);
        }
    }
    resp.into_response()
}

async fn parse_multipart(
    content_type: &str,
    bytes: Bytes,
    extensions: axum::http::Extensions,
) -> Result<Vec<MultipartPart>, String> {
    let mut req = Request::builder()
        .method(Method::POST)
        .uri("/")
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(bytes))
        .map_err(|e| e.to_string())?;
    *req.extensions_mut() = extensions;
    let mut mp = Multipart::from_request(req, &())
        .await
        .map_err(|e| e.to_string())?;
    let mut parts = Vec::new();
    while let Some(field) = mp.next_field().await.map_err(|e| e.to_string())? {
        let name = field.name().unwrap_or_default().to_string();
        let filename = field.file_name().map(str::to_string);
        let content_type = field.content_type().map(str::to_string);
        let data = field.bytes().await.map_err(|e| e.to_string())?.to_vec();
        parts.push(MultipartPart {
            name,
            filename,
            content_type,
            data,
        });
    }
    Ok(parts)
}

fn parse_query(q: Option<&str>) -> HashMap<String, String> {
    q.unwrap_or_default()
        .split('&')
        .filter(|s| !s.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k.to_string(), v.to_string())
        })
        .collect()
}

fn take_fault(shared: &Shared, method: &Method, route: &str) -> Option<Fault> {
    let mut faults = lock(&shared.faults);
    let i = faults.iter().position(|f| {
        f.times > 0
            && (f.method == "*" || f.method == method.as_str())
            && route_matches(&f.pattern, route)
    })?;
    faults[i].times -= 1;
    let f = faults[i].clone();
    if faults[i].times == 0 {
        faults.remove(i);
    }
    Some(f)
}

fn fault_answer(status: u16, retry_after: Option<f64>) -> Answer {
    let mut a = match status {
        429 => {
            let retry = retry_after.unwrap_or(1.0);
            let mut a = Answer::error(429, 0, "You are being rate limited.");
            a.json = Some(json!({
                "message": "You are being rate limited.",
                "retry_after": retry,
                "global": false,
                "code": 0,
            }));
            a.headers = vec![
                ("retry-after", format!("{}", retry.ceil() as u64)),
                ("x-ratelimit-limit", "5".into()),
                ("x-ratelimit-remaining", "0".into()),
                ("x-ratelimit-reset-after", format!("{retry:.3}")),
                ("x-ratelimit-bucket", "fakebucket".into()),
                ("x-ratelimit-scope", "user".into()),
            ];
            a
        }
        400 => {
            let mut a = Answer::error(400, 50035, "Invalid Form Body");
            a.json = Some(json!({ "message": "Invalid Form Body", "code": 50035, "errors": {} }));
            a
        }
        401 => Answer::error(401, 0, "401: Unauthorized"),
        403 => Answer::error(403, 50013, "Missing Permissions"),
        404 => Answer::error(404, 0, "404: Not Found"),
        413 => Answer::error(413, 40005, "Request entity too large"),
        500 => Answer::error(500, 0, "500: Internal Server Error"),
        502..=504 => {
            let mut a = Answer::error(status, 0, "");
            a.json = None;
            a.raw = Some((
                "text/html".into(),
                b"<html><body><h1>upstream connect error</h1></body></html>".to_vec(),
            ));
            a
        }
        s => Answer::error(s, 0, &format!("{s}: fault injected by fake_discord")),
    };
    a.faulted = true;
    a
}

async fn answer(
    shared: &Arc<Shared>,
    headers: &HeaderMap,
    req: Req,
    api: bool,
    bad_body: bool,
) -> Answer {
    let mut lose_answer = false;
    if let Some(f) = take_fault(shared, &req.method, &req.route) {
        if f.hang == Hang::Before {
            std::future::pending::<()>().await;
        }
        lose_answer = f.hang == Hang::After;
        if !f.delay.is_zero() {
            tokio::time::sleep(f.delay).await;
        }
        if let Some(status) = f.status {
            return fault_answer(status, f.retry_after);
        }
    }
    if lose_answer {
        let _done = answer_normally(shared, headers, req, api, bad_body);
        return std::future::pending::<Answer>().await;
    }
    answer_normally(shared, headers, req, api, bad_body)
}

fn answer_normally(
    shared: &Arc<Shared>,
    headers: &HeaderMap,
    req: Req,
    api: bool,
    bad_body: bool,
) -> Answer {
    if !api {
        return serve_attachment(shared, &req);
    }
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    // `GET /gateway` needs no authorization on Discord either.
    if req.route != "/gateway" && !token_matches(&shared.cfg.expected_token, auth) {
        return Answer::error(401, 0, "401: Unauthorized");
    }
    if bad_body {
        return Answer::error(400, 50109, "The request body contains invalid JSON.");
    }
    shared.route(req)
}

fn serve_attachment(shared: &Shared, req: &Req) -> Answer {
    // /attachments/{channel}/{attachment}/{filename}
    let segs: Vec<&str> = req.route.trim_matches('/').split('/').collect();
    if req.method == Method::GET
        && let ["attachments", _, att, _] = segs.as_slice()
        && let Some(att) = att.parse::<u64>().ok()
        && let Some((name, bytes)) = lock(&shared.state).attachments.get(&att).cloned()
    {
        let ct = content_type_for(&name);
        let mut a = Answer::ok(Value::Null);
        a.json = None;
        a.raw = Some((ct.to_string(), bytes));
        return a;
    }
    Answer::not_found()
}

fn content_type_for(filename: &str) -> &'static str {
    let lower = filename.to_ascii_lowercase();
    if lower.ends_with(".json") {
        "application/json"
    } else if lower.ends_with(".csv") {
        "text/csv"
    } else if lower.ends_with(".txt") || lower.ends_with(".log") {
        "text/plain"
    } else if lower.ends_with(".png") {
        "image/png"
    } else {
        "application/octet-stream"
    }
}

fn parse_id(s: &str) -> Option<u64> {
    s.parse().ok()
}

impl Shared {
    fn route(&self, req: Req) -> Answer {
        let route = req.route.clone();
        let segs: Vec<&str> = route.trim_matches('/').split('/').collect();
        let m = req.method.as_str();
        match (m, segs.as_slice()) {
            ("GET", ["gateway"]) => Answer::ok(json!({ "url": self.ws_url })),
            ("GET", ["gateway", "bot"]) => {
                let v = json!({
                    "url": self.ws_url,
                    "shards": 1,
                    "session_start_limit": { "total": 1000, "remaining": 999, "reset_after": 14_400_000, "max_concurrency": 1 },
                });
                self.check_model::<serenity::model::gateway::BotGateway>("GET /gateway/bot", &v);
                Answer::ok(v)
            }
            ("GET", ["oauth2", "applications", "@me"] | ["applications", "@me"]) => {
                let v = self.application_json();
                self.check_model::<serenity::model::application::CurrentApplicationInfo>(
                    "GET /oauth2/applications/@me",
                    &v,
                );
                Answer::ok(v)
            }
            ("GET", ["users", "@me"]) => {
                let mut v = user_json(self.bot());
                v["verified"] = json!(true);
                v["mfa_enabled"] = json!(false);
                v["email"] = Value::Null;
                v["locale"] = json!("en-US");
                v["premium_type"] = json!(0);
                self.check_model::<serenity::model::user::CurrentUser>("GET /users/@me", &v);
                Answer::ok(v)
            }
            ("GET", ["users", id]) => match parse_id(id).and_then(|id| self.user(id)) {
                Some(u) => {
                    let v = user_json(u);
                    self.check_model::<serenity::model::user::User>("GET /users/{id}", &v);
                    Answer::ok(v)
                }
                None => Answer::error(404, 10013, "Unknown User"),
            },
            ("POST", ["users", "@me", "channels"]) => {
                let rid = req
                    .payload()
                    .get("recipient_id")
                    .and_then(|v| {
                        v.as_str()
                            .map(str::to_string)
                            .or(v.as_u64().map(|n| n.to_string()))
                    })
                    .and_then(|s| s.parse::<u64>().ok());
                match rid.and_then(|id| self.user(id)) {
                    Some(u) => {
                        let cid = self.dm_channel_id(u.id);
                        Answer::ok(self.dm_channel_json(u, cid))
                    }
                    None => Answer::error(400, 50035, "Invalid Form Body"),
                }
            }
            ("GET", ["applications", app, "commands"]) if self.is_app(app) => {
                Answer::ok(Value::Array(lock(&self.state).global_commands.clone()))
            }
            ("PUT", ["applications", app, "commands"]) if self.is_app(app) => {
                let cmds = self.register_commands(&req.payload(), None);
                lock(&self.state).global_commands = cmds.clone();
                Answer::ok(Value::Array(cmds))
            }
            ("GET", ["applications", app, "guilds", g, "commands"])
                if self.is_app(app) && self.is_guild(g) =>
            {
                Answer::ok(Value::Array(
                    lock(&self.state)
                        .guild_commands
                        .get(&GUILD_ID)
                        .cloned()
                        .unwrap_or_default(),
                ))
            }
            ("PUT", ["applications", app, "guilds", g, "commands"])
                if self.is_app(app) && self.is_guild(g) =>
            {
                let cmds = self.register_commands(&req.payload(), Some(GUILD_ID));
                lock(&self.state)
                    .guild_commands
                    .insert(GUILD_ID, cmds.clone());
                Answer::ok(Value::Array(cmds))
            }
            ("GET", ["guilds", g]) if self.is_guild(g) => {
                let mut v = self.guild_base();
                if req.query.get("with_counts").is_some_and(|v| v == "true") {
                    v["approximate_member_count"] = json!(self.users.len());
                    v["approximate_presence_count"] = json!(0);
                }
                self.check_model::<serenity::model::guild::PartialGuild>("GET /guilds/{id}", &v);
                Answer::ok(v)
            }
            ("GET", ["guilds", g, "roles"]) if self.is_guild(g) => {
                let v = Value::Array(self.roles.iter().map(role_json).collect());
                self.check_model::<Vec<serenity::model::guild::Role>>("GET /guilds/{id}/roles", &v);
                Answer::ok(v)
            }
            ("GET", ["guilds", g, "channels"]) if self.is_guild(g) => Answer::ok(Value::Array(
                self.channels
                    .iter()
                    .map(|c| channel_json(c, true))
                    .collect(),
            )),
            ("GET", ["guilds", g, "members"]) if self.is_guild(g) => {
                let limit: usize = req
                    .query
                    .get("limit")
                    .and_then(|l| l.parse().ok())
                    .unwrap_or(1);
                let after: u64 = req
                    .query
                    .get("after")
                    .and_then(|l| l.parse().ok())
                    .unwrap_or(0);
                let mut users: Vec<&FakeUser> =
                    self.users.iter().filter(|u| u.id > after).collect();
                users.sort_by_key(|u| u.id);
                Answer::ok(Value::Array(
                    users
                        .into_iter()
                        .take(limit)
                        .map(|u| member_json(u, true))
                        .collect(),
                ))
            }
            ("GET", ["guilds", g, "members", u]) if self.is_guild(g) => {
                match parse_id(u).and_then(|id| self.user(id)) {
                    Some(u) => {
                        let v = member_json(u, true);
                        self.check_model::<serenity::model::guild::Member>(
                            "GET /guilds/{id}/members/{user}",
                            &v,
                        );
                        Answer::ok(v)
                    }
                    None => Answer::error(404, 10007, "Unknown Member"),
                }
            }
            ("GET", ["channels", c]) => match self.channel_json_any(c) {
                Some(v) => {
                    self.check_model::<serenity::model::channel::Channel>("GET /channels/{id}", &v);
                    Answer::ok(v)
                }
                None => Answer::unexpected(404, 10003, "Unknown Channel"),
            },
            ("POST", ["channels", c, "typing"]) if self.known_channel(c) => Answer::no_content(),
            ("GET", ["channels", c, "messages"]) if self.known_channel(c) => {
                let cid = parse_id(c).unwrap_or_default();
                let limit: usize = req
                    .query
                    .get("limit")
                    .and_then(|l| l.parse().ok())
                    .unwrap_or(50);
                let st = lock(&self.state);
                let mut msgs: Vec<(u64, Value)> = st
                    .messages
                    .iter()
                    .filter(|(_, m)| m.channel_id == cid)
                    .map(|(id, m)| (*id, m.json.clone()))
                    .collect();
                msgs.sort_by_key(|(id, _)| std::cmp::Reverse(*id));
                Answer::ok(Value::Array(
                    msgs.into_iter().take(limit).map(|(_, v)| v).collect(),
                ))
            }
            ("POST", ["channels", c, "messages"]) if self.known_channel(c) => {
                let cid = parse_id(c).unwrap_or_default();
                self.create_message(cid, &req, None)
            }
            ("GET", ["channels", c, "messages", mid]) if self.known_channel(c) => {
                match self.message_in(c, mid).and_then(|id| self.stored(id)) {
                    Some(v) => Answer::ok(v),
                    None => Answer::error(404, 10008, "Unknown Message"),
                }
            }
            ("PATCH", ["channels", c, "messages", mid]) if self.known_channel(c) => {
                match self.message_in(c, mid) {
                    Some(id) => self.edit_message(id, &req, false),
                    None => Answer::error(404, 10008, "Unknown Message"),
                }
            }
            ("DELETE", ["channels", c, "messages", mid]) if self.known_channel(c) => {
                match self.message_in(c, mid) {
                    Some(id) => self.delete_message(id),
                    None => Answer::error(404, 10008, "Unknown Message"),
                }
            }
            ("PUT" | "DELETE", ["channels", c, "messages", _, "reactions", _, "@me"])
                if self.known_channel(c) =>
            {
                Answer::no_content()
            }
            ("POST", ["interactions", iid, token, "callback"]) => {
                self.interaction_callback(iid, token, &req)
            }
            (_, ["webhooks", app, token, ..]) if self.is_app(app) => {
                self.webhook(token, &segs[3..], &req)
            }
            _ => Answer::not_found(),
        }
    }

    fn is_app(&self, s: &str) -> bool {
        parse_id(s) == Some(APPLICATION_ID)
    }

    fn is_guild(&self, s: &str) -> bool {
        parse_id(s) == Some(GUILD_ID)
    }

    fn known_channel(&self, s: &str) -> bool {
        parse_id(s)
            .is_some_and(|id| self.channel(id).is_some() || self.dm_channel_user(id).is_some())
    }

    fn channel_json_any(&self, s: &str) -> Option<Value> {
        let id = parse_id(s)?;
        if let Some(c) = self.channel(id) {
            return Some(channel_json(c, true));
        }
        let user = self.dm_channel_user(id).and_then(|u| self.user(u))?;
        Some(self.dm_channel_json(user, id))
    }

    /// The id of a stored message `mid` that is in channel `c`.
    fn message_in(&self, c: &str, mid: &str) -> Option<u64> {
        let (c, mid) = (parse_id(c)?, parse_id(mid)?);
        lock(&self.state)
            .messages
            .get(&mid)
            .filter(|m| m.channel_id == c)
            .map(|_| mid)
    }

    fn stored(&self, id: u64) -> Option<Value> {
        lock(&self.state).messages.get(&id).map(|m| m.json.clone())
    }

    fn register_commands(&self, body: &Value, guild: Option<u64>) -> Vec<Value> {
        let list = body.as_array().cloned().unwrap_or_default();
        let mut out = Vec::new();
        for mut cmd in list {
            let name = cmd
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let id = {
                let existing = lock(&self.state).command_ids.get(&name).copied();
                match existing {
                    Some(id) => id,
                    None => {
                        let id = self.new_id();
                        lock(&self.state).command_ids.insert(name.clone(), id);
                        id
                    }
                }
            };
            let obj = cmd.as_object_mut();
            let Some(obj) = obj else { continue };
            obj.insert("id".into(), json!(id.to_string()));
            obj.insert("application_id".into(), json!(APPLICATION_ID.to_string()));
            obj.insert("version".into(), json!(self.new_id().to_string()));
            obj.entry("type").or_insert(json!(1));
            obj.entry("description").or_insert(json!(""));
            obj.entry("nsfw").or_insert(json!(false));
            obj.entry("options").or_insert(json!([]));
            if let Some(p) = obj.get("default_member_permissions").cloned() {
                let normal = match p {
                    Value::Number(n) => json!(n.to_string()),
                    other => other,
                };
                obj.insert("default_member_permissions".into(), normal);
            } else {
                obj.insert("default_member_permissions".into(), Value::Null);
            }
            obj.entry("integration_types").or_insert(json!([0]));
            obj.entry("contexts").or_insert(Value::Null);
            if let Some(g) = guild {
                obj.insert("guild_id".into(), json!(g.to_string()));
            }
            out.push(cmd);
        }
        self.check_model::<Vec<serenity::model::application::Command>>(
            "PUT commands answer",
            &Value::Array(out.clone()),
        );
        out
    }

    /// Users, roles and @everyone that `content` would ping given `allowed_mentions` (absent =
    /// everything parsed). The MENTION_EVERYONE permission is deliberately ignored: anything the
    /// bot *lets* ping shows up in the answer's `mention_everyone`.
    fn pings(&self, payload: &Value, content: &str) -> (Vec<u64>, Vec<u64>, bool) {
        let (users, roles) = self.parse_mentions(content);
        let everyone_text = content.contains("@everyone") || content.contains("@here");
        let Some(am) = payload.get("allowed_mentions").filter(|v| !v.is_null()) else {
            return (users, roles, everyone_text);
        };
        let parse: Vec<&str> = am
            .get("parse")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let listed = |key: &str| -> Vec<u64> {
            am.get(key)
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().and_then(|s| s.parse().ok()).or(v.as_u64()))
                        .collect()
                })
                .unwrap_or_default()
        };
        let allowed_users = listed("users");
        let allowed_roles = listed("roles");
        let users = users
            .into_iter()
            .filter(|u| parse.contains(&"users") || allowed_users.contains(u))
            .collect();
        let roles = roles
            .into_iter()
            .filter(|r| parse.contains(&"roles") || allowed_roles.contains(r))
            .collect();
        (users, roles, everyone_text && parse.contains(&"everyone"))
    }

    /// The answer message for what the bot sent; `existing` for edits.
    fn build_message(
        &self,
        id: u64,
        channel_id: u64,
        req: &Req,
        existing: Option<&Value>,
        webhook: Option<&InteractionState>,
    ) -> Result<Value, Answer> {
        let payload = req.payload();
        let p = &payload;
        // Checked as a message body whatever the route (interaction callbacks pass their `data`).
        let violations = limit_violations("POST", "/channels/0/messages", p);
        if !violations.is_empty() {
            let mut a = Answer::error(400, 50035, "Invalid Form Body");
            a.json = Some(
                json!({ "message": "Invalid Form Body", "code": 50035, "errors": { "_errors": violations } }),
            );
            return Err(a);
        }
        for f in &req.files {
            if f.data.len() > self.cfg.upload_limit_bytes {
                return Err(Answer::error(413, 40005, "Request entity too large"));
            }
        }
        let mut msg = match existing {
            Some(e) => e.clone(),
            None => {
                let bot = self.bot();
                let mut m = json!({
                    "id": id.to_string(),
                    "channel_id": channel_id.to_string(),
                    "author": user_json(bot),
                    "content": "",
                    "timestamp": snowflake_created_at(id),
                    "edited_timestamp": null,
                    "tts": false,
                    "mention_everyone": false,
                    "mentions": [],
                    "mention_roles": [],
                    "attachments": [],
                    "embeds": [],
                    "components": [],
                    "pinned": false,
                    "type": 0,
                    "flags": 0,
                });
                if let Some(i) = webhook {
                    m["webhook_id"] = json!(APPLICATION_ID.to_string());
                    m["application_id"] = json!(APPLICATION_ID.to_string());
                    m["type"] = json!(if i.original.is_none() { 20 } else { 0 });
                    if let Some(u) = self.user(i.user_id) {
                        m["interaction_metadata"] = json!({
                            "id": i.id.to_string(),
                            "type": 2,
                            "name": i.name,
                            "command_type": 1,
                            "user": user_json(u),
                            "authorizing_integration_owners": { "0": GUILD_ID.to_string() },
                        });
                    }
                }
                m
            }
        };
        if existing.is_some() {
            msg["edited_timestamp"] = json!(now_rfc3339());
        }
        if let Some(c) = p.get("content") {
            msg["content"] = if c.is_null() { json!("") } else { c.clone() };
        }
        if let Some(t) = p.get("tts").and_then(Value::as_bool) {
            msg["tts"] = json!(t);
        }
        if let Some(f) = p.get("flags").and_then(Value::as_u64) {
            msg["flags"] = json!(f);
        }
        if let Some(n) = p.get("nonce").filter(|n| !n.is_null()) {
            msg["nonce"] = n.clone();
        }
        if let Some(e) = p.get("embeds") {
            let embeds: Vec<Value> = e
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(|mut e| {
                    if let Some(o) = e.as_object_mut() {
                        o.entry("type").or_insert(json!("rich"));
                        o.entry("content_scan_version").or_insert(json!(2));
                    }
                    e
                })
                .collect();
            msg["embeds"] = Value::Array(embeds);
        }
        if let Some(c) = p.get("components") {
            msg["components"] = if c.is_null() { json!([]) } else { c.clone() };
        }

        // Attachments: `attachments` entries refer to new files by index (files[N]) or to the
        // message's existing attachments by id; without the key, existing ones stay and every
        // uploaded file is added.
        let old: Vec<Value> = msg["attachments"].as_array().cloned().unwrap_or_default();
        let mut new_attachments = Vec::new();
        let mut used_files = Vec::new();
        let file_for = |n: u64| req.files.iter().find(|f| f.name == format!("files[{n}]"));
        match p.get("attachments").and_then(Value::as_array) {
            Some(list) => {
                for a in list {
                    let aid = a.get("id").and_then(|v| {
                        v.as_u64()
                            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                    });
                    let Some(aid) = aid else { continue };
                    if let Some(f) = file_for(aid) {
                        used_files.push(f.name.clone());
                        new_attachments.push(self.store_attachment(channel_id, f, a));
                    } else if let Some(o) = old
                        .iter()
                        .find(|o| o.get("id").and_then(Value::as_str) == Some(&aid.to_string()))
                    {
                        new_attachments.push(o.clone());
                    }
                }
                for f in &req.files {
                    if !used_files.contains(&f.name) {
                        new_attachments.push(self.store_attachment(channel_id, f, &json!({})));
                    }
                }
            }
            None => {
                new_attachments = old;
                for f in &req.files {
                    new_attachments.push(self.store_attachment(channel_id, f, &json!({})));
                }
            }
        }
        if new_attachments.len() > limits::ATTACHMENTS {
            return Err(Answer::error(400, 50035, "Invalid Form Body"));
        }
        msg["attachments"] = Value::Array(new_attachments);

        // Mentions as Discord would resolve them.
        let content = msg["content"].as_str().unwrap_or_default().to_string();
        let (users, roles, everyone) = self.pings(p, &content);
        let mut mentioned: Vec<Value> = users
            .iter()
            .filter_map(|u| self.user(*u))
            .map(|u| {
                let mut j = user_json(u);
                j["member"] = member_json(u, false);
                j
            })
            .collect();
        msg["mention_roles"] = ids_json(&roles);
        msg["mention_everyone"] = json!(everyone);

        // Replies.
        if let Some(r) = p.get("message_reference").filter(|r| !r.is_null()) {
            let ref_id = r.get("message_id").and_then(|v| {
                v.as_str()
                    .and_then(|s| s.parse::<u64>().ok())
                    .or(v.as_u64())
            });
            if let Some(ref_id) = ref_id {
                let referenced = self.stored(ref_id);
                msg["type"] = json!(19);
                let mut mr = json!({ "type": 0, "message_id": ref_id.to_string(), "channel_id": channel_id.to_string() });
                if self.channel(channel_id).is_some() {
                    mr["guild_id"] = json!(GUILD_ID.to_string());
                }
                msg["message_reference"] = mr;
                msg["referenced_message"] = referenced.clone().unwrap_or(Value::Null);
                let ping_reply = match p.get("allowed_mentions").filter(|v| !v.is_null()) {
                    None => true,
                    Some(am) => am
                        .get("replied_user")
                        .and_then(Value::as_bool)
                        .unwrap_or(false),
                };
                if ping_reply
                    && let Some(author) = referenced
                        .as_ref()
                        .and_then(|m| m.pointer("/author/id"))
                        .and_then(Value::as_str)
                        .and_then(|s| s.parse::<u64>().ok())
                        .and_then(|id| self.user(id))
                    && !users.contains(&author.id)
                {
                    mentioned.push(user_json(author));
                }
            }
        }
        msg["mentions"] = Value::Array(mentioned);
        self.check_model::<serenity::model::channel::Message>("message answer", &msg);
        Ok(msg)
    }

    fn store_attachment(&self, channel_id: u64, f: &MultipartPart, meta: &Value) -> Value {
        let id = self.new_id();
        let filename = meta
            .get("filename")
            .and_then(Value::as_str)
            .map(str::to_string)
            .or_else(|| f.filename.clone())
            .unwrap_or_else(|| "file".into());
        let url = format!("{}/attachments/{channel_id}/{id}/{filename}", self.base_url);
        let mut a = json!({
            "id": id.to_string(),
            "filename": filename,
            "size": f.data.len(),
            "url": url,
            "proxy_url": url,
            "content_type": f.content_type.clone().unwrap_or_else(|| content_type_for(&filename).to_string()),
        });
        if let Some(d) = meta.get("description").filter(|d| !d.is_null()) {
            a["description"] = d.clone();
        }
        lock(&self.state)
            .attachments
            .insert(id, (filename, f.data.clone()));
        a
    }

    fn create_message(
        &self,
        channel_id: u64,
        req: &Req,
        webhook: Option<&InteractionState>,
    ) -> Answer {
        if is_empty_message(&req.payload(), &req.files) {
            return Answer::error(400, 50006, "Cannot send an empty message");
        }
        // Discord: with `enforce_nonce`, a message by the same author with the same nonce sent
        // in the last few minutes is returned instead of creating another.
        let payload = req.payload();
        if webhook.is_none()
            && payload.get("enforce_nonce").and_then(Value::as_bool) == Some(true)
            && let Some(nonce) = payload.get("nonce").filter(|n| !n.is_null())
        {
            let st = lock(&self.state);
            let same = st.messages.values().find(|m| {
                m.channel_id == channel_id
                    && m.json["author"]["id"] == json!(BOT_ID.to_string())
                    && m.json.get("nonce") == Some(nonce)
            });
            if let Some(m) = same {
                return Answer::ok(m.json.clone());
            }
        }
        let id = self.new_id();
        match self.build_message(id, channel_id, req, None, webhook) {
            Ok(msg) => {
                lock(&self.state).messages.insert(
                    id,
                    StoredMessage {
                        channel_id,
                        json: msg.clone(),
                    },
                );
                self.echo("MESSAGE_CREATE", channel_id, &msg);
                Answer::ok(msg)
            }
            Err(a) => a,
        }
    }

    /// Edits a stored message; `end_loading` clears the "thinking" flag of a deferred
    /// interaction response.
    fn edit_message(&self, id: u64, req: &Req, end_loading: bool) -> Answer {
        let Some((channel_id, existing)) = lock(&self.state)
            .messages
            .get(&id)
            .map(|m| (m.channel_id, m.json.clone()))
        else {
            return Answer::error(404, 10008, "Unknown Message");
        };
        match self.build_message(id, channel_id, req, Some(&existing), None) {
            Ok(mut msg) => {
                if end_loading {
                    let flags = msg["flags"].as_u64().unwrap_or(0) & !128;
                    msg["flags"] = json!(flags);
                }
                if let Some(m) = lock(&self.state).messages.get_mut(&id) {
                    m.json = msg.clone();
                }
                self.echo("MESSAGE_UPDATE", channel_id, &msg);
                Answer::ok(msg)
            }
            Err(a) => a,
        }
    }

    fn delete_message(&self, id: u64) -> Answer {
        let Some(m) = lock(&self.state).messages.remove(&id) else {
            return Answer::error(404, 10008, "Unknown Message");
        };
        if self.cfg.echo_bot_messages {
            let mut d = json!({ "id": id.to_string(), "channel_id": m.channel_id.to_string() });
            if self.channel(m.channel_id).is_some() {
                d["guild_id"] = json!(GUILD_ID.to_string());
            }
            let _ = self.dispatch("MESSAGE_DELETE", d);
        }
        Answer::no_content()
    }

    /// Dispatches what Discord sends every client for a message the bot created or edited
    /// (not for ephemeral ones), when a gateway session exists.
    fn echo(&self, event: &str, channel_id: u64, msg: &Value) {
        if !self.cfg.echo_bot_messages || msg["flags"].as_u64().unwrap_or(0) & 64 != 0 {
            return;
        }
        if lock(&self.gw).session.is_none() {
            return;
        }
        let mut d = msg.clone();
        if self.channel(channel_id).is_some() {
            d["guild_id"] = json!(GUILD_ID.to_string());
            d["member"] = member_json(self.bot(), false);
        }
        let _ = self.dispatch(event, d);
    }

    fn interaction_callback(&self, iid: &str, token: &str, req: &Req) -> Answer {
        let (state_id, channel_id, created, already) = {
            let st = lock(&self.state);
            match st.interactions.get(token) {
                Some(i) if Some(i.id) == parse_id(iid) => {
                    (i.id, i.channel_id, i.created, i.callback_type.is_some())
                }
                _ => return Answer::unexpected(404, 10062, "Unknown interaction"),
            }
        };
        if created.elapsed() > self.cfg.interaction_ack_deadline {
            return Answer::error(404, 10062, "Unknown interaction");
        }
        if already {
            return Answer::error(400, 40060, "Interaction has already been acknowledged.");
        }
        let payload = req.payload();
        let kind = payload.get("type").and_then(Value::as_u64).unwrap_or(0);
        let snapshot = self.interaction_snapshot(token);
        let original = match kind {
            4 | 5 => {
                let id = self.new_id();
                let mut sub = Req {
                    method: req.method.clone(),
                    route: req.route.clone(),
                    query: HashMap::new(),
                    json: Some(payload.get("data").cloned().unwrap_or_else(|| json!({}))),
                    files: req.files.clone(),
                };
                if kind == 5 {
                    // Deferred: a "thinking" placeholder; ephemeral when asked.
                    let flags = payload
                        .pointer("/data/flags")
                        .and_then(Value::as_u64)
                        .unwrap_or(0);
                    sub.json = Some(json!({ "flags": (flags & 64) | 128 }));
                    sub.files.clear();
                } else if is_empty_message(&sub.payload(), &sub.files) {
                    return Answer::error(400, 50006, "Cannot send an empty message");
                }
                match self.build_message(id, channel_id, &sub, None, snapshot.as_ref()) {
                    Ok(msg) => {
                        lock(&self.state).messages.insert(
                            id,
                            StoredMessage {
                                channel_id,
                                json: msg.clone(),
                            },
                        );
                        self.echo("MESSAGE_CREATE", channel_id, &msg);
                        Some(id)
                    }
                    Err(a) => return a,
                }
            }
            1 | 6 | 7 | 8 | 9 | 12 => None,
            _ => return Answer::error(400, 50035, "Invalid Form Body"),
        };
        let mut st = lock(&self.state);
        if let Some(i) = st.interactions.get_mut(token)
            && i.id == state_id
        {
            i.callback_type = Some(kind);
            i.original = original;
        }
        Answer::no_content()
    }

    fn interaction_snapshot(&self, token: &str) -> Option<InteractionState> {
        lock(&self.state)
            .interactions
            .get(token)
            .map(|i| InteractionState {
                id: i.id,
                token: i.token.clone(),
                channel_id: i.channel_id,
                user_id: i.user_id,
                name: i.name.clone(),
                guild: i.guild,
                created: i.created,
                callback_type: i.callback_type,
                original: i.original,
                followups: i.followups.clone(),
            })
    }

    /// `/webhooks/{app}/{token}/...` for interaction tokens; `rest` is what follows the token.
    fn webhook(&self, token: &str, rest: &[&str], req: &Req) -> Answer {
        let Some(inter) = self.interaction_snapshot(token) else {
            return Answer::unexpected(404, 10015, "Unknown Webhook");
        };
        let m = req.method.as_str();
        let target = |which: &str| -> Option<u64> {
            if which == "@original" {
                inter.original
            } else {
                parse_id(which)
                    .filter(|id| *id == inter.original.unwrap_or(0) || inter.followups.contains(id))
            }
        };
        match (m, rest) {
            ("POST", []) => {
                if inter.callback_type.is_none() {
                    return Answer::error(404, 10015, "Unknown Webhook");
                }
                let a = self.create_message(inter.channel_id, req, Some(&inter));
                if let Some(id) = a
                    .json
                    .as_ref()
                    .and_then(|j| j.get("id"))
                    .and_then(Value::as_str)
                    .and_then(|s| s.parse().ok())
                    && a.status == 200
                    && let Some(i) = lock(&self.state).interactions.get_mut(token)
                {
                    i.followups.push(id);
                }
                a
            }
            ("GET", ["messages", which]) => match target(which).and_then(|id| self.stored(id)) {
                Some(v) => Answer::ok(v),
                None => Answer::error(404, 10008, "Unknown Message"),
            },
            // An edit of a deferred original ends its "thinking" state.
            ("PATCH", ["messages", which]) => match target(which) {
                Some(id) => self.edit_message(id, req, *which == "@original"),
                None => Answer::error(404, 10008, "Unknown Message"),
            },
            ("DELETE", ["messages", which]) => match target(which) {
                Some(id) => self.delete_message(id),
                None => Answer::error(404, 10008, "Unknown Message"),
            },
            _ => Answer::not_found(),
        }
    }
}

/// Discord's 50006: no content, embeds, files, components, stickers or poll.
fn is_empty_message(p: &Value, files: &[MultipartPart]) -> bool {
    let content = p.get("content").and_then(Value::as_str).unwrap_or_default();
    let nonempty = |k: &str| {
        p.get(k)
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty())
    };
    content.is_empty()
        && files.is_empty()
        && !nonempty("embeds")
        && !nonempty("components")
        && !nonempty("sticker_ids")
        && p.get("poll").is_none_or(Value::is_null)
}

/// Discord's limits on a message-like payload (`content`, `embeds`, `attachments`), also inside
/// an interaction callback's `data`. Empty for other routes.
pub fn limit_violations(method: &str, route: &str, payload: &Value) -> Vec<String> {
    let message_like = route_matches("/channels/*/messages", route)
        || route_matches("/channels/*/messages/*", route)
        || route_matches("/interactions/*/*/callback", route)
        || route.starts_with("/webhooks/");
    if !message_like || method.eq_ignore_ascii_case("GET") || method.eq_ignore_ascii_case("DELETE")
    {
        return Vec::new();
    }
    let p = if route.ends_with("/callback") {
        match payload.get("data") {
            Some(d) => d,
            None => return Vec::new(),
        }
    } else {
        payload
    };
    let mut out = Vec::new();
    let chars = |v: Option<&Value>| v.and_then(Value::as_str).map_or(0, |s| s.chars().count());
    let content = chars(p.get("content"));
    if content > limits::CONTENT {
        out.push(format!(
            "content has {content} characters (max {})",
            limits::CONTENT
        ));
    }
    if let Some(embeds) = p.get("embeds").and_then(Value::as_array) {
        if embeds.len() > limits::EMBEDS {
            out.push(format!("{} embeds (max {})", embeds.len(), limits::EMBEDS));
        }
        let mut total = 0;
        for (i, e) in embeds.iter().enumerate() {
            let mut check = |what: &str, n: usize, max: usize| {
                total += n;
                if n > max {
                    out.push(format!("embeds[{i}].{what} has {n} characters (max {max})"));
                }
            };
            check("title", chars(e.get("title")), limits::EMBED_TITLE);
            check(
                "description",
                chars(e.get("description")),
                limits::EMBED_DESCRIPTION,
            );
            check(
                "footer.text",
                chars(e.pointer("/footer/text")),
                limits::EMBED_FOOTER,
            );
            check(
                "author.name",
                chars(e.pointer("/author/name")),
                limits::EMBED_AUTHOR,
            );
            let fields = e
                .get("fields")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if fields.len() > limits::EMBED_FIELDS {
                out.push(format!(
                    "embeds[{i}] has {} fields (max {})",
                    fields.len(),
                    limits::EMBED_FIELDS
                ));
            }
            for (j, f) in fields.iter().enumerate() {
                let name = chars(f.get("name"));
                let value = chars(f.get("value"));
                total += name + value;
                if name > limits::EMBED_FIELD_NAME {
                    out.push(format!(
                        "embeds[{i}].fields[{j}].name has {name} characters (max {})",
                        limits::EMBED_FIELD_NAME
                    ));
                }
                if value > limits::EMBED_FIELD_VALUE {
                    out.push(format!(
                        "embeds[{i}].fields[{j}].value has {value} characters (max {})",
                        limits::EMBED_FIELD_VALUE
                    ));
                }
                if name == 0 || value == 0 {
                    out.push(format!(
                        "embeds[{i}].fields[{j}] has an empty name or value"
                    ));
                }
            }
        }
        if total > limits::EMBED_TOTAL {
            out.push(format!(
                "embeds total {total} characters (max {})",
                limits::EMBED_TOTAL
            ));
        }
    }
    if let Some(a) = p.get("attachments").and_then(Value::as_array)
        && a.len() > limits::ATTACHMENTS
    {
        out.push(format!(
            "{} attachments (max {})",
            a.len(),
            limits::ATTACHMENTS
        ));
    }
    out
}
