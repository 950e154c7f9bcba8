//! Rate limits, retries and timeouts, shared by every outbound API.
//!
//! Quotas belong to an API key, not to a scan, so there is one [`ApiLimiter`] per API for the
//! whole process ([`Limits`], created once by the `Scanner` and cloned into each client); with
//! PostgreSQL ([`Limits::share`]) one row per credential in the database paces every machine.
//! Every request goes through [`ApiLimiter::send`], which
//! - paces requests evenly at the configured rate (a governor GCRA limiter with no burst),
//! - pauses the whole API when a response says so (`Retry-After`, or Reddit's
//!   `X-Ratelimit-Remaining: 0` with `X-Ratelimit-Reset`),
//! - retries 429, 5xx and network failures with exponential backoff and jitter, a bounded number
//!   of times, and
//! - ends in an [`ApiError`] naming the API and what it last answered.
//!
//! The per-request network timeout is set on the shared `reqwest::Client` ([`http_client`]), and
//! every answer's body is read through [`read_body`], which stops at [`MAX_BODY_BYTES`].

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use rand::Rng;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{RequestBuilder, Response, StatusCode};
use serde::Deserialize;
use tokio::time::Instant;

use crate::config::Config;
use crate::db::shared::SharedState;

/// The longest pause a server can impose through `Retry-After` or `X-Ratelimit-Reset`; the scan
/// deadline usually cuts a long pause short anyway.
const MAX_PAUSE: Duration = Duration::from_secs(3600);

/// The most of one answer's body any API client reads (Reddit, Perspective, OpenAI): 8 MiB. A
/// full Reddit page of 100 long posts is well under 2 MiB, a Perspective answer a few KB and a
/// batch of 256 OpenAI results under 1 MiB; anything larger is a fault (a proxy, a runaway
/// server) and is refused rather than held in memory.
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// Why an answer's body was not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error(
        "it is larger than {} MiB, the most account-scanner reads of one answer",
        .limit / (1024 * 1024)
    )]
    TooLarge { limit: usize },
    #[error("it could not be read to its end: {0}")]
    Read(String),
}

/// Reads a response's body, at most `limit` bytes: a `Content-Length` above it is refused before
/// reading, and a body without one (chunked, or lying) is refused at the first chunk that passes
/// it, so memory stays bounded whatever the server sends. Dropping the response then closes the
/// connection.
pub async fn read_body(mut response: Response, limit: usize) -> Result<Vec<u8>, BodyError> {
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge { limit });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| BodyError::Read(describe(&e)))?
    {
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// `n` requests per `per`, spread evenly (no burst).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    pub requests: u32,
    pub per: Duration,
}

impl RateLimit {
    pub fn per_minute(requests: u32) -> Self {
        RateLimit {
            requests: requests.max(1),
            per: Duration::from_secs(60),
        }
    }

    /// Requests per second, possibly fractional (`0.5` = one request every two seconds).
    pub fn per_second(qps: f64) -> Self {
        // Expressed as 1 request per (1/qps) s so fractional rates keep their precision.
        let period = if qps.is_finite() && qps > 0.0 {
            Duration::from_secs_f64(1.0 / qps)
        } else {
            Duration::from_secs(1)
        };
        RateLimit {
            requests: 1,
            per: period,
        }
    }

    /// The gap kept between two requests: the quota's own spacing plus a 1% + 5 ms safety
    /// margin, so that scheduling and network jitter cannot land one request too many inside
    /// any window of length `per` as the server measures it.
    pub fn spacing(&self) -> Duration {
        let exact = self.per / self.requests.max(1);
        exact + exact / 100 + Duration::from_millis(5)
    }
}

/// How failed requests are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// Backoff before the second attempt; doubled for each further one (before jitter).
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(8),
        }
    }
}

impl RetryPolicy {
    /// Exponential backoff with "equal jitter": a random delay between half and all of
    /// `base × 2^(failures-1)` (capped), so concurrent callers do not retry in lockstep.
    pub fn backoff(&self, failures: u32) -> Duration {
        let exp = failures.saturating_sub(1).min(16);
        let full = self
            .base_delay
            .saturating_mul(1u32 << exp)
            .min(self.max_delay);
        let half = full / 2;
        let jitter_ms = u64::try_from((full - half).as_millis()).unwrap_or(u64::MAX);
        half + Duration::from_millis(rand::rng().random_range(0..=jitter_ms))
    }
}

/// Whether a request waits its turn on the API's quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pacing {
    Paced,
    /// Not counted against the quota (Reddit's token endpoint); still retried.
    Unpaced,
}

/// The final failure of a request, after the retries allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    #[error("{api} answered {status} after {attempts} attempts")]
    GaveUp {
        api: &'static str,
        status: StatusCode,
        attempts: u32,
    },
    #[error("{api} could not be reached after {attempts} attempts: {reason}")]
    Unreachable {
        api: &'static str,
        attempts: u32,
        reason: String,
    },
    /// The shared quota (PostgreSQL) could not be read: no request is sent rather than one
    /// outside the quota every machine shares.
    #[error(
        "the shared {api} quota in the database could not be reached, so no request was sent: {reason}"
    )]
    QuotaUnavailable { api: &'static str, reason: String },
}

/// The database row this API's credential is paced through, for every machine.
#[derive(Debug)]
struct SharedQuota {
    quotas: SharedState,
    /// The API's name and a hash of the credential (never the credential).
    key: String,
}

/// One API's quota, shared by every scan in the process.
pub struct ApiLimiter {
    api: &'static str,
    rate: RateLimit,
    limiter: DefaultDirectRateLimiter,
    clock: DefaultClock,
    retry: RetryPolicy,
    /// No paced request starts before this (set from `Retry-After` / `X-Ratelimit-Reset`).
    paused_until: Mutex<Option<Instant>>,
    /// Set with PostgreSQL: the quota is the database row's, not this process's.
    shared: std::sync::OnceLock<SharedQuota>,
    waited_nanos: AtomicU64,
    waits: AtomicU64,
}

impl std::fmt::Debug for ApiLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiLimiter")
            .field("api", &self.api)
            .field("rate", &self.rate)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl ApiLimiter {
    pub fn new(api: &'static str, rate: RateLimit, retry: RetryPolicy) -> Self {
        let clock = DefaultClock::default();
        let quota = Quota::with_period(rate.spacing())
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(NonZeroU32::MIN);
        ApiLimiter {
            api,
            rate,
            limiter: RateLimiter::direct_with_clock(quota, clock.clone()),
            clock,
            retry,
            paused_until: Mutex::new(None),
            shared: std::sync::OnceLock::new(),
            waited_nanos: AtomicU64::new(0),
            waits: AtomicU64::new(0),
        }
    }

    pub fn api(&self) -> &'static str {
        self.api
    }

    pub fn rate(&self) -> RateLimit {
        self.rate
    }

    /// Total time callers spent waiting for their turn (quota and server-imposed pauses).
    pub fn waited(&self) -> Duration {
        Duration::from_nanos(self.waited_nanos.load(Ordering::Relaxed))
    }

    /// How many requests had to wait for their turn.
    pub fn waits(&self) -> u64 {
        self.waits.load(Ordering::Relaxed)
    }

    /// Paces this API through the shared quota row of `credential` from now on (once).
    pub fn share(&self, quotas: SharedState, credential: &str) {
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(credential.as_bytes());
        let hash: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        let key = format!("{}:{hash}", self.api.to_ascii_lowercase());
        let _ = self.shared.set(SharedQuota { quotas, key });
    }

    /// Waits for this API's next free slot: the shared row's with PostgreSQL, else this
    /// process's.
    pub async fn acquire(&self) -> Result<(), ApiError> {
        let start = Instant::now();
        match self.shared.get() {
            Some(shared) => loop {
                match shared
                    .quotas
                    .take_quota(&shared.key, self.rate.spacing())
                    .await
                {
                    Ok(None) => break,
                    Ok(Some(wait)) => tokio::time::sleep(wait.min(MAX_PAUSE)).await,
                    Err(e) => {
                        return Err(ApiError::QuotaUnavailable {
                            api: self.api,
                            reason: e.to_string(),
                        });
                    }
                }
            },
            None => loop {
                let paused = *self.paused_until.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(until) = paused
                    && until > Instant::now()
                {
                    tokio::time::sleep_until(until).await;
                    continue;
                }
                match self.limiter.check() {
                    Ok(()) => break,
                    Err(not_until) => {
                        tokio::time::sleep(not_until.wait_time_from(self.clock.now())).await;
                    }
                }
            },
        }
        let waited = start.elapsed();
        crate::ops::telemetry::limiter_wait(self.api, waited);
        if waited >= Duration::from_millis(1) {
            self.waits.fetch_add(1, Ordering::Relaxed);
            self.waited_nanos.fetch_add(
                u64::try_from(waited.as_nanos()).unwrap_or(u64::MAX),
                Ordering::Relaxed,
            );
        }
        Ok(())
    }

    /// Holds every paced request back until `pause` from now (never shortens a longer pause),
    /// on every machine when the quota is shared.
    async fn pause_for(&self, pause: Duration) {
        let pause = pause.min(MAX_PAUSE);
        if let Some(shared) = self.shared.get()
            && let Err(e) = shared.quotas.pause_quota(&shared.key, pause).await
        {
            tracing::error!(api = self.api, error = %e, "could not pause the shared quota");
        }
        let until = Instant::now() + pause;
        let mut paused = self.paused_until.lock().unwrap_or_else(|e| e.into_inner());
        if paused.is_none_or(|p| p < until) {
            *paused = Some(until);
        }
    }

    /// Sends the request `build` makes, retrying 429, 5xx and network failures. Any other answer
    /// (2xx, 3xx, 4xx other than 429) is returned for the caller to interpret. `build` is called
    /// once per attempt.
    pub async fn send(
        &self,
        pacing: Pacing,
        build: impl Fn() -> RequestBuilder,
    ) -> Result<Response, ApiError> {
        let max = self.retry.max_attempts.max(1);
        let mut attempt = 0;
        loop {
            attempt += 1;
            if pacing == Pacing::Paced {
                self.acquire().await?;
            }
            let failure = match build().send().await {
                Ok(response) => {
                    let status = response.status();
                    crate::ops::telemetry::outbound_request(self.api, status.as_u16().to_string());
                    let retry_after = retry_after(response.headers());
                    if let Some(reset) = ratelimit_exhausted(response.headers()) {
                        tracing::debug!(
                            api = self.api,
                            reset_s = reset.as_secs_f64(),
                            "quota used up: pausing until it resets"
                        );
                        self.pause_for(reset).await;
                    }
                    if !(status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()) {
                        return Ok(response);
                    }
                    if let Some(pause) = retry_after {
                        self.pause_for(pause).await;
                    }
                    if attempt >= max {
                        return Err(ApiError::GaveUp {
                            api: self.api,
                            status,
                            attempts: attempt,
                        });
                    }
                    tracing::warn!(api = self.api, %status, attempt, "retrying");
                    retry_after
                }
                Err(e) => {
                    crate::ops::telemetry::outbound_request(self.api, "error".into());
                    let reason = describe(&e);
                    if attempt >= max {
                        return Err(ApiError::Unreachable {
                            api: self.api,
                            attempts: attempt,
                            reason,
                        });
                    }
                    tracing::warn!(api = self.api, error = %reason, attempt, "retrying");
                    None
                }
            };
            // A paced retry also waits out the pause in `acquire`; an unpaced one sleeps it here.
            let delay = match failure {
                Some(pause) if pacing == Pacing::Unpaced => pause.min(MAX_PAUSE),
                Some(_) => Duration::ZERO,
                None => self.retry.backoff(attempt),
            };
            tokio::time::sleep(delay).await;
        }
    }
}

/// The process-wide limiters, one per API.
#[derive(Debug, Clone)]
pub struct Limits {
    pub reddit: Arc<ApiLimiter>,
    pub perspective: Arc<ApiLimiter>,
    pub openai: Arc<ApiLimiter>,
}

impl Limits {
    pub fn from_config(config: &Config) -> Self {
        let reddit = config.reddit.as_ref().map(|r| r.rate_per_min).unwrap_or(60);
        let qps = config.perspective.as_ref().map(|p| p.qps).unwrap_or(1.0);
        let openai = config.openai.as_ref().map(|o| o.rate_per_min).unwrap_or(60);
        Limits {
            reddit: Arc::new(ApiLimiter::new(
                "Reddit",
                RateLimit::per_minute(reddit),
                RetryPolicy::default(),
            )),
            perspective: Arc::new(ApiLimiter::new(
                "Perspective",
                RateLimit::per_second(qps),
                RetryPolicy::default(),
            )),
            openai: Arc::new(ApiLimiter::new(
                "OpenAI",
                RateLimit::per_minute(openai),
                RetryPolicy::default(),
            )),
        }
    }
}

impl Limits {
    /// Paces every API through its credential's row in the database, for every machine sharing
    /// it (PostgreSQL). APIs without a credential configured are left alone (never called).
    pub fn share(&self, quotas: &SharedState, config: &Config) {
        if let Some(r) = &config.reddit {
            self.reddit.share(quotas.clone(), r.client_id.as_str());
        }
        if let Some(p) = &config.perspective {
            self.perspective.share(quotas.clone(), p.api_key.expose());
        }
        if let Some(o) = &config.openai {
            self.openai.share(quotas.clone(), o.api_key.expose());
        }
    }
}

/// The HTTP client every API shares (one connection pool), with a timeout on every request.
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .user_agent(concat!("account-scanner/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| describe(&e))
}

/// `Retry-After` as delay-seconds or an HTTP date.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let raw = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = raw.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(1e6)));
    }
    let when = httpdate::parse_http_date(raw).ok()?;
    Some(
        when.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// Reddit's `X-Ratelimit-Remaining` below one request: how long until `X-Ratelimit-Reset`.
pub fn ratelimit_exhausted(headers: &HeaderMap) -> Option<Duration> {
    let number = |name: &str| -> Option<f64> {
        headers
            .get(name)?
            .to_str()
            .ok()?
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
    };
    let remaining = number("x-ratelimit-remaining")?;
    if remaining >= 1.0 {
        return None;
    }
    let reset = number("x-ratelimit-reset")?.clamp(0.0, MAX_PAUSE.as_secs_f64());
    Some(Duration::from_secs_f64(reset))
}

/// A network error in words, without the URL (a URL may carry a name a log should not need).
pub fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return "the request timed out".to_string();
    }
    let mut text = if e.is_connect() {
        "the connection failed".to_string()
    } else {
        "the request failed".to_string()
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// An API's JSON answer, or why not in words a user can act on: an empty body and an HTML page
/// (outage, maintenance and proxy pages come as HTML, sometimes with 200) are named as such
/// instead of a parser's column number. Never panics.
pub fn decode_json<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, String> {
    let start = bytes.iter().position(|b| !b.is_ascii_whitespace());
    let Some(start) = start else {
        return Err("the answer was empty".to_string());
    };
    if bytes[start] == b'<' {
        return Err(match html_title(&bytes[start..]) {
            Some(title) => format!("it is an HTML page, not JSON (title: {title:?})"),
            None => "it is an HTML page, not JSON".to_string(),
        });
    }
    serde_json::from_slice(bytes).map_err(|e| format!("it is not the JSON expected: {e}"))
}

/// The `<title>` of an HTML page, trimmed to one short line.
fn html_title(html: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(&html[..html.len().min(64 * 1024)]);
    let lower = text.to_ascii_lowercase();
    let open = lower.find("<title")?;
    let body_start = open + lower[open..].find('>')? + 1;
    let len = lower[body_start..].find("</title")?;
    let title: String = text[body_start..body_start + len]
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .filter(|c| !c.is_control())
        .take(80)
        .collect();
    (!title.is_empty()).then_some(title)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).expect("header value"));
        }
        h
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(
            retry_after(&headers(&[("retry-after", "3")])),
            Some(Duration::from_secs(3))
        );
        let in_ten = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(10));
        let d = retry_after(&headers(&[("retry-after", &in_ten)])).expect("a date");
        assert!(
            d > Duration::from_secs(8) && d <= Duration::from_secs(10),
            "{d:?}"
        );
        let past = httpdate::fmt_http_date(SystemTime::now() - Duration::from_secs(10));
        assert_eq!(
            retry_after(&headers(&[("retry-after", &past)])),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after(&headers(&[("retry-after", "soon")])), None);
        assert_eq!(retry_after(&headers(&[])), None);
    }

    #[test]
    fn reddit_ratelimit_headers_pause_only_when_used_up() {
        let used_up = headers(&[
            ("x-ratelimit-remaining", "0.0"),
            ("x-ratelimit-reset", "2.5"),
        ]);
        assert_eq!(
            ratelimit_exhausted(&used_up),
            Some(Duration::from_millis(2500))
        );
        let left = headers(&[
            ("x-ratelimit-remaining", "12.0"),
            ("x-ratelimit-reset", "30"),
        ]);
        assert_eq!(ratelimit_exhausted(&left), None);
        assert_eq!(ratelimit_exhausted(&headers(&[])), None);
    }

    #[test]
    fn backoff_grows_and_stays_bounded() {
        let policy = RetryPolicy::default();
        for failures in 1..=10 {
            let full = policy
                .base_delay
                .saturating_mul(1 << (failures - 1))
                .min(policy.max_delay);
            let d = policy.backoff(failures);
            assert!(d >= full / 2 && d <= full, "{failures}: {d:?} vs {full:?}");
        }
    }

    #[test]
    fn spacing_has_a_small_safety_margin() {
        assert_eq!(
            RateLimit::per_second(5.0).spacing(),
            Duration::from_millis(207)
        );
        assert_eq!(
            RateLimit::per_minute(60).spacing(),
            Duration::from_millis(1015)
        );
    }

    #[tokio::test]
    async fn acquire_spaces_requests_and_counts_the_wait() {
        let limiter = ApiLimiter::new(
            "Test",
            RateLimit {
                requests: 20,
                per: Duration::from_secs(1),
            },
            RetryPolicy::default(),
        );
        let start = Instant::now();
        for _ in 0..5 {
            limiter.acquire().await.expect("in process");
        }
        let elapsed = start.elapsed();
        // Four gaps of 50.5 + 5 ms after the free first slot.
        assert!(elapsed >= Duration::from_millis(220), "{elapsed:?}");
        assert_eq!(limiter.waits(), 4);
        assert!(limiter.waited() >= Duration::from_millis(200));
    }

    #[tokio::test]
    async fn a_pause_holds_every_paced_request() {
        let limiter = ApiLimiter::new(
            "Test",
            RateLimit::per_second(1000.0),
            RetryPolicy::default(),
        );
        limiter.acquire().await.expect("in process");
        limiter.pause_for(Duration::from_millis(300)).await;
        let start = Instant::now();
        limiter.acquire().await.expect("in process");
        assert!(start.elapsed() >= Duration::from_millis(290));
    }
}
