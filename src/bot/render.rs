//! What the bot says, as plain data: message texts and embeds within Discord's limits.
//! Nothing here talks to Discord, so all of it is tested directly.

use std::fmt::Write;

pub use crate::jobs::scan::Progress;
use crate::model::{DiscordMember, ScanMode, ScanReport, SectionStatus, Username};

/// Discord's embed limits (https://discord.com/developers/docs/resources/message#embed-object-embed-limits).
pub const TITLE_MAX: usize = 256;
pub const DESCRIPTION_MAX: usize = 4096;
pub const FIELD_VALUE_MAX: usize = 1024;
pub const FIELDS_MAX: usize = 25;
pub const FOOTER_MAX: usize = 2048;
/// Sum of all text in all embeds of one message.
pub const EMBEDS_TOTAL_MAX: usize = 6000;
/// Default upload limit for a bot's message (larger in boosted servers).
pub const UPLOAD_LIMIT_BYTES: u64 = 10 * 1024 * 1024;

/// One embed, before it becomes serenity's builder.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Embed {
    pub title: String,
    pub description: String,
    pub colour: u32,
    pub fields: Vec<(String, String)>,
    pub footer: String,
}

impl Embed {
    /// Characters that count against the 6000 total.
    pub fn text_len(&self) -> usize {
        self.title.chars().count()
            + self.description.chars().count()
            + self.footer.chars().count()
            + self
                .fields
                .iter()
                .map(|(n, v)| n.chars().count() + v.chars().count())
                .sum::<usize>()
    }
}

const GREEN: u32 = 0x2e_cc_71;
const AMBER: u32 = 0xf3_9c_12;
const RED: u32 = 0xe7_4c_3c;
const GREY: u32 = 0x95_a5_a6;

/// Escapes Discord markdown and defuses mentions, for any text the bot echoes (usernames,
/// Reddit text, site names). `allowed_mentions` is empty on every message as well; this also
/// keeps `@everyone` from even looking like a ping.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\\' | '*' | '_' | '~' | '`' | '|' | '>' | '#' | '[' | ']' | '(' | ')' | '<' | ':' => {
                out.push('\\');
                out.push(c);
            }
            '@' => out.push_str("@\u{200B}"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Text inside an inline code span, which renders everything literally except backticks.
pub fn code(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| if c == '`' || c.is_control() { '\'' } else { c })
        .take(100)
        .collect();
    format!("`{cleaned}`")
}

pub fn ack(username: &Username, mode: ScanMode, position: Option<usize>) -> String {
    let who = escape(username.as_str());
    match position {
        None => format!("🔎 Scanning **{who}** (mode `{mode}`)…"),
        Some(n) => format!(
            "⏳ Queued: **{who}** (mode `{mode}`) is number {n} in line; the scan starts when a slot frees up."
        ),
    }
}

pub fn progress(username: &Username, mode: ScanMode, p: &Progress) -> String {
    let mut parts = Vec::new();
    if mode.runs_sherlock() {
        let of = p.sites_total.map(|t| format!("/{t}")).unwrap_or_default();
        let state = if p.sherlock_done { "done" } else { "running" };
        parts.push(format!(
            "sites {}{of} checked, {} claimed ({state})",
            p.sites_checked, p.claimed
        ));
    }
    if mode.runs_reddit() {
        parts.push(
            if p.reddit_done {
                "Reddit done"
            } else {
                "Reddit running"
            }
            .to_string(),
        );
    }
    format!(
        "🔎 Scanning **{}** (mode `{mode}`): {}…",
        escape(username.as_str()),
        parts.join(" · ")
    )
}

/// The result embeds: Sherlock (hits linked and grouped), Reddit, and the member's facts.
pub fn result_embeds(report: &ScanReport) -> Vec<Embed> {
    let s = &report.sherlock;
    let name = escape(&report.request.username);
    let mut e = Embed {
        title: truncate(&format!("Scan of {name}"), TITLE_MAX),
        colour: match (report.partial, s.status) {
            (_, SectionStatus::Failed) => RED,
            (true, _) => AMBER,
            _ if s.counts.claimed > 0 => GREEN,
            _ => GREY,
        },
        ..Embed::default()
    };
    let mut d = String::new();
    if let Some(reason) = &report.partial_reason {
        let _ = writeln!(d, "⚠️ **Partial results:** {}", escape(reason));
    }

    let mut found: Vec<String> = Vec::new();
    if s.status != SectionStatus::Skipped {
        let checked = match s.sites_total {
            Some(t) => format!("{} of {t}", s.sites_checked),
            None => s.sites_checked.to_string(),
        };
        match (&s.status, &s.error) {
            (SectionStatus::Failed, Some(err)) => {
                let _ = writeln!(d, "**Sherlock failed:** {}", escape(err));
            }
            _ => {
                let c = &s.counts;
                let mut line = format!(
                    "**Found on {} site(s)** · {checked} sites checked · {} not found",
                    c.claimed, c.available
                );
                if c.error + c.waf > 0 {
                    let _ = write!(line, " · {} could not be checked", c.error + c.waf);
                }
                if c.illegal > 0 {
                    let _ = write!(line, " · {} do not allow this name", c.illegal);
                }
                let _ = writeln!(d, "{line}");
            }
        }
        let unverified: Vec<_> = s.unverified().map(|u| escape(&u.site)).collect();
        if !unverified.is_empty() {
            let _ = writeln!(
                d,
                "Unverified: {} site(s) claim every name, not counted: {}",
                unverified.len(),
                unverified.join(", ")
            );
        }
        found = s
            .hits()
            .map(|h| link(&h.site, h.url_user.as_deref()))
            .collect();
    }

    if let Some(m) = &report.request.discord_member {
        e.fields.push(("Discord member".into(), member_facts(m)));
    }
    if let Some(p) = &report.previous {
        e.fields.push((
            "Since the last scan".into(),
            truncate(&since_last_scan(p, report.finished_at), FIELD_VALUE_MAX),
        ));
    }
    let reddit = (report.reddit.status != SectionStatus::Skipped).then(|| reddit_embed(report));
    e.description = truncate(&d, DESCRIPTION_MAX);
    e.footer = truncate(
        &format!(
            "scan {} · Sherlock {} · {:.1} s",
            report.scan_id,
            report.tools.sherlock.as_deref().unwrap_or("?"),
            report.duration_ms as f64 / 1000.0
        ),
        FOOTER_MAX,
    );
    let reserved = reddit.as_ref().map(Embed::text_len).unwrap_or(0);
    add_grouped_links(&mut e, "Found", found, reserved);
    let mut embeds = vec![e];
    embeds.extend(reddit);
    embeds
}

/// The Reddit half: who the account is, what it wrote where, and how toxic it was.
fn reddit_embed(report: &ScanReport) -> Embed {
    use crate::model::reddit::AccountStatus;
    let r = &report.reddit;
    let mut e = Embed {
        colour: GREY,
        ..Embed::default()
    };
    let name = r
        .account
        .as_ref()
        .map(|a| a.name.as_str())
        .unwrap_or(&report.request.username);
    e.title = truncate(&format!("Reddit: u/{}", escape(name)), TITLE_MAX);
    let mut d = String::new();
    if let Some(err) = &r.error {
        let _ = writeln!(d, "**Reddit could not be scanned:** {}", escape(err));
    }
    match &r.account {
        Some(a) if a.status == AccountStatus::Found => {
            let created = a
                .created_utc
                .map(|c| {
                    let years = (report.started_at - c).num_days() as f64 / 365.25;
                    format!("created {} ({years:.1} years ago)", c.format("%Y-%m-%d"))
                })
                .unwrap_or_else(|| "creation date unknown".into());
            let karma = match (a.total_karma, a.link_karma, a.comment_karma) {
                (Some(t), Some(l), Some(c)) => format!("karma {t} (posts {l}, comments {c})"),
                (Some(t), _, _) => format!("karma {t}"),
                _ => "karma unknown".into(),
            };
            let verified = match a.has_verified_email {
                Some(true) => " · verified email",
                _ => "",
            };
            let _ = writeln!(d, "Account {created} · {karma}{verified}");
        }
        Some(a) => {
            let _ = writeln!(d, "Account: **{}**", a.status.as_str());
        }
        None => {}
    }
    if let Some(m) = &r.message {
        let _ = writeln!(d, "{}", escape(m));
    }
    if let Some(summary) = &r.summary {
        let subs: Vec<String> = summary
            .top_subreddits
            .iter()
            .map(|s| format!("r/{} ({})", escape(&s.subreddit), s.items))
            .collect();
        let mut activity = format!("{} comments, {} posts", summary.comments, summary.posts);
        if !subs.is_empty() {
            let _ = write!(activity, " · most active in {}", subs.join(", "));
        }
        e.fields
            .push(("Activity".into(), truncate(&activity, FIELD_VALUE_MAX)));
        if let Some(scoring) = &r.scoring {
            let label = format!(
                "Toxicity ({}, {}{})",
                escape(&scoring.backend),
                escape(&scoring.model),
                if scoring.heuristic { ", heuristic" } else { "" }
            );
            let stats = match (summary.mean_toxicity, summary.max_toxicity) {
                (Some(mean), Some(max)) => format!(
                    "mean {mean:.2} · max {max:.2} · {} at or above {:.2} · {} of {} scored\n-# An automated signal for a human to read, not a verdict.",
                    summary.at_or_above_threshold,
                    summary.threshold,
                    summary.scored,
                    summary.scored + summary.unscored
                ),
                _ => format!(
                    "nothing scored ({} items){}",
                    summary.unscored,
                    scoring
                        .error
                        .as_ref()
                        .map(|e| format!(": {}", escape(e)))
                        .unwrap_or_default()
                ),
            };
            e.fields
                .push((truncate(&label, 256), truncate(&stats, FIELD_VALUE_MAX)));
            if summary.max_toxicity.unwrap_or(0.0) >= summary.threshold {
                e.colour = RED;
            }
        }
        let toxic: Vec<String> = summary
            .most_toxic
            .iter()
            .map(|t| {
                let excerpt: String = t.excerpt.chars().take(90).collect();
                format!(
                    "{:.2} · {} in r/{}: {}",
                    t.toxicity,
                    link(t.kind.as_str(), Some(&t.permalink)),
                    escape(&t.subreddit),
                    escape(&excerpt)
                )
            })
            .collect();
        if !toxic.is_empty() {
            let mut value = String::new();
            for line in toxic {
                if value.chars().count() + line.chars().count() + 1 > FIELD_VALUE_MAX {
                    break;
                }
                value.push_str(&line);
                value.push('\n');
            }
            e.fields.push(("Most toxic".into(), value));
        }
    }
    e.description = truncate(&d, DESCRIPTION_MAX);
    e
}

/// "Last scanned 21 days ago by @mod: +2 sites (Foo, Bar), −1 site (Baz); Reddit karma 120 →
/// 3,400; max toxicity 0.31 → 0.86".
pub fn since_last_scan(p: &crate::model::Previous, now: chrono::DateTime<chrono::Utc>) -> String {
    let ago = (now - p.finished_at).to_std().unwrap_or_default();
    let by = p
        .requested_by
        .map(|u| format!(" by <@{u}>"))
        .unwrap_or_else(|| " from the command line".into());
    let mut changes = Vec::new();
    let sites = |list: &[String]| {
        list.iter()
            .map(|s| escape(s))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !p.sites_added.is_empty() {
        changes.push(format!(
            "+{} site(s) ({})",
            p.sites_added.len(),
            sites(&p.sites_added)
        ));
    }
    if !p.sites_removed.is_empty() {
        changes.push(format!(
            "−{} site(s) ({})",
            p.sites_removed.len(),
            sites(&p.sites_removed)
        ));
    }
    if let Some(c) = &p.reddit_status {
        changes.push(format!("Reddit account {} → {}", c.before, c.after));
    }
    if let Some(c) = &p.reddit_karma {
        changes.push(format!(
            "Reddit karma {} → {}",
            thousands(c.before),
            thousands(c.after)
        ));
    }
    if let Some(c) = &p.reddit_items {
        changes.push(format!("Reddit items {} → {}", c.before, c.after));
    }
    if let Some(c) = &p.max_toxicity {
        changes.push(format!("max toxicity {:.2} → {:.2}", c.before, c.after));
    }
    if let Some(c) = &p.at_or_above_threshold {
        changes.push(format!("at or above threshold {} → {}", c.before, c.after));
    }
    let what = if changes.is_empty() {
        if p.sites_compared {
            "nothing changed".to_string()
        } else {
            format!(
                "nothing comparable changed (that scan's mode was `{}`)",
                p.mode
            )
        }
    } else {
        changes.join("; ")
    };
    format!("Last scanned {} ago{by}: {what}.", human_duration(ago))
}

/// One scan of a target's history: when, by whom, mode, what it found.
pub fn history_line(e: &crate::db::HistoryEntry, now: chrono::DateTime<chrono::Utc>) -> String {
    let ago = human_duration((now - e.finished_at).to_std().unwrap_or_default());
    let by = e
        .requester_id
        .map(|u| format!("<@{u}>"))
        .unwrap_or_else(|| "the command line".into());
    let mut line = format!(
        "**{}** ({ago} ago) · by {by} · `{}` · ",
        e.finished_at.format("%Y-%m-%d %H:%M UTC"),
        e.mode
    );
    match &e.sites {
        Some(_) => {
            let _ = write!(line, "{} hit(s)", e.hits);
            if e.unverified > 0 {
                let _ = write!(line, ", {} unverified", e.unverified);
            }
        }
        None => line.push_str("no Sherlock"),
    }
    if let Some(r) = &e.reddit {
        let _ = write!(line, " · Reddit {}", r.status);
        if let Some(k) = r.total_karma {
            let _ = write!(line, ", karma {}", thousands(k));
        }
        if let Some(m) = r.max_toxicity {
            let _ = write!(
                line,
                ", {} items, max toxicity {m:.2}, {} at or above threshold",
                r.items, r.at_or_above_threshold
            );
        }
    }
    if e.outcome != "completed" {
        let _ = write!(line, " · {}", e.outcome);
    }
    if !e.files_present {
        line.push_str(" · report files gone");
    }
    let _ = writeln!(line, " · scan {}", e.scan_id);
    line
}

/// One page of a target's history in this server.
pub fn history_embed(
    shown: &str,
    page: &crate::db::HistoryPage,
    page_no: u32,
    per_page: u32,
    now: chrono::DateTime<chrono::Utc>,
) -> Embed {
    let pages = page.total.div_ceil(u64::from(per_page)).max(1);
    let mut d = String::new();
    if page.entries.is_empty() {
        d = if page.total == 0 {
            "No scans of this target in this server.".into()
        } else {
            format!("There is no page {page_no}: this target has {pages} page(s) of scans.")
        };
    }
    for e in &page.entries {
        let line = history_line(e, now);
        if d.len() + line.len() > DESCRIPTION_MAX {
            break;
        }
        d.push_str(&line);
    }
    Embed {
        title: truncate(
            &format!("History of {} in this server", escape(shown)),
            TITLE_MAX,
        ),
        description: d,
        colour: GREY,
        fields: Vec::new(),
        footer: format!(
            "Page {page_no} of {pages} · {} scan(s) · newest first",
            page.total
        ),
    }
}

/// What the join screen did about a new member's automatic scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoScan {
    /// Queued behind moderators' scans: the `nth` of the hour, of `cap`.
    Started {
        nth: u64,
        cap: u64,
    },
    CapReached {
        cap: u64,
    },
}

/// An account's age in words: "3 days", "5 hours", "2 years 41 days".
pub fn account_age(age: chrono::Duration) -> String {
    let days = age.num_days();
    match days {
        ..0 => "0 minutes".into(),
        0 if age.num_hours() == 0 => format!("{} minutes", age.num_minutes()),
        0 if age.num_hours() == 1 => "1 hour".into(),
        0 => format!("{} hours", age.num_hours()),
        1 => "1 day".into(),
        2..365 => format!("{days} days"),
        _ => {
            let (years, rest) = (days / 365, days % 365);
            let years = if years == 1 {
                "1 year".to_string()
            } else {
                format!("{years} years")
            };
            match rest {
                0 => years,
                1 => format!("{years} 1 day"),
                _ => format!("{years} {rest} days"),
            }
        }
    }
}

/// The join screen's post about one member.
pub fn join_embed(
    join: &crate::jobs::joins::Join,
    new_after: std::time::Duration,
    previous: &crate::db::HistoryPage,
    auto_scan: Option<AutoScan>,
    now: chrono::DateTime<chrono::Utc>,
) -> Embed {
    let new = join.is_new(new_after);
    let new_days = new_after.as_secs() / 86_400;
    let mut fields = vec![
        (
            "Account age".to_string(),
            format!(
                "{} (created {}){}",
                account_age(join.age()),
                join.created.format("%Y-%m-%d %H:%M UTC"),
                if new {
                    format!(" · ⚠️ **new account** (younger than {new_days} days)")
                } else {
                    String::new()
                }
            ),
        ),
        (
            "Joined".to_string(),
            join.joined.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        ),
        (
            "Avatar".to_string(),
            if join.default_avatar {
                "default avatar (none set)".into()
            } else {
                "own avatar".into()
            },
        ),
    ];
    let mut earlier = if previous.total == 0 {
        "none in this server".to_string()
    } else {
        format!("{} scan(s) in this server, newest first:\n", previous.total)
    };
    for e in &previous.entries {
        let line = history_line(e, now);
        if earlier.len() + line.len() > FIELD_VALUE_MAX {
            break;
        }
        earlier.push_str(&line);
    }
    fields.push(("Previous scans".to_string(), earlier));
    if let Some(auto) = auto_scan {
        let text = match auto {
            AutoScan::Started { nth, cap } => format!(
                "started (new account; {nth} of this server's {cap} per hour); the result follows as a reply"
            ),
            AutoScan::CapReached { cap } => format!(
                "not started: this server's cap of {cap} automatic scans per hour is reached. Press **Scan** to scan."
            ),
        };
        fields.push(("Automatic scan".to_string(), text));
    }
    Embed {
        title: truncate(
            &format!(
                "{} Member joined: {}",
                if new { "⚠️" } else { "👋" },
                escape(&join.username)
            ),
            TITLE_MAX,
        ),
        description: format!("<@{}> joined the server.", join.user_id),
        colour: if new { AMBER } else { GREY },
        fields,
        footer: format!("join screen · user {}", join.user_id),
    }
}

/// The one message a burst of joins gets, edited while it lasts.
pub fn raid_embed(
    raid: &crate::jobs::joins::Raid,
    new_after: std::time::Duration,
    window: std::time::Duration,
    auto_scan_on: bool,
) -> Embed {
    let new = raid.members.iter().filter(|j| j.is_new(new_after)).count();
    let default_avatar = raid.members.iter().filter(|j| j.default_avatar).count();
    let mut d = format!(
        "**{}** members joined within {} or less of each other, so they are summarised here instead of one post each.",
        raid.joins,
        human_duration(window)
    );
    if auto_scan_on {
        d.push_str(" **Automatic scans are paused** for this burst.");
    }
    d.push_str(
        " Moderators can still scan anyone: `/scan @member`, or right-click a member → Apps → **Scan account**.",
    );
    let mut names = String::new();
    for (i, j) in raid.members.iter().enumerate() {
        let item = format!(
            "{}{} ({}{})",
            if i > 0 { ", " } else { "" },
            escape(&j.username),
            account_age(j.age()),
            if j.is_new(new_after) { ", new" } else { "" }
        );
        let more = format!(", … and {} more", raid.members.len() - i);
        if names.len() + item.len() + more.len() > FIELD_VALUE_MAX {
            names.push_str(&more);
            break;
        }
        names.push_str(&item);
    }
    Embed {
        title: truncate(&format!("🚨 Join burst: {} members", raid.joins), TITLE_MAX),
        description: d,
        colour: RED,
        fields: vec![
            (
                format!(
                    "New accounts (younger than {} days)",
                    new_after.as_secs() / 86_400
                ),
                format!("{new} of the {} listed", raid.members.len()),
            ),
            (
                "Default avatar".to_string(),
                format!("{default_avatar} of the {} listed", raid.members.len()),
            ),
            ("Members".to_string(), names),
        ],
        footer: format!(
            "join screen · burst since {}",
            raid.started.format("%Y-%m-%d %H:%M:%S UTC")
        ),
    }
}

/// A server's settings: each value, and whether it is the server's own or the default.
pub fn settings_view(
    own: &crate::db::GuildSettings,
    effective: &crate::jobs::settings::Effective,
    backend_threshold: f64,
    operator_channel: Option<u64>,
    members_intent: bool,
) -> String {
    use crate::jobs::settings::{Setting, describe};
    let mark = |is_own: bool| if is_own { "" } else { " (default)" };
    let mut s = String::from(
        "⚙️ **This server's scan settings** (change one with `settings <name> <value>`, `reset` for the default):\n",
    );
    let _ = writeln!(
        s,
        "• `log_channel`: {}{}",
        effective
            .log_channel
            .map(|c| format!("<#{c}>"))
            .unwrap_or_else(|| "none".into()),
        mark(own.log_channel.is_some())
    );
    let _ = writeln!(
        s,
        "• `threshold`: {:.2}{}",
        effective.toxicity_threshold.unwrap_or(backend_threshold),
        mark(own.toxicity_threshold.is_some())
    );
    let _ = writeln!(
        s,
        "• `mode`: {}{}",
        effective.default_mode,
        mark(own.default_mode.is_some())
    );
    let _ = writeln!(
        s,
        "• `cooldown`: {} s{}",
        effective.cooldown.as_secs(),
        mark(own.cooldown_s.is_some())
    );
    let _ = writeln!(
        s,
        "• `channels`: {}{}",
        describe(own, Setting::Channels),
        mark(own.scan_channels.is_some())
    );
    let _ = writeln!(
        s,
        "• `screening` (join screen): {}",
        describe(own, Setting::Screening)
    );
    let _ = writeln!(
        s,
        "• `new_account_days`: {}{}",
        effective.new_account_age.as_secs() / 86_400,
        mark(own.new_account_days.is_some())
    );
    let _ = writeln!(
        s,
        "• `auto_scan` (new accounts, when they join): {}{}",
        if effective.auto_scan { "on" } else { "off" },
        mark(own.auto_scan.is_some())
    );
    let _ = writeln!(
        s,
        "• `auto_scan_cap`: {} per hour{}",
        effective.auto_scan_cap,
        mark(own.auto_scan_cap.is_some())
    );
    if !members_intent {
        let _ = writeln!(s, "{}", crate::jobs::settings::MEMBERS_INTENT_NEEDED);
    }
    if operator_channel.is_some() {
        s.push_str(
            "The bot's operator also keeps an audit channel of their own (`LOG_CHANNEL_ID`).\n",
        );
    }
    s
}

/// 3400 → "3,400".
fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

fn member_facts(m: &DiscordMember) -> String {
    let joined = m
        .joined_server
        .map(|j| j.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| "unknown".into());
    format!(
        "<@{}> · account created {} · joined this server {}",
        m.user_id,
        m.account_created.format("%Y-%m-%d"),
        joined
    )
}

fn link(site: &str, url: Option<&str>) -> String {
    let name = escape(site);
    match url {
        // A URL with these would end the markdown link early; show the name alone.
        Some(u) if !u.contains([')', '(', ' ', '<', '>']) && u.starts_with("http") => {
            format!("[{name}]({u})")
        }
        _ => name,
    }
}

/// Puts links in fields of at most 1024 characters, as many as the limits allow (25 fields,
/// 6000 characters in all); what does not fit is counted in a "+N more in the attached files"
/// field.
fn add_grouped_links(e: &mut Embed, label: &str, links: Vec<String>, reserved: usize) {
    if links.is_empty() {
        return;
    }
    // Showing fewer links never makes the embed longer, so the most that fit is a binary search.
    let fits = |shown: usize| {
        let candidate = with_links(e, label, &links, shown);
        candidate.text_len() + reserved <= EMBEDS_TOTAL_MAX && candidate.fields.len() <= FIELDS_MAX
    };
    let (mut lo, mut hi) = (0, links.len());
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if fits(mid) { lo = mid } else { hi = mid - 1 }
    }
    *e = with_links(e, label, &links, lo);
}

fn with_links(e: &Embed, label: &str, links: &[String], shown: usize) -> Embed {
    let mut groups: Vec<String> = Vec::new();
    let mut current = String::new();
    for l in &links[..shown] {
        if !current.is_empty() && current.chars().count() + 3 + l.chars().count() > FIELD_VALUE_MAX
        {
            groups.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push_str(" · ");
        }
        current.push_str(l);
    }
    if !current.is_empty() {
        groups.push(current);
    }
    let mut out = e.clone();
    let n = groups.len();
    for (i, g) in groups.into_iter().enumerate() {
        let name = if n == 1 {
            format!("{label} ({})", links.len())
        } else {
            format!("{label} ({}) {}/{n}", links.len(), i + 1)
        };
        out.fields.push((name, g));
    }
    if shown < links.len() {
        out.fields.push((
            "More".into(),
            format!("+{} more in the attached files", links.len() - shown),
        ));
    }
    out
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut t: String = text.chars().take(max.saturating_sub(1)).collect();
    t.push('…');
    t
}

/// Everything `health` reports.
#[derive(Debug, Clone, Default)]
pub struct Health {
    pub version: String,
    pub uptime: std::time::Duration,
    pub gateway_latency: Option<std::time::Duration>,
    pub sherlock: String,
    pub reddit: String,
    pub toxicity: String,
    pub running: usize,
    pub queued: usize,
    pub max_concurrent: usize,
    pub accepting: bool,
    pub scans_dir: String,
    pub free_bytes: Option<u64>,
    pub rss_bytes: Option<u64>,
    /// The database in words: engine, reachable or not, the last failed write.
    pub database: String,
    /// Which machine answers, its shards, and whether the API quotas are shared.
    pub machine: String,
    /// With the queue every machine shares: the workers seen live and the line they share.
    pub workers: Option<String>,
}

pub fn health(h: &Health) -> String {
    let latency = match h.gateway_latency {
        Some(l) if !l.is_zero() => format!("{} ms", l.as_millis()),
        _ => "not measured yet (first heartbeat pending)".into(),
    };
    let state = if h.accepting {
        ""
    } else {
        " · shutting down, no new scans"
    };
    format!(
        "**account-scanner {}** · up {}{state}\n\
         Gateway latency: {latency}\n\
         Sherlock: {}\n\
         Reddit: {}\n\
         Toxicity: {}\n\
         Scans: {} running, {} queued (at most {} at once)\n\
         Scans directory: {} · {} free\n\
         History database: {}\n\
         Machine: {}\n\
         {}\
         Memory: {} resident",
        h.version,
        human_duration(h.uptime),
        h.sherlock,
        h.reddit,
        h.toxicity,
        h.running,
        h.queued,
        h.max_concurrent,
        code(&h.scans_dir),
        h.free_bytes
            .map(crate::ops::host::human_bytes)
            .unwrap_or_else(|| "unknown".into()),
        h.database,
        h.machine,
        h.workers
            .as_ref()
            .map(|w| format!("Workers: {w}\n"))
            .unwrap_or_default(),
        h.rss_bytes
            .map(crate::ops::host::human_bytes)
            .unwrap_or_else(|| "unknown".into()),
    )
}

pub fn human_duration(d: std::time::Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {}s", s / 60, s % 60),
        3600..86400 => format!("{}h {}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d {}h", s / 86400, (s % 86400) / 3600),
    }
}

pub fn human_size(bytes: u64) -> String {
    crate::ops::host::human_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{RedditSection, RequestInfo, SherlockSection, StatusCounts, ToolVersions};
    use crate::model::{SiteResult, SiteStatus};

    fn report_with_hits(n: usize) -> ScanReport {
        let sites: Vec<SiteResult> = (0..n)
            .map(|i| SiteResult {
                site: format!("Site_{i:04}"),
                status: SiteStatus::Claimed,
                error_kind: None,
                detail: None,
                url_user: Some(format!("https://site{i}.example/alice")),
                url_main: None,
                http_status: Some(200),
                response_time_s: None,
                unreliable: false,
            })
            .collect();
        ScanReport {
            schema_version: 1,
            scan_id: "abcd1234".into(),
            request: RequestInfo {
                username: "alice_x".into(),
                mode: ScanMode::Sherlock,
                timeout_s: 300,
                requested_by: None,
                discord_member: None,
            },
            started_at: chrono::Utc::now(),
            finished_at: chrono::Utc::now(),
            duration_ms: 1234,
            tools: ToolVersions {
                account_scanner: "0.1.0".into(),
                sherlock: Some("0.16.2".into()),
            },
            partial: false,
            partial_reason: None,
            sherlock: SherlockSection {
                status: SectionStatus::Completed,
                sites_total: Some(n),
                sites_checked: n,
                counts: StatusCounts::of(&sites),
                sites,
                ..SherlockSection::skipped()
            },
            reddit: RedditSection::skipped(),
            previous: None,
        }
    }

    #[test]
    fn escaping_defuses_markdown_and_mentions() {
        assert_eq!(escape("@everyone"), "@\u{200B}everyone");
        assert_eq!(escape("a_b*c"), "a\\_b\\*c");
        assert_eq!(escape("[x](http://evil)"), "\\[x\\]\\(http\\://evil\\)");
        assert_eq!(escape("<@123>"), "\\<@\u{200B}123\\>");
    }

    #[test]
    fn hits_are_linked_and_grouped() {
        let embeds = result_embeds(&report_with_hits(3));
        let e = &embeds[0];
        assert_eq!(e.title, "Scan of alice\\_x");
        assert_eq!(e.fields.len(), 1);
        assert_eq!(e.fields[0].0, "Found (3)");
        assert!(
            e.fields[0]
                .1
                .starts_with("[Site\\_0000](https://site0.example/alice) · [Site\\_0001]")
        );
        assert!(
            e.description
                .contains("**Found on 3 site(s)** · 3 of 3 sites checked")
        );
        assert_eq!(e.footer, "scan abcd1234 · Sherlock 0.16.2 · 1.2 s");
    }

    #[test]
    fn many_hits_stay_within_discord_limits_and_say_how_many_more() {
        let embeds = result_embeds(&report_with_hits(400));
        let e = &embeds[0];
        assert!(e.text_len() <= EMBEDS_TOTAL_MAX, "{}", e.text_len());
        assert!(e.fields.len() <= FIELDS_MAX);
        assert!(
            e.fields
                .iter()
                .all(|(n, v)| n.len() <= 256 && v.chars().count() <= FIELD_VALUE_MAX)
        );
        let (name, more) = e.fields.last().expect("fields");
        assert_eq!(name, "More");
        let shown: usize = e
            .fields
            .iter()
            .filter(|(n, _)| n.starts_with("Found"))
            .map(|(_, v)| v.matches("](").count())
            .sum();
        assert_eq!(
            more,
            &format!("+{} more in the attached files", 400 - shown)
        );
        assert!(shown > 50, "only {shown} shown");
    }

    #[test]
    fn health_lists_every_line() {
        let text = health(&Health {
            version: "0.1.0".into(),
            uptime: std::time::Duration::from_secs(3725),
            gateway_latency: Some(std::time::Duration::from_millis(42)),
            sherlock: "0.16.2".into(),
            reddit: "not configured".into(),
            toxicity: "none".into(),
            running: 1,
            queued: 2,
            max_concurrent: 2,
            accepting: true,
            scans_dir: "./scans".into(),
            free_bytes: Some(2048),
            rss_bytes: Some(10 * 1024 * 1024),
            database: "SQLite · ok".into(),
            machine: "m1 · shards 0-0 of 2".into(),
            workers: Some("2 live · m1 (bot, shards 0-0 of 2) 1/2 busy".into()),
        });
        assert!(text.contains("Workers: 2 live · m1 (bot, shards 0-0 of 2) 1/2 busy\nMemory"));
        assert!(text.contains("Machine: m1 · shards 0-0 of 2"));
        assert!(text.contains("up 1h 2m"));
        assert!(text.contains("History database: SQLite · ok"));
        assert!(text.contains("Gateway latency: 42 ms"));
        assert!(text.contains("Scans: 1 running, 2 queued (at most 2 at once)"));
        assert!(text.contains("Memory: 10.0 MB resident"));
    }
}
