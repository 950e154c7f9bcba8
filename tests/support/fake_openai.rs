//! A fake OpenAI moderation endpoint (`POST /v1/moderations`) speaking the documented wire format
//! (ARCHITECTURE.md section 5): `{"model", "input": [texts]}` → `{"id", "model", "results": [...]}`
//! with one result per input, in input order, each with `flagged`, `categories`,
//! `category_scores` (the 13 omni-moderation categories) and `category_applied_input_types`.
//!
//! Scores are derived from the text ([`scores_for`]) with the same cues as the fake Perspective:
//! "idiot" is harassment, "kill" harassment/threatening and violence, "damn" nothing much
//! (OpenAI has no profanity category), `[tox=0.42]` sets harassment exactly.
//!
//! Controls: 429 `rate_limit_exceeded` with or without `Retry-After`, a permanent failure, and a
//! wrong number of results. It fails loudly (599, recorded) on what a correct client never sends:
//! another path or method, no `Authorization: Bearer` with the key, the key in the URL, a body
//! that is not `{"model": "...", "input": [strings]}`, an empty input list, more than
//! [`MAX_INPUTS`] texts, a text over 20 KB, an empty/[deleted]/[removed] text.
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

pub const API_KEY: &str = "sk-fake-openai-key-8086";
pub const MODEL: &str = "omni-moderation-latest";
/// What the fake answers in `model` (OpenAI resolves the alias).
pub const RESOLVED_MODEL: &str = "omni-moderation-2024-09-26";
pub const MAX_INPUTS: usize = 256;
pub const MAX_TEXT_BYTES: usize = 20 * 1024;
pub const CATEGORIES: [&str; 13] = [
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/intent",
    "self-harm/instructions",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
];

#[derive(Debug, Clone, Default)]
pub struct FakeOpenAiConfig {
    pub latency: Duration,
}

#[derive(Debug, Default)]
struct Controls {
    fail_always: Option<u16>,
    /// Every request answers 200 with this body, whatever it asked (garbage drills).
    garbage: Option<&'static str>,
    /// Every request answers 200 with a JSON answer padded to this many bytes (streamed).
    huge: Option<u64>,
    /// The next requests answer 429 `rate_limit_exceeded`, with `Retry-After: secs` if `Some`.
    rate_limited: Vec<Option<u64>>,
    /// The next request answers one result too few.
    drop_a_result: bool,
}

type Shared = fake_server::Shared<FakeOpenAiConfig, Controls>;

pub struct FakeOpenAi {
    server: Server,
    shared: Arc<Shared>,
}

impl FakeOpenAi {
    pub fn start(cfg: FakeOpenAiConfig) -> FakeOpenAi {
        let shared = Shared::new(cfg);
        let app = Router::new().fallback(handle).with_state(shared.clone());
        FakeOpenAi {
            server: Server::start("fake-openai", app),
            shared,
        }
    }

    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// Environment for the binary: the key and the base pointing here.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("OPENAI_API_KEY", API_KEY.to_string()),
            ("OPENAI_API_BASE", self.base_url()),
        ]
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.log.lock().clone()
    }

    /// The `input` arrays of the requests, in arrival order.
    pub fn batches(&self) -> Vec<Vec<String>> {
        self.requests()
            .iter()
            .filter_map(|r| serde_json::from_str::<Value>(&r.body).ok())
            .map(|b| {
                b["input"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|t| t.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default()
            })
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
            "fake OpenAI got unexpected requests:\n{}",
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

    /// The next request answers 429 `rate_limit_exceeded`, with `Retry-After: secs` if given.
    pub fn rate_limit_next(&self, retry_after: Option<u64>) {
        self.shared.controls().rate_limited.push(retry_after);
    }

    /// The next successful answer has one result fewer than inputs.
    pub fn drop_a_result_next(&self) {
        self.shared.controls().drop_a_result = true;
    }
}

/// The category scores the fake gives a text.
pub fn scores_for(text: &str) -> BTreeMap<&'static str, f64> {
    let lower = text.to_lowercase();
    let base = 0.001 + (text.len() % 10) as f64 / 1000.0;
    let mut s: BTreeMap<&'static str, f64> = CATEGORIES.iter().map(|c| (*c, base)).collect();
    if lower.contains("idiot") {
        s.insert("harassment", 0.91);
        s.insert("hate", 0.12);
    }
    if lower.contains("kill") {
        s.insert("harassment/threatening", 0.83);
        s.insert("violence", 0.88);
    }
    if lower.contains("damn") {
        s.insert("harassment", s["harassment"].max(0.05));
    }
    if let Some(rest) = lower.split("[tox=").nth(1)
        && let Some(v) = rest.split(']').next().and_then(|v| v.parse::<f64>().ok())
    {
        s.insert("harassment", v);
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
                format!("fake OpenAI did not expect this request: {why}"),
            )
                .into_response()
        }
    };
    record.status = response.status().as_u16();
    shared.log.push(record);
    response
}

fn error(status: StatusCode, kind: &str, code: Option<&str>, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": {
            "message": message,
            "type": kind,
            "param": null,
            "code": code,
        }})),
    )
        .into_response()
}

fn answer(shared: &Shared, r: &Recorded) -> Result<Response, String> {
    if r.method != "POST" || r.path != "/v1/moderations" {
        return Err("unknown method or path".into());
    }
    if !r.query.is_empty() {
        return Err(format!(
            "query parameters {:?}: the key must never be in the URL",
            r.query
        ));
    }
    let auth = r
        .header("authorization")
        .ok_or_else(|| "no Authorization header".to_string())?;
    let key = auth
        .strip_prefix("Bearer ")
        .ok_or_else(|| "Authorization is not `Bearer KEY`".to_string())?;
    let body: Value =
        serde_json::from_str(&r.body).map_err(|e| format!("the body is not JSON: {e}"))?;
    let model = body["model"]
        .as_str()
        .ok_or_else(|| "no model".to_string())?;
    let inputs: Vec<&str> = body["input"]
        .as_array()
        .ok_or_else(|| "input is not an array".to_string())?
        .iter()
        .map(|v| {
            v.as_str()
                .ok_or_else(|| "an input is not a string".to_string())
        })
        .collect::<Result<_, _>>()?;
    if inputs.is_empty() || inputs.len() > MAX_INPUTS {
        return Err(format!("{} inputs", inputs.len()));
    }
    for t in &inputs {
        if t.len() > MAX_TEXT_BYTES {
            return Err(format!("a text of {} bytes (limit 20 KB)", t.len()));
        }
        if matches!(t.trim(), "" | "[deleted]" | "[removed]") {
            return Err(format!("a placeholder text {t:?} was sent"));
        }
    }

    if key != API_KEY {
        let shown: String = key.chars().take(3).collect();
        return Ok(error(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            Some("invalid_api_key"),
            &format!(
                "Incorrect API key provided: {shown}***. You can find your API key at https://platform.openai.com/account/api-keys."
            ),
        ));
    }
    let mut c = shared.controls();
    if let Some(body) = c.garbage {
        return Ok(fake_server::garbage(body));
    }
    if let Some(padding) = c.huge {
        return Ok(fake_server::huge_json(
            r#"{"id": "modr-huge", "model": "omni-moderation-2024-09-26", "results": []"#,
            padding,
            "}",
        ));
    }
    if let Some(status) = c.fail_always {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return Ok(error(
            status,
            "server_error",
            None,
            "The server had an error while processing your request.",
        ));
    }
    if !c.rate_limited.is_empty() {
        let retry_after = c.rate_limited.remove(0);
        let mut response = error(
            StatusCode::TOO_MANY_REQUESTS,
            "requests",
            Some("rate_limit_exceeded"),
            "Rate limit reached for omni-moderation-latest on requests per min (RPM): Limit 3, Used 3, Requested 1.",
        );
        if let Some(secs) = retry_after {
            response.headers_mut().insert(
                "retry-after",
                secs.to_string().parse().expect("header value"),
            );
        }
        return Ok(response);
    }
    let drop_one = std::mem::take(&mut c.drop_a_result);
    drop(c);
    if model != MODEL {
        return Ok(error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            Some("model_not_found"),
            &format!("The model `{model}` does not exist or you do not have access to it."),
        ));
    }

    let mut results: Vec<Value> = inputs
        .iter()
        .map(|t| {
            let scores = scores_for(t);
            let flags: serde_json::Map<String, Value> = scores
                .iter()
                .map(|(k, v)| (k.to_string(), json!(*v >= 0.5)))
                .collect();
            let applied: serde_json::Map<String, Value> = scores
                .keys()
                .map(|k| (k.to_string(), json!(["text"])))
                .collect();
            json!({
                "flagged": scores.values().any(|v| *v >= 0.5),
                "categories": flags,
                "category_scores": scores,
                "category_applied_input_types": applied,
            })
        })
        .collect();
    if drop_one {
        results.pop();
    }
    Ok((
        StatusCode::OK,
        axum::Json(json!({
            "id": "modr-fake-0001",
            "model": RESOLVED_MODEL,
            "results": results,
        })),
    )
        .into_response())
}
