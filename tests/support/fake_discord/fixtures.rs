//! The guild's fixed users, roles and channels, and the Discord JSON objects built from them:
//! users, roles, members, channels, the guild (REST and GUILD_CREATE), READY, the application.

use serde_json::{Value, json};

use super::FakeDiscord;
use super::ids::{
    ADMIN_ID, ADMIN_JOINED_AT, ADMIN_USERNAME, APPLICATION_FLAGS, APPLICATION_ID, BOT_ID,
    BOT_JOINED_AT, BOT_ROLE_ID, BOT_ROLE_PERMISSIONS, BOT_USERNAME, EVERYONE_PERMISSIONS,
    EVERYONE_ROLE_ID, GENERAL_CHANNEL_ID, GUILD_ID, GUILD_NAME, MEMBER_ID, MEMBER_JOINED_AT,
    MEMBER_USERNAME, MOD_LOG_CHANNEL_ID, MODERATOR_ID, MODERATOR_JOINED_AT, MODERATOR_PERMISSIONS,
    MODERATOR_ROLE_ID, MODERATOR_ROLE_NAME, MODERATOR_USERNAME, OWNER_ID, OWNER_JOINED_AT,
    OWNER_USERNAME, perms, snowflake,
};
use super::state::{Shared, merge, rfc3339_ms};

#[derive(Debug, Clone)]
pub(super) struct FakeUser {
    pub(super) id: u64,
    pub(super) username: String,
    pub(super) global_name: Option<String>,
    pub(super) bot: bool,
    pub(super) roles: Vec<u64>,
    pub(super) joined_at: String,
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

#[derive(Debug, Clone)]
pub(super) struct FakeChannel {
    pub(super) id: u64,
    pub(super) name: String,
    pub(super) position: u64,
    pub(super) topic: Option<String>,
}

pub(super) fn fixture_users(extra: usize, extra_moderators: bool) -> Vec<FakeUser> {
    let u =
        |id: u64, username: &str, global: Option<&str>, roles: Vec<u64>, joined: &str| FakeUser {
            id,
            username: username.to_string(),
            global_name: global.map(str::to_string),
            bot: false,
            roles,
            joined_at: joined.to_string(),
        };
    let mut users = vec![
        u(
            OWNER_ID,
            OWNER_USERNAME,
            Some("Olga"),
            vec![],
            OWNER_JOINED_AT,
        ),
        u(
            ADMIN_ID,
            ADMIN_USERNAME,
            Some("Ada"),
            vec![MODERATOR_ROLE_ID],
            ADMIN_JOINED_AT,
        ),
        u(
            MODERATOR_ID,
            MODERATOR_USERNAME,
            Some("Mia"),
            vec![MODERATOR_ROLE_ID],
            MODERATOR_JOINED_AT,
        ),
        u(
            MEMBER_ID,
            MEMBER_USERNAME,
            Some("Alice"),
            vec![],
            MEMBER_JOINED_AT,
        ),
    ];
    // Extra members: accounts created every ~9 days from 2018-01-01, joined daily from 2022.
    for i in 0..extra {
        let n = i as u64;
        let created = 1_514_764_800_000 + n * 9 * 86_400_000 + n * 3_671_000;
        let joined = 1_640_995_200_000 + n * 86_400_000 + n * 1_234_567;
        users.push(FakeUser {
            id: snowflake(created, 0x200 + n),
            username: format!("member{:02}", i + 1),
            global_name: Some(format!("Member {}", i + 1)),
            bot: false,
            roles: if extra_moderators {
                vec![MODERATOR_ROLE_ID]
            } else {
                vec![]
            },
            joined_at: rfc3339_ms(joined),
        });
    }
    users.push(FakeUser {
        id: BOT_ID,
        username: BOT_USERNAME.to_string(),
        global_name: None,
        bot: true,
        roles: vec![BOT_ROLE_ID],
        joined_at: BOT_JOINED_AT.to_string(),
    });
    users
}

pub(super) fn fixture_roles() -> Vec<FakeRole> {
    vec![
        FakeRole {
            id: EVERYONE_ROLE_ID,
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
            id: BOT_ROLE_ID,
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
            id: MODERATOR_ROLE_ID,
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

pub(super) fn fixture_channels() -> Vec<FakeChannel> {
    vec![
        FakeChannel {
            id: GENERAL_CHANNEL_ID,
            name: "general".into(),
            position: 0,
            topic: None,
        },
        FakeChannel {
            id: MOD_LOG_CHANNEL_ID,
            name: "mod-log".into(),
            position: 1,
            topic: Some("Audit log of the account scanner".into()),
        },
    ]
}

pub(super) fn user_json(u: &FakeUser) -> Value {
    let mut v = json!({
        "id": u.id.to_string(),
        "username": u.username,
        "discriminator": if u.bot { "0000" } else { "0" },
        "global_name": u.global_name,
        "avatar": null,
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

/// A guild member object; `with_user` adds the `user` key.
pub(super) fn member_json(u: &FakeUser, with_user: bool) -> Value {
    let mut v = json!({
        "nick": null,
        "avatar": null,
        "banner": null,
        "roles": ids_json(&u.roles),
        "joined_at": u.joined_at,
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

pub(super) fn channel_json(c: &FakeChannel, with_guild_id: bool) -> Value {
    let mut v = json!({
        "id": c.id.to_string(),
        "type": 0,
        "name": c.name,
        "position": c.position,
        "permission_overwrites": [],
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
        v["guild_id"] = json!(GUILD_ID.to_string());
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

    pub(super) fn member_permissions(&self, user_id: u64) -> u64 {
        if user_id == OWNER_ID {
            return perms::ALL;
        }
        let Some(user) = self.user(user_id) else {
            return 0;
        };
        let mut p = EVERYONE_PERMISSIONS;
        for r in &self.roles {
            if user.roles.contains(&r.id) {
                p |= r.permissions;
            }
        }
        if p & perms::ADMINISTRATOR != 0 {
            perms::ALL
        } else {
            p
        }
    }

    pub(super) fn guild_base(&self) -> Value {
        // Two halves: one json! this big exceeds the default macro recursion limit.
        let mut g = json!({
            "id": GUILD_ID.to_string(),
            "name": GUILD_NAME,
            "icon": null,
            "icon_hash": null,
            "splash": null,
            "discovery_splash": null,
            "banner": null,
            "description": null,
            "owner_id": OWNER_ID.to_string(),
            "afk_channel_id": null,
            "afk_timeout": 300,
            "widget_enabled": false,
            "widget_channel_id": null,
            "verification_level": 1,
            "default_message_notifications": 1,
            "explicit_content_filter": 2,
            "roles": self.roles.iter().map(role_json).collect::<Vec<_>>(),
            "emojis": [],
            "stickers": [],
            "features": [],
            "mfa_level": 0,
            "application_id": null,
            "system_channel_id": GENERAL_CHANNEL_ID.to_string(),
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

    /// The members GUILD_CREATE carries for a bot that identified with `intents`.
    fn guild_create_members(&self, intents: u64) -> Vec<&FakeUser> {
        const GUILD_PRESENCES: u64 = 1 << 8;
        self.users
            .iter()
            .filter(|u| {
                !self.cfg.members_as_discord_sends
                    || intents & GUILD_PRESENCES != 0
                    || u.id == BOT_ID
            })
            .collect()
    }

    /// GUILD_CREATE's `d`: the guild with the gateway-only fields.
    pub(super) fn guild_create(&self, intents: u64) -> Value {
        let mut g = self.guild_base();
        let extra = json!({
            "joined_at": BOT_JOINED_AT,
            "large": false,
            "unavailable": false,
            "lazy": true,
            "member_count": self.users.len(),
            "voice_states": [],
            "members": self.guild_create_members(intents).into_iter().map(|u| member_json(u, true)).collect::<Vec<_>>(),
            "channels": self.channels.iter().map(|c| channel_json(c, false)).collect::<Vec<_>>(),
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

    pub(super) fn ready(&self, session_id: &str, shard: Option<(u64, u64)>) -> Value {
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
            "guilds": [{ "id": GUILD_ID.to_string(), "unavailable": true }],
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
            "approximate_guild_count": 1,
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
    /// Every guild member's user id (owner, admin, moderator, member, extras, bot).
    pub fn member_ids(&self) -> Vec<u64> {
        self.shared.users.iter().map(|u| u.id).collect()
    }

    /// The ids of the `extra_members`, in order (`member01`, `member02`, ...).
    pub fn extra_member_ids(&self) -> Vec<u64> {
        self.shared
            .users
            .iter()
            .filter(|u| u.username.starts_with("member"))
            .map(|u| u.id)
            .collect()
    }

    /// A user's username.
    pub fn username(&self, user_id: u64) -> Option<String> {
        self.shared.user(user_id).map(|u| u.username.clone())
    }

    /// A member's `joined_at`.
    pub fn joined_at(&self, user_id: u64) -> Option<String> {
        self.shared.user(user_id).map(|u| u.joined_at.clone())
    }

    /// A member's permissions in the guild's channels (computed from roles; owner → all).
    pub fn member_permissions(&self, user_id: u64) -> u64 {
        self.shared.member_permissions(user_id)
    }

    /// The user object the fake sends for `user_id`.
    pub fn user_json(&self, user_id: u64) -> Option<Value> {
        self.shared.user(user_id).map(user_json)
    }

    /// The GUILD_CREATE payload (`d`).
    pub fn guild_create_json(&self) -> Value {
        self.shared.guild_create(u64::MAX)
    }
}
