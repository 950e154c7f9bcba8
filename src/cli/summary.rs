//! The readable summary printed at the end of `account-scanner scan`.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::model::reddit::{AccountStatus, RedditSection};
use crate::model::{ScanReport, SectionStatus, SiteStatus};
use crate::store::SavedReport;
use crate::toxicity::NOT_CONFIGURED;

pub fn render(report: &ScanReport, saved: Option<&SavedReport>) -> String {
    let mut out = String::new();
    let state = if report.partial { "partial" } else { "done" };
    let _ = writeln!(
        out,
        "Scan {} of {} (mode {}): {state} in {:.1} s",
        report.scan_id,
        report.request.username,
        report.request.mode,
        report.duration_ms as f64 / 1000.0
    );
    if let Some(reason) = &report.partial_reason {
        let _ = writeln!(out, "PARTIAL RESULTS: {reason}");
    }

    let s = &report.sherlock;
    if s.status != SectionStatus::Skipped {
        let _ = writeln!(out);
        let version = report
            .tools
            .sherlock
            .as_deref()
            .unwrap_or("(version unknown)");
        let checked = match s.sites_total {
            Some(total) => format!("{} of {total} sites checked", s.sites_checked),
            None => format!("{} sites checked", s.sites_checked),
        };
        let _ = writeln!(
            out,
            "Sherlock {version} · list: {} · {checked} · {}",
            s.site_list,
            s.status.as_str()
        );
        if let Some(error) = &s.error {
            let _ = writeln!(out, "  error: {error}");
        }
        let hits: Vec<_> = s.hits().collect();
        if hits.is_empty() {
            let _ = writeln!(out, "  Found on no site.");
        } else {
            let _ = writeln!(out, "  Found on {} site(s):", hits.len());
            let width = hits.iter().map(|h| h.site.len()).max().unwrap_or(0);
            for h in hits {
                let _ = writeln!(
                    out,
                    "    {:width$}  {}",
                    h.site,
                    h.url_user.as_deref().unwrap_or("")
                );
            }
        }
        let unverified: Vec<_> = s.unverified().map(|u| u.site.as_str()).collect();
        if !unverified.is_empty() {
            let _ = writeln!(
                out,
                "  Unverified: {} site(s) claim every name, so their hits prove nothing: {}",
                unverified.len(),
                unverified.join(", ")
            );
        }
        match (&s.control, &s.control_error) {
            (Some(c), _) => {
                let source = if c.from_cache { ", cached" } else { "" };
                let reach = if c.complete {
                    ""
                } else {
                    ", cut off by the deadline"
                };
                let _ = writeln!(
                    out,
                    "  Control probe: {} site(s) claimed the made-up name {}{source}{reach}",
                    c.claims_any_username.len(),
                    c.control_username
                );
            }
            (None, Some(error)) => {
                let _ = writeln!(
                    out,
                    "  Control probe: no result ({error}); hits are unchecked"
                );
            }
            (None, None) if s.status != SectionStatus::Failed => {
                let _ = writeln!(out, "  Control probe: off (SHERLOCK_CONTROL_CHECK=false)");
            }
            (None, None) => {}
        }
        let c = &s.counts;
        let mut parts = vec![
            format!("found {}", c.claimed),
            format!("not found {}", c.available),
        ];
        if c.unverified > 0 {
            parts.push(format!("unverified {}", c.unverified));
        }
        if c.illegal > 0 {
            parts.push(format!("name not allowed {}", c.illegal));
        }
        if c.waf > 0 {
            parts.push(format!("blocked by bot detection {}", c.waf));
        }
        if c.error > 0 {
            let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
            for site in s.sites.iter().filter(|r| r.status == SiteStatus::Error) {
                *kinds
                    .entry(site.error_kind.map(|k| k.as_str()).unwrap_or("unknown"))
                    .or_default() += 1;
            }
            let kinds: Vec<_> = kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
            parts.push(format!("errors {} ({})", c.error, kinds.join(", ")));
        }
        let _ = writeln!(out, "  {}", parts.join(" · "));
    }

    if report.reddit.status != SectionStatus::Skipped {
        let _ = writeln!(out);
        reddit(&mut out, &report.reddit);
    }

    if let Some(saved) = saved {
        let _ = writeln!(out, "\nFiles:");
        for p in saved.paths() {
            let _ = writeln!(out, "  {}", p.display());
        }
    }
    out
}

/// The Reddit part: the account, counts, toxicity and the items that stand out.
fn reddit(out: &mut String, r: &RedditSection) {
    let mut head = format!("Reddit: {}", r.status.as_str());
    if let Some(a) = &r.account {
        head = format!(
            "Reddit · {}: {} · {}",
            one_line(&a.name, 40),
            a.status.as_str(),
            r.status.as_str()
        );
    }
    let _ = writeln!(out, "{head}");
    if let Some(m) = &r.message {
        let _ = writeln!(out, "  {m}");
    }
    if let Some(e) = &r.error {
        let _ = writeln!(out, "  error: {e}");
    }
    if let Some(a) = r
        .account
        .as_ref()
        .filter(|a| a.status == AccountStatus::Found)
    {
        let mut facts = Vec::new();
        if let Some(created) = a.created_utc {
            facts.push(format!("created {}", created.format("%Y-%m-%d")));
        }
        if let Some(total) = a
            .total_karma
            .or_else(|| Some(a.link_karma? + a.comment_karma?))
        {
            facts.push(format!(
                "karma {total} (posts {}, comments {})",
                a.link_karma.unwrap_or(0),
                a.comment_karma.unwrap_or(0)
            ));
        }
        if a.verified == Some(true) {
            facts.push("verified".to_string());
        }
        match a.has_verified_email {
            Some(true) => facts.push("verified email".to_string()),
            Some(false) => facts.push("email not verified".to_string()),
            None => {}
        }
        if !facts.is_empty() {
            let _ = writeln!(out, "  {}", facts.join(" · "));
        }
    }
    let Some(s) = &r.summary else {
        return;
    };
    let _ = writeln!(
        out,
        "  {} comments, {} posts · {} scored, {} unscored",
        s.comments, s.posts, s.scored, s.unscored
    );
    if let Some(scoring) = &r.scoring {
        if scoring.configured {
            let heuristic = if scoring.heuristic { ", heuristic" } else { "" };
            let _ = writeln!(
                out,
                "  scorer: {} ({}{heuristic})",
                scoring.backend, scoring.model
            );
            let _ = writeln!(
                out,
                "  (an automated signal: it points a human at items to read; it does not decide)"
            );
        } else {
            let _ = writeln!(out, "  scorer: none ({NOT_CONFIGURED})");
        }
        if let Some(e) = &scoring.error {
            let _ = writeln!(out, "  scoring stopped: {e}");
        }
    }
    if let (Some(mean), Some(max)) = (s.mean_toxicity, s.max_toxicity) {
        let _ = writeln!(
            out,
            "  toxicity: mean {mean:.2}, max {max:.2} · {} at or above {:.2}",
            s.at_or_above_threshold, s.threshold
        );
    }
    if !s.top_subreddits.is_empty() {
        let subs: Vec<String> = s
            .top_subreddits
            .iter()
            .map(|c| format!("r/{} {}", one_line(&c.subreddit, 30), c.items))
            .collect();
        let _ = writeln!(out, "  top subreddits: {}", subs.join(", "));
    }
    if !s.most_toxic.is_empty() {
        let _ = writeln!(out, "  most toxic:");
        for t in &s.most_toxic {
            let _ = writeln!(
                out,
                "    {:.2}  {:7}  r/{}  {}",
                t.toxicity,
                t.kind.as_str(),
                one_line(&t.subreddit, 30),
                one_line(&t.permalink, 120)
            );
            let _ = writeln!(out, "          \"{}\"", one_line(&t.excerpt, 100));
        }
    }
}

/// Remote text made safe for a terminal: one line, no control characters (no escape
/// sequences), at most `max` characters.
fn one_line(text: &str, max: usize) -> String {
    let mut s: String = text
        .chars()
        .map(|c| {
            if c.is_control() || is_bidi_or_invisible(c) {
                ' '
            } else {
                c
            }
        })
        .take(max)
        .collect();
    if text.chars().nth(max).is_some() {
        s.push('…');
    }
    s
}

fn is_bidi_or_invisible(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}
