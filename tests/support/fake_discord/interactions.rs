//! Application commands: registration, the INTERACTION_CREATE of an injected slash command, the
//! interaction callback and the interaction webhook (original response, follow-ups).

use std::collections::HashMap;
use std::time::Instant;

use rand::Rng;
use serde_json::{Value, json};

use super::fixtures::{channel_json, member_json, user_json};
use super::ids::{APPLICATION_ID, BOT_ID, perms};
use super::messages::is_empty_message;
use super::rest::{Answer, Req};
use super::state::{Shared, StoredMessage, merge, parse_id};
use super::{FakeDiscord, lock};

pub(super) struct InteractionState {
    pub(super) id: u64,
    pub(super) token: String,
    pub(super) channel_id: u64,
    pub(super) user_id: u64,
    pub(super) name: String,
    /// The guild of the interaction's channel (None in a DM).
    pub(super) guild_id: Option<u64>,
    pub(super) created: Instant,
    pub(super) callback_type: Option<u64>,
    pub(super) original: Option<u64>,
    pub(super) followups: Vec<u64>,
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
        let guild_id = self.shared.channel_guild(channel_id);
        assert!(
            guild_id.is_some(),
            "fake_discord: slash command in unknown channel {channel_id}"
        );
        self.require_ready(guild_id, "INTERACTION_CREATE");
        let (id, payload) =
            self.shared
                .command_interaction(user_id, Some(channel_id), name, options);
        self.dispatch_in_guild(guild_id, "INTERACTION_CREATE", payload);
        id
    }

    /// Like [`FakeDiscord::send_slash_command`] but in the user's DM with the bot (no guild,
    /// `user` instead of `member`, context 1).
    pub fn send_dm_slash_command(&self, user_id: u64, name: &str, options: Value) -> u64 {
        self.require_ready(None, "INTERACTION_CREATE");
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
}

impl Shared {
    /// The command's id: registered in `guild` (then true), globally, or a fresh one.
    fn command_id(&self, name: &str, guild: Option<u64>) -> (u64, bool) {
        let st = lock(&self.state);
        let find = |cmds: &[Value]| {
            cmds.iter()
                .find(|c| c.get("name").and_then(Value::as_str) == Some(name))
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
        let guild_id = channel_id.and_then(|c| self.channel_guild(c));
        let channel_id = channel_id.unwrap_or_else(|| self.dm_channel_id(user_id));
        let id = self.new_id();
        let token = format!(
            "aW50ZXJhY3Rpb246{id}OmZha2U6{:016x}{:016x}",
            rand::rng().random::<u64>(),
            rand::rng().random::<u64>()
        );
        let options = normalize_options(options);
        let (command_id, is_guild_command) = self.command_id(name, guild_id);

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
                if let Some(g) = guild_id.filter(|g| u.is_member_of(*g)) {
                    let mut m = member_json(u, g, false);
                    m["permissions"] =
                        json!(self.channel_permissions(channel_id, u.id).to_string());
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
        if let Some(g) = guild_id.filter(|_| is_guild_command) {
            data["guild_id"] = json!(g.to_string());
        }

        let member_perms = self.channel_permissions(channel_id, user_id);
        let bot_perms = self.channel_permissions(channel_id, BOT_ID);
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

    pub(super) fn interaction_callback(&self, iid: &str, token: &str, req: &Req) -> Answer {
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
                guild_id: i.guild_id,
                created: i.created,
                callback_type: i.callback_type,
                original: i.original,
                followups: i.followups.clone(),
            })
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
