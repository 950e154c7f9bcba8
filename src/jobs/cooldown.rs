//! The per-user scan cooldown (`SCAN_COOLDOWN`), started only by a scan that passed every check:
//! a typo or a refused scan costs nothing.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct Cooldowns {
    every: Duration,
    last_start: Mutex<HashMap<u64, Instant>>,
}

impl Cooldowns {
    pub fn new(every: Duration) -> Self {
        Cooldowns {
            every,
            last_start: Mutex::new(HashMap::new()),
        }
    }

    /// Starts the user's cooldown, or says how long is left of the running one.
    pub fn start(&self, user: u64) -> Result<(), Duration> {
        if self.every.is_zero() {
            return Ok(());
        }
        let mut last = self.last_start.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if let Some(left) = last
            .get(&user)
            .and_then(|at| self.every.checked_sub(now.duration_since(*at)))
            .filter(|left| !left.is_zero())
        {
            return Err(left);
        }
        last.retain(|_, at| now.duration_since(*at) < self.every);
        last.insert(user, now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_start_within_the_cooldown_is_refused_with_the_time_left() {
        let c = Cooldowns::new(Duration::from_secs(30));
        assert_eq!(c.start(1), Ok(()));
        let left = c.start(1).expect_err("cooling down");
        assert!(
            left > Duration::from_secs(29) && left <= Duration::from_secs(30),
            "{left:?}"
        );
        assert_eq!(c.start(2), Ok(()), "per user");
    }

    #[test]
    fn zero_means_no_cooldown() {
        let c = Cooldowns::new(Duration::ZERO);
        assert_eq!(c.start(1), Ok(()));
        assert_eq!(c.start(1), Ok(()));
    }
}
