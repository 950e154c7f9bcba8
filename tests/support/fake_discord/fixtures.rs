//! The two guilds' fixed users, roles and channels, and the Discord JSON objects built from
//! them: users, roles, members, channels (with permission overwrites), the guilds (REST and
//! GUILD_CREATE), READY, the application; and the permission computation (guild and channel
//! level, as serenity's cache computes it).

use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{Value, json};

use super::FakeDiscord;
use super::ids::{
    ADMIN_ID, ADMIN_JOINED_AT, ADMIN_JOINED2_AT, ADMIN_USERNAME, APPLICATION_FLAGS, APPLICATION_ID,
    BOT_ID, BOT_JOINED_AT, BOT_JOINED2_AT, BOT_ROLE_ID, BOT_ROLE_PERMISSIONS, BOT_USERNAME,
    BOT2_ROLE_ID, DISCORD_EPOCH_MS, EVERYONE_PERMISSIONS, GENERAL_CHANNEL_ID, GENERAL2_CHANNEL_ID,
    GUILD_ID, GUILD_NAME, GUILD2_ID, GUILD2_NAME, MEMBER_ID, MEMBER_JOINED_AT, MEMBER_JOINED2_AT,
    MEMBER_USERNAME, MOD_LOG_CHANNEL_ID, MOD_LOG2_CHANNEL_ID, MODERATOR_ID, MODERATOR_JOINED_AT,
    MODERATOR_JOINED2_AT, MODERATOR_PERMISSIONS, MODERATOR_ROLE_ID, MODERATOR_ROLE_NAME,
    MODERATOR_USERNAME, MODERATOR2_ROLE_ID, OWNER_ID, OWNER_JOINED_AT, OWNER_JOINED2_AT,
    OWNER_USERNAME, READONLY_CHANNEL_ID, READONLY_CHANNEL_NAME, perms, snowflake,
};
use super::state::{Shared, merge, now_unix_ms, rfc3339_ms};

/// A user who is not a member of any guild until a test makes them join one
/// ([`FakeDiscord::join_member`]); see [`super::FakeDiscordConfig::joiners`].
#[derive(Debug, Clone)]
pub struct FakeJoiner {
    /// A valid Discord username (lowercase `a-z`, `0-9`, `.` and `_`), e.g. `"newbie01"`.
    pub username: String,
    /// When the account was created: the user id is a snowflake of this time.
    pub created_unix_ms: u64,
    /// A custom avatar hash (32 hex digits, `a_` in front for an animated one); None is the
    /// default avatar (`"avatar": null`).
    pub avatar: Option<String>,
}

impl FakeJoiner {
    /// A joiner whose account was created `age` ago, with the default avatar.
    pub fn aged(username: &str, age: Duration) -> FakeJoiner {
        FakeJoiner {
            username: username.to_string(),
            created_unix_ms: now_unix_ms().saturating_sub(age.as_millis() as u64),
            avatar: None,
        }
    }

    /// The same joiner with a custom avatar hash.
    pub fn with_avatar(mut self, hash: &str) -> FakeJoiner {
        self.avatar = Some(hash.to_string());
        self
    }
}

#[derive(Debug, Clone)]
pub(super) struct FakeUser {
    pub(super) id: u64,
    pub(super) username: String,
    pub(super) global_name: Option<String>,
    pub(super) bot: bool,
    /// The avatar hash (None: the default avatar).
    pub(super) avatar: Option<String>,
    /// One per guild the user is a member of from the start.
    pub(super) memberships: Vec<FakeMembership>,
    /// A joiner ([`FakeJoiner`]): a member of no guild until [`FakeDiscord::join_member`].
    pub(super) joins_later: bool,
    /// A joiner's slot per guild, set once when they join it.
    pub(super) joins: Vec<(u64, OnceLock<FakeMembership>)>,
}

#[derive(Debug, Clone)]
pub(super) struct FakeMembership {
    pub(super) guild_id: u64,
    pub(super) roles: Vec<u64>,
    pub(super) joined_at: String,
}

impl FakeUser {
    /// The user's membership of `guild_id`: a fixed one, or a joiner's once they joined.
    pub(super) fn membership(&self, guild_id: u64) -> Option<&FakeMembership> {
        self.memberships
            .iter()
            .find(|m| m.guild_id == guild_id)
            .or_else(|| {
                self.joins
                    .iter()
                    .find(|(g, _)| *g == guild_id)
                    .and_then(|(_, m)| m.get())
            })
    }

    pub(super) fn is_member_of(&self, guild_id: u64) -> bool {
        self.membership(guild_id).is_some()
    }

    /// The user's roles in `guild_id` (none if not a member).
    pub(super) fn roles_in(&self, guild_id: u64) -> &[u64] {
        self.membership(guild_id)
            .map_or(&[], |m| m.roles.as_slice())
    }
}

#[derive(Debug, Clone)]
pub(super) struct FakeRole {
    pub(super) id: u64,
    pub(super) name: String,
    pub(super) permissions: u64,
    pub(super) position: u64,
    pub(super) color: u64,
    pub(super) hoist: bool,
    pub(super) managed: bool,
    pub(super) mentionable: bool,
    pub(super) bot_id: Option<u64>,
}

/// A channel permission overwrite: `kind` 0 = role, 1 = member (Discord's `type`).
#[derive(Debug, Clone)]
pub(super) struct FakeOverwrite {
    pub(super) id: u64,
    pub(super) kind: u8,
    pub(super) allow: u64,
    pub(super) deny: u64,
}

#[derive(Debug, Clone)]
pub(super) struct FakeChannel {
    pub(super) id: u64,
    pub(super) guild_id: u64,
    pub(super) name: String,
    pub(super) position: u64,
    pub(super) topic: Option<String>,
    pub(super) overwrites: Vec<FakeOverwrite>,
}

#[derive(Debug, Clone)]
pub(super) struct FakeGuild {
    pub(super) id: u64,
    pub(super) name: String,
    pub(super) owner_id: u64,
    pub(super) system_channel_id: u64,
    pub(super) roles: Vec<FakeRole>,
    pub(super) channels: Vec<FakeChannel>,
}

impl FakeGuild {
    pub(super) fn role(&self, id: u64) -> Option<&FakeRole> {
        self.roles.iter().find(|r| r.id == id)
    }
}

/// Guild-specific ids of one of the two guilds, for building the fixtures.
struct GuildIds {
    guild: u64,
    moderator_role: u64,
    bot_role: u64,
}

const GUILD1_IDS: GuildIds = GuildIds {
    guild: GUILD_ID,
    moderator_role: MODERATOR_ROLE_ID,
    bot_role: BOT_ROLE_ID,
};
const GUILD2_IDS: GuildIds = GuildIds {
    guild: GUILD2_ID,
    moderator_role: MODERATOR2_ROLE_ID,
    bot_role: BOT2_ROLE_ID,
};

pub(super) fn fixture_users(extra: usize, extra_moderators: bool) -> Vec<FakeUser> {
    // (guild 1 roles, guild 1 joined_at, guild 2 joined_at) with the roles given as "moderator"
    // or "bot" so that each guild gets its own role ids.
    #[derive(Clone, Copy)]
    enum R {
        None,
        Moderator,
        Bot,
    }
    let memberships = |r: R, joined1: &str, joined2: &str| -> Vec<FakeMembership> {
        [(&GUILD1_IDS, joined1), (&GUILD2_IDS, joined2)]
            .into_iter()
            .map(|(g, joined)| FakeMembership {
                guild_id: g.guild,
                roles: match r {
                    R::None => vec![],
                    R::Moderator => vec![g.moderator_role],
                    R::Bot => vec![g.bot_role],
                },
                joined_at: joined.to_string(),
            })
            .collect()
    };
    let u = |id: u64, username: &str, global: Option<&str>, r: R, j1: &str, j2: &str| FakeUser {
        id,
        username: username.to_string(),
        global_name: global.map(str::to_string),
        bot: false,
        avatar: None,
        memberships: memberships(r, j1, j2),
        joins_later: false,
        joins: Vec::new(),
    };
    let mut users = vec![
        u(
            OWNER_ID,
            OWNER_USERNAME,
            Some("Olga"),
            R::None,
            OWNER_JOINED_AT,
            OWNER_JOINED2_AT,
        ),
        u(
            ADMIN_ID,
            ADMIN_USERNAME,
            Some("Ada"),
            R::Moderator,
            ADMIN_JOINED_AT,
            ADMIN_JOINED2_AT,
        ),
        u(
            MODERATOR_ID,
            MODERATOR_USERNAME,
            Some("Mia"),
            R::Moderator,
            MODERATOR_JOINED_AT,
            MODERATOR_JOINED2_AT,
        ),
        u(
            MEMBER_ID,
            MEMBER_USERNAME,
            Some("Alice"),
            R::None,
            MEMBER_JOINED_AT,
            MEMBER_JOINED2_AT,
        ),
    ];
    // Extra members: accounts created every ~9 days from 2018-01-01, joined daily from 2022 (the
    // second guild 5 h 17 min later).
    for i in 0..extra {
        let n = i as u64;
        let created = 1_514_764_800_000 + n * 9 * 86_400_000 + n * 3_671_000;
        let joined = 1_640_995_200_000 + n * 86_400_000 + n * 1_234_567;
        let role = if extra_moderators {
            R::Moderator
        } else {
            R::None
        };
        users.push(FakeUser {
            id: snowflake(created, 0x200 + n),
            username: format!("member{:02}", i + 1),
            global_name: Some(format!("Member {}", i + 1)),
            bot: false,
            avatar: None,
            memberships: memberships(role, &rfc3339_ms(joined), &rfc3339_ms(joined + 19_020_000)),
            joins_later: false,
            joins: Vec::new(),
        });
    }
    users.push(FakeUser {
        id: BOT_ID,
        username: BOT_USERNAME.to_string(),
        global_name: None,
        bot: true,
        avatar: None,
        memberships: memberships(R::Bot, BOT_JOINED_AT, BOT_JOINED2_AT),
        joins_later: false,
        joins: Vec::new(),
    });
    users
}

/// The joiners as users: id = snowflake of their creation time (increment `0x300 + index`), no
/// membership until they join (one empty slot per guild). Panics on an invalid or taken username.
pub(super) fn joiner_users(
    joiners: &[FakeJoiner],
    taken: &[FakeUser],
    guilds: &[FakeGuild],
) -> Vec<FakeUser> {
    let mut out: Vec<FakeUser> = Vec::new();
    for (i, j) in joiners.iter().enumerate() {
        let name = &j.username;
        assert!(
            (2..=32).contains(&name.len())
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '_'),
            "fake_discord: joiner username {name:?} is not a valid Discord username"
        );
        assert!(
            !taken.iter().chain(&out).any(|u| &u.username == name),
            "fake_discord: joiner username {name:?} is taken"
        );
        assert!(
            j.created_unix_ms > DISCORD_EPOCH_MS,
            "fake_discord: joiner {name:?} created before Discord's epoch"
        );
        out.push(FakeUser {
            id: snowflake(j.created_unix_ms, 0x300 + i as u64),
            username: name.clone(),
            global_name: None,
            bot: false,
            avatar: j.avatar.clone(),
            memberships: Vec::new(),
            joins_later: true,
            joins: guilds.iter().map(|g| (g.id, OnceLock::new())).collect(),
        });
    }
    out
}

fn fixture_roles(g: &GuildIds) -> Vec<FakeRole> {
    vec![
        FakeRole {
            id: g.guild,
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
            id: g.bot_role,
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
            id: g.moderator_role,
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

fn text_channel(id: u64, guild_id: u64, name: &str, position: u64) -> FakeChannel {
    FakeChannel {
        id,
        guild_id,
        name: name.into(),
        position,
        topic: None,
        overwrites: Vec::new(),
    }
}

/// The first guild (general, mod-log, the read-only announcements) and the second (general,
/// mod-log).
pub(super) fn fixture_guilds() -> Vec<FakeGuild> {
    let mod_log_topic = Some("Audit log of the account scanner".to_string());
    let mut announcements = text_channel(READONLY_CHANNEL_ID, GUILD_ID, READONLY_CHANNEL_NAME, 2);
    announcements.topic = Some("Read-only for the scanner bot".into());
    announcements.overwrites.push(FakeOverwrite {
        id: BOT_ROLE_ID,
        kind: 0,
        allow: 0,
        deny: perms::SEND_MESSAGES,
    });
    vec![
        FakeGuild {
            id: GUILD_ID,
            name: GUILD_NAME.into(),
            owner_id: OWNER_ID,
            system_channel_id: GENERAL_CHANNEL_ID,
            roles: fixture_roles(&GUILD1_IDS),
            channels: vec![
                text_channel(GENERAL_CHANNEL_ID, GUILD_ID, "general", 0),
                FakeChannel {
                    topic: mod_log_topic.clone(),
                    ..text_channel(MOD_LOG_CHANNEL_ID, GUILD_ID, "mod-log", 1)
                },
                announcements,
            ],
        },
        FakeGuild {
            id: GUILD2_ID,
            name: GUILD2_NAME.into(),
            owner_id: OWNER_ID,
            system_channel_id: GENERAL2_CHANNEL_ID,
            roles: fixture_roles(&GUILD2_IDS),
            channels: vec![
                text_channel(GENERAL2_CHANNEL_ID, GUILD2_ID, "general", 0),
                FakeChannel {
                    topic: mod_log_topic,
                    ..text_channel(MOD_LOG2_CHANNEL_ID, GUILD2_ID, "mod-log", 1)
                },
            ],
        },
    ]
}

pub(super) fn user_json(u: &FakeUser) -> Value {
    let mut v = json!({
        "id": u.id.to_string(),
        "username": u.username,
        "discriminator": if u.bot { "0000" } else { "0" },
        "global_name": u.global_name,
        "avatar": u.avatar,
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

pub(super) fn role_json(r: &FakeRole) -> Value {
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

pub(super) fn ids_json(ids: &[u64]) -> Value {
    Value::Array(ids.iter().map(|i| json!(i.to_string())).collect())
}

/// A guild member object of `u` in `guild_id` (its roles and `joined_at` there); `with_user`
/// adds the `user` key.
pub(super) fn member_json(u: &FakeUser, guild_id: u64, with_user: bool) -> Value {
    let joined_at = u
        .membership(guild_id)
        .map_or(BOT_JOINED_AT, |m| m.joined_at.as_str());
    let mut v = json!({
        "nick": null,
        "avatar": null,
        "banner": null,
        "roles": ids_json(u.roles_in(guild_id)),
        "joined_at": joined_at,
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

pub(super) fn overwrite_json(o: &FakeOverwrite) -> Value {
    json!({
        "id": o.id.to_string(),
        "type": o.kind,
        "allow": o.allow.to_string(),
        "deny": o.deny.to_string(),
    })
}

pub(super) fn channel_json(c: &FakeChannel, with_guild_id: bool) -> Value {
    let mut v = json!({
        "id": c.id.to_string(),
        "type": 0,
        "name": c.name,
        "position": c.position,
        "permission_overwrites": c.overwrites.iter().map(overwrite_json).collect::<Vec<_>>(),
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
        v["guild_id"] = json!(c.guild_id.to_string());
    }
    v
}

impl Shared {
    pub(super) fn dm_channel_json(&self, user: &FakeUser, channel_id: u64) -> Value {
        json!({
            "id": channel_id.to_string(),
            "type": 1,
            "last_message_id": null,
            "flags": 0,
            "recipients": [user_json(user)],
        })
    }

    /// A member's permissions in `guild_id` from its roles (owner or Administrator: all), no
    /// channel overwrites. 0 for a non-member or an unknown guild.
    pub(super) fn member_permissions(&self, guild_id: u64, user_id: u64) -> u64 {
        let (Some(guild), Some(user)) = (self.guild(guild_id), self.user(user_id)) else {
            return 0;
        };
        if !user.is_member_of(guild_id) {
            return 0;
        }
        if user_id == guild.owner_id {
            return perms::ALL;
        }
        let mut p = guild.role(guild_id).map_or(0, |r| r.permissions);
        for r in user.roles_in(guild_id) {
            p |= guild.role(*r).map_or(0, |r| r.permissions);
        }
        if p & perms::ADMINISTRATOR != 0 {
            perms::ALL
        } else {
            p
        }
    }

    /// A member's permissions in a guild channel: the guild permissions, then the channel's
    /// overwrites (@everyone, roles, member), in the order Discord and serenity's
    /// `Guild::user_permissions_in` apply them (like serenity, no implicit denials). 0 for an
    /// unknown channel.
    pub(super) fn channel_permissions(&self, channel_id: u64, user_id: u64) -> u64 {
        let Some(channel) = self.channel(channel_id) else {
            return 0;
        };
        let guild_id = channel.guild_id;
        let Some(user) = self.user(user_id).filter(|u| u.is_member_of(guild_id)) else {
            return 0;
        };
        let mut p = self.member_permissions(guild_id, user_id);
        let is_owner = self.guild(guild_id).is_some_and(|g| g.owner_id == user_id);
        if is_owner || p & perms::ADMINISTRATOR != 0 {
            return p;
        }
        let roles = user.roles_in(guild_id);
        let ows = &channel.overwrites;
        if let Some(o) = ows.iter().find(|o| o.kind == 0 && o.id == guild_id) {
            p = (p & !o.deny) | o.allow;
        }
        let (mut allow, mut deny) = (0, 0);
        for o in ows
            .iter()
            .filter(|o| o.kind == 0 && o.id != guild_id && roles.contains(&o.id))
        {
            allow |= o.allow;
            deny |= o.deny;
        }
        p = (p & !deny) | allow;
        if let Some(o) = ows.iter().find(|o| o.kind == 1 && o.id == user_id) {
            p = (p & !o.deny) | o.allow;
        }
        p
    }

    pub(super) fn guild_base(&self, guild: &FakeGuild) -> Value {
        // Two halves: one json! this big exceeds the default macro recursion limit.
        let mut g = json!({
            "id": guild.id.to_string(),
            "name": guild.name,
            "icon": null,
            "icon_hash": null,
            "splash": null,
            "discovery_splash": null,
            "banner": null,
            "description": null,
            "owner_id": guild.owner_id.to_string(),
            "afk_channel_id": null,
            "afk_timeout": 300,
            "widget_enabled": false,
            "widget_channel_id": null,
            "verification_level": 1,
            "default_message_notifications": 1,
            "explicit_content_filter": 2,
            "roles": guild.roles.iter().map(role_json).collect::<Vec<_>>(),
            "emojis": [],
            "stickers": [],
            "features": [],
            "mfa_level": 0,
            "application_id": null,
            "system_channel_id": guild.system_channel_id.to_string(),
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

    /// The members of a guild.
    pub(super) fn members_of(&self, guild_id: u64) -> impl Iterator<Item = &FakeUser> {
        self.users.iter().filter(move |u| u.is_member_of(guild_id))
    }

    /// The members GUILD_CREATE carries for a bot that identified with `intents`.
    fn guild_create_members(&self, guild_id: u64, intents: u64) -> Vec<&FakeUser> {
        const GUILD_PRESENCES: u64 = 1 << 8;
        self.members_of(guild_id)
            .filter(|u| {
                !self.cfg.members_as_discord_sends
                    || intents & GUILD_PRESENCES != 0
                    || u.id == BOT_ID
            })
            .collect()
    }

    /// GUILD_CREATE's `d`: the guild with the gateway-only fields.
    pub(super) fn guild_create(&self, guild: &FakeGuild, intents: u64) -> Value {
        let mut g = self.guild_base(guild);
        let joined_at = self
            .bot()
            .membership(guild.id)
            .map_or(BOT_JOINED_AT, |m| m.joined_at.as_str());
        let extra = json!({
            "joined_at": joined_at,
            "large": false,
            "unavailable": false,
            "lazy": true,
            "member_count": self.members_of(guild.id).count(),
            "voice_states": [],
            "members": self.guild_create_members(guild.id, intents).into_iter().map(|u| member_json(u, guild.id, true)).collect::<Vec<_>>(),
            "channels": guild.channels.iter().map(|c| channel_json(c, false)).collect::<Vec<_>>(),
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

    /// READY's `d`, listing `guild_ids` as unavailable guilds.
    pub(super) fn ready(
        &self,
        session_id: &str,
        shard: Option<(u64, u64)>,
        guild_ids: &[u64],
    ) -> Value {
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
            "guilds": guild_ids.iter().map(|g| json!({ "id": g.to_string(), "unavailable": true })).collect::<Vec<_>>(),
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

    pub(super) fn application_json(&self) -> Value {
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
            "approximate_guild_count": self.guilds.len(),
            "approximate_user_install_count": 0,
            "hook": true,
            "is_monetized": false,
            "is_verified": false,
            "is_discoverable": false,
            "storefront_available": false,
        })
    }
}

impl FakeDiscord {
    /// Every user's id (owner, admin, moderator, member, extras, bot); each is a member of both
    /// guilds. Joiners are not listed (see [`FakeDiscord::joiner_id`]).
    pub fn member_ids(&self) -> Vec<u64> {
        self.shared
            .users
            .iter()
            .filter(|u| !u.joins_later)
            .map(|u| u.id)
            .collect()
    }

    /// The ids of the `extra_members`, in order (`member01`, `member02`, ...).
    pub fn extra_member_ids(&self) -> Vec<u64> {
        self.shared
            .users
            .iter()
            .filter(|u| !u.joins_later && u.username.starts_with("member"))
            .map(|u| u.id)
            .collect()
    }

    /// The guilds' ids: `[GUILD_ID, GUILD2_ID]`.
    pub fn guild_ids(&self) -> Vec<u64> {
        self.shared.guilds.iter().map(|g| g.id).collect()
    }

    /// The guild a (guild) channel belongs to.
    pub fn channel_guild(&self, channel_id: u64) -> Option<u64> {
        self.shared.channel(channel_id).map(|c| c.guild_id)
    }

    /// A guild's channel ids, in position order.
    pub fn guild_channel_ids(&self, guild_id: u64) -> Vec<u64> {
        self.shared
            .guild(guild_id)
            .map(|g| g.channels.iter().map(|c| c.id).collect())
            .unwrap_or_default()
    }

    /// A user's username.
    pub fn username(&self, user_id: u64) -> Option<String> {
        self.shared.user(user_id).map(|u| u.username.clone())
    }

    /// A member's `joined_at` in the first guild.
    pub fn joined_at(&self, user_id: u64) -> Option<String> {
        self.joined_at_in(GUILD_ID, user_id)
    }

    /// A member's `joined_at` in `guild_id`.
    pub fn joined_at_in(&self, guild_id: u64, user_id: u64) -> Option<String> {
        self.shared
            .user(user_id)
            .and_then(|u| u.membership(guild_id))
            .map(|m| m.joined_at.clone())
    }

    /// A member's role ids in `guild_id`.
    pub fn member_roles(&self, guild_id: u64, user_id: u64) -> Vec<u64> {
        self.shared
            .user(user_id)
            .map(|u| u.roles_in(guild_id).to_vec())
            .unwrap_or_default()
    }

    /// A member's permissions in the first guild (computed from roles; owner → all), without
    /// channel overwrites.
    pub fn member_permissions(&self, user_id: u64) -> u64 {
        self.shared.member_permissions(GUILD_ID, user_id)
    }

    /// A member's permissions in `guild_id`, without channel overwrites.
    pub fn member_permissions_in(&self, guild_id: u64, user_id: u64) -> u64 {
        self.shared.member_permissions(guild_id, user_id)
    }

    /// A member's permissions in a guild channel, overwrites applied (what interactions carry
    /// as `member.permissions` / `app_permissions`).
    pub fn channel_permissions(&self, channel_id: u64, user_id: u64) -> u64 {
        self.shared.channel_permissions(channel_id, user_id)
    }

    /// The user object the fake sends for `user_id`.
    pub fn user_json(&self, user_id: u64) -> Option<Value> {
        self.shared.user(user_id).map(user_json)
    }

    /// The first guild's GUILD_CREATE payload (`d`).
    pub fn guild_create_json(&self) -> Value {
        self.guild_create_json_for(GUILD_ID)
    }

    /// A guild's GUILD_CREATE payload (`d`). Panics for an unknown guild.
    pub fn guild_create_json_for(&self, guild_id: u64) -> Value {
        let guild = self
            .shared
            .guild(guild_id)
            .unwrap_or_else(|| panic!("fake_discord: unknown guild {guild_id}"));
        self.shared.guild_create(guild, u64::MAX)
    }
}
