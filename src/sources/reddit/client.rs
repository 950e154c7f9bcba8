//! A thin Reddit client on reqwest: app-only OAuth, `about`, and paged `comments`/`submitted`.
//!
//! One client serves every scan of the process: its token is cached until shortly before it
//! expires (one token request per day, not per scan), and its requests go through the shared
//! Reddit limiter. Account outcomes Reddit reports (suspended, not found) are results, not
//! errors. Models are lenient: unknown fields are ignored and missing ones default, because
//! Reddit adds and drops fields without notice.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use reqwest::header::{HeaderValue, USER_AGENT};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::config::{RedditConfig, Secret};
use crate::model::Username;
use crate::model::reddit::{AccountStatus, ItemKind, ItemScore, RedditAccount, RedditItem};
use crate::net::{
    ApiError, ApiLimiter, MAX_BODY_BYTES, Pacing, decode_json, read_body as read_capped,
};

/// Where permalinks point (Reddit gives them relative).
const WEB_BASE: &str = "https://www.reddit.com";
/// Reddit's page size ceiling; pages are always requested full.
pub const PAGE_LIMIT: usize = 100;
/// Listings end near 1000 items; a few pages more guards against an `after` that never ends.
const MAX_PAGES: usize = 12;

/// A name Reddit can have: 3-20 ASCII letters, digits, `_` or `-`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedditName(String);

impl RedditName {
    pub fn parse(username: &Username) -> Result<Self, InvalidRedditName> {
        let name = username.to_string();
        let len = name.chars().count();
        if !(3..=20).contains(&len) {
            return Err(InvalidRedditName {
                name,
                why: format!("it is {len} characters long"),
            });
        }
        if let Some(c) = name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
        {
            return Err(InvalidRedditName {
                name,
                why: format!("it contains {c:?}"),
            });
        }
        Ok(RedditName(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{name}` cannot be a Reddit username ({why}): Reddit names are 3-20 letters, digits, '_' or '-'"
)]
pub struct InvalidRedditName {
    pub name: String,
    pub why: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedditError {
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The token endpoint (`REDDIT_AUTH_BASE`) kept failing: said apart from the API's failures
    /// because the fix differs (a wrong base, Reddit's auth being down).
    #[error("no Reddit token (REDDIT_AUTH_BASE): {0}")]
    Token(ApiError),
    #[error(
        "Reddit refused the app's credentials ({status}): check REDDIT_CLIENT_ID and REDDIT_CLIENT_SECRET"
    )]
    Credentials { status: StatusCode },
    #[error("Reddit still answered 401 Unauthorized with a fresh token")]
    Unauthorized,
    #[error("Reddit answered {status} to the {what} request")]
    Unexpected {
        status: StatusCode,
        what: &'static str,
    },
    #[error("Reddit's answer to the {what} request could not be read: {reason}")]
    Decode { what: &'static str, reason: String },
    #[error("the HTTP client could not be set up: {0}")]
    Client(String),
}

/// Who the name belongs to.
#[derive(Debug, Clone, PartialEq)]
pub enum About {
    Found(RedditAccount),
    Suspended(RedditAccount),
    NotFound,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    Comments,
    Submitted,
}

impl Listing {
    fn path(self) -> &'static str {
        match self {
            Listing::Comments => "comments",
            Listing::Submitted => "submitted",
        }
    }
}

/// One page of a listing.
#[derive(Debug, Clone)]
pub struct Page {
    pub items: Vec<RedditItem>,
    pub after: Option<String>,
}

struct Token {
    value: Secret,
    refresh_at: Instant,
}

pub struct RedditClient {
    http: reqwest::Client,
    config: RedditConfig,
    user_agent: HeaderValue,
    limiter: Arc<ApiLimiter>,
    /// Shared by all scans; the lock also makes concurrent scans wait for one refresh.
    token: Mutex<Option<Token>>,
}

impl std::fmt::Debug for RedditClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedditClient")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl RedditClient {
    pub fn new(
        config: RedditConfig,
        http: reqwest::Client,
        limiter: Arc<ApiLimiter>,
    ) -> Result<Self, RedditError> {
        let user_agent = HeaderValue::from_str(&config.user_agent).map_err(|_| {
            RedditError::Client("REDDIT_USER_AGENT cannot be sent as an HTTP header".to_string())
        })?;
        Ok(RedditClient {
            http,
            config,
            user_agent,
            limiter,
            token: Mutex::new(None),
        })
    }

    pub fn config(&self) -> &RedditConfig {
        &self.config
    }

    pub fn limiter(&self) -> &Arc<ApiLimiter> {
        &self.limiter
    }

    /// The cached token, or a new one when there is none or it is about to expire.
    async fn token(&self) -> Result<Secret, RedditError> {
        let mut cached = self.token.lock().await;
        if let Some(t) = cached.as_ref()
            && Instant::now() < t.refresh_at
        {
            return Ok(t.value.clone());
        }
        let fresh = self.fetch_token().await?;
        let value = fresh.value.clone();
        *cached = Some(fresh);
        Ok(value)
    }

    /// Forgets `used` after a 401, unless another scan already replaced it.
    async fn invalidate(&self, used: &Secret) {
        let mut cached = self.token.lock().await;
        if cached.as_ref().is_some_and(|t| &t.value == used) {
            *cached = None;
        }
    }

    async fn fetch_token(&self) -> Result<Token, RedditError> {
        let url = format!("{}/api/v1/access_token", self.config.auth_base);
        let response = self
            .limiter
            .send(Pacing::Unpaced, || {
                self.http
                    .post(&url)
                    .header(USER_AGENT, self.user_agent.clone())
                    .basic_auth(
                        &self.config.client_id,
                        Some(self.config.client_secret.expose()),
                    )
                    .form(&[("grant_type", "client_credentials")])
            })
            .await
            .map_err(RedditError::Token)?;
        let status = response.status();
        if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
            return Err(RedditError::Credentials { status });
        }
        if !status.is_success() {
            return Err(RedditError::Unexpected {
                status,
                what: "token",
            });
        }
        let body: TokenResponse = read_json(response, "token").await?;
        if body.access_token.is_empty() {
            // Reddit answers bad credentials with 200 `{"error": "invalid_grant"}` at times.
            return Err(match body.error {
                Some(_) => RedditError::Credentials { status },
                None => RedditError::Decode {
                    what: "token",
                    reason: "no access_token in the answer".to_string(),
                },
            });
        }
        let lifetime = Duration::from_secs_f64(body.expires_in.unwrap_or(3600.0).clamp(0.0, 1e7));
        // Refresh a little before Reddit would refuse it: 60 s early, or 10% for short lifetimes.
        let margin = (lifetime / 10).min(Duration::from_secs(60));
        tracing::debug!(expires_in_s = lifetime.as_secs(), "got a new Reddit token");
        Ok(Token {
            value: Secret::new(body.access_token),
            refresh_at: Instant::now() + lifetime - margin,
        })
    }

    /// GET on the API with the cached token; a 401 refreshes the token once and retries.
    async fn get(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<reqwest::Response, RedditError> {
        let url = format!("{}{path}", self.config.api_base);
        let mut refreshed = false;
        loop {
            let token = self.token().await?;
            let response = self
                .limiter
                .send(Pacing::Paced, || {
                    self.http
                        .get(&url)
                        .query(query)
                        .header(USER_AGENT, self.user_agent.clone())
                        .bearer_auth(token.expose())
                })
                .await?;
            if response.status() != StatusCode::UNAUTHORIZED {
                return Ok(response);
            }
            if refreshed {
                return Err(RedditError::Unauthorized);
            }
            tracing::info!("Reddit refused the token (401): fetching a new one");
            self.invalidate(&token).await;
            refreshed = true;
        }
    }

    pub async fn about(&self, name: &RedditName) -> Result<About, RedditError> {
        let response = self
            .get(
                &format!("/user/{}/about", name.as_str()),
                &[("raw_json", "1")],
            )
            .await?;
        match response.status() {
            StatusCode::NOT_FOUND => return Ok(About::NotFound),
            s if s.is_success() => {}
            status => {
                return Err(RedditError::Unexpected {
                    status,
                    what: "about",
                });
            }
        }
        let thing: Thing<AboutData> = read_json(response, "about").await?;
        let d = thing.data;
        let shown = if d.name.is_empty() {
            name.as_str().to_string()
        } else {
            d.name.clone()
        };
        if d.is_suspended {
            return Ok(About::Suspended(RedditAccount::bare(
                AccountStatus::Suspended,
                shown,
            )));
        }
        Ok(About::Found(RedditAccount {
            status: AccountStatus::Found,
            name: shown,
            created_utc: d.created_utc.and_then(timestamp),
            link_karma: d.link_karma.and_then(integer),
            comment_karma: d.comment_karma.and_then(integer),
            total_karma: d.total_karma.and_then(integer),
            verified: d.verified,
            has_verified_email: d.has_verified_email,
        }))
    }

    /// One page of the user's comments or posts, newest first.
    pub async fn page(
        &self,
        name: &RedditName,
        listing: Listing,
        after: Option<&str>,
    ) -> Result<Page, RedditError> {
        let limit = PAGE_LIMIT.to_string();
        let mut query = vec![
            ("limit", limit.as_str()),
            ("sort", "new"),
            ("raw_json", "1"),
        ];
        if let Some(after) = after {
            query.push(("after", after));
        }
        let what = match listing {
            Listing::Comments => "comments",
            Listing::Submitted => "submitted",
        };
        let response = self
            .get(
                &format!("/user/{}/{}", name.as_str(), listing.path()),
                &query,
            )
            .await?;
        match response.status() {
            // The account vanished between `about` and now: nothing more to list.
            StatusCode::NOT_FOUND => {
                return Ok(Page {
                    items: Vec::new(),
                    after: None,
                });
            }
            s if s.is_success() => {}
            status => return Err(RedditError::Unexpected { status, what }),
        }
        let bytes = read_body(response, what).await?;
        parse_listing(&bytes).map_err(|reason| RedditError::Decode { what, reason })
    }

    /// Pages through a listing until `max` items or its end, handing each page to `on_page`.
    pub async fn fetch(
        &self,
        name: &RedditName,
        listing: Listing,
        max: usize,
        mut on_page: impl FnMut(Vec<RedditItem>),
    ) -> Result<usize, RedditError> {
        let mut fetched = 0;
        let mut after: Option<String> = None;
        for _ in 0..MAX_PAGES {
            if fetched >= max {
                break;
            }
            let page = self.page(name, listing, after.as_deref()).await?;
            let mut items = page.items;
            items.truncate(max - fetched);
            let got = items.len();
            fetched += got;
            on_page(items);
            match page.after {
                Some(next) if got > 0 && after.as_deref() != Some(next.as_str()) => {
                    after = Some(next)
                }
                _ => break,
            }
        }
        Ok(fetched)
    }
}

async fn read_body(
    response: reqwest::Response,
    what: &'static str,
) -> Result<Vec<u8>, RedditError> {
    read_capped(response, MAX_BODY_BYTES)
        .await
        .map_err(|e| RedditError::Decode {
            what,
            reason: e.to_string(),
        })
}

async fn read_json<T: for<'de> Deserialize<'de>>(
    response: reqwest::Response,
    what: &'static str,
) -> Result<T, RedditError> {
    let bytes = read_body(response, what).await?;
    decode_json(&bytes).map_err(|reason| RedditError::Decode { what, reason })
}

/// Parses one page of a `comments` or `submitted` listing as Reddit sends it. Lenient about
/// fields (unknown ones ignored, missing ones default, children that are neither comments nor
/// posts skipped); an answer that is not a JSON object (an HTML error page, a cut-off body) is an
/// error saying what it was. Never panics.
pub fn parse_listing(bytes: &[u8]) -> Result<Page, String> {
    let thing: Thing<ListingData> = decode_json(bytes)?;
    let items = thing
        .data
        .children
        .into_iter()
        .filter_map(
            |child| match serde_json::from_value::<Thing<ItemData>>(child) {
                Ok(child) => item(&child.kind, child.data),
                Err(e) => {
                    tracing::warn!(error = %e, "skipped a listing item that could not be read");
                    None
                }
            },
        )
        .collect();
    Ok(Page {
        items,
        after: thing.data.after.filter(|a| !a.is_empty()),
    })
}

fn item(kind: &str, d: ItemData) -> Option<RedditItem> {
    let kind = match kind {
        "t1" => ItemKind::Comment,
        "t3" => ItemKind::Post,
        _ => return None,
    };
    let id = if !d.name.is_empty() {
        d.name
    } else {
        let prefix = if kind == ItemKind::Comment {
            "t1"
        } else {
            "t3"
        };
        format!("{prefix}_{}", d.id)
    };
    let permalink = if d.permalink.starts_with('/') {
        format!("{WEB_BASE}{}", d.permalink)
    } else {
        d.permalink
    };
    let (title, text, url) = match kind {
        ItemKind::Comment => (Some(d.link_title).filter(|t| !t.is_empty()), d.body, None),
        ItemKind::Post => {
            // The title is what everyone reads first; the body follows when there is one.
            let text = if d.selftext.trim().is_empty()
                || crate::toxicity::not_sent_reason(&d.selftext).is_some()
            {
                d.title.clone()
            } else {
                format!("{}\n\n{}", d.title, d.selftext)
            };
            let url = (!d.is_self).then_some(d.url).filter(|u| !u.is_empty());
            (Some(d.title).filter(|t| !t.is_empty()), text, url)
        }
    };
    Some(RedditItem {
        kind,
        id,
        subreddit: d.subreddit,
        created_utc: d.created_utc.and_then(timestamp),
        permalink,
        score: d.score.and_then(integer).unwrap_or(0),
        title,
        text,
        url,
        over_18: d.over_18,
        // `edited` is `false` or the time of the edit.
        edited: !matches!(d.edited, Value::Null | Value::Bool(false)),
        toxicity: ItemScore::default(),
    })
}

fn timestamp(v: Value) -> Option<DateTime<Utc>> {
    let secs = v.as_f64()?;
    DateTime::from_timestamp_millis((secs * 1000.0) as i64)
}

fn integer(v: Value) -> Option<i64> {
    v.as_i64().or_else(|| v.as_f64().map(|f| f as i64))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct TokenResponse {
    access_token: String,
    expires_in: Option<f64>,
    error: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Thing<T: Default> {
    kind: String,
    data: T,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct AboutData {
    name: String,
    is_suspended: bool,
    // Numbers are kept as JSON values: Reddit sends floats for some and null for others.
    created_utc: Option<Value>,
    link_karma: Option<Value>,
    comment_karma: Option<Value>,
    total_karma: Option<Value>,
    verified: Option<bool>,
    has_verified_email: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ListingData {
    #[serde(deserialize_with = "lenient")]
    after: Option<String>,
    /// Read one by one: a child that does not fit is skipped, not the whole page.
    children: Vec<Value>,
}

/// Text and flag fields take `null` (and any other type Reddit may start sending) as absent.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ItemData {
    #[serde(deserialize_with = "lenient")]
    id: String,
    #[serde(deserialize_with = "lenient")]
    name: String,
    #[serde(deserialize_with = "lenient")]
    body: String,
    #[serde(deserialize_with = "lenient")]
    title: String,
    #[serde(deserialize_with = "lenient")]
    selftext: String,
    #[serde(deserialize_with = "lenient")]
    link_title: String,
    #[serde(deserialize_with = "lenient")]
    subreddit: String,
    #[serde(deserialize_with = "lenient")]
    permalink: String,
    #[serde(deserialize_with = "lenient")]
    url: String,
    score: Option<Value>,
    created_utc: Option<Value>,
    #[serde(deserialize_with = "lenient")]
    over_18: bool,
    edited: Value,
    #[serde(deserialize_with = "lenient")]
    is_self: bool,
}

/// The value when it has the expected type, else the default (`null`, a number for a string).
fn lenient<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + serde::de::DeserializeOwned,
{
    let value = Value::deserialize(deserializer)?;
    Ok(serde_json::from_value(value).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> Result<RedditName, InvalidRedditName> {
        RedditName::parse(&Username::parse(s).expect("a valid scan username"))
    }

    #[test]
    fn reddit_names_follow_reddits_rules() {
        assert!(name("alice").is_ok());
        assert!(name("a_b-c").is_ok());
        assert!(name("abc").is_ok());
        assert!(name("a".repeat(20).as_str()).is_ok());
        let short = name("ab").expect_err("too short");
        assert_eq!(
            short.to_string(),
            "`ab` cannot be a Reddit username (it is 2 characters long): Reddit names are 3-20 letters, digits, '_' or '-'"
        );
        assert!(name("a".repeat(21).as_str()).is_err());
        let dotted = name("john.doe").expect_err("a dot");
        assert!(dotted.to_string().contains("it contains '.'"), "{dotted}");
    }

    #[test]
    fn lenient_items_tolerate_missing_and_odd_fields() {
        let page = parse_listing(
            br#"{"kind":"Listing","data":{"after":null,"children":[
                {"kind":"t1","data":{"name":"t1_x","body":"fish &amp; chips","score":3.0,"created_utc":1700000000.0,"edited":1700000100.0,"new_field":{"a":1},"link_title":null}},
                {"kind":"t3","data":{"id":"y","title":"Hello","selftext":"[removed]","is_self":true,"permalink":"/r/a/comments/y/hello/","url":null}},
                {"kind":"more","data":{}},
                {"kind":null,"data":[]}
            ]}}"#,
        )
        .expect("parses");
        let items = page.items;
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].id, "t1_x");
        assert_eq!(
            items[0].text, "fish &amp; chips",
            "text is kept exactly as sent"
        );
        assert_eq!(items[0].score, 3);
        assert!(items[0].edited);
        assert_eq!(
            items[0].created_utc.map(|t| t.timestamp()),
            Some(1_700_000_000)
        );
        assert_eq!(items[1].id, "t3_y");
        assert_eq!(items[1].text, "Hello", "a removed body leaves the title");
        assert_eq!(
            items[1].permalink,
            "https://www.reddit.com/r/a/comments/y/hello/"
        );
        assert!(!items[1].edited);
    }
}
