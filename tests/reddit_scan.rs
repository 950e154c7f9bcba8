//! The Reddit half through the library's `Scanner`, against the fake Reddit and the fake
//! Perspective on 127.0.0.1: tokens, paging, outcomes, pacing, retries, scoring.

mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use account_scanner::config::Config;
use account_scanner::model::ScanReport;
use account_scanner::model::SectionStatus;
use account_scanner::model::reddit::{AccountStatus, ItemKind};
use account_scanner::model::{EventSink, ScanEvent, ScanMode, Username};
use account_scanner::net::{ApiLimiter, Limits, RateLimit, RetryPolicy};
use account_scanner::scanner::Scanner;
use std::sync::Arc;
use support::fake_perspective::{FakePerspective, FakePerspectiveConfig};
use support::fake_reddit::{FakeAccount, FakeReddit, FakeRedditConfig};
use support::fake_server::max_in_window;
use tokio_util::sync::CancellationToken;

/// A configuration pointing at the fakes, with fast quotas unless `extra` says otherwise.
fn config(
    reddit: &FakeReddit,
    perspective: Option<&FakePerspective>,
    extra: &[(&str, &str)],
) -> Config {
    let mut map: HashMap<String, String> = HashMap::new();
    for (k, v) in reddit.env() {
        map.insert(k.to_string(), v);
    }
    if let Some(p) = perspective {
        for (k, v) in p.env() {
            map.insert(k.to_string(), v);
        }
    }
    map.insert("REDDIT_RATE_PER_MIN".into(), "60000".into());
    map.insert("PERSPECTIVE_QPS".into(), "1000".into());
    map.insert("HTTP_TIMEOUT".into(), "10".into());
    for (k, v) in extra {
        map.insert(k.to_string(), v.to_string());
    }
    Config::from_map(&map).expect("valid test configuration")
}

async fn scan(scanner: &Scanner, name: &str) -> ScanReport {
    let request = scanner.request(Username::parse(name).expect("valid name"), ScanMode::Reddit);
    scanner
        .scan(request, EventSink::none(), CancellationToken::new())
        .await
}

fn account(comments: usize, posts: usize) -> FakeAccount {
    FakeAccount::new("alice")
        .with_comments(comments, |i| format!("comment number {i}"))
        .with_posts(posts, |i| format!("body of post {i}"))
}

fn reddit_with(accounts: Vec<FakeAccount>) -> FakeReddit {
    FakeReddit::start(FakeRedditConfig {
        accounts,
        ..FakeRedditConfig::default()
    })
}

#[tokio::test]
async fn the_token_is_cached_across_scans() {
    let reddit = reddit_with(vec![account(3, 1)]);
    let scanner = Scanner::new(config(&reddit, None, &[]), None);
    let first = scan(&scanner, "alice").await;
    let second = scan(&scanner, "alice").await;
    for report in [&first, &second] {
        assert_eq!(
            report.reddit.status,
            SectionStatus::Completed,
            "{:?}",
            report.reddit.error
        );
        assert_eq!(report.reddit.comments.len(), 3);
        assert_eq!(report.reddit.posts.len(), 1);
    }
    assert_eq!(reddit.token_requests().len(), 1, "one token for both scans");
    let api = reddit.api_requests();
    assert_eq!(api.len(), 6, "about, comments, submitted twice");
    for r in &api {
        assert_eq!(r.header("authorization"), Some("Bearer fake-token-1"));
    }
    reddit.assert_no_unexpected();
}

#[tokio::test]
async fn the_token_is_refreshed_when_it_expires() {
    let reddit = FakeReddit::start(FakeRedditConfig {
        accounts: vec![account(1, 0)],
        token_expires_in: 2,
        ..FakeRedditConfig::default()
    });
    let scanner = Scanner::new(config(&reddit, None, &[]), None);
    scan(&scanner, "alice").await;
    assert_eq!(reddit.token_requests().len(), 1);
    scan(&scanner, "alice").await;
    assert_eq!(
        reddit.token_requests().len(),
        1,
        "still fresh right after the first scan"
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let report = scan(&scanner, "alice").await;
    assert_eq!(report.reddit.status, SectionStatus::Completed);
    assert_eq!(reddit.token_requests().len(), 2, "refreshed once expired");
    assert!(
        reddit.api_requests().iter().all(|r| r.status == 200),
        "the stale token was never sent"
    );
    reddit.assert_no_unexpected();
}

#[tokio::test]
async fn a_401_refreshes_the_token_once_and_retries() {
    let reddit = reddit_with(vec![account(2, 0)]);
    let scanner = Scanner::new(config(&reddit, None, &[]), None);
    scan(&scanner, "alice").await;
    reddit.revoke_tokens();
    let report = scan(&scanner, "alice").await;
    assert_eq!(
        report.reddit.status,
        SectionStatus::Completed,
        "{:?}",
        report.reddit.error
    );
    assert_eq!(report.reddit.comments.len(), 2);
    assert_eq!(reddit.token_requests().len(), 2);
    let statuses: Vec<u16> = reddit.api_requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 200, 200, 401, 200, 200, 200]);
    reddit.assert_no_unexpected();
}

#[tokio::test]
async fn a_second_401_with_a_fresh_token_is_an_error_not_a_loop() {
    let reddit = reddit_with(vec![account(2, 0)]);
    reddit.reject_tokens();
    let scanner = Scanner::new(config(&reddit, None, &[]), None);
    let report = scan(&scanner, "alice").await;
    assert_eq!(report.reddit.status, SectionStatus::Failed);
    assert_eq!(
        report.reddit.error.as_deref(),
        Some("Reddit still answered 401 Unauthorized with a fresh token")
    );
    assert_eq!(reddit.token_requests().len(), 2, "one refresh, no more");
    assert_eq!(reddit.api_requests().len(), 2);
    reddit.assert_no_unexpected();
}

#[tokio::test]
async fn listings_page_on_after_with_raw_json() {
    let reddit = reddit_with(vec![account(130, 0)]);
    let scanner = Scanner::new(
        config(&reddit, None, &[("REDDIT_MAX_COMMENTS", "200")]),
        None,
    );
    let report = scan(&scanner, "alice").await;
    let comments = &report.reddit.comments;
    assert_eq!(comments.len(), 130);
    assert_eq!(comments[0].id, "t1_c0000");
    assert_eq!(comments[129].id, "t1_c0129");
    assert_eq!(comments[5].text, "comment number 5");
    let listing: Vec<_> = reddit
        .api_requests()
        .into_iter()
        .filter(|r| r.path == "/user/alice/comments")
        .collect();
    assert_eq!(listing.len(), 2, "100 + 30");
    assert_eq!(listing[0].param("after"), None);
    assert_eq!(listing[1].param("after"), Some("t1_c0099"));
    for r in reddit.api_requests() {
        assert_eq!(r.param("raw_json"), Some("1"), "{}", r.path);
    }
    for r in &listing {
        assert_eq!(
            (r.param("limit"), r.param("sort")),
            (Some("100"), Some("new"))
        );
    }
    reddit.assert_no_unexpected();
}

#[tokio::test]
async fn paging_stops_at_the_configured_count() {
    let reddit = reddit_with(vec![account(130, 40)]);
    let scanner = Scanner::new(
        config(
            &reddit,
            None,
            &[("REDDIT_MAX_COMMENTS", "50"), ("REDDIT_MAX_POSTS", "25")],
        ),
        None,
    );
    let report = scan(&scanner, "alice").await;
    assert_eq!(report.reddit.comments.len(), 50);
    assert_eq!(report.reddit.posts.len(), 25);
    let paths: Vec<String> = reddit.api_requests().into_iter().map(|r| r.path).collect();
    assert_eq!(
        paths,
        [
            "/user/alice/about",
            "/user/alice/comments",
            "/user/alice/submitted"
        ],
        "one page each is enough"
    );
    reddit.assert_no_unexpected();
}

#[tokio::test]
async fn html_entities_are_neither_escaped_nor_unescaped() {
    let text = "fish & chips <3 — and a literal &amp; typed by the author";
    let reddit = reddit_with(vec![
        FakeAccount::new("alice").with_comments(1, |_| text.into()),
    ]);
    let dir = tempfile::tempdir().expect("tempdir");
    let scanner = Scanner::new(config(&reddit, None, &[]), None);
    let report = scan(&scanner, "alice").await;
    assert_eq!(report.reddit.comments[0].text, text);
    let store = account_scanner::store::ReportStore::open(dir.path()).expect("store");
    let saved = store.save(&report).expect("saved");
    let csv = std::fs::read_to_string(saved.reddit_csv.expect("reddit csv")).expect("read");
    assert!(csv.contains(text), "{csv}");
    let json = std::fs::read_to_string(&saved.json).expect("read");
    assert!(json.contains(text), "{json}");
}

#[tokio::test]
async fn suspended_missing_and_impossible_names_are_results() {
    let reddit = reddit_with(vec![FakeAccount::suspended("banned_one"), account(1, 1)]);
    let scanner = Scanner::new(config(&reddit, None, &[]), None);

    let suspended = scan(&scanner, "banned_one").await;
    assert_eq!(suspended.reddit.status, SectionStatus::Completed);
    let a = suspended.reddit.account.as_ref().expect("account");
    assert_eq!(a.status, AccountStatus::Suspended);
    assert_eq!(a.name, "banned_one");
    assert!(suspended.reddit.comments.is_empty());

    let missing = scan(&scanner, "nobody_here").await;
    assert_eq!(missing.reddit.status, SectionStatus::Completed);
    assert_eq!(
        missing.reddit.account.as_ref().map(|a| a.status),
        Some(AccountStatus::NotFound)
    );
    assert!(
        missing
            .reddit
            .message
            .as_deref()
            .is_some_and(|m| m.contains("no account by this name")),
        "{:?}",
        missing.reddit.message
    );

    let before = reddit.requests().len();
    for name in ["john.doe", "ab", "a_name_far_too_long_for_reddit"] {
        let r = scan(&scanner, name).await;
        assert_eq!(r.reddit.status, SectionStatus::Completed);
        assert_eq!(
            r.reddit.account.as_ref().map(|a| a.status),
            Some(AccountStatus::InvalidName),
            "{name}"
        );
        assert!(
            r.reddit
                .message
                .as_deref()
                .is_some_and(|m| m.contains("cannot be a Reddit username")),
            "{:?}",
            r.reddit.message
        );
    }
    assert_eq!(
        reddit.requests().len(),
        before,
        "an impossible name makes no request"
    );

    let found = scan(&scanner, "alice").await;
    let a = found.reddit.account.as_ref().expect("account");
    assert_eq!(a.status, AccountStatus::Found);
    assert_eq!(a.total_karma, Some(3520));
    assert_eq!(a.verified, Some(true));
    assert_eq!(
        a.created_utc.map(|d| d.to_rfc3339()),
        Some("2015-01-01T00:00:00+00:00".to_string())
    );
    // The suspended account's listings were never asked (the fake would have answered 599).
    reddit.assert_no_unexpected();
}

#[tokio::test]
async fn reddit_requests_respect_the_shared_quota_across_concurrent_scans() {
    let reddit = FakeReddit::start(FakeRedditConfig {
        accounts: vec![
            FakeAccount::new("alice").with_comments(40, |i| format!("a{i}")),
            FakeAccount::new("bob").with_comments(40, |i| format!("b{i}")),
        ],
        page_size: 10,
        ..FakeRedditConfig::default()
    });
    let cfg = config(&reddit, None, &[]);
    // Reddit's per-minute window scaled down to one second: 5 requests per second.
    let limits = Limits {
        reddit: Arc::new(ApiLimiter::new(
            "Reddit",
            RateLimit {
                requests: 5,
                per: Duration::from_secs(1),
            },
            RetryPolicy::default(),
        )),
        ..Limits::from_config(&cfg)
    };
    let scanner = Scanner::with_limits(cfg, None, limits);
    let (a, b) = tokio::join!(scan(&scanner, "alice"), scan(&scanner, "bob"));
    assert_eq!(a.reddit.comments.len(), 40);
    assert_eq!(b.reddit.comments.len(), 40);
    let times: Vec<Instant> = reddit.api_requests().iter().map(|r| r.when).collect();
    assert_eq!(
        times.len(),
        2 * (1 + 4 + 1),
        "about + 4 comment pages + posts, twice"
    );
    let most = max_in_window(&times, Duration::from_secs(1));
    assert!(most <= 5, "{most} requests inside one second");
    assert!(scanner.limits().reddit.waited() > Duration::from_millis(1500));
    reddit.assert_no_unexpected();
}

#[tokio::test]
async fn a_used_up_quota_waits_for_its_reset() {
    let reddit = reddit_with(vec![account(1, 1)]);
    let scanner = Scanner::new(config(&reddit, None, &[]), None);
    reddit.exhaust_quota_once(1.0);
    scan(&scanner, "alice").await;
    let api = reddit.api_requests();
    assert_eq!(api.len(), 3);
    let gap = api[1].when.duration_since(api[0].when);
    assert!(
        gap >= Duration::from_millis(950),
        "the request after `remaining: 0` came {gap:?} later"
    );
    let quick = api[2].when.duration_since(api[1].when);
    assert!(quick < Duration::from_millis(500), "{quick:?}");
}

#[tokio::test]
async fn a_429_with_retry_after_is_waited_out_and_retried() {
    let reddit = reddit_with(vec![account(2, 0)]);
    let perspective = FakePerspective::start(FakePerspectiveConfig::default());
    let scanner = Scanner::new(config(&reddit, Some(&perspective), &[]), None);
    reddit.fail_next(429, Some(1));
    perspective.rate_limit_next(1);
    let report = scan(&scanner, "alice").await;
    assert_eq!(
        report.reddit.status,
        SectionStatus::Completed,
        "{:?}",
        report.reddit.error
    );
    assert!(
        report
            .reddit
            .comments
            .iter()
            .all(|c| c.toxicity.toxicity.is_some())
    );

    let api = reddit.api_requests();
    assert_eq!(api[0].status, 429);
    assert_eq!(api[1].path, api[0].path, "the same request again");
    assert!(api[1].when.duration_since(api[0].when) >= Duration::from_millis(990));

    let p = perspective.requests();
    assert_eq!(p.len(), 3, "one refused, then both texts");
    assert_eq!(p[0].status, 429);
    let retry = p[1..]
        .iter()
        .find(|r| r.body == p[0].body)
        .expect("the refused text was sent again");
    assert_eq!(retry.status, 200);
    assert!(retry.when.duration_since(p[0].when) >= Duration::from_millis(990));
    reddit.assert_no_unexpected();
    perspective.assert_no_unexpected();
}

#[tokio::test]
async fn perspective_scores_every_item_and_the_summary_ranks_them() {
    let texts = [
        "what an idiot you are",
        "nice picture",
        "I will kill this bug [tox=0.75]",
        "damn, that was close",
        "[deleted]",
        "[removed]",
        "thanks!",
        "the [tox=0.70] boundary",
    ];
    let reddit = reddit_with(vec![
        FakeAccount::new("alice")
            .with_comments(texts.len(), |i| texts[i].to_string())
            .with_posts(2, |i| {
                if i == 0 {
                    "you idiot".into()
                } else {
                    String::new()
                }
            }),
    ]);
    let perspective = FakePerspective::start(FakePerspectiveConfig::default());
    let scanner = Scanner::new(config(&reddit, Some(&perspective), &[]), None);
    let report = scan(&scanner, "alice").await;
    let r = &report.reddit;
    assert_eq!(r.status, SectionStatus::Completed);

    let idiot = &r.comments[0].toxicity;
    assert_eq!(idiot.toxicity, Some(0.92));
    assert_eq!(idiot.categories.get("insult"), Some(&0.88));
    assert_eq!(idiot.categories.len(), 6);
    assert_eq!(
        r.comments[4].toxicity.unscored_reason.as_deref(),
        Some("deleted")
    );
    assert_eq!(
        r.comments[5].toxicity.unscored_reason.as_deref(),
        Some("removed")
    );
    // A post's title and body are scored together; an empty body leaves the title.
    assert_eq!(r.posts[0].text, "Post number 0\n\nyou idiot");
    assert_eq!(r.posts[1].text, "Post number 1");

    let sent = perspective.texts();
    assert_eq!(sent.len(), 8, "8 texts (2 placeholders skipped): {sent:?}");
    assert!(!sent.iter().any(|t| t == "[deleted]" || t == "[removed]"));

    let s = r.summary.as_ref().expect("summary");
    assert_eq!((s.comments, s.posts, s.scored, s.unscored), (8, 2, 8, 2));
    assert_eq!(s.max_toxicity, Some(0.92));
    assert_eq!(s.threshold, 0.7);
    assert_eq!(s.at_or_above_threshold, 4, "0.92, 0.92, 0.75 and 0.70");
    let top: Vec<(ItemKind, &str)> = s
        .most_toxic
        .iter()
        .map(|t| (t.kind, t.id.as_str()))
        .collect();
    assert_eq!(
        top,
        [
            (ItemKind::Comment, "t1_c0000"),
            (ItemKind::Post, "t3_p0000"),
            (ItemKind::Comment, "t1_c0002"),
            (ItemKind::Comment, "t1_c0007"),
            (ItemKind::Comment, "t1_c0003"),
        ]
    );
    assert_eq!(s.top_subreddits[0].subreddit, "rust");
    let scoring = r.scoring.as_ref().expect("scoring");
    assert_eq!(scoring.backend, "perspective");
    assert!(!scoring.heuristic && scoring.configured);
    assert!(scoring.model.contains("SEVERE_TOXICITY"));

    for req in perspective.requests() {
        assert_eq!(
            req.header("x-goog-api-key"),
            Some(support::fake_perspective::API_KEY)
        );
        let body: serde_json::Value = serde_json::from_str(&req.body).expect("json");
        assert_eq!(body["doNotStore"], true);
        assert_eq!(
            body["requestedAttributes"].as_object().map(|o| o.len()),
            Some(6)
        );
    }
    perspective.assert_no_unexpected();
    reddit.assert_no_unexpected();
}

#[tokio::test]
async fn an_unsupported_language_falls_back_to_toxicity_alone() {
    let texts = [
        "[lang:de] Hallo zusammen",
        "[nolang:xx] ???",
        "plain english",
    ];
    let reddit = reddit_with(vec![
        FakeAccount::new("alice").with_comments(texts.len(), |i| texts[i].to_string()),
    ]);
    let perspective = FakePerspective::start(FakePerspectiveConfig::default());
    let scanner = Scanner::new(config(&reddit, Some(&perspective), &[]), None);
    let report = scan(&scanner, "alice").await;
    let c = &report.reddit.comments;
    assert!(c[0].toxicity.toxicity.is_some());
    assert_eq!(
        c[0].toxicity.categories.keys().collect::<Vec<_>>(),
        ["toxicity"]
    );
    assert_eq!(c[1].toxicity.toxicity, None);
    let reason = c[1].toxicity.unscored_reason.as_deref().expect("reason");
    assert!(
        reason.contains("does not support request languages: xx"),
        "{reason}"
    );
    assert_eq!(c[2].toxicity.categories.len(), 6, "the scan went on");
    let attrs: Vec<usize> = perspective
        .requests()
        .iter()
        .map(|r| {
            serde_json::from_str::<serde_json::Value>(&r.body).expect("json")["requestedAttributes"]
                .as_object()
                .map_or(0, |o| o.len())
        })
        .collect();
    let mut sorted = attrs.clone();
    sorted.sort();
    assert_eq!(sorted, [1, 1, 6, 6, 6], "two retries with TOXICITY only");
    perspective.assert_no_unexpected();
}

#[tokio::test]
async fn long_texts_are_truncated_on_a_character_boundary() {
    // 3-byte characters: 20480 is not a multiple of 3, so a byte cut would split one.
    let long = "€".repeat(9000);
    let reddit = reddit_with(vec![
        FakeAccount::new("alice").with_comments(1, |_| long.clone()),
    ]);
    let perspective = FakePerspective::start(FakePerspectiveConfig::default());
    let scanner = Scanner::new(config(&reddit, Some(&perspective), &[]), None);
    let report = scan(&scanner, "alice").await;
    let t = &report.reddit.comments[0].toxicity;
    assert!(t.truncated);
    assert!(t.toxicity.is_some());
    assert_eq!(
        report.reddit.comments[0].text, long,
        "the report keeps the whole text"
    );
    let sent = perspective.texts();
    assert_eq!(sent[0].len(), 20478, "6826 whole characters");
    perspective.assert_no_unexpected();
}

#[tokio::test]
async fn a_failing_perspective_leaves_items_unscored_and_the_scan_completes() {
    let reddit = reddit_with(vec![account(6, 0)]);
    let perspective = FakePerspective::start(FakePerspectiveConfig::default());
    perspective.fail_always(Some(500));
    let scanner = Scanner::new(config(&reddit, Some(&perspective), &[]), None);
    let started = Instant::now();
    let report = scan(&scanner, "alice").await;
    let r = &report.reddit;
    assert_eq!(r.status, SectionStatus::Completed);
    assert_eq!(r.comments.len(), 6);
    let error = r
        .scoring
        .as_ref()
        .and_then(|s| s.error.clone())
        .expect("scoring error");
    assert_eq!(
        error,
        "Perspective answered 500 Internal Server Error after 4 attempts"
    );
    for c in &r.comments {
        assert_eq!(
            c.toxicity.unscored_reason.as_deref(),
            Some("not scored: Perspective answered 500 Internal Server Error after 4 attempts")
        );
    }
    let sent = perspective.requests().len();
    assert!(
        sent <= 16,
        "gives up after bounded retries: {sent} requests"
    );
    assert!(started.elapsed() < Duration::from_secs(15));
}

#[tokio::test]
async fn without_any_key_the_local_backend_scores_every_item() {
    let reddit = reddit_with(vec![
        FakeAccount::new("alice")
            .with_comments(3, |i| match i {
                0 => "you are a complete idiot".to_string(),
                1 => "[deleted]".to_string(),
                _ => "thanks for the tip, it worked".to_string(),
            })
            .with_posts(1, |_| "my first project".to_string()),
    ]);
    let scanner = Scanner::new(config(&reddit, None, &[]), None);
    let report = scan(&scanner, "alice").await;
    let r = &report.reddit;
    let scoring = r.scoring.as_ref().expect("scoring");
    assert_eq!(scoring.backend, "local");
    assert!(scoring.configured && scoring.heuristic);
    let toxic = &r.comments[0].toxicity;
    assert_eq!(scoring.threshold, scanner.toxicity_threshold());
    assert!(
        toxic.toxicity.is_some_and(|t| t >= scoring.threshold),
        "{toxic:?}"
    );
    assert!(toxic.raw_categories.contains_key("model_toxicity"));
    assert!(
        toxic
            .raw_categories
            .contains_key("wordlist_alt_profanity_check")
    );
    assert_eq!(
        r.comments[1].toxicity.unscored_reason.as_deref(),
        Some("deleted")
    );
    let kind = &r.comments[2].toxicity;
    assert!(kind.toxicity.is_some_and(|t| t < 0.3), "{kind:?}");
    let s = r.summary.as_ref().expect("summary");
    assert_eq!((s.scored, s.unscored, s.at_or_above_threshold), (3, 1, 1));
    reddit.assert_no_unexpected();
}

#[tokio::test]
async fn the_deadline_keeps_what_was_fetched_and_scored() {
    let reddit = reddit_with(vec![account(10, 0)]);
    let perspective = FakePerspective::start(FakePerspectiveConfig::default());
    let scanner = Scanner::new(
        config(&reddit, Some(&perspective), &[("PERSPECTIVE_QPS", "2")]),
        None,
    );
    let mut request = scanner.request(Username::parse("alice").expect("name"), ScanMode::Reddit);
    request.timeout = Duration::from_millis(1600);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let started = Instant::now();
    let report = scanner
        .scan(request, EventSink::channel(tx), CancellationToken::new())
        .await;
    assert!(started.elapsed() < Duration::from_secs(3));
    let r = &report.reddit;
    assert_eq!(r.status, SectionStatus::Partial);
    assert!(report.partial);
    let scored = r
        .comments
        .iter()
        .filter(|c| c.toxicity.toxicity.is_some())
        .count();
    assert!((1..=5).contains(&scored), "{scored} scored in 1.6 s at 2/s");
    assert_eq!(r.comments.len(), 10, "everything fetched is kept");
    for c in r.comments.iter().filter(|c| c.toxicity.toxicity.is_none()) {
        assert_eq!(
            c.toxicity.unscored_reason.as_deref(),
            Some("not scored: the scan stopped first")
        );
    }
    let reason = report.partial_reason.as_deref().expect("reason");
    assert!(
        reason.starts_with("the scan reached its 1s deadline (SCAN_TIMEOUT); Reddit: 10 comments and 0 posts fetched"),
        "{reason}"
    );
    assert_eq!(r.summary.as_ref().map(|s| s.scored), Some(scored));

    let mut events = Vec::new();
    while let Ok(e) = rx.try_recv() {
        events.push(e);
    }
    assert!(matches!(
        events.first(),
        Some(ScanEvent::RedditAccount {
            status: AccountStatus::Found,
            ..
        })
    ));
    assert!(events.iter().any(|e| matches!(
        e,
        ScanEvent::RedditFetched {
            comments: 10,
            posts: 0
        }
    )));
    assert!(
        events
            .iter()
            .any(|e| matches!(e, ScanEvent::RedditScored { done: 1, total: 10 }))
    );
    assert!(matches!(
        events.last(),
        Some(ScanEvent::RedditFinished {
            status: SectionStatus::Partial
        })
    ));
}

#[tokio::test]
async fn cancelling_stops_the_reddit_half_with_partial_results() {
    let reddit = reddit_with(vec![account(10, 0)]);
    let perspective = FakePerspective::start(FakePerspectiveConfig::default());
    let scanner = Scanner::new(
        config(&reddit, Some(&perspective), &[("PERSPECTIVE_QPS", "2")]),
        None,
    );
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(800)).await;
        trigger.cancel();
    });
    let request = scanner.request(Username::parse("alice").expect("name"), ScanMode::Reddit);
    let report = scanner.scan(request, EventSink::none(), cancel).await;
    assert_eq!(report.reddit.status, SectionStatus::Partial);
    assert!(
        report
            .partial_reason
            .as_deref()
            .is_some_and(|r| r.starts_with("the scan was interrupted; Reddit: 10 comments")),
        "{:?}",
        report.partial_reason
    );
}

#[tokio::test]
async fn a_permanent_reddit_failure_is_reported_after_bounded_retries() {
    let reddit = reddit_with(vec![account(1, 0)]);
    reddit.fail_always(Some(500));
    let scanner = Scanner::new(config(&reddit, None, &[]), None);
    let report = scan(&scanner, "alice").await;
    assert_eq!(report.reddit.status, SectionStatus::Failed);
    assert_eq!(
        report.reddit.error.as_deref(),
        Some("Reddit answered 500 Internal Server Error after 4 attempts")
    );
    assert_eq!(reddit.api_requests().len(), 4);
}

#[tokio::test]
async fn bad_credentials_are_a_clear_error() {
    let reddit = reddit_with(vec![account(1, 0)]);
    let scanner = Scanner::new(
        config(&reddit, None, &[("REDDIT_CLIENT_SECRET", "wrong")]),
        None,
    );
    let report = scan(&scanner, "alice").await;
    assert_eq!(report.reddit.status, SectionStatus::Failed);
    let error = report.reddit.error.as_deref().expect("error");
    assert_eq!(
        error,
        "Reddit refused the app's credentials (401 Unauthorized): check REDDIT_CLIENT_ID and REDDIT_CLIENT_SECRET"
    );
    assert!(reddit.api_requests().is_empty());
}
