//! A fake Reddit speaking the documented wire format (ARCHITECTURE.md section 4): the token
//! endpoint, `about`, `comments` and `submitted`, with configurable accounts, latency and
//! failures. Serves both the auth base and the API base (they are the same server here).
//!
//! It fails loudly: any request it does not expect (unknown path or method, missing
//! credentials, a listing without `limit=100&sort=new&raw_json=1`, a listing of a suspended
//! account, no User-Agent) is answered with 599 and recorded; [`FakeReddit::assert_no_unexpected`]
//! panics listing them.
#![allow(dead_code)]

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::fake_server::{self, Recorded, Server, UNEXPECTED_STATUS};

pub const CLIENT_ID: &str = "fake-client-id";
pub const CLIENT_SECRET: &str = "fake-client-secret-0451";
pub const USER_AGENT: &str = "linux:account-scanner-tests:v0.1.0 (by /u/tester)";
/// Newest item's `created_utc`; each further item is a minute older.
pub const NEWEST: f64 = 1_750_000_000.0;

#[derive(Debug, Clone)]
pub struct FakeItem {
    pub subreddit: String,
    /// A comment's body or a post's selftext.
    pub text: String,
    /// A post's title, or the title of the post a comment is under.
    pub title: String,
    pub score: i64,
}

impl FakeItem {
    pub fn new(subreddit: &str, text: impl Into<String>) -> Self {
        FakeItem {
            subreddit: subreddit.to_string(),
            text: text.into(),
            title: "A thread".to_string(),
            score: 1,
        }
    }

    pub fn titled(mut self, title: &str) -> Self {
        self.title = title.to_string();
        self
    }
}

#[derive(Debug, Clone)]
pub struct FakeAccount {
    pub name: String,
    pub suspended: bool,
    pub created_utc: f64,
    pub link_karma: i64,
    pub comment_karma: i64,
    pub verified: bool,
    pub has_verified_email: bool,
    pub comments: Vec<FakeItem>,
    pub posts: Vec<FakeItem>,
}

impl FakeAccount {
    pub fn new(name: &str) -> Self {
        FakeAccount {
            name: name.to_string(),
            suspended: false,
            created_utc: 1_420_070_400.0, // 2015-01-01
            link_karma: 120,
            comment_karma: 3400,
            verified: true,
            has_verified_email: true,
            comments: Vec::new(),
            posts: Vec::new(),
        }
    }

    pub fn suspended(name: &str) -> Self {
        FakeAccount {
            suspended: true,
            ..FakeAccount::new(name)
        }
    }

    /// `n` comments; `text(i)` gives the body of the i-th newest.
    pub fn with_comments(mut self, n: usize, text: impl Fn(usize) -> String) -> Self {
        self.comments = (0..n)
            .map(|i| FakeItem::new(SUBREDDITS[i % SUBREDDITS.len()], text(i)))
            .collect();
        self
    }

    pub fn with_posts(mut self, n: usize, text: impl Fn(usize) -> String) -> Self {
        self.posts = (0..n)
            .map(|i| {
                FakeItem::new(SUBREDDITS[(i + 1) % SUBREDDITS.len()], text(i))
                    .titled(&format!("Post number {i}"))
            })
            .collect();
        self
    }
}

/// Subreddits the generated items are spread over (rust gets the most).
pub const SUBREDDITS: [&str; 4] = ["rust", "pics", "rust", "AskReddit"];

#[derive(Debug, Clone)]
pub struct FakeRedditConfig {
    pub accounts: Vec<FakeAccount>,
    /// Added to every response.
    pub latency: Duration,
    pub token_expires_in: u64,
    /// Most children per page, whatever `limit` asks (Reddit: 100).
    pub page_size: usize,
}

impl Default for FakeRedditConfig {
    fn default() -> Self {
        FakeRedditConfig {
            accounts: Vec::new(),
            latency: Duration::ZERO,
            token_expires_in: 86_400,
            page_size: 100,
        }
    }
}

/// A way for the fake to misbehave (the fault drills).
#[derive(Debug, Clone)]
pub enum Fault {
    /// This status with Reddit's JSON error body, and `Retry-After` when given.
    Status(u16, Option<u64>),
    /// This status with an HTML page, as Reddit's outage pages come (even with 200).
    Html(u16),
    /// 200 with a JSON body cut off halfway.
    Malformed,
    /// No answer for this long (past the client's timeout), then a normal one.
    Hang(Duration),
    /// 200 with a listing that ends only after this many bytes of padding (streamed, see
    /// [`fake_server::huge_json`]): valid JSON, an empty last page, if read to its end.
    Huge(u64),
}

/// The title of the fake's HTML error page.
pub const HTML_TITLE: &str = "Reddit - servers are busy";

#[derive(Debug, Default)]
struct Controls {
    /// API requests after the first `.0` meet this fault.
    api_fault: Option<(usize, Fault)>,
    /// API requests seen so far.
    api_seen: usize,
    /// Every token request meets this fault.
    token_fault: Option<Fault>,
    /// Every API request (not token requests) answers this status.
    fail_always: Option<u16>,
    /// The next API requests answer (status, Retry-After seconds).
    fail_next: Vec<(u16, Option<u64>)>,
    /// The next API response says the quota is used up, resetting in this many seconds.
    exhaust_once: Option<f64>,
    tokens: HashSet<String>,
    issued: usize,
    /// Every API request answers 401, whatever its token.
    reject_tokens: bool,
}

type Shared = fake_server::Shared<FakeRedditConfig, Controls>;

pub struct FakeReddit {
    server: Server,
    shared: Arc<Shared>,
}

impl FakeReddit {
    pub fn start(cfg: FakeRedditConfig) -> FakeReddit {
        let shared = Shared::new(cfg);
        let app = Router::new().fallback(handle).with_state(shared.clone());
        FakeReddit {
            server: Server::start("fake-reddit", app),
            shared,
        }
    }

    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// Environment for the binary: credentials plus both bases pointing here.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("REDDIT_CLIENT_ID", CLIENT_ID.to_string()),
            ("REDDIT_CLIENT_SECRET", CLIENT_SECRET.to_string()),
            ("REDDIT_USER_AGENT", USER_AGENT.to_string()),
            ("REDDIT_AUTH_BASE", self.base_url()),
            ("REDDIT_API_BASE", self.base_url()),
        ]
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.log.lock().clone()
    }

    pub fn token_requests(&self) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.path == "/api/v1/access_token")
            .collect()
    }

    pub fn api_requests(&self) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.path.starts_with("/user/"))
            .collect()
    }

    pub fn assert_no_unexpected(&self) {
        let bad: Vec<String> = self
            .requests()
            .into_iter()
            .filter_map(|r| {
                r.unexpected
                    .map(|why| format!("{} {} {:?}: {why}", r.method, r.path, r.query))
            })
            .collect();
        assert!(
            bad.is_empty(),
            "fake Reddit got unexpected requests:\n{}",
            bad.join("\n")
        );
    }

    /// Every API request answers `status` from now on (`None` to stop).
    pub fn fail_always(&self, status: Option<u16>) {
        self.shared.controls().fail_always = status;
    }

    /// API requests after the first `after` meet `fault` (`None` to stop).
    pub fn fault_api(&self, after: usize, fault: Option<Fault>) {
        let mut c = self.shared.controls();
        c.api_fault = fault.map(|f| (after, f));
        c.api_seen = 0;
    }

    /// Every token request meets `fault` (`None` to stop).
    pub fn fault_token(&self, fault: Option<Fault>) {
        self.shared.controls().token_fault = fault;
    }

    /// The next API request answers `status`, with `Retry-After` when given.
    pub fn fail_next(&self, status: u16, retry_after: Option<u64>) {
        self.shared.controls().fail_next.push((status, retry_after));
    }

    /// The next API response reports `X-Ratelimit-Remaining: 0` and this reset.
    pub fn exhaust_quota_once(&self, reset_secs: f64) {
        self.shared.controls().exhaust_once = Some(reset_secs);
    }

    /// Every API request answers 401 from now on, even with a fresh token.
    pub fn reject_tokens(&self) {
        self.shared.controls().reject_tokens = true;
    }

    /// Every token issued so far stops working (the next API call gets a 401).
    pub fn revoke_tokens(&self) {
        self.shared.controls().tokens.clear();
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let when = Instant::now();
    if !shared.cfg.latency.is_zero() {
        tokio::time::sleep(shared.cfg.latency).await;
    }
    let mut record = Recorded {
        method: method.to_string(),
        path: uri.path().to_string(),
        query: fake_server::parse_query(uri.query()),
        headers: fake_server::header_pairs(&headers),
        body: String::from_utf8_lossy(&body).into_owned(),
        when,
        status: 0,
        unexpected: None,
    };
    let fault = {
        let mut c = shared.controls();
        if record.path == "/api/v1/access_token" {
            c.token_fault.clone()
        } else if record.path.starts_with("/user/") {
            c.api_seen += 1;
            let seen = c.api_seen;
            c.api_fault
                .as_ref()
                .filter(|(after, _)| seen > *after)
                .map(|(_, f)| f.clone())
        } else {
            None
        }
    };
    let faulted = match fault {
        Some(Fault::Hang(d)) => {
            tokio::time::sleep(d).await;
            None
        }
        Some(Fault::Status(status, retry_after)) => Some(status_response(status, retry_after)),
        Some(Fault::Html(status)) => Some(
            (
                StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
                axum::response::Html(format!(
                    "<!doctype html>\n<html><head><title>{HTML_TITLE}</title></head>\n<body><h1>all of our servers are busy right now</h1></body></html>\n"
                )),
            )
                .into_response(),
        ),
        Some(Fault::Malformed) => Some(
            (
                StatusCode::OK,
                [("content-type", "application/json; charset=UTF-8")],
                r#"{"kind": "Listing", "data": {"after": "t1_x", "children": [{"kind": "t1", "da"#,
            )
                .into_response(),
        ),
        Some(Fault::Huge(padding)) => Some(fake_server::huge_json(
            r#"{"kind": "Listing", "data": {"after": null, "children": []"#,
            padding,
            "}}",
        )),
        None => None,
    };
    let response = match faulted.map(Ok).unwrap_or_else(|| answer(&shared, &record)) {
        Ok(r) => r,
        Err(why) => {
            record.unexpected = Some(why.clone());
            (
                StatusCode::from_u16(UNEXPECTED_STATUS).expect("599 is a status"),
                format!("fake Reddit did not expect this request: {why}"),
            )
                .into_response()
        }
    };
    record.status = response.status().as_u16();
    shared.log.push(record);
    response
}

fn json_response(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

fn answer(shared: &Shared, r: &Recorded) -> Result<Response, String> {
    match r.header("user-agent") {
        Some(ua) if ua == USER_AGENT => {}
        other => return Err(format!("User-Agent {other:?} is not REDDIT_USER_AGENT")),
    }
    if r.path == "/api/v1/access_token" {
        return token(shared, r);
    }
    let rest = r
        .path
        .strip_prefix("/user/")
        .ok_or_else(|| "unknown path".to_string())?;
    let (name, what) = rest
        .split_once('/')
        .ok_or_else(|| "unknown path".to_string())?;
    if r.method != "GET" {
        return Err("the API is read with GET".into());
    }
    let token = r
        .header("authorization")
        .and_then(|a| a.strip_prefix("Bearer "))
        .ok_or_else(|| "no bearer token".to_string())?;
    let mut c = shared.controls();
    if c.reject_tokens || !c.tokens.contains(token) {
        return Ok((
            StatusCode::UNAUTHORIZED,
            [(
                "www-authenticate",
                "Bearer realm=\"reddit\", error=\"invalid_token\"",
            )],
            axum::response::Html("<html><body>401 Unauthorized</body></html>"),
        )
            .into_response());
    }
    if let Some(status) = c.fail_always {
        return Ok(status_response(status, None));
    }
    if !c.fail_next.is_empty() {
        let (status, retry_after) = c.fail_next.remove(0);
        return Ok(status_response(status, retry_after));
    }
    let exhaust = c.exhaust_once.take();
    drop(c);

    let account = shared
        .cfg
        .accounts
        .iter()
        .find(|a| a.name.eq_ignore_ascii_case(name));
    let raw_json = r.param("raw_json") == Some("1");
    let mut response = match what {
        "about" => {
            check_params(r, &["raw_json"])?;
            match account {
                None => not_found(),
                Some(a) if a.suspended => json_response(
                    StatusCode::OK,
                    json!({"kind": "t2", "data": {"is_suspended": true, "name": a.name}}),
                ),
                Some(a) => json_response(
                    StatusCode::OK,
                    json!({"kind": "t2", "data": {
                        "name": a.name,
                        "created_utc": a.created_utc,
                        "link_karma": a.link_karma,
                        "comment_karma": a.comment_karma,
                        "total_karma": a.link_karma + a.comment_karma,
                        "verified": a.verified,
                        "has_verified_email": a.has_verified_email,
                        "is_gold": false,
                        "icon_img": "https://example.invalid/icon.png",
                        "subreddit": {"display_name": format!("u_{}", a.name)}
                    }}),
                ),
            }
        }
        "comments" | "submitted" => {
            check_params(r, &["limit", "sort", "raw_json", "after"])?;
            if r.param("limit") != Some("100") || r.param("sort") != Some("new") || !raw_json {
                return Err("listings are asked with limit=100&sort=new&raw_json=1".into());
            }
            match account {
                None => not_found(),
                Some(a) if a.suspended => {
                    return Err("the listing of a suspended account was asked".into());
                }
                Some(a) => listing(shared, a, what == "comments", r.param("after"), raw_json)?,
            }
        }
        _ => return Err("unknown path".into()),
    };
    let h = response.headers_mut();
    let (remaining, reset) = match exhaust {
        Some(reset) => ("0.0".to_string(), format!("{reset}")),
        None => ("95.0".to_string(), "300".to_string()),
    };
    h.insert("x-ratelimit-used", "5".parse().expect("header"));
    h.insert("x-ratelimit-remaining", remaining.parse().expect("header"));
    h.insert("x-ratelimit-reset", reset.parse().expect("header"));
    Ok(response)
}

fn check_params(r: &Recorded, allowed: &[&str]) -> Result<(), String> {
    match r.query.iter().find(|(k, _)| !allowed.contains(&k.as_str())) {
        Some((k, _)) => Err(format!("unexpected query parameter {k}")),
        None => Ok(()),
    }
}

fn not_found() -> Response {
    json_response(
        StatusCode::NOT_FOUND,
        json!({"message": "Not Found", "error": 404}),
    )
}

fn status_response(status: u16, retry_after: Option<u64>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body =
        json!({"message": status.canonical_reason().unwrap_or("error"), "error": status.as_u16()});
    let mut response = json_response(status, body);
    if let Some(secs) = retry_after {
        response.headers_mut().insert(
            "retry-after",
            secs.to_string().parse().expect("header value"),
        );
    }
    response
}

fn token(shared: &Shared, r: &Recorded) -> Result<Response, String> {
    if r.method != "POST" {
        return Err("the token is asked with POST".into());
    }
    if !r.query.is_empty() {
        return Err("the token request carries no query".into());
    }
    let basic = r
        .header("authorization")
        .and_then(|a| a.strip_prefix("Basic "))
        .ok_or_else(|| "the token request has no Basic credentials".to_string())?;
    if r.body != "grant_type=client_credentials" {
        return Err(format!("unexpected token request body {:?}", r.body));
    }
    let expected = fake_server::base64(format!("{CLIENT_ID}:{CLIENT_SECRET}").as_bytes());
    if basic != expected {
        return Ok(json_response(
            StatusCode::UNAUTHORIZED,
            json!({"message": "Unauthorized", "error": 401}),
        ));
    }
    let mut c = shared.controls();
    c.issued += 1;
    let token = format!("fake-token-{}", c.issued);
    c.tokens.insert(token.clone());
    Ok(json_response(
        StatusCode::OK,
        json!({
            "access_token": token,
            "token_type": "bearer",
            "expires_in": shared.cfg.token_expires_in,
            "scope": "*",
        }),
    ))
}

/// Reddit escapes `&`, `<` and `>` in bodies unless `raw_json=1`.
fn escaped(text: &str, raw_json: bool) -> String {
    if raw_json {
        text.to_string()
    } else {
        text.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    }
}

fn listing(
    shared: &Shared,
    a: &FakeAccount,
    comments: bool,
    after: Option<&str>,
    raw_json: bool,
) -> Result<Response, String> {
    let (items, prefix) = if comments {
        (&a.comments, "t1")
    } else {
        (&a.posts, "t3")
    };
    let id = |i: usize| format!("{}{i:04}", if comments { "c" } else { "p" });
    let start = match after {
        None => 0,
        Some(after) => {
            (0..items.len())
                .find(|&i| format!("{prefix}_{}", id(i)) == after)
                .ok_or_else(|| format!("`after` {after} is not an item of this listing"))?
                + 1
        }
    };
    let end = (start + shared.cfg.page_size.min(100)).min(items.len());
    let children: Vec<Value> = (start..end)
        .map(|i| {
            let it = &items[i];
            let created = NEWEST - 60.0 * i as f64;
            let permalink = format!(
                "/r/{}/comments/{}/a_thread/{}",
                it.subreddit,
                id(i),
                if comments { id(i) } else { String::new() }
            );
            if comments {
                json!({"kind": "t1", "data": {
                    "id": id(i),
                    "name": format!("t1_{}", id(i)),
                    "author": a.name,
                    "body": escaped(&it.text, raw_json),
                    "subreddit": it.subreddit,
                    "link_title": it.title,
                    "permalink": permalink,
                    "score": it.score,
                    "created_utc": created,
                    "over_18": false,
                    "edited": if i == 0 { json!(created + 30.0) } else { json!(false) },
                    "gilded": 0,
                    "all_awardings": []
                }})
            } else {
                json!({"kind": "t3", "data": {
                    "id": id(i),
                    "name": format!("t3_{}", id(i)),
                    "author": a.name,
                    "title": it.title,
                    "selftext": escaped(&it.text, raw_json),
                    "subreddit": it.subreddit,
                    "permalink": permalink,
                    "url": format!("https://www.reddit.com{permalink}"),
                    "is_self": true,
                    "num_comments": 3,
                    "score": it.score,
                    "created_utc": created,
                    "over_18": false,
                    "edited": false
                }})
            }
        })
        .collect();
    let next = (end < items.len() && end > start).then(|| format!("{prefix}_{}", id(end - 1)));
    Ok(json_response(
        StatusCode::OK,
        json!({"kind": "Listing", "data": {"after": next, "dist": children.len(), "children": children, "before": null}}),
    ))
}
