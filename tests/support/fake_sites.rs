//! A fake "social sites" HTTP server for driving the real Sherlock CLI in
//! tests, plus a site list in Sherlock's `data.json` format pointing at it.
//!
//! Each fixed site provokes one specific Sherlock outcome (see
//! [`FakeSites::site_names`]); optional generated "bulk" sites with random
//! latency are meant for concurrency/throughput benchmarks.
//!
//! The server runs on its own thread and runtime (`fake_server::Server`), so it
//! can be started from plain `#[test]` functions as well as from inside
//! `#[tokio::test]`.
#![allow(dead_code)]

use std::net::TcpListener as StdTcpListener;
use std::path::Path as FsPath;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use rand::Rng;
use serde_json::{Value, json};

use super::fake_server::Server;

/// The username every site lists as `username_claimed`.
pub const CLAIMED_USER: &str = "alice";
/// The `errorMsg` of the message-based sites.
pub const ERROR_MSG: &str = "Sorry, no such user";
/// One of the WAF fingerprints hard-coded in Sherlock (Cloudflare error page).
pub const WAF_FINGERPRINT: &str = r#"<span id="challenge-error-text">"#;

/// Names of the fixed sites, in site-list order.
const FIXED_SITES: [&str; 7] = [
    "StatusHit",
    "MessageMiss",
    "RedirectSite",
    "HangSite",
    "WafSite",
    "RegexSite",
    "DeadSite",
];

#[derive(Debug, Clone)]
pub struct FakeSitesConfig {
    /// Usernames that "exist" on the sites.
    pub existing_users: Vec<String>,
    /// Extra generated sites "Bulk0000", "Bulk0001", ... for benchmarks.
    pub bulk_sites: usize,
    /// Uniform random latency range (inclusive, milliseconds) applied to
    /// every response of the bulk sites.
    pub latency_ms: (u64, u64),
    /// How long HangSite sleeps before answering.
    pub hang_secs: u64,
    /// Adds the catch-all sites (see [`CATCH_ALL_SITES`]) after the fixed ones.
    pub catch_all_sites: bool,
}

/// Sites that answer "profile exists" for every name: a plain 200, a redirect that ends on a
/// 200 page, and a message site whose error text never appears.
pub const CATCH_ALL_SITES: [&str; 3] = ["CatchAll", "CatchAllRedirect", "SoftMessage"];

impl Default for FakeSitesConfig {
    fn default() -> Self {
        FakeSitesConfig {
            existing_users: vec![CLAIMED_USER.into()],
            bulk_sites: 0,
            latency_ms: (0, 0),
            hang_secs: 3600,
            catch_all_sites: false,
        }
    }
}

/// One request seen by the server (any path, including unknown ones).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// HTTP method, e.g. "GET" or "HEAD".
    pub method: String,
    /// Request path as sent (still percent-encoded, no query string).
    pub path: String,
    /// When the request arrived.
    pub when: Instant,
}

struct Shared {
    existing_users: Vec<String>,
    bulk_sites: usize,
    latency_ms: (u64, u64),
    hang: Duration,
    catch_all_sites: bool,
    requests: Mutex<Vec<RecordedRequest>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

impl Shared {
    fn exists(&self, user: &str) -> bool {
        self.existing_users.iter().any(|u| u == user)
    }

    fn requests(&self) -> MutexGuard<'_, Vec<RecordedRequest>> {
        self.requests.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running fake-sites server; stopped when dropped.
pub struct FakeSites {
    server: Server,
    dead_port: u16,
    shared: Arc<Shared>,
}

impl FakeSites {
    /// Binds 127.0.0.1:0, starts serving on a dedicated thread and returns
    /// once the listener is accepting. Works inside or outside a tokio runtime.
    pub fn start(cfg: FakeSitesConfig) -> FakeSites {
        let (lo, hi) = cfg.latency_ms;
        let shared = Arc::new(Shared {
            existing_users: cfg.existing_users,
            bulk_sites: cfg.bulk_sites,
            latency_ms: (lo.min(hi), lo.max(hi)),
            hang: Duration::from_secs(cfg.hang_secs),
            catch_all_sites: cfg.catch_all_sites,
            requests: Mutex::new(Vec::new()),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
        });

        // A port that nothing listens on: bind it, note it, release it.
        let dead_port = StdTcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("fake_sites: bind dead port")
            .port();

        let server = Server::start("fake-sites", router(shared.clone()));
        FakeSites {
            server,
            dead_port,
            shared,
        }
    }

    /// "http://127.0.0.1:PORT" (no trailing slash).
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// The port DeadSite points at (nothing listens there).
    pub fn dead_port(&self) -> u16 {
        self.dead_port
    }

    /// The site list as (name, entry) pairs, in site-list order.
    pub fn site_entries(&self) -> Vec<(String, Value)> {
        let base = self.base_url();
        let main = format!("{base}/");
        let entry = |error_type: &str, url: String| {
            json!({
                "errorType": error_type,
                "url": url,
                "urlMain": main,
                "username_claimed": CLAIMED_USER,
            })
        };
        let with = |mut v: Value, key: &str, val: Value| {
            v[key] = val;
            v
        };

        let mut sites = vec![
            (
                "StatusHit".to_string(),
                entry("status_code", format!("{base}/status/{{}}")),
            ),
            (
                "MessageMiss".to_string(),
                with(
                    entry("message", format!("{base}/message/{{}}")),
                    "errorMsg",
                    json!(ERROR_MSG),
                ),
            ),
            (
                "RedirectSite".to_string(),
                with(
                    entry("response_url", format!("{base}/redirect/{{}}")),
                    "errorUrl",
                    json!(format!("{base}/redirect-landing")),
                ),
            ),
            (
                "HangSite".to_string(),
                entry("status_code", format!("{base}/hang/{{}}")),
            ),
            (
                "WafSite".to_string(),
                with(
                    entry("message", format!("{base}/waf/{{}}")),
                    "errorMsg",
                    json!(ERROR_MSG),
                ),
            ),
            (
                "RegexSite".to_string(),
                with(
                    entry("status_code", format!("{base}/regex/{{}}")),
                    "regexCheck",
                    json!("^[0-9]+$"),
                ),
            ),
            (
                "DeadSite".to_string(),
                entry(
                    "status_code",
                    format!("http://127.0.0.1:{}/{{}}", self.dead_port),
                ),
            ),
        ];
        debug_assert_eq!(sites.len(), FIXED_SITES.len());
        if self.shared.catch_all_sites {
            sites.push((
                "CatchAll".to_string(),
                entry("status_code", format!("{base}/any/{{}}")),
            ));
            sites.push((
                "CatchAllRedirect".to_string(),
                entry("status_code", format!("{base}/goto/{{}}")),
            ));
            sites.push((
                "SoftMessage".to_string(),
                with(
                    entry("message", format!("{base}/soft/{{}}")),
                    "errorMsg",
                    json!("This page does not exist"),
                ),
            ));
        }
        for i in 0..self.shared.bulk_sites {
            sites.push((
                format!("Bulk{i:04}"),
                entry("status_code", format!("{base}/bulk/{i}/{{}}")),
            ));
        }
        sites
    }

    /// The site list as a Sherlock data.json object ("$schema" omitted).
    ///
    /// NB: without serde_json's `preserve_order` feature the keys of this
    /// `Value` are sorted alphabetically; use [`FakeSites::site_entries`] or
    /// [`FakeSites::write_site_list`] when order matters (Sherlock queries and
    /// reports sites in file order).
    pub fn site_list(&self) -> Value {
        Value::Object(self.site_entries().into_iter().collect())
    }

    /// Writes the site list as JSON, sites in site-list order.
    pub fn write_site_list(&self, path: &FsPath) -> std::io::Result<()> {
        let mut out = String::from("{");
        for (i, (name, entry)) in self.site_entries().iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str("\n  ");
            out.push_str(&serde_json::to_string(name)?);
            out.push_str(": ");
            out.push_str(&serde_json::to_string(entry)?);
        }
        out.push_str("\n}\n");
        std::fs::write(path, out)
    }

    /// Every request seen so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.requests().clone()
    }

    /// Highest number of requests being handled at the same moment.
    pub fn max_in_flight(&self) -> usize {
        self.shared.max_in_flight.load(Ordering::SeqCst)
    }

    /// Names of the fixed (non-bulk) sites, in site-list order.
    pub fn site_names() -> Vec<&'static str> {
        FIXED_SITES.to_vec()
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/status/{user}", get(status_site))
        .route("/message/{user}", get(message_site))
        .route("/redirect/{user}", get(redirect_site))
        .route("/redirect-landing", get(redirect_landing))
        .route("/hang/{user}", get(hang_site))
        .route("/waf/{user}", get(waf_site))
        .route("/regex/{user}", get(status_site))
        .route("/bulk/{i}/{user}", get(bulk_site))
        .route("/any/{user}", get(profile_for_anyone))
        .route("/goto/{user}", get(redirect_to_welcome))
        .route("/welcome", get(redirect_landing))
        .route("/soft/{user}", get(redirect_landing))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(shared.clone(), track))
        .with_state(shared)
}

/// Decrements the in-flight counter even when the handler is cancelled.
struct InFlightGuard(Arc<Shared>);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn track(State(shared): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    shared.requests().push(RecordedRequest {
        method: req.method().as_str().to_string(),
        path: req.uri().path().to_string(),
        when: Instant::now(),
    });
    let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    shared.max_in_flight.fetch_max(now, Ordering::SeqCst);
    let _guard = InFlightGuard(shared);
    next.run(req).await
}

fn profile(user: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html><head><title>{user}</title></head>\
         <body><h1>Profile of {user}</h1></body></html>"
    ))
}

fn missing() -> Html<String> {
    Html(format!(
        "<!doctype html><html><head><title>Not found</title></head>\
         <body><p>{ERROR_MSG}</p></body></html>"
    ))
}

/// 200 + profile if the user exists, else 404.
fn by_status(shared: &Shared, user: &str) -> Response {
    if shared.exists(user) {
        profile(user).into_response()
    } else {
        (StatusCode::NOT_FOUND, missing()).into_response()
    }
}

async fn status_site(State(shared): State<Arc<Shared>>, Path(user): Path<String>) -> Response {
    by_status(&shared, &user)
}

async fn message_site(State(shared): State<Arc<Shared>>, Path(user): Path<String>) -> Response {
    if shared.exists(&user) {
        profile(&user).into_response()
    } else {
        missing().into_response()
    }
}

async fn redirect_site(State(shared): State<Arc<Shared>>, Path(user): Path<String>) -> Response {
    if shared.exists(&user) {
        profile(&user).into_response()
    } else {
        (StatusCode::FOUND, [(header::LOCATION, "/redirect-landing")]).into_response()
    }
}

async fn profile_for_anyone(Path(user): Path<String>) -> Html<String> {
    profile(&user)
}

async fn redirect_to_welcome() -> Response {
    (StatusCode::FOUND, [(header::LOCATION, "/welcome")]).into_response()
}

async fn redirect_landing() -> Html<&'static str> {
    Html("<!doctype html><html><body><p>Welcome! Search for people.</p></body></html>")
}

async fn hang_site(State(shared): State<Arc<Shared>>, Path(user): Path<String>) -> Response {
    tokio::time::sleep(shared.hang).await;
    by_status(&shared, &user)
}

async fn waf_site() -> Response {
    let body = format!(
        "<!doctype html><html><head><title>Just a moment...</title></head>\
         <body><div class=\"challenge\">{WAF_FINGERPRINT}Please enable cookies.</span></div>\
         </body></html>"
    );
    (StatusCode::FORBIDDEN, Html(body)).into_response()
}

async fn bulk_site(
    State(shared): State<Arc<Shared>>,
    Path((i, user)): Path<(String, String)>,
) -> Response {
    let Some(i) = i.parse::<usize>().ok().filter(|&i| i < shared.bulk_sites) else {
        return not_found().await;
    };
    let (lo, hi) = shared.latency_ms;
    if hi > 0 {
        let ms = rand::rng().random_range(lo..=hi);
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    if i % 10 == 0 && shared.exists(&user) {
        profile(&user).into_response()
    } else {
        (StatusCode::NOT_FOUND, missing()).into_response()
    }
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, Html("<p>no such page</p>")).into_response()
}
