//! CSV exports. Column orders are part of the documented interface: append, never reorder.

use crate::model::ScanReport;

/// Columns of `<name>_sherlock.csv`, one row per site checked, in Sherlock's order.
pub const SHERLOCK_COLUMNS: &[&str] = &[
    "username",
    "site",
    "status",
    "error_kind",
    "url_user",
    "url_main",
    "http_status",
    "response_time_s",
    "detail",
    "unreliable",
];

pub fn sherlock_csv(report: &ScanReport) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(SHERLOCK_COLUMNS)?;
    for s in &report.sherlock.sites {
        w.write_record([
            safe_cell(&report.request.username),
            safe_cell(&s.site),
            s.status.as_str().to_string(),
            s.error_kind.map(|k| k.as_str()).unwrap_or("").to_string(),
            safe_cell(s.url_user.as_deref().unwrap_or("")),
            safe_cell(s.url_main.as_deref().unwrap_or("")),
            s.http_status.map(|c| c.to_string()).unwrap_or_default(),
            s.response_time_s
                .map(|t| format!("{t:.3}"))
                .unwrap_or_default(),
            safe_cell(s.detail.as_deref().unwrap_or("")),
            s.unreliable.to_string(),
        ])?;
    }
    w.into_inner().map_err(|e| e.into_error().into())
}

/// Columns of `<name>_reddit.csv`, one row per comment or post: comments first, then posts, each
/// newest first. `categories` holds the per-category scores as `name=0.123` pairs, sorted by
/// name and separated by spaces, so the columns stay the same whatever the backend.
pub const REDDIT_COLUMNS: &[&str] = &[
    "username",
    "kind",
    "id",
    "subreddit",
    "created_utc",
    "permalink",
    "score",
    "title",
    "text",
    "url",
    "over_18",
    "edited",
    "toxicity",
    "at_or_above_threshold",
    "categories",
    "truncated",
    "unscored_reason",
];

pub fn reddit_csv(report: &ScanReport) -> Result<Vec<u8>, csv::Error> {
    let reddit = &report.reddit;
    let threshold = reddit.scoring.as_ref().map(|s| s.threshold);
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(REDDIT_COLUMNS)?;
    for item in reddit.items() {
        let t = &item.toxicity;
        let categories: Vec<String> = t
            .categories
            .iter()
            .map(|(name, v)| format!("{name}={v:.3}"))
            .collect();
        let flagged = match (t.toxicity, threshold) {
            (Some(v), Some(th)) => (v >= th).to_string(),
            _ => String::new(),
        };
        w.write_record([
            safe_cell(&report.request.username),
            item.kind.as_str().to_string(),
            safe_cell(&item.id),
            safe_cell(&item.subreddit),
            item.created_utc
                .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                .unwrap_or_default(),
            safe_cell(&item.permalink),
            item.score.to_string(),
            safe_cell(item.title.as_deref().unwrap_or("")),
            safe_cell(&item.text),
            safe_cell(item.url.as_deref().unwrap_or("")),
            item.over_18.to_string(),
            item.edited.to_string(),
            t.toxicity.map(|v| format!("{v:.3}")).unwrap_or_default(),
            flagged,
            categories.join(" "),
            t.truncated.to_string(),
            safe_cell(t.unscored_reason.as_deref().unwrap_or("")),
        ])?;
    }
    w.into_inner().map_err(|e| e.into_error().into())
}

/// Spreadsheets run cells that start with `=`, `+`, `-`, `@` (and tab/CR) as formulas; a leading
/// apostrophe keeps such text inert. Text from remote sites must never execute when opened.
pub fn safe_cell(value: &str) -> String {
    match value.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{value}"),
        _ => value.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_like_cells_are_neutralised() {
        assert_eq!(safe_cell("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(safe_cell("@cmd"), "'@cmd");
        assert_eq!(safe_cell("GitHub"), "GitHub");
        assert_eq!(safe_cell(""), "");
    }
}
