//! A fake Discord on 127.0.0.1 for driving the real bot (serenity 0.12 + poise 0.7) in tests:
//! REST under `/api/v10/...` and a gateway WebSocket at `/gateway`, both plain HTTP on one port.
//!
//! * The bot gets [`FakeDiscord::base_url`] as `DISCORD_API_BASE` and passes it to serenity's
//!   `HttpBuilder::proxy` (with the ratelimiter disabled, see ARCHITECTURE.md §6);
//!   `GET /api/v10/gateway` (and `/gateway/bot`) hand out the `ws://` URL of the same server.
//! * Two fixed guilds (ids are the `pub const`s of `ids.rs`, re-exported here): [`GUILD_ID`]
//!   ("Scanner Test Server": `#general`, `#mod-log` and `#announcements`
//!   ([`READONLY_CHANNEL_ID`]), where an overwrite on the bot's role denies SEND_MESSAGES so the
//!   bot can read but not post) and [`GUILD2_ID`] ("Second Test Server": `#general`, `#mod-log`).
//!   Each has its own `@everyone` (id = guild id), Moderator and bot roles; the same owner; every
//!   user (owner, admin, moderator, member, extras, bot) is a member of both, with that guild's
//!   roles (the moderator has [`MODERATOR_ROLE_ID`] in the first, [`MODERATOR2_ROLE_ID`] in the
//!   second). Everything that takes a channel (messages, slash commands, the bot's posts and
//!   their echoes) uses the channel's guild; interaction permissions are per channel, overwrites
//!   applied as serenity's cache applies them.
//! * Gateway: HELLO → IDENTIFY → READY (s=1, listing the guilds of the shard) → one GUILD_CREATE
//!   per guild (s=2, 3); with sharding a guild is on shard `(guild_id >> 22) % total` (with two
//!   shards, the first guild on 0, the second on 1) and its events go to that shard's session.
//!   Heartbeats answered, RESUME answered with the missed events and a RESUMED that carries `s`.
//!   Tests inject MESSAGE_CREATE ([`FakeDiscord::send_message`], [`FakeDiscord::send_dm`]) and
//!   INTERACTION_CREATE: slash commands ([`FakeDiscord::send_slash_command`]), context-menu
//!   commands ([`FakeDiscord::send_user_command`], [`FakeDiscord::send_message_command`]:
//!   type 2 with `data.type` 2 / 3, `data.target_id` and the target in `data.resolved`) and
//!   button presses ([`FakeDiscord::press_button`]: type 3 on a message the bot posted, with
//!   that message and its current `components`). [`FakeDiscord::interaction_payload`] is the
//!   `d` dispatched.
//! * Joins: [`FakeDiscordConfig::joiners`] are users of the fake but members of no guild (absent
//!   from GUILD_CREATE and the member routes, 404 Unknown Member) until
//!   [`FakeDiscord::join_member`] makes one a member (joined now, no roles) and dispatches
//!   GUILD_MEMBER_ADD, only to a session that identified with the GUILD_MEMBERS intent.
//! * Interaction answers: callbacks 4 (new message, ephemeral with flags 64), 5 (deferred), and
//!   for components 6 (deferred update: `@original` is then the button's message) and 7 (update
//!   the button's message: content, embeds and components replaced, an edit echoed as
//!   MESSAGE_UPDATE); `@original` edits and follow-ups over the interaction webhook.
//!   [`FakeDiscord::interaction_ack_delay`] is the time from dispatch to the first callback.
//!   The components the bot sends are stored with each message (given `id`s as Discord does,
//!   replaced on edits): [`FakeDiscord::message_components`], [`RecordedRequest::components`].
//! * REST: every request is recorded in arrival order ([`RecordedRequest`]: method, path, query,
//!   headers, raw body, parsed JSON or multipart parts with `payload_json` parsed) and answered
//!   with objects serenity deserializes; guild routes serve both guilds (an unknown guild is
//!   404 Unknown Guild). Anything the fake does not know is answered 404 with a Discord-style
//!   error and listed by [`FakeDiscord::unexpected_requests`].
//! * Checks: [`FakeDiscord::spec_violations`] validates every body sent against Discord's OpenAPI
//!   spec (see `spec.rs`) plus Discord's documented message/embed limits;
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
//!
//! One file per concern: `ids.rs` (snowflakes, the fixed ids and permissions, Discord's limits;
//! public, re-exported here), `fixtures.rs` (the guilds' users, roles and channels, the JSON
//! objects built from them and the permission computation), `state.rs` (what the running fake holds), `gateway.rs` (the
//! WebSocket: HELLO, IDENTIFY, READY, heartbeats, RESUME, dispatch), `messages.rs` (messages
//! injected and messages the bot sends, their components), `interactions.rs` (slash and
//! context-menu commands, button presses: registration, INTERACTION_CREATE, callbacks and
//! webhooks), `joins.rs` (members joining: GUILD_MEMBER_ADD), `rest.rs` (the HTTP handler,
//! multipart parsing and the route table), `faults.rs` (forced statuses, delays, hangs, lost answers),
//! `recording.rs` (recorded requests and the queries tests make), `checks.rs` (spec, limit and
//! model checks) and `spec.rs` (validation against Discord's OpenAPI spec).
#![allow(dead_code)]

mod checks;
mod faults;
mod fixtures;
mod gateway;
mod ids;
mod interactions;
mod joins;
mod messages;
mod recording;
mod rest;
pub mod spec;
mod state;

// What tests see as `fake_discord::...`; each test binary uses only some of it.
#[allow(unused_imports)]
pub use checks::limit_violations;
#[allow(unused_imports)]
pub use fixtures::FakeJoiner;
#[allow(unused_imports)]
pub use gateway::Identify;
#[allow(unused_imports)]
pub use ids::*;
#[allow(unused_imports)]
pub use recording::{MultipartPart, RecordedRequest};

use std::net::{SocketAddr, TcpListener as StdTcpListener};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use tokio::sync::oneshot;

use fixtures::{fixture_guilds, fixture_users, joiner_users};
use gateway::{Gateway, Outgoing, gateway_upgrade};
use rest::rest;
use state::{Shared, Store};

#[derive(Debug, Clone)]
pub struct FakeDiscordConfig {
    /// Extra plain members `member01`, `member02`, ... (no roles), members of both guilds, e.g.
    /// for a load test.
    pub extra_members: usize,
    /// Gives the `extra_members` the Moderator role (Moderate Members) of each guild, e.g. for a
    /// load test where each of them scans.
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
    /// Users who are members of no guild until a test makes them join one with
    /// [`FakeDiscord::join_member`] (default none).
    pub joiners: Vec<FakeJoiner>,
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
            joiners: Vec::new(),
        }
    }
}

/// Largest request body read.
const BODY_LIMIT: usize = 256 * 1024 * 1024;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

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

        let guilds = fixture_guilds();
        let mut users = fixture_users(cfg.extra_members, cfg.extra_members_moderators);
        users.extend(joiner_users(&cfg.joiners, &users, &guilds));
        let shared = Arc::new(Shared {
            users,
            guilds,
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
