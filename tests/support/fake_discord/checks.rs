//! Checks on both sides: what the bot sent, against Discord's OpenAPI spec (`spec.rs`) and its
//! documented limits; what the fake itself sends, against serenity's models.

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::ids::limits;
use super::spec;
use super::state::{Shared, route_matches};
use super::{FakeDiscord, lock};

impl FakeDiscord {
    /// Everything the bot sent that Discord would reject or that its OpenAPI spec forbids: each
    /// JSON body and `payload_json` validated against the vendored spec (see `spec.rs`;
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
            if let Err(errors) = spec::validate(&r.method, &r.path, body) {
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
}

fn query_suffix(q: &Option<String>) -> String {
    q.as_ref().map(|q| format!("?{q}")).unwrap_or_default()
}

impl Shared {
    /// Self-check: does serenity 0.12.5 deserialize `value` as `T`?
    pub(super) fn check_model<T: DeserializeOwned>(&self, what: &str, value: &Value) -> Option<T> {
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

    pub(super) fn check_dispatch(&self, event: &str, frame: &Value) {
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
                    let ours = self.guild(g.guild.id.get());
                    if ours.is_none_or(|ours| {
                        g.guild.channels.len() != ours.channels.len()
                            || g.guild.roles.len() != ours.roles.len()
                    }) || g.guild.members.len() != d["members"].as_array().map_or(0, Vec::len)
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
            "GUILD_MEMBER_ADD" => {
                if let Some(ev) = self.check_model::<serenity::model::event::GuildMemberAddEvent>(
                    "GUILD_MEMBER_ADD",
                    d,
                ) {
                    // serenity makes a missing `guild_id` guild 1 instead of failing.
                    let sent = d["guild_id"].as_str().and_then(|g| g.parse::<u64>().ok());
                    if sent != Some(ev.member.guild_id.get()) {
                        self.record_model_error(format!(
                            "GUILD_MEMBER_ADD: serenity reads guild_id {} from {:?}",
                            ev.member.guild_id, d["guild_id"]
                        ));
                    }
                }
            }
            "GUILD_MEMBERS_CHUNK" => {
                self.check_model::<serenity::model::event::GuildMembersChunkEvent>(
                    "GUILD_MEMBERS_CHUNK",
                    d,
                );
            }
            "INTERACTION_CREATE" => {
                use serenity::model::application::{CommandType, Interaction};
                match self.check_model::<Interaction>("INTERACTION_CREATE", d) {
                    // A context-menu command whose target serenity cannot resolve fails
                    // poise's argument parsing.
                    Some(Interaction::Command(c))
                        if matches!(c.data.kind, CommandType::User | CommandType::Message)
                            && c.data.target().is_none() =>
                    {
                        self.record_model_error(format!(
                            "INTERACTION_CREATE: serenity does not resolve the target of {:?} \
                             command {:?}",
                            c.data.kind, c.data.name
                        ));
                    }
                    Some(Interaction::Component(c)) if d.get("message").is_none() => {
                        let _ = c;
                        self.record_model_error(
                            "INTERACTION_CREATE: component interaction without `message`".into(),
                        );
                    }
                    _ => {}
                }
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

    fn record_model_error(&self, msg: String) {
        eprintln!("fake_discord: MODEL ERROR: {msg}");
        lock(&self.model_errors).push(msg);
    }
}

/// Discord's limits on a message-like payload (`content`, `embeds`, `attachments`, the
/// components' `custom_id`s: unique, present on non-link buttons), also inside
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
    // Components: what Discord checks beyond the spec's schema.
    let mut custom_ids: Vec<&str> = Vec::new();
    for (i, row) in p
        .get("components")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        for (j, c) in row["components"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let custom_id = c.get("custom_id").and_then(Value::as_str);
            if let Some(id) = custom_id {
                if custom_ids.contains(&id) {
                    out.push(format!(
                        "components[{i}].components[{j}].custom_id {id:?} is duplicated"
                    ));
                }
                custom_ids.push(id);
            }
            if c.get("type").and_then(Value::as_u64) == Some(2) {
                let link = c.get("style").and_then(Value::as_u64) == Some(5);
                let has_url = c.get("url").is_some_and(|u| !u.is_null());
                if link && (custom_id.is_some() || !has_url) {
                    out.push(format!(
                        "components[{i}].components[{j}]: a link button needs a url and no custom_id"
                    ));
                }
                if !link && c.get("style").and_then(Value::as_u64) != Some(6) && custom_id.is_none()
                {
                    out.push(format!(
                        "components[{i}].components[{j}]: a button needs a custom_id"
                    ));
                }
            }
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
