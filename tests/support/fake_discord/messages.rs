//! Messages: MESSAGE_CREATE injected from users (guild channels and DMs), and the messages the bot
//! creates, edits and deletes over REST or through interactions (mentions, replies, attachments,
//! Discord's checks, the echo on the gateway).

use serde_json::{Value, json};

use super::checks::limit_violations;
use super::fixtures::{FakeUser, ids_json, member_json, user_json};
use super::ids::{APPLICATION_ID, BOT_ID, limits, perms, snowflake_created_at};
use super::interactions::{InteractionState, MESSAGE_COMPONENT};
use super::recording::MultipartPart;
use super::rest::{Answer, Req, content_type_for};
use super::state::{Shared, StoredMessage, now_rfc3339};
use super::{FakeDiscord, lock};

impl FakeDiscord {
    /// Dispatches MESSAGE_CREATE in a guild channel (of either guild) from a guild member, with
    /// the channel's `guild_id`, `member` (roles in that guild), `mentions` (`<@id>`/`<@!id>` of
    /// known users) and `mention_roles` (`<@&id>` of that guild's roles) filled in, on the
    /// session of the shard that holds the guild. Waits (up to 10 s) for that session to be
    /// ready first. Returns the message id.
    pub fn send_message(&self, channel_id: u64, author_id: u64, content: &str) -> u64 {
        self.require_ready(self.shared.channel_guild(channel_id), "MESSAGE_CREATE");
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
        let guild_id = self.shared.channel_guild(channel_id);
        let id = self.shared.new_id();
        let msg = self
            .shared
            .incoming_message(id, channel_id, author, content);
        lock(&self.shared.state).messages.insert(
            id,
            StoredMessage {
                channel_id,
                json: msg.clone(),
            },
        );
        self.dispatch_in_guild(guild_id, "MESSAGE_CREATE", msg);
        id
    }

    /// Dispatches MESSAGE_CREATE in the DM channel between `author_id` and the bot (no
    /// `guild_id`, no `member`). Returns the message id.
    pub fn send_dm(&self, author_id: u64, content: &str) -> u64 {
        self.require_ready(None, "MESSAGE_CREATE");
        let author = self
            .shared
            .user(author_id)
            .unwrap_or_else(|| panic!("fake_discord: send_dm from unknown user {author_id}"));
        let channel_id = self.shared.dm_channel_id(author_id);
        let id = self.shared.new_id();
        let msg = self
            .shared
            .incoming_message(id, channel_id, author, content);
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
}

impl Shared {
    /// Users mentioned as `<@id>` / `<@!id>` and roles as `<@&id>` in `content`, known ones only
    /// (roles of `guild_id` only; none without a guild), deduplicated, in order of appearance.
    fn parse_mentions(&self, content: &str, guild_id: Option<u64>) -> (Vec<u64>, Vec<u64>) {
        let guild = guild_id.and_then(|g| self.guild(g));
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
                if guild.is_some_and(|g| g.role(id).is_some() && id != g.id) && !roles.contains(&id)
                {
                    roles.push(id);
                }
            } else if self.user(id).is_some() && !users.contains(&id) {
                users.push(id);
            }
        }
        (users, roles)
    }

    /// A MESSAGE_CREATE payload for a message sent by a user in `channel_id` (a guild channel
    /// of either guild, or a DM channel).
    fn incoming_message(
        &self,
        id: u64,
        channel_id: u64,
        author: &FakeUser,
        content: &str,
    ) -> Value {
        let guild_id = self.channel_guild(channel_id);
        let in_guild = guild_id.is_some();
        let (users, roles) = self.parse_mentions(content, guild_id);
        let mentions: Vec<Value> = users
            .iter()
            .filter_map(|u| self.user(*u))
            .map(|u| {
                let mut j = user_json(u);
                if let Some(g) = guild_id.filter(|g| u.is_member_of(*g)) {
                    j["member"] = member_json(u, g, false);
                }
                j
            })
            .collect();
        let can_everyone =
            self.channel_permissions(channel_id, author.id) & perms::MENTION_EVERYONE != 0;
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
        if let Some(g) = guild_id {
            v["guild_id"] = json!(g.to_string());
            v["member"] = member_json(author, g, false);
        }
        v
    }

    /// Users, roles and @everyone that `content` would ping given `allowed_mentions` (absent =
    /// everything parsed). The MENTION_EVERYONE permission is deliberately ignored: anything the
    /// bot *lets* ping shows up in the answer's `mention_everyone`.
    fn pings(
        &self,
        payload: &Value,
        content: &str,
        guild_id: Option<u64>,
    ) -> (Vec<u64>, Vec<u64>, bool) {
        let (users, roles) = self.parse_mentions(content, guild_id);
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
    pub(super) fn build_message(
        &self,
        id: u64,
        channel_id: u64,
        req: &Req,
        existing: Option<&Value>,
        webhook: Option<&InteractionState>,
    ) -> Result<Value, Answer> {
        let payload = req.payload();
        let p = &payload;
        let guild_id = self.channel_guild(channel_id);
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
                    // The response: CHAT_INPUT_COMMAND (20) or CONTEXT_MENU_COMMAND (23), a
                    // component's DEFAULT (0); follow-ups DEFAULT.
                    let response_type = match (i.kind, i.command_type) {
                        (MESSAGE_COMPONENT, _) => 0,
                        (_, 2 | 3) => 23,
                        _ => 20,
                    };
                    m["type"] = json!(if i.original.is_none() {
                        response_type
                    } else {
                        0
                    });
                    if let Some(u) = self.user(i.user_id) {
                        let mut meta = json!({
                            "id": i.id.to_string(),
                            "type": i.kind,
                            "user": user_json(u),
                            "authorizing_integration_owners": { "0": guild_id.unwrap_or(0).to_string() },
                        });
                        if i.kind == MESSAGE_COMPONENT {
                            meta["interacted_message_id"] =
                                json!(i.message_id.unwrap_or(0).to_string());
                        } else {
                            meta["name"] = json!(i.name);
                            meta["command_type"] = json!(i.command_type);
                            match (i.command_type, i.target_id) {
                                (2, Some(t)) => {
                                    if let Some(t) = self.user(t) {
                                        meta["target_user"] = user_json(t);
                                    }
                                }
                                (3, Some(t)) => meta["target_message_id"] = json!(t.to_string()),
                                _ => {}
                            }
                        }
                        if let Some(o) = i
                            .original
                            .filter(|_| matches!(i.callback_type, Some(4 | 5)))
                        {
                            meta["original_response_message_id"] = json!(o.to_string());
                        }
                        m["interaction_metadata"] = meta;
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
            msg["components"] = if c.is_null() {
                json!([])
            } else {
                with_component_ids(c)
            };
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
        let (users, roles, everyone) = self.pings(p, &content, guild_id);
        let mut mentioned: Vec<Value> = users
            .iter()
            .filter_map(|u| self.user(*u))
            .map(|u| {
                let mut j = user_json(u);
                if let Some(g) = guild_id.filter(|g| u.is_member_of(*g)) {
                    j["member"] = member_json(u, g, false);
                }
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
                if let Some(g) = guild_id {
                    mr["guild_id"] = json!(g.to_string());
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

    pub(super) fn create_message(
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
    pub(super) fn edit_message(&self, id: u64, req: &Req, end_loading: bool) -> Answer {
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

    pub(super) fn delete_message(&self, id: u64) -> Answer {
        let Some(m) = lock(&self.state).messages.remove(&id) else {
            return Answer::error(404, 10008, "Unknown Message");
        };
        if self.cfg.echo_bot_messages {
            let guild_id = self.channel_guild(m.channel_id);
            let mut d = json!({ "id": id.to_string(), "channel_id": m.channel_id.to_string() });
            if let Some(g) = guild_id {
                d["guild_id"] = json!(g.to_string());
            }
            let _ = self.dispatch_in(guild_id, "MESSAGE_DELETE", d);
        }
        Answer::no_content()
    }

    /// Dispatches what Discord sends every client for a message the bot created or edited
    /// (not for ephemeral ones), when a gateway session exists.
    pub(super) fn echo(&self, event: &str, channel_id: u64, msg: &Value) {
        if !self.cfg.echo_bot_messages || msg["flags"].as_u64().unwrap_or(0) & 64 != 0 {
            return;
        }
        let guild_id = self.channel_guild(channel_id);
        let mut d = msg.clone();
        if let Some(g) = guild_id {
            d["guild_id"] = json!(g.to_string());
            d["member"] = member_json(self.bot(), g, false);
        }
        // Without a session holding the guild there is nobody to tell.
        let _ = self.dispatch_in(guild_id, event, d);
    }
}

/// Discord's 50006: no content, embeds, files, components, stickers or poll.
pub(super) fn is_empty_message(p: &Value, files: &[MultipartPart]) -> bool {
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

/// Components as Discord answers them: every component (rows and what they hold) without an
/// `id` gets one, numbered from 1 in order (depth first), after the largest `id` sent.
fn with_component_ids(components: &Value) -> Value {
    fn max_id(v: &Value) -> u64 {
        let own = v.get("id").and_then(Value::as_u64).unwrap_or(0);
        let children = v
            .as_array()
            .or_else(|| v.get("components").and_then(Value::as_array))
            .into_iter()
            .flatten()
            .map(max_id)
            .max()
            .unwrap_or(0);
        own.max(children)
    }
    fn number(v: &mut Value, next: &mut u64) {
        if let Some(o) = v.as_object_mut()
            && !o.get("id").is_some_and(Value::is_u64)
        {
            *next += 1;
            o.insert("id".into(), json!(*next));
        }
        if let Some(children) = v.get_mut("components").and_then(Value::as_array_mut) {
            for c in children {
                number(c, next);
            }
        }
    }
    let mut out = components.clone();
    let mut next = max_id(components);
    if let Some(rows) = out.as_array_mut() {
        for row in rows {
            number(row, &mut next);
        }
    }
    out
}
