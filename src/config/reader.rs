//! Reads variables by name, taking each one's default and range from its row in [`super::spec`],
//! and collects every invalid value (all are reported at once).

use std::path::PathBuf;
use std::time::Duration;

use super::spec::{self, Kind, Spec};
use super::{InvalidVariable, ShardCount};

pub(super) struct Reader<'a, F: Fn(&str) -> Option<String>> {
    pub(super) lookup: &'a F,
    pub(super) problems: Vec<InvalidVariable>,
}

impl<F: Fn(&str) -> Option<String>> Reader<'_, F> {
    /// The variable's row; a name or kind that does not match its row is a bug of this file,
    /// reported like a bad value (and caught by the defaults test) rather than a panic.
    pub(super) fn spec(&mut self, variable: &'static str) -> Option<&'static Spec> {
        let found = spec::find(variable);
        if found.is_none() {
            self.invalid(variable, "has no row in src/config/spec.rs (a bug)".into());
        }
        found
    }

    pub(super) fn mismatch<T>(&mut self, variable: &'static str, fallback: T) -> T {
        self.invalid(
            variable,
            "is read as another kind than its row in src/config/spec.rs says (a bug)".into(),
        );
        fallback
    }

    pub(super) fn default_of<T: std::str::FromStr>(spec: &Spec, fallback: T) -> T {
        spec.default
            .and_then(|d| d.parse().ok())
            .unwrap_or(fallback)
    }

    pub(super) fn seconds(&mut self, variable: &'static str) -> Duration {
        match self.spec(variable) {
            Some(
                s @ Spec {
                    kind: Kind::Seconds { min, max },
                    ..
                },
            ) => {
                let default = Self::default_of(s, *min);
                self.seconds_in(variable, default, *min, *max)
            }
            _ => self.mismatch(variable, Duration::ZERO),
        }
    }

    pub(super) fn count(&mut self, variable: &'static str) -> usize {
        match self.spec(variable) {
            Some(
                s @ Spec {
                    kind: Kind::Count { min, max },
                    ..
                },
            ) => {
                let (min, max) = (*min as usize, *max as usize);
                let default = Self::default_of(s, min);
                self.count_in(variable, default, min, max)
            }
            _ => self.mismatch(variable, 0),
        }
    }

    pub(super) fn number(&mut self, variable: &'static str) -> f64 {
        match self.spec(variable) {
            Some(
                s @ Spec {
                    kind: Kind::Number { min, max },
                    ..
                },
            ) => {
                let default = Self::default_of(s, *min);
                self.number_in(variable, default, *min, *max)
            }
            _ => self.mismatch(variable, 0.0),
        }
    }

    pub(super) fn boolean(&mut self, variable: &'static str) -> bool {
        match self.spec(variable) {
            Some(
                s @ Spec {
                    kind: Kind::Flag, ..
                },
            ) => {
                let default = Self::default_of(s, false);
                self.boolean_or(variable, default)
            }
            _ => self.mismatch(variable, false),
        }
    }

    pub(super) fn base_url(&mut self, variable: &'static str) -> String {
        match self.spec(variable) {
            Some(Spec {
                kind: Kind::Url,
                default,
                ..
            }) => self.base_url_or(variable, default.unwrap_or("")),
            _ => self.mismatch(variable, String::new()),
        }
    }

    pub(super) fn prefix(&mut self, variable: &'static str) -> String {
        let default = self.spec(variable).and_then(|s| s.default).unwrap_or("!");
        self.prefix_or(variable, default)
    }

    /// Free text with the row's default when unset.
    pub(super) fn text(&mut self, variable: &'static str) -> String {
        let default = self.spec(variable).and_then(|s| s.default).unwrap_or("");
        self.string(variable).unwrap_or_else(|| default.to_string())
    }

    pub(super) fn invalid(&mut self, variable: &'static str, message: String) {
        self.problems.push(InvalidVariable { variable, message });
    }

    /// A set, non-blank value, trimmed. Blank counts as unset so `.env` placeholders like `X=` work.
    pub(super) fn string(&mut self, variable: &'static str) -> Option<String> {
        debug_assert!(
            spec::find(variable).is_some(),
            "{variable} missing from spec::SPECS"
        );
        (self.lookup)(variable)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    /// A path, made absolute against the working directory once, here: children (Sherlock) run
    /// in a directory of their own, where a relative path would mean something else.
    pub(super) fn path(&mut self, variable: &'static str) -> Option<PathBuf> {
        let raw = self.string(variable)?;
        match std::path::absolute(&raw) {
            Ok(path) => Some(path),
            Err(e) => {
                self.invalid(
                    variable,
                    format!(
                        "`{}` cannot be made an absolute path (the working directory cannot be read: {e})",
                        shorten(&raw)
                    ),
                );
                None
            }
        }
    }

    pub(super) fn seconds_in(
        &mut self,
        variable: &'static str,
        default: u64,
        min: u64,
        max: u64,
    ) -> Duration {
        let Some(raw) = self.string(variable) else {
            return Duration::from_secs(default);
        };
        match raw.parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) => Duration::from_secs(n),
            Ok(n) => {
                self.invalid(
                    variable,
                    format!(
                        "{n} is out of range: use a whole number of seconds from {min} to {max}"
                    ),
                );
                Duration::from_secs(default)
            }
            Err(_) => {
                self.invalid(
                    variable,
                    format!("`{}` is not a whole number of seconds", shorten(&raw)),
                );
                Duration::from_secs(default)
            }
        }
    }

    pub(super) fn count_in(
        &mut self,
        variable: &'static str,
        default: usize,
        min: usize,
        max: usize,
    ) -> usize {
        let Some(raw) = self.string(variable) else {
            return default;
        };
        match raw.parse::<usize>() {
            Ok(n) if (min..=max).contains(&n) => n,
            _ => {
                self.invalid(
                    variable,
                    format!(
                        "`{}` is not allowed: use a whole number from {min} to {max}",
                        shorten(&raw)
                    ),
                );
                default
            }
        }
    }

    /// `FIRST-LAST` (inclusive) within a fixed `SHARD_COUNT`.
    pub(super) fn shard_range(&mut self, shards: ShardCount) -> Option<(u32, u32)> {
        let raw = self.string("SHARD_RANGE")?;
        let parsed = raw.split_once('-').and_then(|(a, b)| {
            Some((a.trim().parse::<u32>().ok()?, b.trim().parse::<u32>().ok()?))
        });
        match (parsed, shards) {
            (Some((first, last)), ShardCount::Fixed(count)) if first <= last && last < count => {
                Some((first, last))
            }
            (Some(_), ShardCount::Auto) => {
                self.invalid(
                    "SHARD_RANGE",
                    "needs a fixed SHARD_COUNT, not `auto`".into(),
                );
                None
            }
            _ => {
                self.invalid(
                    "SHARD_RANGE",
                    format!(
                        "`{}` is not a range FIRST-LAST of shard ids below SHARD_COUNT, e.g. 0-3",
                        shorten(&raw)
                    ),
                );
                None
            }
        }
    }

    /// Comma-separated Discord ids (snowflakes).
    pub(super) fn ids(&mut self, variable: &'static str) -> Vec<u64> {
        let Some(raw) = self.string(variable) else {
            return Vec::new();
        };
        let mut ids = Vec::new();
        for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part.parse::<u64>() {
                Ok(id) if id > 0 => ids.push(id),
                _ => {
                    self.invalid(
                        variable,
                        format!(
                            "`{}` is not a Discord id (a number such as 123456789012345678; enable Developer Mode and use Copy ID)",
                            shorten(part)
                        ),
                    );
                }
            }
        }
        ids
    }

    pub(super) fn prefix_or(&mut self, variable: &'static str, default: &str) -> String {
        let Some(raw) = self.string(variable) else {
            return default.to_string();
        };
        if raw.chars().count() > 5 || raw.chars().any(char::is_whitespace) {
            self.invalid(
                variable,
                format!(
                    "`{}` must be 1-5 characters without spaces, e.g. `!`",
                    shorten(&raw)
                ),
            );
            return default.to_string();
        }
        raw
    }

    /// Like [`Self::base_url`] for a variable that has no default: unset means `None`.
    pub(super) fn optional_base_url(&mut self, variable: &'static str) -> Option<String> {
        self.string(variable)?;
        Some(self.base_url_or(variable, "")).filter(|u| !u.is_empty())
    }

    pub(super) fn number_in(
        &mut self,
        variable: &'static str,
        default: f64,
        min: f64,
        max: f64,
    ) -> f64 {
        let Some(raw) = self.string(variable) else {
            return default;
        };
        match raw.parse::<f64>() {
            Ok(n) if n.is_finite() && (min..=max).contains(&n) => n,
            _ => {
                self.invalid(
                    variable,
                    format!(
                        "`{}` is not allowed: use a number from {min} to {max}",
                        shorten(&raw)
                    ),
                );
                default
            }
        }
    }

    /// An `http://` or `https://` URL without query or fragment; returned without a trailing `/`.
    pub(super) fn base_url_or(&mut self, variable: &'static str, default: &str) -> String {
        let Some(raw) = self.string(variable) else {
            return default.to_string();
        };
        match reqwest::Url::parse(&raw) {
            Ok(url)
                if matches!(url.scheme(), "http" | "https")
                    && url.has_host()
                    && url.query().is_none()
                    && url.fragment().is_none() =>
            {
                raw.trim_end_matches('/').to_string()
            }
            _ => {
                self.invalid(
                    variable,
                    format!(
                        "`{}` is not a base URL: use http(s)://host[:port][/path]",
                        shorten(&raw)
                    ),
                );
                default.to_string()
            }
        }
    }

    pub(super) fn boolean_or(&mut self, variable: &'static str, default: bool) -> bool {
        let Some(raw) = self.string(variable) else {
            return default;
        };
        match raw.to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => true,
            "0" | "false" | "no" | "off" => false,
            _ => {
                self.invalid(
                    variable,
                    format!("`{}` is not a boolean: use true or false", shorten(&raw)),
                );
                default
            }
        }
    }
}

/// Echoes at most 40 characters of a bad value back, escaped.
pub(super) fn shorten(raw: &str) -> String {
    let mut s: String = raw.chars().take(40).flat_map(char::escape_debug).collect();
    if raw.chars().count() > 40 {
        s.push('…');
    }
    s
}
