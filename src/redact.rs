//! Keeping secrets out of the log: every line the process logs passes through [`Redactor`],
//! which removes the values of the secret variables and Discord interaction tokens.
//!
//! Code logs errors in their `Display` form (see `bot::commands::describe`), but a dependency
//! logging at `trace` (a request URL, a gateway payload) must not leak either: this is the net
//! under that.

use std::borrow::Cow;
use std::io::Write;
use std::sync::{Arc, LazyLock};

use regex::Regex;

/// Shorter values are not taken for secrets (they would blank out ordinary words).
const MIN_SECRET_LEN: usize = 8;

/// `/webhooks/{app}/{token}` and `/interactions/{id}/{token}`: the token is a credential for
/// 15 minutes (it can post as the bot in that channel).
static INTERACTION_TOKEN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(/(?:webhooks|interactions)/\d+/)[A-Za-z0-9_.\-]{16,}")
        .unwrap_or_else(|_| unreachable!("a constant pattern"))
});

/// A quoted value after a key that ends in `token`, as JSON (`"token":"…"`, a gateway event)
/// or `Debug` (`token: "…"`, a request route in serenity's trace spans) print it, quotes
/// escaped or not.
static TOKEN_FIELD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?i)([a-z_]*token\\?"?\s*[:=]\s*(?:Some\()?\\?")[^"\\]{8,}"#)
        .unwrap_or_else(|_| unreachable!("a constant pattern"))
});

/// Replaces interaction tokens (in URLs and in `token` fields) with `[token]`.
pub fn interaction_tokens(text: &str) -> String {
    let urls = INTERACTION_TOKEN.replace_all(text, "${1}[token]");
    TOKEN_FIELD.replace_all(&urls, "${1}[token]").into_owned()
}

/// Removes known secret values and interaction tokens from text.
#[derive(Clone, Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redactor")
            .field("secrets", &self.secrets.len())
            .finish()
    }
}

impl Redactor {
    /// The secrets in the environment now (after `.env` was loaded).
    pub fn from_env() -> Self {
        Redactor::new(
            crate::config::spec::SPECS
                .iter()
                .filter(|s| s.secret())
                .filter_map(|s| std::env::var(s.name).ok()),
        )
    }

    pub fn new(values: impl IntoIterator<Item = String>) -> Self {
        let mut secrets: Vec<String> = values
            .into_iter()
            .map(|v| v.trim().to_string())
            .filter(|v| v.len() >= MIN_SECRET_LEN)
            .collect();
        // Longest first, so a secret containing another is removed whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Redactor { secrets }
    }

    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = Cow::Owned(out.replace(secret.as_str(), "[redacted]"));
            }
        }
        if INTERACTION_TOKEN.is_match(&out) || TOKEN_FIELD.is_match(&out) {
            out = Cow::Owned(interaction_tokens(&out));
        }
        out
    }
}

/// A `tracing_subscriber` writer to stderr that redacts each event before it is written.
#[derive(Clone, Debug)]
pub struct RedactingStderr {
    redactor: Arc<Redactor>,
}

impl RedactingStderr {
    pub fn new(redactor: Redactor) -> Self {
        RedactingStderr {
            redactor: Arc::new(redactor),
        }
    }
}

/// One event's bytes, written out (redacted) when the formatter drops it.
pub struct EventBuffer {
    redactor: Arc<Redactor>,
    buf: Vec<u8>,
}

impl Write for EventBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for EventBuffer {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.buf);
        let clean = self.redactor.redact(&text);
        let _ = std::io::stderr().lock().write_all(clean.as_bytes());
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for RedactingStderr {
    type Writer = EventBuffer;

    fn make_writer(&'a self) -> Self::Writer {
        EventBuffer {
            redactor: self.redactor.clone(),
            buf: Vec::with_capacity(256),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_and_interaction_tokens_are_taken_out() {
        let r = Redactor::new(["sk-live-0123456789".to_string(), "short".to_string()]);
        let line = "POST http://x/api/v10/webhooks/123/aW50ZXJhY3Rpb246MTIzNDU2Nzg5MA.abc-_ failed; key sk-live-0123456789; short stays";
        let clean = r.redact(line);
        assert_eq!(
            clean,
            "POST http://x/api/v10/webhooks/123/[token] failed; key [redacted]; short stays"
        );
        assert_eq!(
            interaction_tokens("/interactions/99/tok_tok_tok_tok_tok_1/callback"),
            "/interactions/99/[token]/callback"
        );
        assert_eq!(
            interaction_tokens(r#"{"id":"1","token":"aW50ZXJhY3Rpb246MTIz","type":2}"#),
            r#"{"id":"1","token":"[token]","type":2}"#
        );
        assert_eq!(
            interaction_tokens(
                r#"Route::Followup { application_id: 1, token: "aW50ZXJhY3Rpb246MTIz" }"#
            ),
            r#"Route::Followup { application_id: 1, token: "[token]" }"#
        );
        assert_eq!(
            interaction_tokens(r#"continuation_token: Some("aW50ZXJhY3Rpb246MTIz")"#),
            r#"continuation_token: Some("[token]")"#
        );
    }
}
