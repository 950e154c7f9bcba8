//! A fake Perspective API (`POST /v1alpha1/comments:analyze`) speaking the documented wire
//! format (ARCHITECTURE.md section 5).
//!
//! Scores are derived from the text ([`scores_for`]): "idiot" is an insult, "kill" a threat,
//! "damn" profanity, `[tox=0.42]` sets TOXICITY exactly, anything else scores low. Texts
//! containing `[lang:xx]` are refused with LANGUAGE_NOT_SUPPORTED_BY_ATTRIBUTE unless only
//! TOXICITY is asked; `[nolang:xx]` is refused even then. A wrong key gets 403 (its message
//! echoes the key, so redaction is tested too).
//!
//! It fails loudly on what a correct client never sends (599, recorded): another path or method,
//! the key missing from `x-goog-api-key` or present in the URL, `doNotStore` not true, other
//! attributes than the six (or TOXICITY alone), a text over 20 KB, an empty/[deleted]/[removed]
//! text.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::fake_server::{self, Recorded, Server, UNEXPECTED_STATUS};

pub const API_KEY: &str = "PKEY-fake-perspective-key-31337";
pub const ALL: [&str; 6] = [
    "TOXICITY",
    "SEVERE_TOXICITY",
    "IDENTITY_ATTACK",
    "INSULT",
    "PROFANITY",
    "THREAT",
];
pub const MAX_TEXT_BYTES: usize = 20 * 1024;

#[derive(Debug, Clone, Default)]
pub struct FakePerspectiveConfig {
    pub latency: Duration,
}

#[derive(Debug, Default)]
struct Controls {
    fail_always: Option<u16>,
    /// Every request answers 200 with this body, whatever it asked (garbage drills).
    garbage: Option<&'static str>,
    /// Every request answers 200 with a JSON answer padded to this many bytes (streamed).
    huge: Option<u64>,
    /// The next requests answer 429 with `Retry-After` (seconds).
    rate_limited: Vec<u64>,
}

type Shared = fake_server::Shared<FakePerspectiveConfig, Controls>;

pub struct FakePerspective {
    server: Server,
    shared: Arc<Shared>,
}

impl FakePerspective {
    pub fn start(cfg: FakePerspectiveConfig) -> FakePerspective {
        let shared = Shared::new(cfg);
        let app = Router::new().fallback(handle).with_state(shared.clone());
        FakePerspective {
            server: Server::start("fake-perspective", app),
            shared,
        }
    }

    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// Environment for the binary: the key and the base pointing here.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("PERSPECTIVE_API_KEY", API_KEY.to_string()),
            ("PERSPECTIVE_API_BASE", self.base_url()),
        ]
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.log.lock().clone()
    }

    /// The texts of the requests, in arrival order.
    pub fn texts(&self) -> Vec<String> {
        self.requests()
            .iter()
            .filter_map(|r| serde_json::from_str::<Value>(&r.body).ok())
            .filter_map(|b| b["comment"]["text"].as_str().map(str::to_string))
            .collect()
    }

    pub fn assert_no_unexpected(&self) {
        let bad: Vec<String> = self
            .requests()
            .into_iter()
            .filter_map(|r| {
                r.unexpected
                    .map(|why| format!("{} {}: {why}", r.method, r.path))
            })
            .collect();
        assert!(
            bad.is_empty(),
            "fake Perspective got unexpected requests:\n{}",
            bad.join("\n")
        );
    }

    /// Every request answers `status` from now on (`None` to stop).
    pub fn fail_always(&self, status: Option<u16>) {
        self.shared.controls().fail_always = status;
    }

    /// Every request answers 200 with `body` from now on (`None` to stop): an HTML page, a
    /// cut-off or otherwise wrong JSON. The content type follows the body's first character.
    pub fn answer_garbage(&self, body: Option<&'static str>) {
        self.shared.controls().garbage = body;
    }

    /// Every request answers 200 with a well-formed answer padded with whitespace to about
    /// `bytes` (`None` to stop), streamed as it is sent ([`fake_server::huge_json`]).
    pub fn answer_huge(&self, bytes: Option<u64>) {
        self.shared.controls().huge = bytes;
    }

    /// The next request answers 429 with `Retry-After: secs`.
    pub fn rate_limit_next(&self, secs: u64) {
        self.shared.controls().rate_limited.push(secs);
    }
}

/// The scores the fake gives a text, by attribute.
pub fn scores_for(text: &str) -> BTreeMap<&'static str, f64> {
    let lower = text.to_lowercase();
    let mut toxicity = 0.02 + (text.len() % 10) as f64 / 100.0;
    let mut s: BTreeMap<&'static str, f64> = BTreeMap::new();
    if lower.contains("idiot") {
        toxicity = 0.92;
        s.insert("INSULT", 0.88);
    }
    if lower.contains("kill") {
        toxicity = toxicity.max(0.75);
        s.insert("THREAT", 0.81);
    }
    if lower.contains("damn") {
        toxicity = toxicity.max(0.45);
        s.insert("PROFANITY", 0.55);
    }
    if let Some(rest) = lower.split("[tox=").nth(1)
        && let Some(v) = rest.split(']').next().and_then(|v| v.parse::<f64>().ok())
    {
        toxicity = v;
    }
    s.insert("TOXICITY", toxicity);
    for a in ALL {
        s.entry(a).or_insert(toxicity / 4.0);
    }
    s
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
    let response = match answer(&shared, &record) {
        Ok(r) => r,
        Err(why) => {
            record.unexpected = Some(why.clone());
            (
                StatusCode::from_u16(UNEXPECTED_STATUS).expect("599 is a status"),
                format!("fake Perspective did not expect this request: {why}"),
            )
                .into_response()
        }
    };
    record.status = response.status().as_u16();
    shared.log.push(record);
    response
}

fn error(status: StatusCode, google_status: &str, message: &str, details: Value) -> Response {
    (
        status,
        axum::Json(json!({"error": {
            "code": status.as_u16(),
            "message": message,
            "status": google_status,
            "details": details,
        }})),
    )
        .into_response()
}

fn answer(shared: &Shared, r: &Recorded) -> Result<Response, String> {
    if r.method != "POST" || r.path != "/v1alpha1/comments:analyze" {
        return Err("unknown method or path".into());
    }
    if !r.query.is_empty() {
        return Err(format!(
            "query parameters {:?}: the key must never be in the URL",
            r.query
        ));
    }
    let key = r
        .header("x-goog-api-key")
        .ok_or_else(|| "no x-goog-api-key header".to_string())?;
    let body: Value =
        serde_json::from_str(&r.body).map_err(|e| format!("the body is not JSON: {e}"))?;
    let text = body["comment"]["text"]
        .as_str()
        .ok_or_else(|| "no comment.text".to_string())?;
    if text.len() > MAX_TEXT_BYTES {
        return Err(format!("a text of {} bytes (limit 20 KB)", text.len()));
    }
    if matches!(text.trim(), "" | "[deleted]" | "[removed]") {
        return Err(format!("a placeholder text {text:?} was sent"));
    }
    if body["doNotStore"] != json!(true) {
        return Err("doNotStore is not true".into());
    }
    let mut asked: Vec<&str> = body["requestedAttributes"]
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    asked.sort();
    let mut all = ALL.to_vec();
    all.sort();
    let toxicity_only = asked == ["TOXICITY"];
    if asked != all && !toxicity_only {
        return Err(format!("unexpected requestedAttributes {asked:?}"));
    }

    if key != API_KEY {
        return Ok(error(
            StatusCode::FORBIDDEN,
            "PERMISSION_DENIED",
            &format!("API key {key} is not valid for this API."),
            json!([]),
        ));
    }
    let mut c = shared.controls();
    if let Some(body) = c.garbage {
        return Ok(fake_server::garbage(body));
    }
    if let Some(padding) = c.huge {
        return Ok(fake_server::huge_json(
            r#"{"attributeScores": {"TOXICITY": {"summaryScore": {"value": 0.01, "type": "PROBABILITY"}}}"#,
            padding,
            "}",
        ));
    }
    if let Some(status) = c.fail_always {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return Ok(error(
            status,
            "INTERNAL",
            "Internal error encountered.",
            json!([]),
        ));
    }
    if !c.rate_limited.is_empty() {
        let secs = c.rate_limited.remove(0);
        let mut response = error(
            StatusCode::TOO_MANY_REQUESTS,
            "RESOURCE_EXHAUSTED",
            "Quota exceeded for quota metric 'Analysis requests'.",
            json!([{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "RATE_LIMIT_EXCEEDED"}]),
        );
        response.headers_mut().insert(
            "retry-after",
            secs.to_string().parse().expect("header value"),
        );
        return Ok(response);
    }
    drop(c);

    let language = text
        .split("[nolang:")
        .nth(1)
        .map(|rest| (rest, true))
        .or_else(|| text.split("[lang:").nth(1).map(|rest| (rest, false)));
    if let Some((rest, refuse_all)) = language {
        let lang = rest.split(']').next().unwrap_or("xx");
        if refuse_all || !toxicity_only {
            let attr = if refuse_all {
                "TOXICITY"
            } else {
                "SEVERE_TOXICITY"
            };
            return Ok(error(
                StatusCode::BAD_REQUEST,
                "INVALID_ARGUMENT",
                &format!("Attribute {attr} does not support request languages: {lang}"),
                json!([{
                    "@type": "type.googleapis.com/google.commentanalyzer.v1alpha1.Error",
                    "errorType": "LANGUAGE_NOT_SUPPORTED_BY_ATTRIBUTE",
                    "languageNotSupportedByAttributeError": {
                        "detectedLanguages": [lang],
                        "attribute": attr
                    }
                }]),
            ));
        }
    }

    let scores = scores_for(text);
    let attribute_scores: serde_json::Map<String, Value> = asked
        .iter()
        .map(|a| {
            let v = scores.get(a).copied().unwrap_or(0.0);
            (
                a.to_string(),
                json!({
                    "spanScores": [{"begin": 0, "end": text.chars().count(), "score": {"value": v, "type": "PROBABILITY"}}],
                    "summaryScore": {"value": v, "type": "PROBABILITY"}
                }),
            )
        })
        .collect();
    Ok((
        StatusCode::OK,
        axum::Json(json!({
            "attributeScores": attribute_scores,
            "languages": ["en"],
            "detectedLanguages": ["en"]
        })),
    )
        .into_response())
}
