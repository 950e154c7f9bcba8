//! Members joining a guild: the joiners of [`super::FakeDiscordConfig::joiners`] become members
//! with [`FakeDiscord::join_member`], which dispatches GUILD_MEMBER_ADD as Discord does (only to
//! a session that identified with the GUILD_MEMBERS intent).

use serde_json::json;

use super::fixtures::{FakeMembership, FakeUser, member_json};
use super::state::now_rfc3339;
use super::{FakeDiscord, lock};

/// The GUILD_MEMBERS gateway intent, without which Discord sends no GUILD_MEMBER_ADD.
const GUILD_MEMBERS_INTENT: u64 = 1 << 1;

impl FakeDiscord {
    /// Makes the joiner `username` a member of `guild_id` (joined now, no roles: from then on
    /// the REST member routes, the member list and GUILD_CREATE include them) and dispatches
    /// GUILD_MEMBER_ADD (the member with `user` and `guild_id`) on the session that holds the
    /// guild if that session identified with the GUILD_MEMBERS intent. Returns the joiner's id
    /// when the event was dispatched, None when the session lacks the intent (the membership
    /// still happens, as on Discord). Panics on an unknown joiner or guild, a second join of the
    /// same guild, or when no ready session holds the guild within 10 s.
    pub fn join_member(&self, guild_id: u64, username: &str) -> Option<u64> {
        assert!(
            self.shared.guild(guild_id).is_some(),
            "fake_discord: unknown guild {guild_id}"
        );
        let user = self.joiner(username);
        self.require_ready(Some(guild_id), "GUILD_MEMBER_ADD");
        let slot = user
            .joins
            .iter()
            .find(|(g, _)| *g == guild_id)
            .map(|(_, slot)| slot)
            .unwrap_or_else(|| panic!("fake_discord: no join slot for guild {guild_id}"));
        let membership = FakeMembership {
            guild_id,
            roles: Vec::new(),
            joined_at: now_rfc3339(),
        };
        assert!(
            slot.set(membership).is_ok(),
            "fake_discord: {username} already joined guild {guild_id}"
        );
        let intents = lock(&self.shared.gw).intents_for(guild_id).unwrap_or(0);
        if intents & GUILD_MEMBERS_INTENT == 0 {
            return None;
        }
        let mut d = member_json(user, guild_id, true);
        d["guild_id"] = json!(guild_id.to_string());
        self.dispatch_in_guild(Some(guild_id), "GUILD_MEMBER_ADD", d);
        lock(&self.shared.state).member_adds += 1;
        Some(user.id)
    }

    /// The user id of the joiner `username`. Panics on an unknown joiner.
    pub fn joiner_id(&self, username: &str) -> u64 {
        self.joiner(username).id
    }

    /// GUILD_MEMBER_ADD events dispatched so far.
    pub fn member_add_count(&self) -> usize {
        lock(&self.shared.state).member_adds
    }

    fn joiner(&self, username: &str) -> &FakeUser {
        self.shared
            .users
            .iter()
            .find(|u| u.joins_later && u.username == username)
            .unwrap_or_else(|| panic!("fake_discord: no joiner {username:?}"))
    }
}
