//! Live progress on stderr: a progress bar on a terminal, plain lines otherwise.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use tokio::sync::mpsc::UnboundedReceiver;

use crate::model::reddit::AccountStatus;
use crate::model::{ScanEvent, SiteStatus};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Bar,
    Lines,
}

impl Style {
    /// A bar only on an interactive terminal without `NO_COLOR`.
    pub fn detect() -> Style {
        if std::io::stderr().is_terminal() && !super::no_color() {
            Style::Bar
        } else {
            Style::Lines
        }
    }
}

/// Renders events until the scan drops its sender.
pub async fn render(mut rx: UnboundedReceiver<ScanEvent>, style: Style) {
    // Both halves may show a bar at once: they share one MultiProgress.
    let multi = MultiProgress::new();
    let mut reddit = RedditProgress::default();
    let mut bar: Option<ProgressBar> = None;
    let mut found = 0usize;
    let mut last_line_at = 0usize;
    while let Some(event) = rx.recv().await {
        match event {
            ScanEvent::SherlockStarted { sites_total } => {
                let total = sites_total
                    .map(|n| format!("{n} sites"))
                    .unwrap_or_else(|| "its site list".into());
                match style {
                    Style::Bar => {
                        let b = match sites_total {
                            Some(n) => ProgressBar::new(n as u64).with_style(bar_style()),
                            None => ProgressBar::new_spinner().with_style(spinner_style()),
                        };
                        let b = multi.add(b);
                        b.enable_steady_tick(Duration::from_millis(120));
                        b.set_message("0 found");
                        bar = Some(b);
                    }
                    Style::Lines => eprintln!("sherlock: checking {total}"),
                }
            }
            ScanEvent::SiteChecked {
                result,
                checked,
                sites_total,
            } => {
                let hit = result.status == SiteStatus::Claimed;
                if hit {
                    found += 1;
                }
                let url = result.url_user.as_deref().unwrap_or("");
                match (&bar, style) {
                    (Some(b), _) => {
                        b.set_position(checked as u64);
                        b.set_message(format!("{found} found"));
                        if hit {
                            b.println(format!("  found: {} {url}", result.site));
                        }
                    }
                    (None, _) => {
                        if hit {
                            eprintln!("sherlock: found {} {url}", result.site);
                        }
                        if checked - last_line_at >= 50 {
                            last_line_at = checked;
                            match sites_total {
                                Some(total) => {
                                    eprintln!("sherlock: {checked}/{total} sites checked")
                                }
                                None => eprintln!("sherlock: {checked} sites checked"),
                            }
                        }
                    }
                }
            }
            ScanEvent::SherlockFinished { status } => {
                if let Some(b) = bar.take() {
                    b.finish_and_clear();
                }
                if style == Style::Lines {
                    eprintln!("sherlock: {}", status.as_str());
                }
            }
            ScanEvent::RedditAccount { status, name } => {
                let line = match status {
                    AccountStatus::Found => format!("reddit: account {name} found"),
                    other => format!("reddit: {name}: {}", other.as_str()),
                };
                reddit.say(&multi, style, line);
            }
            ScanEvent::RedditFetched { comments, posts } => {
                reddit.fetched = (comments, posts);
                if style == Style::Lines {
                    eprintln!("reddit: fetched {comments} comments, {posts} posts");
                }
                reddit.refresh(&multi, style);
            }
            ScanEvent::RedditScored { done, total } => {
                reddit.scored = (done, total);
                if style == Style::Lines && done / 10 > reddit.last_line / 10 {
                    reddit.last_line = done;
                    eprintln!("reddit: {done}/{total} items scored");
                }
                reddit.refresh(&multi, style);
            }
            ScanEvent::RedditFinished { status } => {
                if let Some(b) = reddit.bar.take() {
                    b.finish_and_clear();
                }
                if style == Style::Lines {
                    let (done, total) = reddit.scored;
                    if total > 0 && done != reddit.last_line {
                        eprintln!("reddit: {done}/{total} items scored");
                    }
                    eprintln!("reddit: {}", status.as_str());
                }
            }
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    if let Some(b) = reddit.bar {
        b.finish_and_clear();
    }
}

#[derive(Default)]
struct RedditProgress {
    bar: Option<ProgressBar>,
    fetched: (usize, usize),
    scored: (usize, usize),
    last_line: usize,
}

impl RedditProgress {
    fn say(&mut self, multi: &MultiProgress, style: Style, line: String) {
        match style {
            Style::Lines => eprintln!("{line}"),
            Style::Bar => {
                let _ = multi.println(format!("  {line}"));
                self.refresh(multi, style);
            }
        }
    }

    fn refresh(&mut self, multi: &MultiProgress, style: Style) {
        if style != Style::Bar {
            return;
        }
        let bar = self.bar.get_or_insert_with(|| {
            let b = multi.add(ProgressBar::new_spinner().with_style(reddit_style()));
            b.enable_steady_tick(Duration::from_millis(120));
            b
        });
        let (comments, posts) = self.fetched;
        let (done, total) = self.scored;
        bar.set_message(format!(
            "{comments} comments, {posts} posts fetched · {done}/{total} scored"
        ));
    }
}

fn reddit_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} reddit {msg} · {elapsed}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
}

fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template(
        "{spinner} sherlock [{bar:30}] {pos}/{len} sites · {msg} · {elapsed}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ")
}

fn spinner_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} sherlock {pos} sites · {msg} · {elapsed}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
}
