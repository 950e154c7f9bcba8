//! Interactions: command registration, the INTERACTION_CREATE of injected slash commands,
//! context-menu commands (user, message) and button presses, the interaction callback and the
//! interaction webhook (original response, follow-ups).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::{Value, json};

use super::fixtures::{channel_json, member_json, user_json};
use super::ids::{APPLICATION_ID, BOT_ID, perms};
use super::messages::is_empty_message;
use super::rest::{Answer, Req};
use super::state::{Shared, StoredMessage, merge, parse_id};
use super::{FakeDiscord, lock};

/// Interaction types (`type` of the interaction).
pub(super) const APPLICATION_COMMAND: u64 = 2;
pub(super) const MESSAGE_COMPONENT: u64 = 3;

#[derive(Clone)]
pub(super) struct InteractionState {
    pub(super) id: u64,
    pub(super) token: String,
    pub(super) channel_id: u64,
    pub(super) user_id: u64,
    /// The command's name (a button's `custom_id` for a component).
    pub(super) name: String,
    /// The guild of the interaction's channel (None in a DM).
    pub(super) guild_id: Option<u64>,
    /// When it was dispatched (the ack deadline runs from here).
    pub(super) created: Instant,
    pub(super) callback_type: Option<u64>,
    /// The message `@original` refers to: the response created by callback 4/5, or the
    /// component's message after callback 6/7.
    pub(super) original: Option<u64>,
    pub(super) followups: Vec<u64>,
    /// [`APPLICATION_COMMAND`] or [`MESSAGE_COMPONENT`].
    pub(super) kind: u64,
    /// `data.type` of a command: 1 chat input, 2 user, 3 message (0 for a component).
    pub(super) command_type: u64,
    /// The target of a user / message command.
    pub(super) target_id: Option<u64>,
    /// The message a pressed component is on.
    pub(super) message_id: Option<u64>,
    /// The INTERACTION_CREATE `d` as dispatched.
    pub(super) payload: Value,
}

/// What an injected interaction is.
enum Injected {
    ChatInput(Value),
    User(u64),
    Message(u64),
    Button { message_id: u64, custom_id: String },
}

impl FakeDiscord {
    /// Dispatches INTERACTION_CREATE (type 2, a chat-input command) from a guild member in a
    /// guild channel of either guild (`guild_id`, `guild`, `member.roles` and the command's
    /// guild registration are the channel's guild's), on the session of the shard that holds that
    /// guild. `options` is Discord's option array
    /// (`[{"name":"target","type":3,"value":"alice"}]`), or an object shorthand
    /// (`{"target":"alice"}`: strings → type 3, integers → 4, booleans → 5, floats → 10), or
    /// null. User options (type 6) get `resolved.users`/`members`. `member.permissions` (also
    /// `channel.permissions`) and `app_permissions` are the user's and the bot's permissions in
    /// that channel, computed from the guild's roles and the channel's overwrites. Returns the interaction id; its token is
    /// [`FakeDiscord::interaction_token`].
    pub fn send_slash_command(
        &self,
        user_id: u64,
        channel_id: u64,
        name: &str,
        options: Value,
    ) -> u64 {
        self.send_guild_command(
            user_id,
            channel_id,
            name,
            Injected::ChatInput(options),
            "slash command",
        )
    }

    /// Dispatches a user command (context menu "Apps" on a user): INTERACTION_CREATE type 2
    /// with `data.type` 2, `data.id` the registered command's (a `type` 2 command of that
    /// name), `data.target_id` and the target in `data.resolved.users` and (when a member of
    /// the channel's guild) `data.resolved.members` (no `user`, with `permissions` in that
    /// channel). Everything else as [`FakeDiscord::send_slash_command`]. Returns the
    /// interaction id.
    pub fn send_user_command(
        &self,
        user_id: u64,
        channel_id: u64,
        name: &str,
        target_user_id: u64,
    ) -> u64 {
        assert!(
            self.shared.user(target_user_id).is_some(),
            "fake_discord: user command on unknown user {target_user_id}"
        );
        self.send_guild_command(
            user_id,
            channel_id,
            name,
            Injected::User(target_user_id),
            "user command",
        )
    }

    /// Dispatches a message command (context menu "Apps" on a message): INTERACTION_CREATE
    /// type 2 with `data.type` 3, `data.target_id` and the full message object in
    /// `data.resolved.messages` (as `GET /channels/{c}/messages/{m}` answers it). The message
    /// must be one the fake knows (injected with [`FakeDiscord::send_message`] or sent by the
    /// bot) in `channel_id`. Everything else as [`FakeDiscord::send_slash_command`]. Returns the
    /// interaction id.
    pub fn send_message_command(
        &self,
        user_id: u64,
        channel_id: u64,
        name: &str,
        message_id: u64,
    ) -> u64 {
        let in_channel = lock(&self.shared.state)
            .messages
            .get(&message_id)
            .map(|m| m.channel_id);
        assert_eq!(
            in_channel,
            Some(channel_id),
            "fake_discord: message command on message {message_id}, which the fake does not \
             know in channel {channel_id}"
        );
        self.send_guild_command(
            user_id,
            channel_id,
            name,
            Injected::Message(message_id),
            "message command",
        )
    }

    /// Dispatches a button press: INTERACTION_CREATE type 3 (`data.component_type` 2,
    /// `data.custom_id`) on a message the bot posted (channel post, interaction response or
    /// follow-up) that currently has an enabled button with that `custom_id`; `message` is the
    /// message as stored now (with its `components`), `channel_id`/`guild_id`/`channel` are the
    /// message's, `member.permissions` and `app_permissions` computed for that channel (in a DM:
    /// `user`, and the presser must be that DM's user). Panics if the message or an enabled
    /// button with `custom_id` does not exist. Returns the interaction id. Answer with callback
    /// 4/5 (new message), 6 (deferred update: `@original` is then the button's message) or 7
    /// (update the button's message).
    pub fn press_button(&self, user_id: u64, message_id: u64, custom_id: &str) -> u64 {
        let (channel_id, msg) = lock(&self.shared.state)
            .messages
            .get(&message_id)
            .map(|m| (m.channel_id, m.json.clone()))
            .unwrap_or_else(|| {
                panic!("fake_discord: press_button on unknown message {message_id}")
            });
        assert_eq!(
            msg.pointer("/author/id").and_then(Value::as_str),
            Some(BOT_ID.to_string().as_str()),
            "fake_discord: press_button on message {message_id}, which the bot did not send"
        );
        let mut ids = Vec::new();
        let button = find_button(&msg["components"], custom_id, &mut ids).unwrap_or_else(|| {
            panic!(
                "fake_discord: message {message_id} has no button {custom_id:?} \
                 (custom_ids: {ids:?})"
            )
        });
        assert!(
            !button
                .get("disabled")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            "fake_discord: button {custom_id:?} of message {message_id} is disabled"
        );
        let guild_id = self.shared.channel_guild(channel_id);
        if guild_id.is_none() {
            assert_eq!(
                self.shared.dm_channel_user(channel_id),
                Some(user_id),
                "fake_discord: press_button in a DM channel of another user"
            );
        }
        self.require_ready(guild_id, "INTERACTION_CREATE");
        let (id, payload) = self.shared.build_interaction(
            user_id,
            channel_id,
            custom_id,
            Injected::Button {
                message_id,
                custom_id: custom_id.to_string(),
            },
        );
        self.dispatch_in_guild(guild_id, "INTERACTION_CREATE", payload);
        id
    }

    fn send_guild_command(
        &self,
        user_id: u64,
        channel_id: u64,
        name: &str,
        what: Injected,
        label: &str,
    ) -> u64 {
        let guild_id = self.shared.channel_guild(channel_id);
        assert!(
            guild_id.is_some(),
            "fake_discord: {label} in unknown channel {channel_id}"
        );
        self.require_ready(guild_id, "INTERACTION_CREATE");
        let (id, payload) = self
            .shared
            .build_interaction(user_id, channel_id, name, what);
        self.dispatch_in_guild(guild_id, "INTERACTION_CREATE", payload);
        id
    }

    /// Like [`FakeDiscord::send_slash_command`] but in the user's DM with the bot (no guild,
    /// `user` instead of `member`, context 1).
    pub fn send_dm_slash_command(&self, user_id: u64, name: &str, options: Value) -> u64 {
        self.require_ready(None, "INTERACTION_CREATE");
        let channel_id = self.shared.dm_channel_id(user_id);
        let (id, payload) =
            self.shared
                .build_interaction(user_id, channel_id, name, Injected::ChatInput(options));
        self.dispatch("INTERACTION_CREATE", payload);
        id
    }

    /// The token of an injected interaction.
    pub fn interaction_token(&self, interaction_id: u64) -> Option<String> {
        self.interaction(interaction_id).map(|i| i.token)
    }

    /// The INTERACTION_CREATE `d` the fake dispatched for an injected interaction.
    pub fn interaction_payload(&self, interaction_id: u64) -> Option<Value> {
        self.interaction(interaction_id).map(|i| i.payload)
    }

    /// The callback type the bot answered an interaction with (None before it did).
    pub fn interaction_callback_type(&self, interaction_id: u64) -> Option<u64> {
        self.interaction(interaction_id)
            .and_then(|i| i.callback_type)
    }

    /// The message `@original` of an interaction refers to now: the response created by
    /// callback 4/5, or the button's message after callback 6/7 (None before a callback).
    pub fn interaction_original(&self, interaction_id: u64) -> Option<u64> {
        self.interaction(interaction_id).and_then(|i| i.original)
    }

    /// From the dispatch of an interaction to the arrival of its first callback request
    /// (`POST /interactions/{id}/{token}/callback`, answered or not, late ones too): compare
    /// with Discord's 3 s. None while no callback arrived.
    pub fn interaction_ack_delay(&self, interaction_id: u64) -> Option<Duration> {
        let i = self.interaction(interaction_id)?;
        let route = format!("/interactions/{interaction_id}/{}/callback", i.token);
        lock(&self.shared.requests)
            .iter()
            .find(|r| r.method == "POST" && r.route == route)
            .map(|r| r.at.saturating_duration_since(i.created))
    }

    fn interaction(&self, interaction_id: u64) -> Option<InteractionState> {
        lock(&self.shared.state)
            .interactions
            .values()
            .find(|i| i.id == interaction_id)
            .cloned()
    }
}

/// The button with `custom_id` in a message's `components` (action rows of components);
/// collects every `custom_id` seen into `seen`.
fn find_button<'a>(
    components: &'a Value,
    custom_id: &str,
    seen: &mut Vec<String>,
) -> Option<&'a Value> {
    for row in components.as_array().into_iter().flatten() {
        for c in row["components"].as_array().into_iter().flatten() {
            if let Some(id) = c.get("custom_id").and_then(Value::as_str) {
                seen.push(id.to_string());
                if id == custom_id && c.get("type").and_then(Value::as_u64) == Some(2) {
                    return Some(c);
                }
            }
        }
    }
    None
}

/// A message as it appears inside an interaction (`message`, `resolved.messages`): as REST
/// answers it, without the gateway-only `guild_id`, `member` and `nonce`.
fn rest_message(mut msg: Value) -> Value {
    if let Some(o) = msg.as_object_mut() {
        o.remove("guild_id");
        o.remove("member");
        o.remove("nonce");
    }
    msg
}

/// `command_ids` key: chat-input commands by name, context-menu commands by type and name
/// (Discord allows one of each type with the same name).
fn command_key(name: &str, kind: u64) -> String {
    if kind <= 1 {
        name.to_string()
    } else {
        format!("{kind}:{name}")
    }
}

impl Shared {
    /// The command's id: registered in `guild` (then true), globally, or a fresh one.
    fn command_id(&self, name: &str, kind: u64, guild: Option<u64>) -> (u64, bool) {
        let st = lock(&self.state);
        let find = |cmds: &[Value]| {
            cmds.iter()
                .find(|c| {
                    c.get("name").and_then(Value::as_str) == Some(name)
                        && c.get("type").and_then(Value::as_u64).unwrap_or(1) == kind
                })
                .and_then(|c| c.get("id").and_then(Value::as_str))
                .and_then(|s| s.parse::<u64>().ok())
        };
        if let Some(g) = guild
            && let Some(id) = st.guild_commands.get(&g).and_then(|c| find(c))
        {
            return (id, true);
        }
        if let Some(id) = find(&st.global_commands) {
            return (id, false);
        }
        drop(st);
        let fresh = self.new_id();
        let id = *lock(&self.state)
            .command_ids
            .entry(command_key(name, kind))
            .or_insert(fresh);
        (id, false)
    }

    /// A user as a resolved member in `channel_id` (no `user`, with `permissions`), if a
    /// member of the channel's guild.
    fn resolved_member(
        &self,
        user_id: u64,
        channel_id: u64,
        guild_id: Option<u64>,
    ) -> Option<Value> {
        let u = self.user(user_id)?;
        let g = guild_id.filter(|g| u.is_member_of(*g))?;
        let mut m = member_json(u, g, false);
        m["permissions"] = json!(self.channel_permissions(channel_id, u.id).to_string());
        Some(m)
    }

    /// Builds and stores an interaction in `channel_id` (a guild channel or the user's DM
    /// channel); returns (id, payload).
    fn build_interaction(
        &self,
        user_id: u64,
        channel_id: u64,
        name: &str,
        what: Injected,
    ) -> (u64, Value) {
        let user = self
            .user(user_id)
            .unwrap_or_else(|| panic!("fake_discord: interaction from unknown user {user_id}"));
        let guild_id = self.channel_guild(channel_id);
        let id = self.new_id();
        let token = format!(
            "aW50ZXJhY3Rpb246{id}OmZha2U6{:016x}{:016x}",
            rand::rng().random::<u64>(),
            rand::rng().random::<u64>()
        );

        let (kind, command_type, target_id, message_id) = match &what {
            Injected::ChatInput(_) => (APPLICATION_COMMAND, 1, None, None),
            Injected::User(t) => (APPLICATION_COMMAND, 2, Some(*t), None),
            Injected::Message(m) => (APPLICATION_COMMAND, 3, Some(*m), None),
            Injected::Button { message_id, .. } => (MESSAGE_COMPONENT, 0, None, Some(*message_id)),
        };
        let mut message = None;
        let data = match what {
            Injected::ChatInput(options) => {
                let options = normalize_options(options);
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
                        if let Some(m) = self.resolved_member(u.id, channel_id, guild_id) {
                            resolved_members.insert(uid, m);
                        }
                    }
                }
                let mut data = json!({ "name": name, "type": 1, "options": options });
                if !resolved_users.is_empty() {
                    data["resolved"] =
                        json!({ "users": resolved_users, "members": resolved_members });
                }
                data
            }
            Injected::User(target) => {
                let u = self
                    .user(target)
                    .expect("fake_discord: checked by the caller");
                let mut resolved = json!({ "users": { target.to_string(): user_json(u) } });
                if let Some(m) = self.resolved_member(target, channel_id, guild_id) {
                    resolved["members"] = json!({ target.to_string(): m });
                }
                json!({ "name": name, "type": 2, "target_id": target.to_string(), "resolved": resolved })
            }
            Injected::Message(mid) => {
                let m = self
                    .stored(mid)
                    .expect("fake_discord: checked by the caller");
                json!({
                    "name": name,
                    "type": 3,
                    "target_id": mid.to_string(),
                    "resolved": { "messages": { mid.to_string(): rest_message(m) } },
                })
            }
            Injected::Button {
                message_id,
                custom_id,
            } => {
                message = self.stored(message_id).map(rest_message);
                json!({ "custom_id": custom_id, "component_type": 2 })
            }
        };
        let mut data = data;
        if kind == APPLICATION_COMMAND {
            let (command_id, is_guild_command) = self.command_id(name, command_type, guild_id);
            data["id"] = json!(command_id.to_string());
            if let Some(g) = guild_id.filter(|_| is_guild_command) {
                data["guild_id"] = json!(g.to_string());
            }
        }

        let member_perms = self.channel_permissions(channel_id, user_id);
        let bot_perms = self.channel_permissions(channel_id, BOT_ID);
        let mut v = json!({
            "id": id.to_string(),
            "application_id": APPLICATION_ID.to_string(),
            "type": kind,
            "data": data,
            "channel_id": channel_id.to_string(),
            "token": token,
            "version": 1,
            "locale": "en-US",
            "entitlements": [],
            "entitlement_sku_ids": [],
            "attachment_size_limit": self.cfg.upload_limit_bytes,
        });
        if let Some(m) = message {
            v["message"] = m;
        }
        if let Some(guild_id) = guild_id {
            let channel = self
                .channel(channel_id)
                .expect("fake_discord: checked by the caller");
            let mut ch = channel_json(channel, true);
            ch["permissions"] = json!(member_perms.to_string());
            let mut member = member_json(user, guild_id, true);
            member["permissions"] = json!(member_perms.to_string());
            merge(
                &mut v,
                json!({
                    "guild_id": guild_id.to_string(),
                    "guild": { "id": guild_id.to_string(), "locale": "en-US", "features": [] },
                    "guild_locale": "en-US",
                    "channel": ch,
                    "member": member,
                    "app_permissions": bot_perms.to_string(),
                    "authorizing_integration_owners": { "0": guild_id.to_string() },
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
                    // A guild-installed app used in its DM: "0" (Discord's documented value).
                    "authorizing_integration_owners": { "0": "0" },
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
                guild_id,
                created: Instant::now(),
                callback_type: None,
                original: None,
                followups: Vec::new(),
                kind,
                command_type,
                target_id,
                message_id,
                payload: v.clone(),
            },
        );
        (id, v)
    }

    pub(super) fn register_commands(&self, body: &Value, guild: Option<u64>) -> Vec<Value> {
        let list = body.as_array().cloned().unwrap_or_default();
        let mut out = Vec::new();
        for mut cmd in list {
            let name = cmd
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let kind = cmd.get("type").and_then(Value::as_u64).unwrap_or(1);
            let key = command_key(&name, kind);
            let id = {
                let existing = lock(&self.state).command_ids.get(&key).copied();
                match existing {
                    Some(id) => id,
                    None => {
                        let id = self.new_id();
                        lock(&self.state).command_ids.insert(key, id);
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
            // Context-menu commands (type 2, 3) have no options; Discord answers none.
            if kind == 1 {
                obj.entry("options").or_insert(json!([]));
            }
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

    pub(super) fn interaction_callback(&self, iid: &str, token: &str, req: &Req) -> Answer {
        let Some(inter) = self
            .interaction_snapshot(token)
            .filter(|i| Some(i.id) == parse_id(iid))
        else {
            return Answer::unexpected(404, 10062, "Unknown interaction");
        };
        if inter.created.elapsed() > self.cfg.interaction_ack_deadline {
            return Answer::error(404, 10062, "Unknown interaction");
        }
        if inter.callback_type.is_some() {
            return Answer::error(400, 40060, "Interaction has already been acknowledged.");
        }
        let channel_id = inter.channel_id;
        let payload = req.payload();
        let kind = payload.get("type").and_then(Value::as_u64).unwrap_or(0);
        let is_component = inter.kind == MESSAGE_COMPONENT;
        let sub_req = |json: Value| Req {
            method: req.method.clone(),
            route: req.route.clone(),
            query: HashMap::new(),
            json: Some(json),
            files: req.files.clone(),
        };
        let original = match kind {
            4 | 5 => {
                let id = self.new_id();
                let mut sub = sub_req(payload.get("data").cloned().unwrap_or_else(|| json!({})));
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
                match self.build_message(id, channel_id, &sub, None, Some(&inter)) {
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
            // DEFERRED_UPDATE_MESSAGE / UPDATE_MESSAGE: only for components; `@original` is
            // then the component's message, and 7 edits it with `data`.
            6 | 7 if is_component => {
                let Some(mid) = inter.message_id else {
                    return Answer::error(404, 10008, "Unknown Message");
                };
                if kind == 7 {
                    let sub = sub_req(payload.get("data").cloned().unwrap_or_else(|| json!({})));
                    let a = self.edit_message(mid, &sub, false);
                    if a.status != 200 {
                        return a;
                    }
                }
                Some(mid)
            }
            1 | 6 | 7 | 8 | 9 | 12 => None,
            _ => return Answer::error(400, 50035, "Invalid Form Body"),
        };
        let mut st = lock(&self.state);
        if let Some(i) = st.interactions.get_mut(token)
            && i.id == inter.id
        {
            i.callback_type = Some(kind);
            i.original = original;
        }
        Answer::no_content()
    }

    fn interaction_snapshot(&self, token: &str) -> Option<InteractionState> {
        lock(&self.state).interactions.get(token).cloned()
    }

    /// `/webhooks/{app}/{token}/...` for interaction tokens; `rest` is what follows the token.
    pub(super) fn webhook(&self, token: &str, rest: &[&str], req: &Req) -> Answer {
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
