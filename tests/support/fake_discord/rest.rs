//! The HTTP side: the handler that records every request (JSON and multipart bodies parsed),
//! authorization, attachment downloads and the REST route table.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::faults::answer;
use super::fixtures::{FakeUser, channel_json, member_json, role_json, user_json};
use super::gateway::token_matches;
use super::ids::APPLICATION_ID;
use super::recording::{MultipartPart, RecordedRequest};
use super::spec;
use super::state::{Shared, parse_id};
use super::{BODY_LIMIT, lock};

pub(super) struct Answer {
    pub(super) status: u16,
    pub(super) json: Option<Value>,
    pub(super) headers: Vec<(&'static str, String)>,
    pub(super) unexpected: bool,
    pub(super) faulted: bool,
    pub(super) raw: Option<(String, Vec<u8>)>,
}

impl Answer {
    pub(super) fn ok(v: Value) -> Answer {
        Answer {
            status: 200,
            json: Some(v),
            headers: Vec::new(),
            unexpected: false,
            faulted: false,
            raw: None,
        }
    }

    pub(super) fn no_content() -> Answer {
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
    pub(super) fn error(status: u16, code: u64, message: &str) -> Answer {
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
    pub(super) fn unexpected(status: u16, code: u64, message: &str) -> Answer {
        let mut a = Answer::error(status, code, message);
        a.unexpected = true;
        a
    }

    pub(super) fn not_found() -> Answer {
        Answer::unexpected(404, 0, "404: Not Found")
    }
}

/// One parsed request as handlers see it.
pub(super) struct Req {
    pub(super) method: Method,
    pub(super) route: String,
    pub(super) query: HashMap<String, String>,
    pub(super) json: Option<Value>,
    pub(super) files: Vec<MultipartPart>,
}

impl Req {
    pub(super) fn payload(&self) -> Value {
        self.json.clone().unwrap_or_else(|| json!({}))
    }
}

pub(super) async fn rest(State(shared): State<Arc<Shared>>, req: Request) -> Response {
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
        spec::route_of(&path)
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

pub(super) fn answer_normally(
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

pub(super) fn content_type_for(filename: &str) -> &'static str {
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

impl Shared {
    fn route(&self, req: Req) -> Answer {
        let route = req.route.clone();
        let segs: Vec<&str> = route.trim_matches('/').split('/').collect();
        let m = req.method.as_str();
        // Any route under a guild the bot is not in: 404 Unknown Guild (unexpected).
        if let ["guilds", g, ..] | ["applications", _, "guilds", g, ..] = segs.as_slice()
            && self.guild_arg(g).is_none()
        {
            return Answer::unexpected(404, 10004, "Unknown Guild");
        }
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
            ("GET", ["applications", app, "guilds", g, "commands"]) if self.is_app(app) => {
                let gid = self.guild_arg(g).map_or(0, |g| g.id);
                Answer::ok(Value::Array(
                    lock(&self.state)
                        .guild_commands
                        .get(&gid)
                        .cloned()
                        .unwrap_or_default(),
                ))
            }
            ("PUT", ["applications", app, "guilds", g, "commands"]) if self.is_app(app) => {
                let gid = self.guild_arg(g).map_or(0, |g| g.id);
                let cmds = self.register_commands(&req.payload(), Some(gid));
                lock(&self.state).guild_commands.insert(gid, cmds.clone());
                Answer::ok(Value::Array(cmds))
            }
            ("GET", ["guilds", g]) => {
                let Some(guild) = self.guild_arg(g) else {
                    return Answer::not_found();
                };
                let mut v = self.guild_base(guild);
                if req.query.get("with_counts").is_some_and(|v| v == "true") {
                    v["approximate_member_count"] = json!(self.members_of(guild.id).count());
                    v["approximate_presence_count"] = json!(0);
                }
                self.check_model::<serenity::model::guild::PartialGuild>("GET /guilds/{id}", &v);
                Answer::ok(v)
            }
            ("GET", ["guilds", g, "roles"]) => {
                let Some(guild) = self.guild_arg(g) else {
                    return Answer::not_found();
                };
                let v = Value::Array(guild.roles.iter().map(role_json).collect());
                self.check_model::<Vec<serenity::model::guild::Role>>("GET /guilds/{id}/roles", &v);
                Answer::ok(v)
            }
            ("GET", ["guilds", g, "channels"]) => {
                let Some(guild) = self.guild_arg(g) else {
                    return Answer::not_found();
                };
                let v = Value::Array(
                    guild
                        .channels
                        .iter()
                        .map(|c| channel_json(c, true))
                        .collect(),
                );
                self.check_model::<Vec<serenity::model::channel::GuildChannel>>(
                    "GET /guilds/{id}/channels",
                    &v,
                );
                Answer::ok(v)
            }
            ("GET", ["guilds", g, "members"]) => {
                let gid = self.guild_arg(g).map_or(0, |g| g.id);
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
                    self.members_of(gid).filter(|u| u.id > after).collect();
                users.sort_by_key(|u| u.id);
                Answer::ok(Value::Array(
                    users
                        .into_iter()
                        .take(limit)
                        .map(|u| member_json(u, gid, true))
                        .collect(),
                ))
            }
            ("GET", ["guilds", g, "members", u]) => {
                let gid = self.guild_arg(g).map_or(0, |g| g.id);
                match parse_id(u)
                    .and_then(|id| self.user(id))
                    .filter(|u| u.is_member_of(gid))
                {
                    Some(u) => {
                        let v = member_json(u, gid, true);
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

    /// The guild a path segment names, if the fake has it.
    fn guild_arg(&self, s: &str) -> Option<&super::fixtures::FakeGuild> {
        parse_id(s).and_then(|id| self.guild(id))
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

    pub(super) fn stored(&self, id: u64) -> Option<Value> {
        lock(&self.state).messages.get(&id).map(|m| m.json.clone())
    }
}
