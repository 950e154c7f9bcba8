//! The gateway WebSocket: HELLO, IDENTIFY (READY listing the guilds of the shard, then one
//! GUILD_CREATE per guild; a shard holds a guild when `(guild_id >> 22) % total == shard_id`),
//! heartbeats, RESUME with replay, REQUEST_GUILD_MEMBERS and dispatch (a guild's events go to the
//! session of the shard that holds it, DMs to the first guild's); and the test-facing gateway
//! controls (drops, closes, invalid sessions, reconnects).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use rand::Rng;
use serde_json::{Value, json};
use tokio::sync::mpsc as tmpsc;

use super::fixtures::member_json;
use super::ids::{GUILD_ID, PRIVILEGED_INTENTS};
use super::state::Shared;
use super::{FakeDiscord, lock};

/// The IDENTIFY payload (`d`) the bot sent.
#[derive(Debug, Clone)]
pub struct Identify {
    pub token: String,
    pub intents: u64,
    pub shard: Option<(u64, u64)>,
    pub raw: Value,
}

pub(super) enum Outgoing {
    Text(String),
    /// Drop the socket without a close frame.
    Drop,
    Close(u16, String),
}

pub(super) struct Session {
    pub(super) id: String,
    pub(super) seq: u64,
    /// Every dispatch of the session, for replay on RESUME.
    pub(super) log: Vec<(u64, String)>,
    /// READY and GUILD_CREATE were sent.
    pub(super) readied: bool,
    pub(super) shard: Option<(u64, u64)>,
    /// The intents of the IDENTIFY that opened the session.
    pub(super) intents: u64,
}

pub(super) struct Live {
    pub(super) conn_id: u64,
    pub(super) tx: tmpsc::UnboundedSender<Outgoing>,
}

#[derive(Default)]
pub(super) struct Gateway {
    /// The session of the shard that holds the first guild ([`GUILD_ID`]; the only session
    /// without sharding): its events and DMs go there, as Discord sends a guild's events to
    /// `(guild_id >> 22) % num_shards`. What the test-facing controls act on.
    pub(super) session: Option<Session>,
    pub(super) live: Option<Live>,
    /// Sessions of the other shards (another process's `SHARD_RANGE`), by shard id: each gets a
    /// READY listing the guilds it holds (maybe none), their GUILD_CREATEs and their events
    /// (with two shards, the second guild is on shard 1).
    pub(super) other_shards: HashMap<u64, (Session, Live)>,
    pub(super) next_conn_id: u64,
    pub(super) connections: usize,
    pub(super) identifies: Vec<Identify>,
    pub(super) resumes: Vec<Value>,
    pub(super) received: Vec<Value>,
}

/// Whether a session on `shard` holds `guild_id`: `(guild_id >> 22) % total == shard_id`
/// (without sharding, every guild).
pub(super) fn shard_holds(shard: Option<(u64, u64)>, guild_id: u64) -> bool {
    match shard {
        Some((id, total)) if total > 0 => (guild_id >> 22) % total == id,
        _ => true,
    }
}

/// Which session an event goes to.
#[derive(Debug, Clone, Copy)]
pub(super) enum Target {
    Main,
    Shard(u64),
}

impl Gateway {
    /// The session that gets `guild_id`'s events (None: DMs, the main session).
    fn target_for(&self, guild_id: Option<u64>) -> Option<Target> {
        let Some(g) = guild_id else {
            return self.session.is_some().then_some(Target::Main);
        };
        if self
            .session
            .as_ref()
            .is_some_and(|s| shard_holds(s.shard, g))
        {
            return Some(Target::Main);
        }
        self.other_shards
            .iter()
            .find(|(_, (s, _))| shard_holds(s.shard, g))
            .map(|(id, _)| Target::Shard(*id))
    }

    /// The intents of the session that gets `guild_id`'s events (None: no such session).
    pub(super) fn intents_for(&self, guild_id: u64) -> Option<u64> {
        match self.target_for(Some(guild_id))? {
            Target::Main => self.session.as_ref().map(|s| s.intents),
            Target::Shard(id) => self.other_shards.get(&id).map(|(s, _)| s.intents),
        }
    }

    /// A live connection on a readied session for `guild_id` (None: the main session).
    fn ready_for(&self, guild_id: Option<u64>) -> bool {
        match self.target_for(guild_id) {
            Some(Target::Main) => {
                self.live.is_some() && self.session.as_ref().is_some_and(|s| s.readied)
            }
            Some(Target::Shard(id)) => self
                .other_shards
                .get(&id)
                .is_some_and(|(s, l)| s.readied && !l.tx.is_closed()),
            None => false,
        }
    }
}

impl FakeDiscord {
    /// Waits until a gateway connection is live on a session that was sent READY and
    /// GUILD_CREATE (a resumed session counts): the session of the shard that holds the first
    /// guild. False on timeout.
    pub fn wait_ready(&self, timeout: Duration) -> bool {
        self.wait_until(timeout, || self.is_ready())
    }

    /// A live connection on a readied session (of the shard that holds the first guild).
    pub fn is_ready(&self) -> bool {
        lock(&self.shared.gw).ready_for(None)
    }

    /// Like [`FakeDiscord::wait_ready`] for the session of the shard that holds `guild_id`.
    pub fn wait_guild_ready(&self, guild_id: u64, timeout: Duration) -> bool {
        self.wait_until(timeout, || self.is_guild_ready(guild_id))
    }

    /// A live connection on a readied session of the shard that holds `guild_id`.
    pub fn is_guild_ready(&self, guild_id: u64) -> bool {
        lock(&self.shared.gw).ready_for(Some(guild_id))
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

    /// Dispatches any event (op 0) on the main session (the shard of the first guild) with the
    /// next sequence number and returns it. Without a live connection the event is only logged
    /// (a RESUME replays it). Panics without a session.
    pub fn dispatch(&self, event: &str, data: Value) -> u64 {
        self.dispatch_in_guild(None, event, data)
    }

    /// Like [`FakeDiscord::dispatch`], on the session of the shard that holds `guild_id`
    /// (None: the main session, where DMs go).
    pub fn dispatch_in_guild(&self, guild_id: Option<u64>, event: &str, data: Value) -> u64 {
        self.shared
            .dispatch_in(guild_id, event, data)
            .unwrap_or_else(|e| panic!("fake_discord: cannot dispatch {event}: {e}"))
    }

    /// Waits (10 s) for a ready session for `guild_id` (None: the main session).
    pub(super) fn require_ready(&self, guild_id: Option<u64>, what: &str) {
        assert!(
            self.wait_until(Duration::from_secs(10), || lock(&self.shared.gw)
                .ready_for(guild_id)),
            "fake_discord: no ready gateway session to dispatch {what} on within 10 s \
             (is the bot connected{}?)",
            guild_id.map_or(String::new(), |g| format!(", on the shard of guild {g}"))
        );
    }
}

impl Shared {
    /// Sends op 0 on the main session with the next sequence number. Without a live connection
    /// the event is only logged for replay on RESUME.
    pub(super) fn dispatch(&self, event: &str, data: Value) -> Result<u64, String> {
        self.dispatch_in(None, event, data)
    }

    /// Like [`Shared::dispatch`], on the session that holds `guild_id` (None: the main one).
    pub(super) fn dispatch_in(
        &self,
        guild_id: Option<u64>,
        event: &str,
        data: Value,
    ) -> Result<u64, String> {
        let (target, any) = {
            let gw = lock(&self.gw);
            let any = gw.session.is_some() || !gw.other_shards.is_empty();
            (gw.target_for(guild_id), any)
        };
        match (target, guild_id) {
            (Some(t), _) => self.dispatch_to(t, event, data),
            (None, Some(g)) if any => Err(format!("no gateway session holds guild {g}")),
            (None, _) => Err("no gateway session (the bot never identified)".into()),
        }
    }

    pub(super) fn dispatch_to(
        &self,
        target: Target,
        event: &str,
        data: Value,
    ) -> Result<u64, String> {
        let mut guard = lock(&self.gw);
        let gw = &mut *guard;
        let (session, live) = match target {
            Target::Main => match gw.session.as_mut() {
                Some(s) => (s, gw.live.as_ref()),
                None => return Err("no gateway session (the bot never identified)".into()),
            },
            Target::Shard(id) => match gw.other_shards.get_mut(&id) {
                Some((s, l)) => (s, Some(&*l)),
                None => return Err(format!("no gateway session for shard {id}")),
            },
        };
        session.seq += 1;
        let seq = session.seq;
        let frame = json!({ "op": 0, "t": event, "s": seq, "d": data });
        let text = frame.to_string();
        session.log.push((seq, text.clone()));
        if let Some(live) = live {
            let _ = live.tx.send(Outgoing::Text(text));
        }
        drop(guard);
        self.check_dispatch(event, &frame);
        Ok(seq)
    }

    /// Ends the live connection (if any) with `how`; the session stays.
    pub(super) fn end_live(&self, how: Outgoing) {
        let mut gw = lock(&self.gw);
        if let Some(live) = gw.live.take() {
            let _ = live.tx.send(how);
        }
    }
}

pub(super) async fn gateway_upgrade(
    State(shared): State<Arc<Shared>>,
    ws: WebSocketUpgrade,
) -> Response {
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

pub(super) fn token_matches(expected: &Option<String>, got: &str) -> bool {
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
        let held: Vec<u64> = self
            .guilds
            .iter()
            .map(|g| g.id)
            .filter(|g| shard_holds(shard, *g))
            .collect();
        let session = Session {
            id: session_id.clone(),
            seq: 0,
            log: Vec::new(),
            readied: false,
            shard,
            intents,
        };
        let live = Live {
            conn_id,
            tx: tx.clone(),
        };
        let target = {
            let mut gw = lock(&self.gw);
            if shard_holds(shard, GUILD_ID) {
                if let Some(old) = gw.live.take() {
                    let _ = old.tx.send(Outgoing::Drop);
                }
                gw.session = Some(session);
                gw.live = Some(live);
                Target::Main
            } else {
                let id = shard.map_or(0, |(id, _)| id);
                if let Some((_, old)) = gw.other_shards.insert(id, (session, live)) {
                    let _ = old.tx.send(Outgoing::Drop);
                }
                Target::Shard(id)
            }
        };
        let ready = self.ready(&session_id, shard, &held);
        let _ = self.dispatch_to(target, "READY", ready);
        for g in &held {
            if let Some(guild) = self.guild(*g) {
                let _ = self.dispatch_to(target, "GUILD_CREATE", self.guild_create(guild, intents));
            }
        }
        let mut gw = lock(&self.gw);
        let session = match target {
            Target::Main => gw.session.as_mut(),
            Target::Shard(id) => gw.other_shards.get_mut(&id).map(|(s, _)| s),
        };
        if let Some(s) = session {
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
        let mut guard = lock(&self.gw);
        let gw = &mut *guard;
        let new_live = Live {
            conn_id,
            tx: tx.clone(),
        };
        let frame = if let Some(session) = gw.session.as_mut().filter(|s| s.id == session_id) {
            let frame = replay_and_resume(session, their_seq, tx)?;
            if let Some(old) = gw.live.replace(new_live) {
                let _ = old.tx.send(Outgoing::Drop);
            }
            frame
        } else if let Some((session, live)) = gw
            .other_shards
            .values_mut()
            .find(|(s, _)| s.id == session_id)
        {
            let frame = replay_and_resume(session, their_seq, tx)?;
            let old = std::mem::replace(live, new_live);
            let _ = old.tx.send(Outgoing::Drop);
            frame
        } else {
            return Ok(false);
        };
        gw.resumes.push(d.clone());
        drop(guard);
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
        let guild_id = d
            .get("guild_id")
            .and_then(|v| v.as_str().and_then(|s| s.parse().ok()).or(v.as_u64()))
            .unwrap_or(GUILD_ID);
        if self.guild(guild_id).is_none() {
            return;
        }
        let members: Vec<Value> = self
            .members_of(guild_id)
            .filter(|u| match &wanted {
                Some(ids) => ids.contains(&u.id),
                None => u.username.to_lowercase().starts_with(&query),
            })
            .map(|u| member_json(u, guild_id, true))
            .collect();
        let mut chunk = json!({
            "guild_id": guild_id.to_string(),
            "members": members,
            "chunk_index": 0,
            "chunk_count": 1,
            "not_found": [],
        });
        if let Some(nonce) = d.get("nonce") {
            chunk["nonce"] = nonce.clone();
        }
        let _ = self.dispatch_in(Some(guild_id), "GUILD_MEMBERS_CHUNK", chunk);
    }
}

/// Sends the events of `session` after `their_seq`, then RESUMED (logged); returns RESUMED.
fn replay_and_resume(
    session: &mut Session,
    their_seq: u64,
    tx: &tmpsc::UnboundedSender<Outgoing>,
) -> Result<Value, (u16, &'static str)> {
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
    Ok(frame)
}
