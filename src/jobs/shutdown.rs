//! Shutdown's budget, shared by every face that runs scans.

use std::time::Duration;

/// Shutdown's one budget, `SHUTDOWN_GRACE`, counted from the request: it has to fit inside
/// the platform's kill window (fly's `kill_timeout`, 30 s, after which it sends SIGKILL).
///
/// ```text
/// request ── scans may finish ──▶ finish_by ── interrupted scans post partials ──▶ post_by ── gateway closes ──▶ exit_by
///            grace − reserve − close             reserve = min(8 s, grace / 3)               close = min(0.5 s, grace / 10)
/// ```
/// With the default 25 s: scans get 16.5 s, partial results 8 s, the gateway 0.5 s; the process
/// has exited 25 s after SIGTERM, 5 s before fly's SIGKILL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownPlan {
    pub finish_by: tokio::time::Instant,
    pub post_by: tokio::time::Instant,
    pub exit_by: tokio::time::Instant,
}

/// The most a partial result may take to reach Discord once its scan was interrupted.
const POST_RESERVE: Duration = Duration::from_secs(8);
/// Closing the gateway and letting the last replies out.
pub const CLOSE_RESERVE: Duration = Duration::from_millis(500);

pub fn shutdown_plan(start: tokio::time::Instant, grace: Duration) -> ShutdownPlan {
    let close = CLOSE_RESERVE.min(grace / 10);
    let reserve = POST_RESERVE.min(grace / 3);
    let exit_by = start + grace;
    let post_by = exit_by - close;
    ShutdownPlan {
        finish_by: post_by - reserve,
        post_by,
        exit_by,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_shutdown_fits_inside_flys_kill_timeout() {
        let start = tokio::time::Instant::now();
        let plan = shutdown_plan(start, Duration::from_secs(25));
        assert_eq!(plan.finish_by - start, Duration::from_millis(16_500));
        assert_eq!(plan.post_by - start, Duration::from_millis(24_500));
        assert_eq!(plan.exit_by - start, Duration::from_secs(25));
        // The whole budget ends before fly.toml's kill_timeout.
        let kill_timeout: u64 = include_str!("../../fly.toml")
            .lines()
            .find_map(|l| l.trim().strip_prefix("kill_timeout = "))
            .and_then(|v| v.trim().parse().ok())
            .expect("fly.toml sets kill_timeout");
        assert!(plan.exit_by - start < Duration::from_secs(kill_timeout));
    }

    #[test]
    fn a_short_grace_keeps_its_parts_in_order() {
        let start = tokio::time::Instant::now();
        for secs in [0, 1, 3, 6, 600] {
            let plan = shutdown_plan(start, Duration::from_secs(secs));
            assert!(start <= plan.finish_by, "{secs}");
            assert!(plan.finish_by <= plan.post_by, "{secs}");
            assert!(plan.post_by <= plan.exit_by, "{secs}");
            assert_eq!(plan.exit_by - start, Duration::from_secs(secs));
        }
    }
}
