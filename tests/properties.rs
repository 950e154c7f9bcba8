//! Property tests (proptest) for the three parsers that take input from outside: the username
//! validator (what a user types), Sherlock's line parser (what a subprocess prints) and the
//! Reddit listing parser (what a server sends). None may panic on any input; where a round
//! trip means something it must hold: a generated valid username is accepted unchanged, a
//! Sherlock result line gives back its site and URL, a generated listing gives back its items.

use account_scanner::model::Username;
use account_scanner::model::{SiteResult, SiteStatus};
use account_scanner::sources::reddit::client::parse_listing;
use account_scanner::sources::sherlock::output::{SherlockLine, parse_line};
use proptest::prelude::*;
use serde_json::{Value, json};

/// Characters that must never be echoed raw into a message: C0/C1 controls, zero-width and
/// bidirectional formatting characters (they reorder or hide what a moderator reads).
fn is_dangerous(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

/// Strings biased towards the characters the validator cares about, plus any Unicode.
fn tricky_string() -> impl Strategy<Value = String> {
    let pieces = prop_oneof![
        4 => "[A-Za-z0-9_.-]{1,8}",
        1 => Just("{?}".to_string()),
        1 => "[ /\\\\@:%{}\\[\\]`$]",
        1 => "[\u{0}-\u{1f}\u{7f}-\u{9f}]",
        1 => "[\u{061C}\u{180E}\u{200B}-\u{200F}\u{202A}-\u{202E}\u{2060}-\u{2069}\u{FEFF}]",
        1 => any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(pieces, 0..12).prop_map(|v| v.concat())
}

fn valid_username() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}"
}

proptest! {
    // No regression files are written into the source tree; a failure prints its minimal input.
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn username_parse_never_panics_and_accepts_only_the_documented_alphabet(s in prop_oneof![tricky_string(), any::<String>()]) {
        match Username::parse(&s) {
            Ok(u) => {
                prop_assert_eq!(u.as_str(), s.as_str());
                prop_assert_eq!(u.to_string(), s.clone());
                prop_assert!((1..=64).contains(&s.len()));
                prop_assert!(s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')));
                prop_assert!(!s.starts_with('-') && !s.starts_with('.'));
            }
            Err(e) => {
                let msg = e.to_string();
                prop_assert!(!msg.chars().any(is_dangerous), "{:?}", msg);
                prop_assert!(msg.chars().count() < 300, "{:?}", msg);
            }
        }
    }

    #[test]
    fn a_valid_username_is_accepted_unchanged(s in valid_username()) {
        let u = Username::parse(&s).expect("valid");
        prop_assert_eq!(u.as_str(), s.as_str());
    }

    #[test]
    fn breaking_a_valid_username_is_rejected(
        s in valid_username(),
        at in any::<prop::sample::Index>(),
        bad in prop_oneof![
            Just('-'), Just(' '), Just('/'), Just('\\'), Just('\u{0}'), Just('\u{202E}'),
            Just('\u{2066}'), Just('@'), Just('é'), Just('\u{FEFF}')
        ],
    ) {
        // A leading '-' or '.' is refused; elsewhere '-' is fine, so only put it first.
        let mut chars: Vec<char> = s.chars().collect();
        let i = if bad == '-' { 0 } else { at.index(chars.len() + 1) };
        chars.insert(i, bad);
        let broken: String = chars.into_iter().collect();
        prop_assert!(Username::parse(&broken).is_err(), "{:?} was accepted", broken);
    }

    #[test]
    fn sherlock_line_parser_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let line = String::from_utf8_lossy(&bytes);
        check_line(&parse_line(&line))?;
    }

    #[test]
    fn sherlock_line_parser_never_panics_on_near_misses(
        prefix in prop_oneof![Just("[+] "), Just("[-] "), Just("[*] "), Just("[!] account-scanner launcher: "), Just("\u{1b}[32m[+]\u{1b}[0m "), Just("")],
        rest in tricky_string(),
        esc in prop_oneof![Just(""), Just("\u{1b}"), Just("\u{1b}["), Just("\u{1b}]8;;"), Just("\r")],
    ) {
        check_line(&parse_line(&format!("{prefix}{rest}{esc}")))?;
    }

    #[test]
    fn a_claimed_line_gives_back_its_site_and_url(
        site in "[A-Za-z0-9][A-Za-z0-9 ._()-]{0,30}[A-Za-z0-9)]",
        url in "https?://[a-z0-9.-]{1,20}(:[0-9]{1,5})?/[A-Za-z0-9_./?=&%:#-]{0,40}",
        colour in any::<bool>(),
        crlf in any::<bool>(),
    ) {
        let (on, off) = if colour { ("\u{1b}[1;92m", "\u{1b}[0m") } else { ("", "") };
        let end = if crlf { "\r\n" } else { "\n" };
        let line = format!("{on}[+]{off} {on}{site}:{off} {url}{end}");
        match parse_line(&line) {
            SherlockLine::Site(r) => {
                prop_assert_eq!(r.status, SiteStatus::Claimed);
                prop_assert_eq!(&r.site, &site);
                prop_assert_eq!(r.url_user.as_deref(), Some(url.as_str()));
            }
            other => prop_assert!(false, "{:?} parsed as {:?}", line, other),
        }
    }

    #[test]
    fn a_not_found_line_gives_back_its_site(site in "[A-Za-z0-9][A-Za-z0-9 ._-]{0,30}[A-Za-z0-9]") {
        match parse_line(&format!("[-] {site}: Not Found!")) {
            SherlockLine::Site(r) => {
                prop_assert_eq!(r.status, SiteStatus::Available);
                prop_assert_eq!(&r.site, &site);
            }
            other => prop_assert!(false, "{:?}", other),
        }
    }

    #[test]
    fn listing_parser_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = parse_listing(&bytes);
    }

    #[test]
    fn listing_parser_never_panics_on_any_json(v in json_value()) {
        let _ = parse_listing(v.to_string().as_bytes());
        let _ = parse_listing(json!({"kind": "Listing", "data": v}).to_string().as_bytes());
        let _ = parse_listing(json!({"kind": "Listing", "data": {"children": [v.clone()], "after": v}}).to_string().as_bytes());
    }

    #[test]
    fn a_generated_listing_gives_back_its_items(
        children in prop::collection::vec(child(), 0..12),
        after in prop::option::of("t1_[a-z0-9]{1,8}"),
    ) {
        let body = json!({"kind": "Listing", "data": {
            "after": after,
            "dist": children.len(),
            "children": children.iter().map(|c| c.json.clone()).collect::<Vec<_>>(),
        }});
        let page = parse_listing(body.to_string().as_bytes()).map_err(TestCaseError::fail)?;
        let expected: Vec<&Child> = children.iter().filter(|c| c.kind != "more").collect();
        prop_assert_eq!(page.items.len(), expected.len());
        for (item, c) in page.items.iter().zip(&expected) {
            prop_assert_eq!(&item.id, &format!("{}_{}", c.kind, c.id));
            prop_assert_eq!(&item.subreddit, &c.subreddit);
            if c.kind == "t1" {
                prop_assert_eq!(&item.text, &c.text);
            } else {
                prop_assert!(item.text.starts_with(&c.title), "{:?}", item.text);
            }
        }
        prop_assert_eq!(page.after, after);
    }

    #[test]
    fn a_null_anywhere_in_an_item_loses_nothing_else(
        children in prop::collection::vec(child(), 1..6),
        which in any::<prop::sample::Index>(),
        field in prop::sample::select(vec![
            "body", "title", "selftext", "link_title", "subreddit", "permalink", "url",
            "score", "created_utc", "over_18", "edited", "is_self", "author",
        ]),
    ) {
        let mut values: Vec<Value> = children.iter().map(|c| c.json.clone()).collect();
        let i = which.index(values.len());
        values[i]["data"][field] = Value::Null;
        let body = json!({"kind": "Listing", "data": {"after": null, "children": values}});
        let page = parse_listing(body.to_string().as_bytes()).map_err(TestCaseError::fail)?;
        let expected = children.iter().filter(|c| c.kind != "more").count();
        prop_assert_eq!(page.items.len(), expected, "a null {} lost items", field);
    }
}

/// What the parsed line must satisfy whatever the input.
fn check_line(parsed: &SherlockLine) -> Result<(), TestCaseError> {
    if let SherlockLine::Site(SiteResult { site, .. }) = parsed {
        prop_assert!(!site.is_empty());
        prop_assert!(!site.contains(':'), "{:?}", site);
        prop_assert_eq!(site.trim(), site.as_str());
    }
    Ok(())
}

#[derive(Debug, Clone)]
struct Child {
    kind: &'static str,
    id: String,
    subreddit: String,
    text: String,
    title: String,
    json: Value,
}

/// A listing child as Reddit sends it: a comment, a post, or a "more" stub, with odd but
/// well-typed values (any Unicode text, fractional or negative numbers, `edited` as a time).
fn child() -> impl Strategy<Value = Child> {
    (
        prop::sample::select(vec!["t1", "t3", "more"]),
        "[a-z0-9]{1,8}",
        "[A-Za-z0-9_]{1,21}",
        any::<String>(),
        any::<String>(),
        prop_oneof![any::<i64>().prop_map(|v| json!(v)), any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|v| json!(v))],
        prop_oneof![Just(json!(false)), Just(json!(true)), (-1e12f64..1e12).prop_map(|v| json!(v))],
        -1e13f64..1e13,
    )
        .prop_map(|(kind, id, subreddit, text, title, score, edited, created)| {
            let json = match kind {
                "t1" => json!({"kind": "t1", "data": {
                    "id": id, "name": format!("t1_{id}"), "author": "someone", "body": text,
                    "subreddit": subreddit, "link_title": title, "permalink": format!("/r/{subreddit}/comments/x/y/{id}/"),
                    "score": score, "created_utc": created, "over_18": false, "edited": edited,
                    "all_awardings": [], "gildings": {}
                }}),
                "t3" => json!({"kind": "t3", "data": {
                    "id": id, "name": format!("t3_{id}"), "author": "someone", "title": title,
                    "selftext": text, "subreddit": subreddit, "permalink": format!("/r/{subreddit}/comments/{id}/y/"),
                    "url": "https://example.invalid/x", "is_self": true, "num_comments": 3,
                    "score": score, "created_utc": created, "over_18": true, "edited": edited
                }}),
                _ => json!({"kind": "more", "data": {"count": 3, "children": ["a", "b"]}}),
            };
            Child { kind, id, subreddit, text, title, json }
        })
}

/// Any JSON value, nested a few levels.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|v| json!(v)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|v| json!(v)),
        prop_oneof![
            any::<String>(),
            Just("t1".to_string()),
            Just("t3".to_string()),
            Just("Listing".to_string())
        ]
        .prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop::sample::select(vec![
                        "kind",
                        "data",
                        "children",
                        "after",
                        "body",
                        "title",
                        "name",
                        "id",
                        "score",
                        "created_utc",
                        "edited",
                        "permalink",
                        "x"
                    ]),
                    inner
                ),
                0..6
            )
            .prop_map(|kv| Value::Object(
                kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
            )),
        ]
    })
}
