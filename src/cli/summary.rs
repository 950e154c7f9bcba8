//! The readable summary printed at the end of `account-scanner scan`.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::report::store::SavedReport;
use crate::report::{HalfStatus, ScanReport};
use crate::scanner::sherlock::SiteStatus;

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
    if s.status != HalfStatus::Skipped {
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
            (None, None) if s.status != HalfStatus::Failed => {
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

    let r = &report.reddit;
    if r.status != HalfStatus::Skipped {
        let _ = writeln!(out);
        let _ = match &r.message {
            Some(m) => writeln!(out, "Reddit: {}: {m}", r.status.as_str()),
            None => writeln!(out, "Reddit: {}", r.status.as_str()),
        };
    }

    if let Some(saved) = saved {
        let _ = writeln!(out, "\nFiles:");
        for p in saved.paths() {
            let _ = writeln!(out, "  {}", p.display());
        }
    }
    out
}
