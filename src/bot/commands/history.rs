//! `history <target> [page] [files]`: this server's earlier scans of a username or member,
//! newest first, and on request the latest scan's report files.

use poise::CreateReply;
use poise::serenity_prelude as serenity;

use super::scan::{Target, attach_files, create_embed, parse_target};
use crate::bot::{BotError, Context, render};
use crate::db::scans::{Scope, TargetKey};

/// Scans listed per page (an embed's description holds them well within Discord's limits).
pub const PER_PAGE: u32 = 10;

/// Earlier scans of a username or member in this server.
#[poise::command(
    prefix_command,
    slash_command,
    guild_only,
    required_permissions = "MODERATE_MEMBERS",
    default_member_permissions = "MODERATE_MEMBERS",
    category = "Moderation"
)]
pub async fn history(
    ctx: Context<'_>,
    #[description = "A username, or a mention of a server member"] target: String,
    #[description = "Which page (10 scans a page, newest first)"] page: Option<u32>,
    #[description = "Attach the latest scan's report files"] files: Option<bool>,
) -> Result<(), BotError> {
    if let poise::Context::Application(_) = ctx {
        ctx.defer().await?;
    }
    let guild = ctx
        .guild_id()
        .ok_or_else(|| BotError::user("`history` works in a server channel only."))?;
    let (shown, key) = target_key(ctx, parse_target(&target)?).await;
    let page = page.unwrap_or(1).max(1);
    let state = ctx.data();
    let found = state
        .db
        .history(
            Scope::Guild(guild.get()),
            &key,
            PER_PAGE,
            (page - 1).saturating_mul(PER_PAGE),
        )
        .await
        .map_err(|e| BotError::Internal(e.into()))?;
    let embed = render::history_embed(&shown, &found, page, PER_PAGE, chrono::Utc::now());
    let mut reply = CreateReply::default().embed(create_embed(embed));
    if files.unwrap_or(false) {
        let latest = if page == 1 {
            found.entries.first().cloned()
        } else {
            state
                .db
                .history(Scope::Guild(guild.get()), &key, 1, 0)
                .await
                .map_err(|e| BotError::Internal(e.into()))?
                .entries
                .into_iter()
                .next()
        };
        let notes = match latest {
            None => vec!["There is no scan whose files could be attached.".to_string()],
            Some(entry) => {
                let paths: Vec<_> = entry
                    .files
                    .iter()
                    .map(|n| state.store.dir().join(n))
                    .collect();
                let here = paths.iter().all(|p| p.is_file());
                let copy = match here {
                    true => None,
                    false => state
                        .db
                        .report_copy(Scope::Guild(guild.get()), &entry.scan_id)
                        .await
                        .map_err(|e| BotError::Internal(e.into()))?,
                };
                let (with_files, notes) = match copy {
                    Some(json) => attach_copy(reply, &entry.files, json),
                    None => {
                        let paths: Vec<&std::path::Path> =
                            paths.iter().map(|p| p.as_path()).collect();
                        attach_files(reply, &paths).await
                    }
                };
                reply = with_files;
                notes
            }
        };
        if !notes.is_empty() {
            reply = reply.content(notes.join("\n"));
        }
    }
    ctx.send(reply).await?;
    Ok(())
}

/// The report files rebuilt from the database's copy of the report (the machine that ran the
/// scan holds the files): the JSON as it was written, the CSVs made again from it.
fn attach_copy(
    mut reply: CreateReply,
    names: &[String],
    json: String,
) -> (CreateReply, Vec<String>) {
    let mut notes = vec![
        "The report files are on the machine that ran this scan; these were rebuilt from the database's copy of the report.".to_string(),
    ];
    let report: Option<crate::model::ScanReport> = serde_json::from_str(&json).ok();
    for name in names {
        let bytes = if name.ends_with(".json") {
            Some(json.clone().into_bytes())
        } else if name.ends_with("_sherlock.csv") {
            report
                .as_ref()
                .and_then(|r| crate::store::csv::sherlock_csv(r).ok())
        } else if name.ends_with("_reddit.csv") {
            report
                .as_ref()
                .and_then(|r| crate::store::csv::reddit_csv(r).ok())
        } else {
            None
        };
        match bytes {
            Some(bytes) if bytes.len() as u64 <= render::UPLOAD_LIMIT_BYTES => {
                reply = reply.attachment(serenity::CreateAttachment::bytes(bytes, name.clone()));
            }
            Some(_) => notes.push(format!(
                "{} is over Discord's {} upload limit",
                render::code(name),
                render::human_size(render::UPLOAD_LIMIT_BYTES)
            )),
            None => notes.push(format!("{} could not be rebuilt", render::code(name))),
        }
    }
    (reply, notes)
}

/// What to call the target, and how history finds it: a mention matches the member's id and
/// their current username.
pub(crate) async fn target_key(ctx: Context<'_>, target: Target) -> (String, TargetKey) {
    match target {
        Target::Username(u) => (u.to_string(), TargetKey::username(u.as_str())),
        Target::Member(id) => {
            let name = match ctx.guild_id() {
                Some(guild) => guild
                    .member(ctx, serenity::UserId::new(id))
                    .await
                    .ok()
                    .map(|m| m.user.name.clone()),
                None => None,
            };
            (
                name.clone().unwrap_or_else(|| format!("<@{id}>")),
                TargetKey {
                    username: name.map(|n| n.to_lowercase()).unwrap_or_default(),
                    member: Some(id),
                },
            )
        }
    }
}
