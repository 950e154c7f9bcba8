//! Sherlock's output, typed: the per-site result lines it prints on stdout with
//! `--print-all --no-color`, and the CSV it writes when a username is finished.

use serde::Deserialize;

use crate::model::{ErrorKind, SiteResult, SiteStatus};

/// How `sherlock/launcher.py` starts its one warning line.
pub const LAUNCHER_WARNING: &str = "[!] account-scanner launcher: ";

/// One stdout line, classified.
#[derive(Debug, Clone, PartialEq)]
pub enum SherlockLine {
    /// `[*] Checking username alice on:`
    Started {
        username: String,
    },
    Site(SiteResult),
    /// `[*] Search completed with N results`
    Finished {
        claimed: usize,
    },
    /// The project's launcher could not apply its patches and runs Sherlock unchanged.
    LauncherWarning(String),
    /// Anything else: the update-check line, blank lines, the advert.
    Other,
}

/// Classifies one line of `sherlock --print-all --no-color` output. Never panics.
pub fn parse_line(raw: &str) -> SherlockLine {
    let line = strip_escapes(raw);
    let line = line.trim_end();
    if let Some(warning) = line.strip_prefix(LAUNCHER_WARNING) {
        return SherlockLine::LauncherWarning(warning.chars().take(500).collect());
    }
    if let Some(rest) = line.strip_prefix("[*] ") {
        if let Some(name) = rest
            .strip_prefix("Checking username ")
            .and_then(|r| r.strip_suffix(" on:"))
        {
            return SherlockLine::Started {
                username: name.to_string(),
            };
        }
        if let Some(n) = rest
            .strip_prefix("Search completed with ")
            .and_then(|r| r.strip_suffix(" results"))
            .and_then(|n| n.trim().parse().ok())
        {
            return SherlockLine::Finished { claimed: n };
        }
        return SherlockLine::Other;
    }
    let (claimed, rest) = if let Some(rest) = line.strip_prefix("[+] ") {
        (true, rest)
    } else if let Some(rest) = line.strip_prefix("[-] ") {
        (false, rest)
    } else {
        return SherlockLine::Other;
    };
    // Site names never contain ':'; the URL after it may.
    let Some((site, message)) = rest.split_once(':') else {
        return SherlockLine::Other;
    };
    let site = site.trim();
    let message = message.trim();
    if site.is_empty() {
        return SherlockLine::Other;
    }
    let result = if claimed {
        let mut r = SiteResult::new(site, SiteStatus::Claimed);
        r.url_user = Some(message.to_string()).filter(|u| !u.is_empty());
        r
    } else {
        match message {
            "Not Found!" => SiteResult::new(site, SiteStatus::Available),
            "Illegal Username Format For This Site!" => SiteResult::new(site, SiteStatus::Illegal),
            "Blocked by bot detection (proxy may help)" => SiteResult::new(site, SiteStatus::Waf),
            context => {
                let mut r = SiteResult::new(site, SiteStatus::Error);
                r.error_kind = Some(ErrorKind::from_context(context));
                r.detail = Some(context.chars().take(300).collect());
                r
            }
        }
    };
    SherlockLine::Site(result)
}

/// Removes ANSI CSI sequences (`ESC [ … letter`) and OSC sequences (`ESC ] … ESC \` or BEL).
pub(crate) fn strip_escapes(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            if c != '\r' {
                out.push(c);
            }
            continue;
        }
        match chars.next() {
            Some('[') => {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            Some(']') => {
                while let Some(c) = chars.next() {
                    if c == '\u{7}' {
                        break;
                    }
                    if c == '\u{1b}' {
                        if chars.peek() == Some(&'\\') {
                            chars.next();
                        }
                        break;
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// One row of the CSV Sherlock writes with `--csv --print-all`.
#[derive(Debug, Clone, Deserialize)]
pub struct CsvRow {
    pub name: String,
    #[serde(default)]
    pub url_main: String,
    #[serde(default)]
    pub url_user: String,
    #[serde(default)]
    pub exists: String,
    #[serde(default)]
    pub http_status: String,
    #[serde(default)]
    pub response_time_s: String,
}

/// Reads Sherlock's CSV. Rows that do not parse are skipped, not fatal: stdout is the primary
/// source and the CSV only adds HTTP status, timing and URLs.
pub fn parse_csv(bytes: &[u8]) -> Vec<CsvRow> {
    csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(bytes)
        .deserialize::<CsvRow>()
        .filter_map(Result::ok)
        .collect()
}

/// Adds what only the CSV knows to results parsed from stdout; sites only the CSV lists are added.
pub fn merge_csv(results: &mut Vec<SiteResult>, rows: Vec<CsvRow>) {
    for row in rows {
        let idx = match results.iter().position(|r| r.site == row.name) {
            Some(idx) => idx,
            None => {
                let status = match row.exists.as_str() {
                    "Claimed" => SiteStatus::Claimed,
                    "Available" => SiteStatus::Available,
                    "Illegal" => SiteStatus::Illegal,
                    "WAF" => SiteStatus::Waf,
                    _ => SiteStatus::Error,
                };
                let mut r = SiteResult::new(&row.name, status);
                if status == SiteStatus::Error {
                    r.error_kind = Some(ErrorKind::Unknown);
                }
                results.push(r);
                results.len() - 1
            }
        };
        let r = &mut results[idx];
        if r.url_main.is_none() && !row.url_main.is_empty() {
            r.url_main = Some(row.url_main);
        }
        if r.url_user.is_none() && !row.url_user.is_empty() {
            r.url_user = Some(row.url_user);
        }
        if r.http_status.is_none() {
            r.http_status = row.http_status.trim().parse().ok();
        }
        if r.response_time_s.is_none() {
            r.response_time_s = row
                .response_time_s
                .trim()
                .parse()
                .ok()
                .filter(|t: &f64| t.is_finite() && *t >= 0.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(line: &str) -> SiteResult {
        match parse_line(line) {
            SherlockLine::Site(r) => r,
            other => panic!("{line:?} parsed as {other:?}"),
        }
    }

    #[test]
    fn classifies_every_documented_line() {
        let hit = site("[+] GitHub: https://github.com/alice");
        assert_eq!(hit.status, SiteStatus::Claimed);
        assert_eq!(hit.url_user.as_deref(), Some("https://github.com/alice"));
        assert_eq!(site("[-] Site: Not Found!").status, SiteStatus::Available);
        assert_eq!(
            site("[-] Site: Illegal Username Format For This Site!").status,
            SiteStatus::Illegal
        );
        assert_eq!(
            site("[-] Site: Blocked by bot detection (proxy may help)").status,
            SiteStatus::Waf
        );
        let timeout = site("[-] Slow Site: Timeout Error \r");
        assert_eq!(timeout.site, "Slow Site");
        assert_eq!(timeout.error_kind, Some(ErrorKind::Timeout));
        assert_eq!(timeout.detail.as_deref(), Some("Timeout Error"));
        for (text, kind) in [
            ("Error Connecting", ErrorKind::Connection),
            ("Proxy Error", ErrorKind::Proxy),
            ("HTTP Error", ErrorKind::Http),
            ("Unknown Error", ErrorKind::Unknown),
            ("Encoding Error", ErrorKind::Encoding),
            ("General Unknown Error", ErrorKind::Unknown),
        ] {
            assert_eq!(site(&format!("[-] S: {text} ")).error_kind, Some(kind));
        }
    }

    #[test]
    fn recognises_start_finish_and_noise() {
        assert_eq!(
            parse_line("[*] Checking username alice on:"),
            SherlockLine::Started {
                username: "alice".into()
            }
        );
        assert_eq!(
            parse_line("[*] Search completed with 3 results"),
            SherlockLine::Finished { claimed: 3 }
        );
        assert_eq!(
            parse_line("[!] account-scanner launcher: patch points not found"),
            SherlockLine::LauncherWarning("patch points not found".into())
        );
        for noise in [
            "A problem occurred while checking for an update: boom",
            "\r",
            "",
            "Try OSINTSearch: \u{1b}]8;;https://osintsearch.org/go/sherlock\u{1b}\\https://osintsearch.org\u{1b}]8;;\u{1b}\\",
            "[+] no colon here",
            "[-] : empty name",
        ] {
            assert_eq!(parse_line(noise), SherlockLine::Other, "{noise:?}");
        }
    }

    #[test]
    fn strips_colour_codes_if_present() {
        let r = site(
            "\u{1b}[1m\u{1b}[37m[\u{1b}[32m+\u{1b}[37m]\u{1b}[32m GitHub: \u{1b}[0mhttps://github.com/a",
        );
        assert_eq!(r.site, "GitHub");
        assert_eq!(r.url_user.as_deref(), Some("https://github.com/a"));
    }

    #[test]
    fn csv_adds_status_and_timing() {
        let mut results = vec![site("[+] GitHub: https://github.com/alice")];
        let csv = "username,name,url_main,url_user,exists,http_status,response_time_s\n\
                   alice,GitHub,https://github.com/,https://github.com/alice,Claimed,200,0.25\n\
                   alice,Other,https://o/,https://o/alice,Available,404,\n";
        merge_csv(&mut results, parse_csv(csv.as_bytes()));
        assert_eq!(results[0].http_status, Some(200));
        assert_eq!(results[0].response_time_s, Some(0.25));
        assert_eq!(results[0].url_main.as_deref(), Some("https://github.com/"));
        assert_eq!(results[1].site, "Other");
        assert_eq!(results[1].status, SiteStatus::Available);
        assert_eq!(results[1].response_time_s, None);
    }
}
