//! Fault injection on REST: forced statuses (with Discord's error bodies and rate-limit headers),
//! delays, requests never answered, and answers lost after the work was done.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, Method};
use serde_json::json;

use super::rest::{Answer, Req, answer_normally};
use super::state::{Shared, route_matches};
use super::{FakeDiscord, lock};

/// A forced answer for the next `times` requests matching a method and route pattern.
#[derive(Debug, Clone)]
pub(super) struct Fault {
    pub(super) method: String,
    pub(super) pattern: String,
    pub(super) times: usize,
    pub(super) delay: Duration,
    /// None: only the delay, then the normal answer.
    pub(super) status: Option<u16>,
    pub(super) retry_after: Option<f64>,
    pub(super) hang: Hang,
}

/// A request Discord never answers (a half-open connection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Hang {
    No,
    /// Never processed, never answered.
    Before,
    /// Processed (a message is created), but the answer never comes back.
    After,
}

impl FakeDiscord {
    /// Answers the next `times` requests matching `method` (`*` for any) and `route_pattern`
    /// (route without `/api/v10`, `*` = one segment, e.g. `/channels/*/messages`) with `status`
    /// and a Discord-style error body.
    pub fn fail_next(&self, method: &str, route_pattern: &str, status: u16, times: usize) {
        self.add_fault(
            method,
            route_pattern,
            times,
            Duration::ZERO,
            Some(status),
            None,
        );
    }

    /// Answers the next `times` matching requests with 429 and `retry_after` (seconds), with
    /// `Retry-After` / `X-RateLimit-*` headers as Discord sends them.
    pub fn rate_limit_next(
        &self,
        method: &str,
        route_pattern: &str,
        retry_after_secs: f64,
        times: usize,
    ) {
        self.add_fault(
            method,
            route_pattern,
            times,
            Duration::ZERO,
            Some(429),
            Some(retry_after_secs),
        );
    }

    /// Delays the next `times` matching requests by `delay`, then answers them normally.
    pub fn delay_next(&self, method: &str, route_pattern: &str, delay: Duration, times: usize) {
        self.add_fault(method, route_pattern, times, delay, None, None);
    }

    /// The next `times` matching requests are never answered (and not acted on): the client
    /// sees a connection that stays open until it gives up.
    pub fn hang_next(&self, method: &str, route_pattern: &str, times: usize) {
        self.add_fault_full(
            method,
            route_pattern,
            times,
            Duration::ZERO,
            None,
            None,
            Hang::Before,
        );
    }

    /// The next `times` matching requests are acted on (a message is created) but their answer
    /// is never sent, as when a connection breaks after Discord did the work.
    pub fn lose_answer_next(&self, method: &str, route_pattern: &str, times: usize) {
        self.add_fault_full(
            method,
            route_pattern,
            times,
            Duration::ZERO,
            None,
            None,
            Hang::After,
        );
    }

    pub fn clear_faults(&self) {
        lock(&self.shared.faults).clear();
    }

    fn add_fault(
        &self,
        method: &str,
        pattern: &str,
        times: usize,
        delay: Duration,
        status: Option<u16>,
        retry_after: Option<f64>,
    ) {
        self.add_fault_full(method, pattern, times, delay, status, retry_after, Hang::No);
    }

    #[allow(clippy::too_many_arguments)]
    fn add_fault_full(
        &self,
        method: &str,
        pattern: &str,
        times: usize,
        delay: Duration,
        status: Option<u16>,
        retry_after: Option<f64>,
        hang: Hang,
    ) {
        lock(&self.shared.faults).push(Fault {
            method: method.to_ascii_uppercase(),
            pattern: pattern.to_string(),
            times,
            delay,
            status,
            retry_after,
            hang,
        });
    }
}

fn take_fault(shared: &Shared, method: &Method, route: &str) -> Option<Fault> {
    let mut faults = lock(&shared.faults);
    let i = faults.iter().position(|f| {
        f.times > 0
            && (f.method == "*" || f.method == method.as_str())
            && route_matches(&f.pattern, route)
    })?;
    faults[i].times -= 1;
    let f = faults[i].clone();
    if faults[i].times == 0 {
        faults.remove(i);
    }
    Some(f)
}

fn fault_answer(status: u16, retry_after: Option<f64>) -> Answer {
    let mut a = match status {
        429 => {
            let retry = retry_after.unwrap_or(1.0);
            let mut a = Answer::error(429, 0, "You are being rate limited.");
            a.json = Some(json!({
                "message": "You are being rate limited.",
                "retry_after": retry,
                "global": false,
                "code": 0,
            }));
            a.headers = vec![
                ("retry-after", format!("{}", retry.ceil() as u64)),
                ("x-ratelimit-limit", "5".into()),
                ("x-ratelimit-remaining", "0".into()),
                ("x-ratelimit-reset-after", format!("{retry:.3}")),
                ("x-ratelimit-bucket", "fakebucket".into()),
                ("x-ratelimit-scope", "user".into()),
            ];
            a
        }
        400 => {
            let mut a = Answer::error(400, 50035, "Invalid Form Body");
            a.json = Some(json!({ "message": "Invalid Form Body", "code": 50035, "errors": {} }));
            a
        }
        401 => Answer::error(401, 0, "401: Unauthorized"),
        403 => Answer::error(403, 50013, "Missing Permissions"),
        404 => Answer::error(404, 0, "404: Not Found"),
        413 => Answer::error(413, 40005, "Request entity too large"),
        500 => Answer::error(500, 0, "500: Internal Server Error"),
        502..=504 => {
            let mut a = Answer::error(status, 0, "");
            a.json = None;
            a.raw = Some((
                "text/html".into(),
                b"<html><body><h1>upstream connect error</h1></body></html>".to_vec(),
            ));
            a
        }
        s => Answer::error(s, 0, &format!("{s}: fault injected by fake_discord")),
    };
    a.faulted = true;
    a
}

pub(super) async fn answer(
    shared: &Arc<Shared>,
    headers: &HeaderMap,
    req: Req,
    api: bool,
    bad_body: bool,
) -> Answer {
    let mut lose_answer = false;
    if let Some(f) = take_fault(shared, &req.method, &req.route) {
        if f.hang == Hang::Before {
            std::future::pending::<()>().await;
        }
        lose_answer = f.hang == Hang::After;
        if !f.delay.is_zero() {
            tokio::time::sleep(f.delay).await;
        }
        if let Some(status) = f.status {
            return fault_answer(status, f.retry_after);
        }
    }
    if lose_answer {
        let _done = answer_normally(shared, headers, req, api, bad_body);
        return std::future::pending::<Answer>().await;
    }
    answer_normally(shared, headers, req, api, bad_body)
}
