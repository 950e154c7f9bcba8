//! Buttons on scan results (and the join screen's Scan): "Rescan", "Scan Reddit too" / "Scan sites too" (when a half was
//! skipped) and "History". What a button means is in its `custom_id`, so it keeps working after
//! the bot restarts; it expires `BUTTON_LIFETIME` after the result was posted. Every press is
//! checked like the command it stands for (Moderate Members): anyone who can see the message can
//! press it.

use std::sync::Arc;
use std::time::Duration;

use poise::serenity_prelude as serenity;

use crate::bot::commands::scan::{
    Target, already_posted, create_embed, post_error, prepare_result, resolve_target, status_text,
};
use crate::bot::{BotError, BotState, audit, render};
use crate::db::scans::{Scope, TargetKey};
use crate::jobs::scan::{JobRequest, Outcome, PostError, Replies, Requester, Status};
use crate::model::{ScanMode, ScanReport, SectionStatus, Username};

/// Marks this bot's buttons (and the format's version).
const PREFIX: &str = "as1";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The same scan again.
    Rescan,
    /// The half that was skipped.
    RedditToo,
    SitesToo,
    History,
    /// The join screen's: scan the member who joined.
    Scan,
}

impl Action {
    fn code(self) -> char {
        match self {
            Action::Rescan => 'r',
            Action::RedditToo => 'R',
            Action::SitesToo => 'S',
            Action::History => 'H',
            Action::Scan => 'n',
        }
    }

    fn from_code(c: &str) -> Option<Action> {
        Some(match c {
            "r" => Action::Rescan,
            "R" => Action::RedditToo,
            "S" => Action::SitesToo,
            "H" => Action::History,
            "n" => Action::Scan,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Action::Rescan => "rescan",
            Action::RedditToo => "scan reddit",
            Action::SitesToo => "scan sites",
            Action::History => "history",
            Action::Scan => "scan",
        }
    }
}

/// What a button does, as its `custom_id` says (at most 100 characters: a username is at most
/// 64).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ButtonId {
    pub action: Action,
    pub mode: ScanMode,
    pub member: Option<u64>,
    pub username: String,
    /// Unix seconds.
    pub expires: i64,
}

impl ButtonId {
    pub fn encode(&self) -> String {
        let mode = match self.mode {
            ScanMode::All => 'a',
            ScanMode::Sherlock => 's',
            ScanMode::Reddit => 'd',
        };
        let member = self
            .member
            .map(|m| radix36(m as u128))
            .unwrap_or_else(|| "-".into());
        format!(
            "{PREFIX}:{}:{mode}:{member}:{}:{}",
            self.action.code(),
            radix36(self.expires.max(0) as u128),
            self.username
        )
    }

    pub fn decode(id: &str) -> Option<ButtonId> {
        let mut parts = id.splitn(6, ':');
        if parts.next()? != PREFIX {
            return None;
        }
        let action = Action::from_code(parts.next()?)?;
        let mode = match parts.next()? {
            "a" => ScanMode::All,
            "s" => ScanMode::Sherlock,
            "d" => ScanMode::Reddit,
            _ => return None,
        };
        let member = match parts.next()? {
            "-" => None,
            m => Some(u64::from_str_radix(m, 36).ok()?),
        };
        let expires = i64::from_str_radix(parts.next()?, 36).ok()?;
        let username = parts.next()?.to_string();
        Username::parse(&username).ok()?;
        Some(ButtonId {
            action,
            mode,
            member,
            username,
            expires,
        })
    }
}

fn radix36(mut n: u128) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// When buttons posted `now` stop working (Unix seconds).
pub fn expiry(now: chrono::DateTime<chrono::Utc>, lifetime: Duration) -> i64 {
    (now + chrono::Duration::from_std(lifetime).unwrap_or_default()).timestamp()
}

/// The buttons for a result: the skipped half, rescan, history.
pub fn result_rows(
    report: &ScanReport,
    now: chrono::DateTime<chrono::Utc>,
    lifetime: Duration,
) -> Vec<serenity::CreateActionRow> {
    let expires = expiry(now, lifetime);
    let member = report
        .request
        .discord_member
        .as_ref()
        .and_then(|m| m.user_id.parse().ok());
    let id = |action, mode| {
        ButtonId {
            action,
            mode,
            member,
            username: report.request.username.clone(),
            expires,
        }
        .encode()
    };
    let mode = report.request.mode;
    let mut buttons = Vec::new();
    if report.reddit.status == SectionStatus::Skipped {
        buttons.push(
            serenity::CreateButton::new(id(Action::RedditToo, ScanMode::Reddit))
                .label("Scan Reddit too")
                .style(serenity::ButtonStyle::Primary),
        );
    }
    if report.sherlock.status == SectionStatus::Skipped {
        buttons.push(
            serenity::CreateButton::new(id(Action::SitesToo, ScanMode::Sherlock))
                .label("Scan sites too")
                .style(serenity::ButtonStyle::Primary),
        );
    }
    buttons.push(
        serenity::CreateButton::new(id(Action::Rescan, mode))
            .label("Rescan")
            .style(serenity::ButtonStyle::Secondary),
    );
    buttons.push(
        serenity::CreateButton::new(id(Action::History, mode))
            .label("History")
            .style(serenity::ButtonStyle::Secondary),
    );
    vec![serenity::CreateActionRow::Buttons(buttons)]
}

/// Answers a button press (from the event handler).
pub async fn handle(
    ctx: &serenity::Context,
    state: &Arc<BotState>,
    press: &serenity::ComponentInteraction,
) {
    let Some(button) = ButtonId::decode(&press.data.custom_id) else {
        return;
    };
    if let Err(e) = answer(ctx, state, press, &button).await {
        let text = match e {
            BotError::User(message) => message,
            internal => {
                let reference = crate::jobs::scan::reference_id();
                tracing::error!(reference = %reference, error = %internal, "button failed");
                format!(
                    "Sorry, something went wrong on our side (reference `{reference}`). An admin can find the details in the bot's log."
                )
            }
        };
        let followup = serenity::CreateInteractionResponseFollowup::new()
            .content(text)
            .ephemeral(true)
            .allowed_mentions(serenity::CreateAllowedMentions::new());
        if let Err(e) = press.create_followup(&ctx.http, followup).await {
            tracing::warn!(error = %crate::bot::commands::describe(&e), "could not answer a button");
        }
    }
}

async fn answer(
    ctx: &serenity::Context,
    state: &Arc<BotState>,
    press: &serenity::ComponentInteraction,
    button: &ButtonId,
) -> Result<(), BotError> {
    let http = &ctx.http;
    if button.expires < chrono::Utc::now().timestamp() {
        // The answer itself disables the message's buttons.
        let update = serenity::CreateInteractionResponse::UpdateMessage(
            serenity::CreateInteractionResponseMessage::new()
                .components(disabled(&press.message.components)),
        );
        press.create_response(http, update).await?;
        return Err(BotError::user(format!(
            "These buttons expired ({} after the result was posted). Use `/scan` or `/history` instead.",
            render::human_duration(state.config.discord.button_lifetime)
        )));
    }
    let allowed = press
        .member
        .as_ref()
        .and_then(|m| m.permissions)
        .is_some_and(|p| p.moderate_members());
    if !allowed {
        let refusal = serenity::CreateInteractionResponse::Message(
            serenity::CreateInteractionResponseMessage::new()
                .content("You're lacking permissions for this button: Moderate Members")
                .ephemeral(true),
        );
        press.create_response(http, refusal).await?;
        audit::record(
            state,
            audit::Entry::Refused {
                user: press.user.id.get(),
                channel: press.channel_id.get(),
                guild: press.guild_id.map(|g| g.get()),
                command: format!("button: {}", button.action.name()),
                why: "lacks Moderate Members".into(),
            },
        )
        .await;
        return Ok(());
    }
    let target = match button.member {
        Some(id) => Target::Member(id),
        None => Target::Username(
            Username::parse(&button.username).map_err(|e| BotError::user(e.to_string()))?,
        ),
    };
    match button.action {
        Action::History => {
            press
                .create_response(
                    http,
                    serenity::CreateInteractionResponse::Defer(
                        serenity::CreateInteractionResponseMessage::new().ephemeral(true),
                    ),
                )
                .await?;
            let guild = press
                .guild_id
                .ok_or_else(|| BotError::user("History works in a server only."))?;
            let key = TargetKey {
                username: button.username.to_lowercase(),
                member: button.member,
            };
            let page = state
                .db
                .history(Scope::Guild(guild.get()), &key, 10, 0)
                .await
                .map_err(|e| BotError::Internal(e.into()))?;
            let e = render::history_embed(&button.username, &page, 1, 10, chrono::Utc::now());
            press
                .edit_response(
                    http,
                    serenity::EditInteractionResponse::new()
                        .embed(create_embed(e))
                        .allowed_mentions(serenity::CreateAllowedMentions::new()),
                )
                .await?;
            Ok(())
        }
        Action::Rescan | Action::RedditToo | Action::SitesToo | Action::Scan => {
            press
                .create_response(
                    http,
                    serenity::CreateInteractionResponse::Defer(
                        serenity::CreateInteractionResponseMessage::new(),
                    ),
                )
                .await?;
            let (username, member) = resolve_target(http, press.guild_id, target).await?;
            let job = JobRequest {
                username,
                member,
                mode: Some(button.mode),
                requester: Requester {
                    user_id: press.user.id.get(),
                    user_name: press.user.name.clone(),
                    channel: press.channel_id.get(),
                    guild: press.guild_id.map(|g| g.get()),
                },
                priority: crate::jobs::scan::Priority::Moderator,
            };
            let replies = PressReplies {
                http: http.clone(),
                press,
                state,
                me: ctx.cache.current_user().id,
            };
            Ok(crate::jobs::scan::run(&state.services(), &replies, job).await?)
        }
    }
}

/// The message's buttons, disabled.
fn disabled(rows: &[serenity::ActionRow]) -> Vec<serenity::CreateActionRow> {
    rows.iter()
        .map(|row| {
            serenity::CreateActionRow::Buttons(
                row.components
                    .iter()
                    .filter_map(|c| match c {
                        serenity::ActionRowComponent::Button(b) => {
                            Some(serenity::CreateButton::from(b.clone()).disabled(true))
                        }
                        _ => None,
                    })
                    .collect(),
            )
        })
        .collect()
}

/// A button-started scan's replies: the deferred answer is the acknowledgement, the result a
/// follow-up in the channel.
struct PressReplies<'a> {
    http: Arc<serenity::Http>,
    press: &'a serenity::ComponentInteraction,
    state: &'a Arc<BotState>,
    me: serenity::UserId,
}

impl Replies for PressReplies<'_> {
    type Ack = ();
    type Result = poise::CreateReply;

    async fn acknowledge(
        &self,
        username: &Username,
        mode: ScanMode,
        status: Status<'_>,
    ) -> Result<(), PostError> {
        self.edit(&(), username, mode, status).await
    }

    async fn edit(
        &self,
        _: &(),
        username: &Username,
        mode: ScanMode,
        status: Status<'_>,
    ) -> Result<(), PostError> {
        self.press
            .edit_response(
                &self.http,
                serenity::EditInteractionResponse::new()
                    .content(status_text(username, mode, &status))
                    .allowed_mentions(serenity::CreateAllowedMentions::new()),
            )
            .await
            .map(|_| ())
            .map_err(post_error)
    }

    async fn prepare(&self, outcome: Outcome<'_>) -> poise::CreateReply {
        prepare_result(outcome, self.state.config.discord.button_lifetime).await
    }

    async fn post(&self, reply: &poise::CreateReply, _: &str) -> Result<(), PostError> {
        let followup = reply
            .clone()
            .allowed_mentions(serenity::CreateAllowedMentions::new())
            .to_slash_followup_response(serenity::CreateInteractionResponseFollowup::new());
        self.press
            .create_followup(&self.http, followup)
            .await
            .map(|_| ())
            .map_err(post_error)
    }

    async fn already_posted(&self, scan_id: &str) -> bool {
        already_posted(&self.http, self.press.channel_id, self.me, scan_id).await
    }

    async fn handoff(&self, _: Option<&()>) -> Option<crate::jobs::shared::Handoff> {
        Some(crate::bot::commands::scan::interaction_handoff(
            self.press.id,
            self.press.application_id,
            &self.press.token,
            self.press.channel_id,
            self.press.guild_id,
        ))
    }

    async fn audit(&self, entry: audit::Entry) {
        audit::post(self.state, &entry).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_button_id_holds_what_it_means_within_100_characters() {
        let id = ButtonId {
            action: Action::RedditToo,
            mode: ScanMode::Reddit,
            member: Some(u64::MAX >> 1),
            username: "a".repeat(64),
            expires: 4_102_444_800,
        };
        let text = id.encode();
        assert!(text.len() <= 100, "{} characters: {text}", text.len());
        assert_eq!(ButtonId::decode(&text), Some(id));
        let plain = ButtonId {
            action: Action::History,
            mode: ScanMode::All,
            member: None,
            username: "alice.b-c_d".into(),
            expires: 1,
        };
        assert_eq!(ButtonId::decode(&plain.encode()), Some(plain));
        for junk in [
            "",
            "as1",
            "as2:r:a:-:1:alice",
            "as1:x:a:-:1:alice",
            "as1:r:a:-:1:bad name",
        ] {
            assert_eq!(ButtonId::decode(junk), None, "{junk}");
        }
    }
}
