//! The gateway WebSocket: HELLO, IDENTIFY (READY + GUILD_CREATE, or a READY without guilds for a
//! shard that does not hold the guild), heartbeats, RESUME with replay, REQUEST_GUILD_MEMBERS and
//! dispatch; and the test-facing gateway controls (drops, closes, invalid sessions, reconnects).

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
}

pub(super) struct Live {
    pub(super) conn_id: u64,
    pub(super) tx: tmpsc::UnboundedSender<Outgoing>,
}

#[derive(Default)]
pub(super) struct Gateway {
    /// The session of the shard that holds the guild (shard 0 without sharding): every event
    /// goes there, as Discord sends a guild's events to `(guild_id >> 22) % num_shards`.
    pub(super) session: Option<Session>,
    pub(super) live: Option<Live>,
    /// Sessions of shards without the guild (another process's `SHARD_RANGE`), by shard id:
    /// they get a READY without guilds and no events.
    pub(super) other_shards: HashMap<u64, (Session, Live)>,
    pub(super) next_conn_id: u64,
    pub(super) connections: usize,
    pub(super) identifies: Vec<Identify>,
    pub(super) resumes: Vec<Value>,
    pub(super) received: Vec<Value>,
}

impl FakeDiscord {
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

    pub(super) fn require_ready(&self, what: &str) {
        assert!(
            self.wait_ready(Duration::from_secs(10)),
            "fake_discord: no ready gateway session to dispatch {what} on within 10 s \
             (is the bot connected?)"
        );
    }
}

impl Shared {
    /// Sends op 0 with the next sequence number. Without a live connection the event is only
    /// logged for replay on RESUME.
    pub(super) fn dispatch(&self, event: &str, data: Value) -> Result<u64, String> {
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
