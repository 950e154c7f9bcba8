//! The per-user scan cooldown (`SCAN_COOLDOWN`), started only by a scan that passed every check:
//! a typo or a refused scan costs nothing. With PostgreSQL it lives in the database
//! ([`Cooldowns::share`]), so it holds on whichever machine runs the server's shard next.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Who a cooldown applies to: a user in one server (each server sets its own cooldown).
pub type CooldownKey = (Option<u64>, u64);

#[derive(Debug, Default)]
pub struct Cooldowns {
    /// When each user's cooldown started, and how long it lasts.
    running: Mutex<HashMap<CooldownKey, (Instant, Duration)>>,
    shared: OnceLock<crate::db::shared::SharedState>,
}

/// Why a cooldown did not start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The running one has this much left.
    Wait(Duration),
    /// The shared cooldowns (PostgreSQL) could not be read: the reason, for the log.
    Unavailable(String),
}

impl Cooldowns {
    pub fn new() -> Self {
        Cooldowns::default()
    }

    /// Keeps cooldowns in the database from now on (PostgreSQL, several machines).
    pub fn share(&self, shared: crate::db::shared::SharedState) {
        let _ = self.shared.set(shared);
    }

    /// Starts the user's cooldown of `every`, or says how long is left of the running one.
    pub async fn start(&self, key: CooldownKey, every: Duration) -> Result<(), Refusal> {
        match self.shared.get() {
            Some(shared) if !every.is_zero() => {
                match shared.start_cooldown(key.0, key.1, every).await {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(left)) => Err(Refusal::Wait(left)),
                    Err(e) => Err(Refusal::Unavailable(e.to_string())),
                }
            }
            Some(_) => Ok(()),
            None => self.start_here(key, every).map_err(Refusal::Wait),
        }
    }

    fn start_here(&self, key: CooldownKey, every: Duration) -> Result<(), Duration> {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if let Some(left) = running
            .get(&key)
            .and_then(|(at, lasts)| lasts.checked_sub(now.duration_since(*at)))
            .filter(|left| !left.is_zero())
        {
            return Err(left);
        }
        running.retain(|_, (at, lasts)| now.duration_since(*at) < *lasts);
        if !every.is_zero() {
            running.insert(key, (now, every));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_start_within_the_cooldown_is_refused_with_the_time_left() {
        let c = Cooldowns::new();
        let every = Duration::from_secs(30);
        assert_eq!(c.start_here((Some(7), 1), every), Ok(()));
        let left = c.start_here((Some(7), 1), every).expect_err("cooling down");
        assert!(
            left > Duration::from_secs(29) && left <= Duration::from_secs(30),
            "{left:?}"
        );
        assert_eq!(c.start_here((Some(7), 2), every), Ok(()), "per user");
        assert_eq!(c.start_here((Some(8), 1), every), Ok(()), "per server");
    }

    #[test]
    fn zero_means_no_cooldown() {
        let c = Cooldowns::new();
        assert_eq!(c.start_here((None, 1), Duration::ZERO), Ok(()));
        assert_eq!(c.start_here((None, 1), Duration::ZERO), Ok(()));
    }
}
