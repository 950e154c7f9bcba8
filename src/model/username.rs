//! The username validator: the only way a user-typed name reaches Sherlock or a file name.

use std::fmt;

pub const MAX_USERNAME_CHARS: usize = 64;

/// A username that is safe to pass to Sherlock as one argument after `--` and to use in a
/// file name: 1-64 ASCII letters, digits, `_`, `.` or `-`, not starting with `-` or `.`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Username(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsernameError {
    #[error("the username is empty: give the name to look up, e.g. `alice`")]
    Empty,
    #[error(
        "`{shown}` is not a valid username: it is {len} characters long, the limit is {MAX_USERNAME_CHARS}"
    )]
    TooLong { shown: String, len: usize },
    #[error("`{shown}` is not a valid username: it contains a control character ({codepoint})")]
    ControlCharacter { shown: String, codepoint: String },
    #[error(
        "`{shown}` is not a valid username: usernames may not contain spaces or other whitespace"
    )]
    Whitespace { shown: String },
    #[error(
        "`{shown}` is not a valid username: usernames may not start with '-' (it would be read as an option)"
    )]
    LeadingDash { shown: String },
    #[error(
        "`{shown}` is not a valid username: '{{?}}' is Sherlock's wildcard for several names; scan each name on its own"
    )]
    Wildcard { shown: String },
    #[error(
        "`{shown}` is not a valid username: usernames may not contain '{separator}' (a path separator)"
    )]
    PathSeparator { shown: String, separator: char },
    #[error("`{shown}` is not a valid username: usernames may not start with '.'")]
    LeadingDot { shown: String },
    #[error(
        "`{shown}` is not a valid username: '{character}' cannot appear in a profile URL; use letters, digits, '_', '.' or '-'"
    )]
    InvalidCharacter { shown: String, character: String },
}

impl Username {
    pub fn parse(input: &str) -> Result<Self, UsernameError> {
        if input.is_empty() {
            return Err(UsernameError::Empty);
        }
        let shown = shown(input);
        let len = input.chars().count();
        if len > MAX_USERNAME_CHARS {
            return Err(UsernameError::TooLong { shown, len });
        }
        if let Some(c) = input
            .chars()
            .find(|c| c.is_control() || is_invisible_format(*c))
        {
            return Err(UsernameError::ControlCharacter {
                shown,
                codepoint: format!("U+{:04X}", c as u32),
            });
        }
        if input.chars().any(char::is_whitespace) {
            return Err(UsernameError::Whitespace { shown });
        }
        if input.starts_with('-') {
            return Err(UsernameError::LeadingDash { shown });
        }
        if input.contains("{?}") {
            return Err(UsernameError::Wildcard { shown });
        }
        if let Some(separator) = input.chars().find(|c| matches!(c, '/' | '\\')) {
            return Err(UsernameError::PathSeparator { shown, separator });
        }
        if input.starts_with('.') {
            return Err(UsernameError::LeadingDot { shown });
        }
        if let Some(c) = input
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
        {
            return Err(UsernameError::InvalidCharacter {
                shown,
                character: c.escape_debug().collect(),
            });
        }
        Ok(Username(input.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for Username {
    type Err = UsernameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Username::parse(s)
    }
}

/// Zero-width and bidirectional formatting characters: invisible, and used to disguise names
/// (the isolates U+2066-U+2069 and the Arabic letter mark reorder text like the embeddings).
fn is_invisible_format(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

/// The rejected input as it is echoed back: escaped, and cut to 32 characters.
fn shown(input: &str) -> String {
    let mut s: String = input
        .chars()
        .take(32)
        .flat_map(|c| {
            if c.is_control() || is_invisible_format(c) {
                c.escape_unicode().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .filter(|c| *c != '`')
        .collect();
    if input.chars().count() > 32 {
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_names() {
        for name in ["alice", "Bob_99", "j.doe", "x-y", "a", &"z".repeat(64)] {
            assert_eq!(Username::parse(name).expect(name).as_str(), name);
        }
    }

    #[test]
    fn each_rejection_has_its_own_message() {
        let cases: &[(&str, &str)] = &[
            ("", "the username is empty"),
            ("-rf", "may not start with '-'"),
            ("a b", "may not contain spaces"),
            ("{?}", "'{?}' is Sherlock's wildcard"),
            ("../../etc", "may not contain '/'"),
            ("a\\b", "may not contain '\\'"),
            (".hidden", "may not start with '.'"),
            ("bell\u{7}", "control character (U+0007)"),
            ("zero\u{200B}width", "control character (U+200B)"),
            ("iso\u{2066}late", "control character (U+2066)"),
            ("caf\u{e9}", "'\u{e9}' cannot appear in a profile URL"),
            ("a@b", "'@' cannot appear"),
        ];
        for (input, expected) in cases {
            let err = Username::parse(input).expect_err(input).to_string();
            assert!(err.contains(expected), "{input:?}: {err}");
        }
    }

    #[test]
    fn long_input_is_not_echoed_in_full() {
        let err = Username::parse(&"x".repeat(500))
            .expect_err("too long")
            .to_string();
        assert!(
            err.contains("500 characters long, the limit is 64"),
            "{err}"
        );
        assert!(err.len() < 150, "{err}");
    }
}
