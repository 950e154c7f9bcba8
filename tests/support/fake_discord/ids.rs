//! Snowflakes, the fixed ids of the fake's two guilds and their members, the permission bits the
//! fixtures use, and Discord's limits the fake enforces. All public, re-exported by `mod.rs`.

use super::state::rfc3339_ms;

/// Discord's epoch (2015-01-01T00:00:00Z) in Unix milliseconds.
pub const DISCORD_EPOCH_MS: u64 = 1_420_070_400_000;

/// A snowflake created at `unix_ms` (worker 1, process 0, the given increment).
pub const fn snowflake(unix_ms: u64, increment: u64) -> u64 {
    ((unix_ms - DISCORD_EPOCH_MS) << 22) | (1 << 17) | (increment & 0xFFF)
}

/// The creation time (Unix ms) encoded in a snowflake.
pub fn snowflake_unix_ms(id: u64) -> u64 {
    (id >> 22) + DISCORD_EPOCH_MS
}

/// The creation time encoded in a snowflake, as RFC 3339 (`2017-05-02T18:45:00+00:00`).
pub fn snowflake_created_at(id: u64) -> String {
    rfc3339_ms(snowflake_unix_ms(id))
}

/// The first guild (created 2019-03-14T09:30:00Z); every existing test uses this one. With
/// sharding it is on shard 0 of 2.
pub const GUILD_ID: u64 = snowflake(1_552_555_800_000, 1);
pub const GUILD_NAME: &str = "Scanner Test Server";
/// `@everyone`: its id is the guild id.
pub const EVERYONE_ROLE_ID: u64 = GUILD_ID;
/// "Moderator": Moderate Members plus the basics.
pub const MODERATOR_ROLE_ID: u64 = snowflake(1_552_557_600_000, 1);
pub const MODERATOR_ROLE_NAME: &str = "Moderator";
/// The bot's managed role: send, embed, attach, read history.
pub const BOT_ROLE_ID: u64 = snowflake(1_706_860_800_000, 2);
/// Text channels of the first guild, no permission overwrites.
pub const GENERAL_CHANNEL_ID: u64 = snowflake(1_552_555_800_000, 2);
pub const MOD_LOG_CHANNEL_ID: u64 = snowflake(1_552_651_200_000, 1);
/// "announcements" in the first guild: an overwrite on the bot's role denies SEND_MESSAGES, so
/// the bot can read it but not post there (everyone else can).
pub const READONLY_CHANNEL_ID: u64 = snowflake(1_552_737_600_000, 1);
pub const READONLY_CHANNEL_NAME: &str = "announcements";

/// The second guild (created 2020-06-01T12:00:00.123Z; with sharding it is on shard 1 of 2,
/// not on the first guild's shard). Same owner; every user is a member of both guilds, with this
/// guild's roles.
pub const GUILD2_ID: u64 = snowflake(1_591_012_800_123, 1);
pub const GUILD2_NAME: &str = "Second Test Server";
/// The second guild's `@everyone` (same permissions as the first guild's).
pub const EVERYONE2_ROLE_ID: u64 = GUILD2_ID;
/// The second guild's "Moderator" role: same name and permissions as [`MODERATOR_ROLE_ID`].
pub const MODERATOR2_ROLE_ID: u64 = snowflake(1_591_016_400_000, 1);
/// The bot's managed role in the second guild (same permissions as [`BOT_ROLE_ID`]).
pub const BOT2_ROLE_ID: u64 = snowflake(1_706_950_800_000, 2);
/// Text channels of the second guild, no permission overwrites.
pub const GENERAL2_CHANNEL_ID: u64 = snowflake(1_591_012_800_123, 2);
pub const MOD_LOG2_CHANNEL_ID: u64 = snowflake(1_591_099_200_000, 1);
/// The bot user (created 2024-02-01T12:00:00Z); as for every modern app, the application id is
/// the bot's user id.
pub const BOT_ID: u64 = snowflake(1_706_788_800_000, 1);
pub const APPLICATION_ID: u64 = BOT_ID;
pub const BOT_USERNAME: &str = "Account Scanner";
/// The token the bot should use (`DISCORD_BOT_TOKEN`); only enforced with
/// [`FakeDiscordConfig::expected_token`].
pub const BOT_TOKEN: &str = "fake-discord-bot-token.NzA2Nzg4ODAw.fake";
/// Owner of both guilds (created 2016-02-11, no roles; owners have every permission). Also the
/// application's owner.
pub const OWNER_ID: u64 = snowflake(1_455_184_800_000, 1);
pub const OWNER_USERNAME: &str = "owner.olga";
/// A user meant for `ADMIN_USER_IDS` (created 2016-07-04); has the Moderator role (in the second
/// guild: [`MODERATOR2_ROLE_ID`]).
pub const ADMIN_ID: u64 = snowflake(1_467_645_600_000, 1);
pub const ADMIN_USERNAME: &str = "admin.ada";
/// A moderator (created 2017-05-02T18:45:00Z): Moderator role in the first guild,
/// [`MODERATOR2_ROLE_ID`] in the second.
pub const MODERATOR_ID: u64 = snowflake(1_493_750_700_000, 1);
pub const MODERATOR_USERNAME: &str = "mod.mia";
/// A plain member with no roles (created 2021-08-19T07:05:00Z). Their username is `alice`,
/// the name `fake_sites::CLAIMED_USER` exists under.
pub const MEMBER_ID: u64 = snowflake(1_629_356_700_000, 1);
pub const MEMBER_USERNAME: &str = "alice";

pub const OWNER_JOINED_AT: &str = "2019-03-14T09:30:00.000000+00:00";
pub const ADMIN_JOINED_AT: &str = "2019-03-14T11:02:17.331000+00:00";
pub const MODERATOR_JOINED_AT: &str = "2019-06-21T20:14:55.120000+00:00";
pub const MEMBER_JOINED_AT: &str = "2023-11-05T16:48:03.512000+00:00";
pub const BOT_JOINED_AT: &str = "2024-02-02T08:00:00.000000+00:00";
/// When each joined the second guild (the owner created it).
pub const OWNER_JOINED2_AT: &str = "2020-06-01T12:00:00.123000+00:00";
pub const ADMIN_JOINED2_AT: &str = "2020-06-01T12:41:09.870000+00:00";
pub const MODERATOR_JOINED2_AT: &str = "2020-09-12T07:22:31.004000+00:00";
pub const MEMBER_JOINED2_AT: &str = "2024-01-20T19:03:44.250000+00:00";
pub const BOT_JOINED2_AT: &str = "2024-02-03T09:00:00.000000+00:00";

/// Permission bits used by the fixtures.
pub mod perms {
    pub const CREATE_INSTANT_INVITE: u64 = 1 << 0;
    pub const KICK_MEMBERS: u64 = 1 << 1;
    pub const BAN_MEMBERS: u64 = 1 << 2;
    pub const ADMINISTRATOR: u64 = 1 << 3;
    pub const ADD_REACTIONS: u64 = 1 << 6;
    pub const VIEW_AUDIT_LOG: u64 = 1 << 7;
    pub const VIEW_CHANNEL: u64 = 1 << 10;
    pub const SEND_MESSAGES: u64 = 1 << 11;
    pub const MANAGE_MESSAGES: u64 = 1 << 13;
    pub const EMBED_LINKS: u64 = 1 << 14;
    pub const ATTACH_FILES: u64 = 1 << 15;
    pub const READ_MESSAGE_HISTORY: u64 = 1 << 16;
    pub const MENTION_EVERYONE: u64 = 1 << 17;
    pub const USE_EXTERNAL_EMOJIS: u64 = 1 << 18;
    pub const CONNECT: u64 = 1 << 20;
    pub const SPEAK: u64 = 1 << 21;
    pub const CHANGE_NICKNAME: u64 = 1 << 26;
    pub const USE_APPLICATION_COMMANDS: u64 = 1 << 31;
    pub const CREATE_PUBLIC_THREADS: u64 = 1 << 35;
    pub const SEND_MESSAGES_IN_THREADS: u64 = 1 << 38;
    pub const MODERATE_MEMBERS: u64 = 1 << 40;
    /// What the guild owner (or an administrator) has.
    pub const ALL: u64 = (1 << 51) - 1;
}

/// `@everyone`: view, send, embed, attach, history, reactions, app commands — NOT Moderate
/// Members.
pub const EVERYONE_PERMISSIONS: u64 = perms::CREATE_INSTANT_INVITE
    | perms::ADD_REACTIONS
    | perms::VIEW_CHANNEL
    | perms::SEND_MESSAGES
    | perms::EMBED_LINKS
    | perms::ATTACH_FILES
    | perms::READ_MESSAGE_HISTORY
    | perms::USE_EXTERNAL_EMOJIS
    | perms::CONNECT
    | perms::SPEAK
    | perms::CHANGE_NICKNAME
    | perms::USE_APPLICATION_COMMANDS
    | perms::CREATE_PUBLIC_THREADS
    | perms::SEND_MESSAGES_IN_THREADS;
/// "Moderator": Moderate Members plus kick, manage messages, audit log and the basics.
pub const MODERATOR_PERMISSIONS: u64 = perms::MODERATE_MEMBERS
    | perms::KICK_MEMBERS
    | perms::MANAGE_MESSAGES
    | perms::VIEW_AUDIT_LOG
    | perms::VIEW_CHANNEL
    | perms::SEND_MESSAGES
    | perms::EMBED_LINKS
    | perms::ATTACH_FILES
    | perms::READ_MESSAGE_HISTORY;
/// The bot's managed role.
pub const BOT_ROLE_PERMISSIONS: u64 = perms::VIEW_CHANNEL
    | perms::SEND_MESSAGES
    | perms::EMBED_LINKS
    | perms::ATTACH_FILES
    | perms::READ_MESSAGE_HISTORY
    | perms::ADD_REACTIONS
    | perms::USE_EXTERNAL_EMOJIS
    | perms::SEND_MESSAGES_IN_THREADS;

/// Application flags sent in READY and `/oauth2/applications/@me`: GATEWAY_GUILD_MEMBERS_LIMITED,
/// GATEWAY_MESSAGE_CONTENT_LIMITED and APPLICATION_COMMAND_BADGE.
pub const APPLICATION_FLAGS: u64 = (1 << 15) | (1 << 19) | (1 << 23);
/// Gateway intents that Discord calls privileged.
pub const PRIVILEGED_INTENTS: u64 = (1 << 1) | (1 << 8) | (1 << 15);

/// Discord's limits that the fake enforces on what the bot sends (a violation is answered
/// 400 Invalid Form Body, as Discord does, and listed by `spec_violations`).
pub mod limits {
    pub const CONTENT: usize = 2000;
    pub const EMBEDS: usize = 10;
    pub const EMBED_TITLE: usize = 256;
    pub const EMBED_DESCRIPTION: usize = 4096;
    pub const EMBED_FIELDS: usize = 25;
    pub const EMBED_FIELD_NAME: usize = 256;
    pub const EMBED_FIELD_VALUE: usize = 1024;
    pub const EMBED_FOOTER: usize = 2048;
    pub const EMBED_AUTHOR: usize = 256;
    /// Sum of all title/description/field/footer/author characters over all embeds.
    pub const EMBED_TOTAL: usize = 6000;
    pub const ATTACHMENTS: usize = 10;
}
