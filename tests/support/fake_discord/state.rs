//! What the running fake holds (stored messages, attachments, interactions and commands, the
//! gateway, recorded requests, faults, model errors), the lookups every part uses, and small
//! helpers (JSON merge, time, route patterns, ids).

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::Value;

use super::faults::Fault;
use super::fixtures::{FakeChannel, FakeGuild, FakeUser};
use super::gateway::Gateway;
use super::ids::{BOT_ID, DISCORD_EPOCH_MS};
use super::interactions::InteractionState;
use super::recording::RecordedRequest;
use super::{FakeDiscordConfig, lock};

pub(super) struct StoredMessage {
    pub(super) channel_id: u64,
    pub(super) json: Value,
}

#[derive(Default)]
pub(super) struct Store {
    pub(super) messages: HashMap<u64, StoredMessage>,
    pub(super) attachments: HashMap<u64, (String, Vec<u8>)>,
    pub(super) interactions: HashMap<String, InteractionState>,
    pub(super) global_commands: Vec<Value>,
    pub(super) guild_commands: HashMap<u64, Vec<Value>>,
    pub(super) command_ids: HashMap<String, u64>,
    pub(super) dm_channels: HashMap<u64, u64>,
    /// GUILD_MEMBER_ADD events dispatched ([`super::FakeDiscord::member_add_count`]).
    pub(super) member_adds: usize,
}

pub(super) struct Shared {
    pub(super) cfg: FakeDiscordConfig,
    pub(super) base_url: String,
    pub(super) ws_url: String,
    pub(super) users: Vec<FakeUser>,
    pub(super) guilds: Vec<FakeGuild>,
    pub(super) last_id: Mutex<u64>,
    pub(super) gw: Mutex<Gateway>,
    pub(super) state: Mutex<Store>,
    pub(super) requests: Mutex<Vec<RecordedRequest>>,
    pub(super) faults: Mutex<Vec<Fault>>,
    pub(super) model_errors: Mutex<Vec<String>>,
}

impl Shared {
    pub(super) fn new_id(&self) -> u64 {
        let now = (now_unix_ms().max(DISCORD_EPOCH_MS) - DISCORD_EPOCH_MS) << 22 | (2 << 17);
        let mut last = lock(&self.last_id);
        *last = now.max(*last + 1);
        *last
    }

    pub(super) fn user(&self, id: u64) -> Option<&FakeUser> {
        self.users.iter().find(|u| u.id == id)
    }

    pub(super) fn bot(&self) -> &FakeUser {
        self.user(BOT_ID)
            .expect("fake_discord: the bot user is always a fixture")
    }

    pub(super) fn guild(&self, id: u64) -> Option<&FakeGuild> {
        self.guilds.iter().find(|g| g.id == id)
    }

    /// A guild channel of either guild.
    pub(super) fn channel(&self, id: u64) -> Option<&FakeChannel> {
        self.guilds
            .iter()
            .flat_map(|g| &g.channels)
            .find(|c| c.id == id)
    }

    /// The guild of a guild channel (None for DM channels and unknown ids).
    pub(super) fn channel_guild(&self, channel_id: u64) -> Option<u64> {
        self.channel(channel_id).map(|c| c.guild_id)
    }

    pub(super) fn dm_channel_id(&self, user_id: u64) -> u64 {
        let existing = lock(&self.state).dm_channels.get(&user_id).copied();
        if let Some(id) = existing {
            return id;
        }
        let id = self.new_id();
        *lock(&self.state).dm_channels.entry(user_id).or_insert(id)
    }

    pub(super) fn dm_channel_user(&self, channel_id: u64) -> Option<u64> {
        lock(&self.state)
            .dm_channels
            .iter()
            .find(|(_, c)| **c == channel_id)
            .map(|(u, _)| *u)
    }
}

pub(super) fn merge(target: &mut Value, extra: Value) {
    if let (Some(t), Value::Object(e)) = (target.as_object_mut(), extra) {
        for (k, v) in e {
            t.insert(k, v);
        }
    }
}

pub(super) fn now_unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

pub(super) fn rfc3339_ms(unix_ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(unix_ms as i64)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.6f+00:00")
        .to_string()
}

pub(super) fn now_rfc3339() -> String {
    rfc3339_ms(now_unix_ms())
}

/// `*` matches exactly one segment; everything else literally.
pub(super) fn route_matches(pattern: &str, route: &str) -> bool {
    let p: Vec<&str> = pattern.trim_end_matches('/').split('/').collect();
    let r: Vec<&str> = route.trim_end_matches('/').split('/').collect();
    p.len() == r.len() && p.iter().zip(&r).all(|(p, r)| *p == "*" || p == r)
}

pub(super) fn parse_id(s: &str) -> Option<u64> {
    s.parse().ok()
}
