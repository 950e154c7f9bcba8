//! The join screen's bookkeeping, per server: joins wait a moment (`JOIN_BATCH_DELAY`) so a burst
//! is seen as one; `RAID_JOINS` joins within `RAID_WINDOW` are a raid (one summary, automatic
//! scans paused) until a whole window passes quieter; automatic scans are capped per hour. No
//! Discord here: the bot's face posts what [`JoinScreen::take_batch`] says.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

/// A member who joined, as the screen shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Join {
    pub user_id: u64,
    pub username: String,
    pub created: DateTime<Utc>,
    pub joined: DateTime<Utc>,
    /// No avatar of their own (Discord's default).
    pub default_avatar: bool,
}

impl Join {
    pub fn age(&self) -> chrono::Duration {
        self.joined - self.created
    }

    pub fn is_new(&self, threshold: Duration) -> bool {
        self.age() < chrono::Duration::from_std(threshold).unwrap_or(chrono::Duration::MAX)
    }
}

/// What to post for the joins that waited.
#[derive(Debug, Clone, PartialEq)]
pub enum Batch {
    /// Nothing waited (another flush took them).
    Empty,
    /// One post per member.
    Members(Vec<Join>),
    /// A raid: post (`message` is `None`) or edit its one summary.
    Raid(Raid),
}

/// A burst of joins, summarised in one message.
#[derive(Debug, Clone, PartialEq)]
pub struct Raid {
    pub started: DateTime<Utc>,
    /// Joins counted in the raid so far, including those of the window before it was seen.
    pub joins: usize,
    /// The members of the raid the summary lists (the ones not posted on their own).
    pub members: Vec<Join>,
    /// The summary message, once posted.
    pub message: Option<u64>,
}

#[derive(Debug, Default)]
struct GuildJoins {
    recent: VecDeque<Instant>,
    pending: Vec<Join>,
    flush_due: bool,
    raid: Option<(Raid, Instant)>,
    auto_scans: VecDeque<Instant>,
}

#[derive(Debug)]
pub struct JoinScreen {
    batch_delay: Duration,
    raid_joins: usize,
    raid_window: Duration,
    guilds: Mutex<HashMap<u64, GuildJoins>>,
}

const HOUR: Duration = Duration::from_secs(3600);
/// A raid's summary lists (and counts new accounts among) at most this many members; its total
/// counts them all.
pub const RAID_MEMBERS_KEPT: usize = 1000;

impl JoinScreen {
    pub fn new(batch_delay: Duration, raid_joins: usize, raid_window: Duration) -> JoinScreen {
        JoinScreen {
            batch_delay,
            raid_joins: raid_joins.max(2),
            raid_window,
            guilds: Mutex::new(HashMap::new()),
        }
    }

    pub fn batch_delay(&self) -> Duration {
        self.batch_delay
    }

    pub fn raid_window(&self) -> Duration {
        self.raid_window
    }

    fn guilds(&self) -> std::sync::MutexGuard<'_, HashMap<u64, GuildJoins>> {
        self.guilds.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a join; `true` when the caller must flush the server's batch after
    /// [`JoinScreen::batch_delay`] (no flush is due yet).
    pub fn add(&self, guild: u64, join: Join, now: Instant) -> bool {
        let mut guilds = self.guilds();
        let g = guilds.entry(guild).or_default();
        g.recent.push_back(now);
        g.pending.push(join);
        !std::mem::replace(&mut g.flush_due, true)
    }

    /// Takes the joins that waited and says how to post them.
    pub fn take_batch(&self, guild: u64, now: Instant, now_utc: DateTime<Utc>) -> Batch {
        let mut guilds = self.guilds();
        let Some(g) = guilds.get_mut(&guild) else {
            return Batch::Empty;
        };
        g.flush_due = false;
        while g
            .recent
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) > self.raid_window)
        {
            g.recent.pop_front();
        }
        let pending = std::mem::take(&mut g.pending);
        if pending.is_empty() {
            return Batch::Empty;
        }
        // A raid goes on while joins keep coming within a window of the last one.
        if let Some((raid, last)) = &mut g.raid {
            if now.saturating_duration_since(*last) <= self.raid_window {
                raid.joins += pending.len();
                let room = RAID_MEMBERS_KEPT.saturating_sub(raid.members.len());
                raid.members.extend(pending.into_iter().take(room));
                *last = now;
                return Batch::Raid(raid.clone());
            }
            g.raid = None;
        }
        if g.recent.len() >= self.raid_joins {
            let raid = Raid {
                started: now_utc,
                joins: g.recent.len(),
                members: pending,
                message: None,
            };
            g.raid = Some((raid.clone(), now));
            return Batch::Raid(raid);
        }
        Batch::Members(pending)
    }

    /// The summary message of the server's raid, once posted.
    pub fn set_raid_message(&self, guild: u64, message: u64) {
        if let Some((raid, _)) = self.guilds().get_mut(&guild).and_then(|g| g.raid.as_mut()) {
            raid.message = Some(message);
        }
    }

    /// Whether a raid is going on in the server (automatic scans are paused).
    pub fn in_raid(&self, guild: u64, now: Instant) -> bool {
        self.guilds()
            .get(&guild)
            .and_then(|g| g.raid.as_ref())
            .is_some_and(|(_, last)| now.saturating_duration_since(*last) <= self.raid_window)
    }

    /// Takes one of the server's automatic scans of the hour: `Some(n)`, the n-th this hour, or
    /// `None` when `cap` are already used.
    pub fn take_auto_scan(&self, guild: u64, cap: u64, now: Instant) -> Option<u64> {
        let mut guilds = self.guilds();
        let g = guilds.entry(guild).or_default();
        while g
            .auto_scans
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= HOUR)
        {
            g.auto_scans.pop_front();
        }
        if g.auto_scans.len() as u64 >= cap {
            return None;
        }
        g.auto_scans.push_back(now);
        Some(g.auto_scans.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn join(n: u64, age_days: i64) -> Join {
        let joined = DateTime::from_timestamp(1_800_000_000, 0).expect("valid");
        Join {
            user_id: 1000 + n,
            username: format!("user{n}"),
            created: joined - chrono::Duration::days(age_days),
            joined,
            default_avatar: true,
        }
    }

    #[test]
    fn new_means_younger_than_the_threshold() {
        let week = Duration::from_secs(7 * 86_400);
        assert!(join(1, 6).is_new(week));
        assert!(!join(1, 7).is_new(week));
        assert!(!join(1, 400).is_new(week));
    }

    #[test]
    fn quiet_joins_are_posted_one_by_one_and_a_burst_is_one_raid() {
        let screen = JoinScreen::new(Duration::from_secs(2), 20, Duration::from_secs(60));
        let t0 = Instant::now();
        let utc = Utc::now();
        assert!(
            screen.add(1, join(1, 1), t0),
            "the first join asks for a flush"
        );
        assert!(
            !screen.add(1, join(2, 1), t0),
            "a flush is already due for the second"
        );
        assert!(screen.add(2, join(3, 1), t0), "another server has its own");
        assert_eq!(
            screen.take_batch(1, t0 + Duration::from_secs(2), utc),
            Batch::Members(vec![join(1, 1), join(2, 1)])
        );
        assert_eq!(
            screen.take_batch(1, t0 + Duration::from_secs(2), utc),
            Batch::Empty
        );

        // 30 joins within a second, ten minutes later: one raid.
        let t1 = t0 + Duration::from_secs(600);
        for n in 0..30 {
            screen.add(1, join(n, 1), t1 + Duration::from_millis(n * 30));
        }
        let Batch::Raid(raid) = screen.take_batch(1, t1 + Duration::from_secs(3), utc) else {
            panic!("a raid");
        };
        assert_eq!(
            (raid.joins, raid.members.len(), raid.message),
            (30, 30, None)
        );
        assert!(screen.in_raid(1, t1 + Duration::from_secs(3)));
        assert!(!screen.in_raid(2, t1), "only that server");
        screen.set_raid_message(1, 99);
        // Joins during the raid update the same summary.
        screen.add(1, join(40, 1), t1 + Duration::from_secs(30));
        let Batch::Raid(raid) = screen.take_batch(1, t1 + Duration::from_secs(32), utc) else {
            panic!("still the raid");
        };
        assert_eq!((raid.joins, raid.message), (31, Some(99)));
        // A whole quiet window later, a join is a join again.
        let t2 = t1 + Duration::from_secs(32 + 61);
        assert!(!screen.in_raid(1, t2));
        screen.add(1, join(50, 1), t2);
        assert_eq!(
            screen.take_batch(1, t2 + Duration::from_secs(2), utc),
            Batch::Members(vec![join(50, 1)])
        );
    }

    #[test]
    fn automatic_scans_are_capped_per_server_per_hour() {
        let screen = JoinScreen::new(Duration::ZERO, 20, Duration::from_secs(60));
        let t0 = Instant::now();
        assert_eq!(screen.take_auto_scan(1, 2, t0), Some(1));
        assert_eq!(screen.take_auto_scan(1, 2, t0), Some(2));
        assert_eq!(screen.take_auto_scan(1, 2, t0), None);
        assert_eq!(screen.take_auto_scan(2, 2, t0), Some(1), "per server");
        assert_eq!(
            screen.take_auto_scan(1, 2, t0 + HOUR),
            Some(1),
            "an hour later"
        );
        assert_eq!(screen.take_auto_scan(3, 0, t0), None, "a cap of 0: none");
    }
}
