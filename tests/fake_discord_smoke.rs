//! Proves `tests/support/fake_discord/` against the real serenity 0.12.5: a minimal client
//! built the way ARCHITECTURE.md §6 says (proxy + ratelimiter off + `new_with_http`) connects,
//! sees READY and GUILD_CREATE with the guild in its cache, answers an injected "ping" with a
//! "pong" that passes Discord's OpenAPI schema, receives an injected slash command with the
//! right options and permissions, answers it through the interaction routes, and reconnects
//! after the fake drops the gateway. Context-menu commands (user, message) and button presses
//! arrive as serenity deserializes them (`CommandInteraction` with a resolved target,
//! `ComponentInteraction` with its message and buttons), and the callbacks 4/5/6/7, `@original`
//! edits and follow-ups that answer them are recorded and applied. Joiners become members with
//! GUILD_MEMBER_ADD, sent only to a session with the GUILD_MEMBERS intent. Also unit-tests the
//! spec validator and the REST fault knobs.

#[path = "support/fake_discord/mod.rs"]
mod fake_discord;

use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::{Duration, Instant};

use fake_discord::*;
use serde_json::{Value, json};
use serenity::all::{
    ActionRowComponent, ApplicationId, AuthorizingIntegrationOwner, ButtonKind, ButtonStyle,
    ChannelId, Client, ClientBuilder, CommandDataOptionValue, CommandType, Context,
    CreateActionRow, CreateAttachment, CreateButton, CreateCommand, CreateInteractionResponse,
    CreateInteractionResponseFollowup, CreateInteractionResponseMessage, CreateMessage,
    EditInteractionResponse, EventHandler, GatewayIntents, Guild, GuildId, HttpBuilder,
    Interaction, Member, Message, MessageInteractionMetadata, PermissionOverwriteType, Permissions,
    Ready, ResolvedTarget, ResumedEvent, RoleId, UserId,
};

/// What the handler saw, in order.
#[derive(Debug)]
enum Seen {
    Ready {
        user: u64,
        guilds: Vec<u64>,
        session: String,
        shard: u32,
    },
    GuildCreate {
        id: u64,
        members: usize,
        roles: usize,
        channels: usize,
        moderator_perms: Permissions,
        member_perms: Permissions,
        bot_perms_in_general: Permissions,
        member_joined_at: Option<String>,
        name: String,
        shard: u32,
        /// Sorted.
        channel_ids: Vec<u64>,
        /// Sorted.
        role_ids: Vec<u64>,
        moderator_roles: Vec<u64>,
        /// The bot's and the plain member's permissions in each channel, as the cache computes
        /// them (overwrites applied).
        bot_perms_by_channel: Vec<(u64, Permissions)>,
        member_perms_by_channel: Vec<(u64, Permissions)>,
        /// (channel, target id, is_role, allow, deny) of every permission overwrite.
        overwrites: Vec<(u64, u64, bool, u64, u64)>,
    },
    Message {
        author: u64,
        guild: Option<u64>,
        content: String,
        mentions: Vec<u64>,
        member_roles: Option<Vec<u64>>,
        channel: u64,
        mention_roles: Vec<u64>,
        shard: u32,
    },
    Command {
        name: String,
        options: Vec<(String, String)>,
        member_perms: Option<Permissions>,
        app_perms: Option<Permissions>,
        user: u64,
        guild: Option<u64>,
        channel: u64,
        channel_perms: Option<Permissions>,
        member_roles: Option<Vec<u64>>,
        /// The guild ids of `authorizing_integration_owners` (guild installs).
        owners: Vec<Option<u64>>,
        shard: u32,
    },
    /// A button press (`ComponentInteraction`) as the handler got it.
    Component {
        custom_id: String,
        message: u64,
        message_custom_ids: Vec<String>,
        user: u64,
        guild: Option<u64>,
        channel: u64,
        member_perms: Option<Permissions>,
        app_perms: Option<Permissions>,
    },
    Resumed,
    /// GUILD_MEMBER_ADD as serenity's `guild_member_addition` got it.
    MemberAdd {
        user: u64,
        name: String,
        guild: u64,
        joined_at: Option<i64>,
        avatar: Option<String>,
        roles: Vec<u64>,
        bot: bool,
    },
}

/// The buttons the handler puts on its "buttons" answer; each answers its press differently.
const BUTTON_UPDATE: &str = "scan:update:alice";
const BUTTON_DEFER: &str = "scan:defer:alice";
const BUTTON_NEW: &str = "scan:new:alice";
const BUTTON_OFF: &str = "scan:off";
const BUTTON_DONE: &str = "scan:done:alice";

/// The custom_ids of a message's buttons, in order.
fn custom_ids_of(msg: &Message) -> Vec<String> {
    msg.components
        .iter()
        .flat_map(|row| &row.components)
        .filter_map(|c| match c {
            ActionRowComponent::Button(b) => match &b.data {
                ButtonKind::NonLink { custom_id, .. } => Some(custom_id.clone()),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

struct Handler {
    tx: Sender<Seen>,
}

#[serenity::async_trait]
impl EventHandler for Handler {
    async fn ready(&self, ctx: Context, ready: Ready) {
        let _ = self.tx.send(Seen::Ready {
            user: ready.user.id.get(),
            guilds: ready.guilds.iter().map(|g| g.id.get()).collect(),
            session: ready.session_id.clone(),
            shard: ctx.shard_id.0,
        });
    }

    async fn guild_create(&self, ctx: Context, guild: Guild, _is_new: Option<bool>) {
        // Read back from the cache, as poise does for permission checks.
        let seen = {
            let Some(g) = ctx.cache.guild(guild.id) else {
                return;
            };
            let perms_of = |id: u64| {
                g.members
                    .get(&UserId::new(id))
                    .map(|m| g.member_permissions(m))
                    .unwrap_or_else(Permissions::empty)
            };
            let bot_perms_in_general = match (
                g.channels.get(&ChannelId::new(GENERAL_CHANNEL_ID)),
                g.members.get(&UserId::new(BOT_ID)),
            ) {
                (Some(c), Some(m)) => g.user_permissions_in(c, m),
                _ => Permissions::empty(),
            };
            let perms_by_channel = |user: u64| {
                let mut v: Vec<(u64, Permissions)> = g
                    .channels
                    .values()
                    .filter_map(|c| {
                        let m = g.members.get(&UserId::new(user))?;
                        Some((c.id.get(), g.user_permissions_in(c, m)))
                    })
                    .collect();
                v.sort_by_key(|(c, _)| *c);
                v
            };
            let mut channel_ids: Vec<u64> = g.channels.keys().map(|c| c.get()).collect();
            channel_ids.sort_unstable();
            let mut role_ids: Vec<u64> = g.roles.keys().map(|r| r.get()).collect();
            role_ids.sort_unstable();
            let mut overwrites = Vec::new();
            for c in g.channels.values() {
                for o in &c.permission_overwrites {
                    let (target, is_role) = match o.kind {
                        PermissionOverwriteType::Role(r) => (r.get(), true),
                        PermissionOverwriteType::Member(u) => (u.get(), false),
                        _ => (0, false),
                    };
                    overwrites.push((c.id.get(), target, is_role, o.allow.bits(), o.deny.bits()));
                }
            }
            Seen::GuildCreate {
                id: g.id.get(),
                members: g.members.len(),
                roles: g.roles.len(),
                channels: g.channels.len(),
                moderator_perms: perms_of(MODERATOR_ID),
                member_perms: perms_of(MEMBER_ID),
                bot_perms_in_general,
                member_joined_at: g
                    .members
                    .get(&UserId::new(MEMBER_ID))
                    .and_then(|m| m.joined_at)
                    .map(|t| t.to_rfc3339().unwrap_or_default()),
                name: g.name.clone(),
                shard: ctx.shard_id.0,
                channel_ids,
                role_ids,
                moderator_roles: g
                    .members
                    .get(&UserId::new(MODERATOR_ID))
                    .map(|m| m.roles.iter().map(|r| r.get()).collect())
                    .unwrap_or_default(),
                bot_perms_by_channel: perms_by_channel(BOT_ID),
                member_perms_by_channel: perms_by_channel(MEMBER_ID),
                overwrites,
            }
        };
        let _ = self.tx.send(seen);
    }

    async fn message(&self, ctx: Context, msg: Message) {
        let _ = self.tx.send(Seen::Message {
            author: msg.author.id.get(),
            guild: msg.guild_id.map(|g| g.get()),
            content: msg.content.clone(),
            mentions: msg.mentions.iter().map(|u| u.id.get()).collect(),
            member_roles: msg
                .member
                .as_ref()
                .map(|m| m.roles.iter().map(|r| r.get()).collect()),
            channel: msg.channel_id.get(),
            mention_roles: msg.mention_roles.iter().map(|r| r.get()).collect(),
            shard: ctx.shard_id.0,
        });
        match msg.content.as_str() {
            "ping" => {
                if let Err(e) = msg.channel_id.say(&ctx.http, "pong").await {
                    eprintln!("handler: say failed: {e}");
                }
            }
            "file" => {
                let reply = CreateMessage::new()
                    .content("report attached")
                    .add_file(CreateAttachment::bytes(
                        b"site,url\nA,https://a\n".to_vec(),
                        "r.csv",
                    ))
                    .add_file(CreateAttachment::bytes(b"{\"hits\":1}".to_vec(), "r.json"));
                if let Err(e) = msg.channel_id.send_message(&ctx.http, reply).await {
                    eprintln!("handler: send_message failed: {e}");
                }
            }
            "buttons" => {
                let reply = CreateMessage::new()
                    .content("scan of alice done")
                    .components(vec![CreateActionRow::Buttons(vec![
                        CreateButton::new(BUTTON_UPDATE).label("Rescan"),
                        CreateButton::new(BUTTON_DEFER).label("Details"),
                        CreateButton::new(BUTTON_NEW)
                            .label("Explain")
                            .style(ButtonStyle::Secondary),
                        CreateButton::new(BUTTON_OFF).label("Off").disabled(true),
                    ])]);
                if let Err(e) = msg.channel_id.send_message(&ctx.http, reply).await {
                    eprintln!("handler: send_message failed: {e}");
                }
            }
            _ => {}
        }
    }

    async fn interaction_create(&self, ctx: Context, interaction: Interaction) {
        if let Interaction::Component(press) = &interaction {
            let _ = self.tx.send(Seen::Component {
                custom_id: press.data.custom_id.clone(),
                message: press.message.id.get(),
                message_custom_ids: custom_ids_of(&press.message),
                user: press.user.id.get(),
                guild: press.guild_id.map(|g| g.get()),
                channel: press.channel_id.get(),
                member_perms: press.member.as_ref().and_then(|m| m.permissions),
                app_perms: press.app_permissions,
            });
            let result = async {
                match press.data.custom_id.as_str() {
                    // 7 UPDATE_MESSAGE: new content, the buttons replaced by one.
                    BUTTON_UPDATE => {
                        press
                            .create_response(
                                &ctx.http,
                                CreateInteractionResponse::UpdateMessage(
                                    CreateInteractionResponseMessage::new()
                                        .content("rescanned alice")
                                        .components(vec![CreateActionRow::Buttons(vec![
                                            CreateButton::new(BUTTON_DONE).label("Done"),
                                        ])]),
                                ),
                            )
                            .await?
                    }
                    // 6 DEFERRED_UPDATE_MESSAGE, then an edit of @original (the button's
                    // message) and a follow-up.
                    BUTTON_DEFER => {
                        press
                            .create_response(&ctx.http, CreateInteractionResponse::Acknowledge)
                            .await?;
                        press
                            .edit_response(
                                &ctx.http,
                                EditInteractionResponse::new().content("details of alice"),
                            )
                            .await?;
                        press
                            .create_followup(
                                &ctx.http,
                                CreateInteractionResponseFollowup::new().content("details follow"),
                            )
                            .await?;
                    }
                    // 4 CHANNEL_MESSAGE_WITH_SOURCE, ephemeral.
                    _ => {
                        press
                            .create_response(
                                &ctx.http,
                                CreateInteractionResponse::Message(
                                    CreateInteractionResponseMessage::new()
                                        .content("only you see this")
                                        .ephemeral(true),
                                ),
                            )
                            .await?
                    }
                }
                Ok::<(), serenity::Error>(())
            }
            .await;
            if let Err(e) = result {
                eprintln!("handler: button answer failed: {e}");
            }
            return;
        }
        let Interaction::Command(cmd) = interaction else {
            return;
        };
        let options = cmd
            .data
            .options
            .iter()
            .map(|o| {
                let v = match &o.value {
                    CommandDataOptionValue::String(s) => s.clone(),
                    CommandDataOptionValue::Integer(i) => i.to_string(),
                    CommandDataOptionValue::User(u) => format!("user:{u}"),
                    other => format!("{other:?}"),
                };
                (o.name.clone(), v)
            })
            .collect();
        let _ = self.tx.send(Seen::Command {
            name: cmd.data.name.clone(),
            options,
            member_perms: cmd.member.as_ref().and_then(|m| m.permissions),
            app_perms: cmd.app_permissions,
            user: cmd.user.id.get(),
            guild: cmd.guild_id.map(|g| g.get()),
            channel: cmd.channel_id.get(),
            channel_perms: cmd.channel.as_ref().and_then(|c| c.permissions),
            member_roles: cmd
                .member
                .as_ref()
                .map(|m| m.roles.iter().map(|r| r.get()).collect()),
            owners: cmd
                .authorizing_integration_owners
                .0
                .iter()
                .filter_map(|o| match o {
                    AuthorizingIntegrationOwner::GuildInstall(g) => Some(g.map(|g| g.get())),
                    _ => None,
                })
                .collect(),
            shard: ctx.shard_id.0,
        });
        // Defer, edit the original, then a follow-up with a file (multipart on a webhook).
        let result = async {
            cmd.defer(&ctx.http).await?;
            cmd.edit_response(
                &ctx.http,
                EditInteractionResponse::new().content("scan done"),
            )
            .await?;
            cmd.create_followup(
                &ctx.http,
                CreateInteractionResponseFollowup::new()
                    .content("files")
                    .add_file(CreateAttachment::bytes(b"x".to_vec(), "r.txt")),
            )
            .await?;
            Ok::<(), serenity::Error>(())
        }
        .await;
        if let Err(e) = result {
            eprintln!("handler: interaction answer failed: {e}");
        }
    }

    async fn guild_member_addition(&self, _ctx: Context, member: Member) {
        let _ = self.tx.send(Seen::MemberAdd {
            user: member.user.id.get(),
            name: member.user.name.clone(),
            guild: member.guild_id.get(),
            joined_at: member.joined_at.map(|t| t.unix_timestamp()),
            avatar: member.user.avatar.map(|h| h.to_string()),
            roles: member.roles.iter().map(|r| r.get()).collect(),
            bot: member.user.bot,
        });
    }

    async fn resume(&self, _ctx: Context, _: ResumedEvent) {
        let _ = self.tx.send(Seen::Resumed);
    }
}

fn intents() -> GatewayIntents {
    GatewayIntents::GUILDS
        | GatewayIntents::GUILD_MEMBERS
        | GatewayIntents::GUILD_MESSAGES
        | GatewayIntents::MESSAGE_CONTENT
        | GatewayIntents::DIRECT_MESSAGES
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("test runtime")
}

/// Next event matching `pred` within `timeout` (others are skipped).
fn next_seen(rx: &Receiver<Seen>, timeout: Duration, pred: impl Fn(&Seen) -> bool) -> Seen {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(s) if pred(&s) => return s,
            Ok(_) => continue,
            Err(e) => panic!("handler event not seen within {timeout:?}: {e}"),
        }
    }
}

const WAIT: Duration = Duration::from_secs(5);

#[test]
fn serenity_client_against_the_fake() {
    let fake = FakeDiscord::start_with(FakeDiscordConfig {
        expected_token: Some(BOT_TOKEN.to_string()),
        ..FakeDiscordConfig::default()
    });
    let rt = runtime();
    let (tx, rx) = channel();
    let http = HttpBuilder::new(BOT_TOKEN)
        .proxy(fake.base_url())
        .ratelimiter_disabled(true)
        .build();
    let mut client: Client = rt
        .block_on(async {
            ClientBuilder::new_with_http(http, intents())
                .event_handler(Handler { tx })
                .await
        })
        .expect("build serenity client");
    let shard_manager = client.shard_manager.clone();
    let client_task = rt.spawn(async move { client.start().await });

    // --- READY + GUILD_CREATE ---------------------------------------------------------------
    assert!(
        fake.wait_ready(Duration::from_secs(10)),
        "bot never got READY"
    );
    let Seen::Ready {
        user,
        guilds,
        session,
        ..
    } = next_seen(&rx, WAIT, |s| matches!(s, Seen::Ready { .. }))
    else {
        unreachable!()
    };
    assert_eq!(user, BOT_ID);
    assert_eq!(guilds, vec![GUILD_ID, GUILD2_ID]);
    assert_eq!(Some(session), fake.session_id());
    let Seen::GuildCreate {
        id,
        members,
        roles,
        channels,
        moderator_perms,
        member_perms,
        bot_perms_in_general,
        member_joined_at,
        ..
    } = next_seen(
        &rx,
        WAIT,
        |s| matches!(s, Seen::GuildCreate { id, .. } if *id == GUILD_ID),
    )
    else {
        unreachable!()
    };
    assert_eq!(id, GUILD_ID);
    assert_eq!(members, 5, "owner, admin, moderator, member, bot");
    assert_eq!(roles, 3);
    assert_eq!(channels, 3, "general, mod-log, announcements");
    assert!(moderator_perms.moderate_members());
    assert!(!member_perms.moderate_members());
    assert!(member_perms.send_messages() && member_perms.attach_files());
    assert!(
        bot_perms_in_general.contains(
            Permissions::SEND_MESSAGES
                | Permissions::EMBED_LINKS
                | Permissions::ATTACH_FILES
                | Permissions::READ_MESSAGE_HISTORY
        ),
        "{bot_perms_in_general:?}"
    );
    assert_eq!(
        member_joined_at.as_deref(),
        Some("2023-11-05T16:48:03.512Z"),
        "joined_at reaches the cache"
    );

    let identify = fake.last_identify().expect("an IDENTIFY");
    assert_eq!(identify.token.trim_start_matches("Bot "), BOT_TOKEN);
    assert_eq!(identify.intents, intents().bits());
    assert_eq!(identify.shard, Some((0, 1)));
    assert_eq!(fake.identify_count(), 1);
    assert!(fake.is_connected());

    // --- MESSAGE_CREATE → POST /channels/{c}/messages ---------------------------------------
    let ping = fake.send_message(GENERAL_CHANNEL_ID, MEMBER_ID, "ping");
    let Seen::Message {
        author,
        guild,
        member_roles,
        ..
    } = next_seen(
        &rx,
        WAIT,
        |s| matches!(s, Seen::Message { content, .. } if content == "ping"),
    )
    else {
        unreachable!()
    };
    assert_eq!((author, guild), (MEMBER_ID, Some(GUILD_ID)));
    assert_eq!(member_roles, Some(vec![]));
    let pong = fake
        .wait_for(
            |r| r.is("POST", &format!("/channels/{GENERAL_CHANNEL_ID}/messages")),
            WAIT,
        )
        .expect("the pong reply");
    assert_eq!(pong.content(), Some("pong"));
    assert_eq!(pong.status, 200);
    let pong_id = pong.message_id().expect("answered with a message");
    assert!(pong_id > ping);
    assert_eq!(
        fake.message(pong_id)
            .and_then(|m| m["content"].as_str().map(String::from)),
        Some("pong".into())
    );
    assert_eq!(fake.messages_posted(GENERAL_CHANNEL_ID).len(), 1);
    // Discord echoes the bot's own message over the gateway.
    next_seen(
        &rx,
        WAIT,
        |s| matches!(s, Seen::Message { author, content, .. } if *author == BOT_ID && content == "pong"),
    );

    // Mentions of known users are parsed into `mentions`.
    fake.send_message(
        GENERAL_CHANNEL_ID,
        MODERATOR_ID,
        &format!("look at <@{MEMBER_ID}> and <@!{ADMIN_ID}>, not <@1>"),
    );
    let Seen::Message { mentions, .. } = next_seen(
        &rx,
        WAIT,
        |s| matches!(s, Seen::Message { content, .. } if content.starts_with("look")),
    ) else {
        unreachable!()
    };
    assert_eq!(mentions, vec![MEMBER_ID, ADMIN_ID]);

    // A multipart reply: payload_json + files[N], integer attachment ids.
    fake.send_message(GENERAL_CHANNEL_ID, MODERATOR_ID, "file");
    let upload = fake
        .wait_for(|r| r.content() == Some("report attached"), WAIT)
        .expect("the multipart reply");
    let files: Vec<(Option<&str>, &[u8])> = upload
        .files()
        .iter()
        .map(|f| (f.filename.as_deref(), f.data.as_slice()))
        .collect();
    assert_eq!(
        files,
        vec![
            (Some("r.csv"), &b"site,url\nA,https://a\n"[..]),
            (Some("r.json"), &b"{\"hits\":1}"[..])
        ]
    );
    assert!(upload.payload_json.is_some());
    let answered = upload.response.clone().expect("a message answer");
    let attachments = answered["attachments"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(attachments.len(), 2);
    let first_id: u64 = attachments[0]["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    assert_eq!(
        fake.attachment_bytes(first_id).as_deref(),
        Some(&b"site,url\nA,https://a\n"[..])
    );

    // --- DM ---------------------------------------------------------------------------------
    fake.send_dm(MEMBER_ID, "ping");
    let Seen::Message { guild, .. } = next_seen(
        &rx,
        WAIT,
        |s| matches!(s, Seen::Message { content, guild: None, .. } if content == "ping"),
    ) else {
        unreachable!()
    };
    assert_eq!(guild, None);
    let dm = fake.dm_channel_id(MEMBER_ID);
    let dm_pong = fake
        .wait_for(|r| r.is("POST", &format!("/channels/{dm}/messages")), WAIT)
        .expect("pong in the DM");
    assert_eq!(dm_pong.content(), Some("pong"));

    // --- INTERACTION_CREATE -----------------------------------------------------------------
    let iid = fake.send_slash_command(
        MODERATOR_ID,
        GENERAL_CHANNEL_ID,
        "scan",
        json!({ "target": "alice" }),
    );
    let Seen::Command {
        name,
        options,
        member_perms,
        app_perms,
        user,
        guild,
        ..
    } = next_seen(&rx, WAIT, |s| matches!(s, Seen::Command { .. }))
    else {
        unreachable!()
    };
    assert_eq!(name, "scan");
    assert_eq!(options, vec![("target".to_string(), "alice".to_string())]);
    assert_eq!((user, guild), (MODERATOR_ID, Some(GUILD_ID)));
    assert!(member_perms.is_some_and(|p| p.moderate_members()));
    assert!(app_perms.is_some_and(|p| p.send_messages() && p.attach_files()));
    let answers = fake.wait_for_count(
        |r| r.route.starts_with("/interactions/") || r.route.starts_with("/webhooks/"),
        3,
        WAIT,
    );
    let shapes: Vec<(String, u16)> = answers
        .iter()
        .map(|r| {
            let route = r
                .route
                .replace(&fake.interaction_token(iid).unwrap_or_default(), "{token}");
            (format!("{} {route}", r.method), r.status)
        })
        .collect();
    assert_eq!(
        shapes,
        vec![
            (format!("POST /interactions/{iid}/{{token}}/callback"), 204),
            (
                format!("PATCH /webhooks/{APPLICATION_ID}/{{token}}/messages/@original"),
                200
            ),
            (format!("POST /webhooks/{APPLICATION_ID}/{{token}}"), 200),
        ]
    );
    // serenity's defer is `{"type":5,"data":{"attachments":[]}}`.
    assert_eq!(answers[0].payload().map(|p| &p["type"]), Some(&json!(5)));
    assert_eq!(answers[1].content(), Some("scan done"));
    assert_eq!(answers[2].files().len(), 1);
    assert_eq!(fake.interaction_requests(iid).len(), 3);

    // A user option gets `resolved` and arrives as a user id.
    fake.send_slash_command(
        ADMIN_ID,
        GENERAL_CHANNEL_ID,
        "scan",
        json!([{ "name": "member", "type": 6, "value": MEMBER_ID.to_string() }]),
    );
    let Seen::Command { options, .. } = next_seen(&rx, WAIT, |s| matches!(s, Seen::Command { .. }))
    else {
        unreachable!()
    };
    assert_eq!(
        options,
        vec![("member".to_string(), format!("user:{MEMBER_ID}"))]
    );

    // --- reconnect after an abrupt drop -----------------------------------------------------
    let seq_before = fake.sequence();
    fake.drop_gateway();
    assert!(!fake.is_connected());
    assert!(
        fake.wait_until(Duration::from_secs(10), || fake.is_ready()
            && fake.resume_count() + fake.identify_count() >= 2),
        "no reconnect after drop_gateway"
    );
    assert_eq!(fake.resume_count(), 1, "serenity resumes the session");
    assert_eq!(fake.identify_count(), 1);
    next_seen(&rx, WAIT, |s| matches!(s, Seen::Resumed));
    assert!(fake.sequence() > seq_before, "RESUMED carries the next s");
    fake.send_message(GENERAL_CHANNEL_ID, MEMBER_ID, "ping");
    let pongs = fake.wait_for_count(
        |r| {
            r.is("POST", &format!("/channels/{GENERAL_CHANNEL_ID}/messages"))
                && r.content() == Some("pong")
        },
        2,
        WAIT,
    );
    assert_eq!(pongs.len(), 2, "events flow after the resume");

    // --- nothing odd ------------------------------------------------------------------------
    rt.block_on(shard_manager.shutdown_all());
    let _ = rt.block_on(client_task);
    fake.assert_clean();
    let routes: Vec<String> = fake
        .requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.route))
        .collect();
    assert!(routes.iter().any(|r| r == "GET /gateway"), "{routes:?}");
    assert!(
        fake.requests()
            .iter()
            .filter(|r| r.route != "/gateway")
            .all(|r| r.header("authorization") == Some(&format!("Bot {BOT_TOKEN}"))),
        "every REST call carries the bot token"
    );
    for r in fake.requests() {
        eprintln!(
            "  {} {} -> {} {}",
            r.method,
            r.route,
            r.status,
            r.payload().map(Value::to_string).unwrap_or_default()
        );
    }
    rt.shutdown_timeout(Duration::from_secs(1));
}

/// Starts a serenity client against `fake` on `rt`; returns its event receiver and shard
/// manager.
fn start_client(
    fake: &FakeDiscord,
    rt: &tokio::runtime::Runtime,
) -> (
    Receiver<Seen>,
    std::sync::Arc<serenity::gateway::ShardManager>,
) {
    start_client_sharded(fake, rt, None)
}

/// Like [`start_client`]; with `Some(n)` the client runs shards `0..n` (`start_shards`).
fn start_client_sharded(
    fake: &FakeDiscord,
    rt: &tokio::runtime::Runtime,
    shards: Option<u32>,
) -> (
    Receiver<Seen>,
    std::sync::Arc<serenity::gateway::ShardManager>,
) {
    let (tx, rx) = channel();
    let http = HttpBuilder::new(BOT_TOKEN)
        .proxy(fake.base_url())
        .ratelimiter_disabled(true)
        .build();
    let mut client = rt
        .block_on(async {
            ClientBuilder::new_with_http(http, intents())
                .event_handler(Handler { tx })
                .await
        })
        .expect("build serenity client");
    let manager = client.shard_manager.clone();
    rt.spawn(async move {
        match shards {
            Some(n) => client.start_shards(n).await,
            None => client.start().await,
        }
    });
    (rx, manager)
}

/// The next `readies` READYs and `creates` GUILD_CREATEs the handlers saw, the GUILD_CREATEs
/// sorted by guild id (serenity runs handlers concurrently, so their order is not the dispatch
/// order).
fn startup_events(rx: &Receiver<Seen>, readies: usize, creates: usize) -> (Vec<Seen>, Vec<Seen>) {
    let (mut r, mut c) = (Vec::new(), Vec::new());
    while r.len() < readies || c.len() < creates {
        let s = next_seen(rx, WAIT, |s| {
            matches!(s, Seen::Ready { .. } | Seen::GuildCreate { .. })
        });
        if matches!(s, Seen::Ready { .. }) {
            r.push(s);
        } else {
            c.push(s);
        }
    }
    c.sort_by_key(|s| match s {
        Seen::GuildCreate { id, .. } => *id,
        _ => 0,
    });
    (r, c)
}

fn sorted(mut v: Vec<u64>) -> Vec<u64> {
    v.sort_unstable();
    v
}

/// The second guild at the wire level, through serenity: READY lists both guilds and each gets
/// its GUILD_CREATE with its own roles, channels and members (the read-only channel's overwrite
/// reaches the cache and denies the bot SEND_MESSAGES there); a message and slash commands carry
/// their channel's guild, roles and per-channel permissions; the bot's posts in the second guild
/// are recorded, answered and echoed with that guild; REST serves the second guild and answers
/// 404 Unknown Guild for others; nothing of one guild shows in the other.
#[test]
fn second_guild_at_the_wire_level() {
    let fake = FakeDiscord::start();
    let rt = runtime();
    let (rx, manager) = start_client(&fake, &rt);
    assert!(fake.wait_ready(Duration::from_secs(10)));
    assert!(fake.is_guild_ready(GUILD2_ID), "one session holds both");

    // --- READY + two GUILD_CREATEs ----------------------------------------------------------
    let (readies, creates) = startup_events(&rx, 1, 2);
    let [Seen::Ready { guilds, .. }] = readies.as_slice() else {
        unreachable!()
    };
    assert_eq!(*guilds, vec![GUILD_ID, GUILD2_ID]);
    let [
        Seen::GuildCreate {
            id: id1,
            members: members1,
            channel_ids: channels1,
            role_ids: roles1,
            moderator_roles: moderator_roles1,
            bot_perms_by_channel: bot_perms1,
            member_perms_by_channel: member_perms1,
            overwrites: overwrites1,
            name: name1,
            ..
        },
        Seen::GuildCreate {
            id: id2,
            members: members2,
            channel_ids: channels2,
            role_ids: roles2,
            moderator_roles: moderator_roles2,
            moderator_perms: moderator_perms2,
            member_perms: member_perms2,
            bot_perms_by_channel: bot_perms2,
            member_perms_by_channel: member_perms_by_channel2,
            overwrites: overwrites2,
            name: name2,
            member_joined_at: member_joined_at2,
            ..
        },
    ] = creates.as_slice()
    else {
        panic!("two GUILD_CREATEs: {creates:#?}")
    };
    assert_eq!((*id1, name1.as_str()), (GUILD_ID, GUILD_NAME));
    assert_eq!((*id2, name2.as_str()), (GUILD2_ID, GUILD2_NAME));
    assert_eq!((*members1, *members2), (5, 5));
    assert_eq!(
        *channels1,
        sorted(vec![
            GENERAL_CHANNEL_ID,
            MOD_LOG_CHANNEL_ID,
            READONLY_CHANNEL_ID
        ])
    );
    assert_eq!(
        *channels2,
        sorted(vec![GENERAL2_CHANNEL_ID, MOD_LOG2_CHANNEL_ID])
    );
    assert_eq!(
        *roles1,
        sorted(vec![EVERYONE_ROLE_ID, MODERATOR_ROLE_ID, BOT_ROLE_ID])
    );
    assert_eq!(
        *roles2,
        sorted(vec![EVERYONE2_ROLE_ID, MODERATOR2_ROLE_ID, BOT2_ROLE_ID])
    );
    assert_eq!(*moderator_roles1, vec![MODERATOR_ROLE_ID]);
    assert_eq!(*moderator_roles2, vec![MODERATOR2_ROLE_ID]);
    assert!(moderator_perms2.moderate_members());
    assert!(!member_perms2.moderate_members());
    assert_eq!(
        member_joined_at2.as_deref(),
        Some("2024-01-20T19:03:44.250Z"),
        "the second guild's joined_at"
    );
    // The overwrite, as serenity's cache holds it, and what it computes from it.
    assert_eq!(
        *overwrites1,
        vec![(
            READONLY_CHANNEL_ID,
            BOT_ROLE_ID,
            true,
            0,
            Permissions::SEND_MESSAGES.bits()
        )]
    );
    assert!(overwrites2.is_empty());
    let perms_in = |list: &[(u64, Permissions)], channel: u64| {
        list.iter()
            .find(|(c, _)| *c == channel)
            .map(|(_, p)| *p)
            .unwrap_or_else(|| panic!("no channel {channel} in {list:?}"))
    };
    let bot_readonly = perms_in(bot_perms1, READONLY_CHANNEL_ID);
    assert!(!bot_readonly.send_messages(), "{bot_readonly:?}");
    assert!(bot_readonly.view_channel() && bot_readonly.read_message_history());
    assert!(perms_in(bot_perms1, GENERAL_CHANNEL_ID).send_messages());
    assert!(perms_in(member_perms1, READONLY_CHANNEL_ID).send_messages());
    for c in [GENERAL2_CHANNEL_ID, MOD_LOG2_CHANNEL_ID] {
        let p = perms_in(bot_perms2, c);
        assert!(
            p.send_messages() && p.embed_links() && p.attach_files(),
            "{p:?}"
        );
    }
    // The fake's own computation agrees with the cache's, channel by channel.
    for (list, user) in [
        (bot_perms1, BOT_ID),
        (member_perms1, MEMBER_ID),
        (bot_perms2, BOT_ID),
        (member_perms_by_channel2, MEMBER_ID),
    ] {
        for (c, p) in list {
            assert_eq!(p.bits(), fake.channel_permissions(*c, user), "{c} {user}");
        }
    }

    // --- MESSAGE_CREATE in the second guild -------------------------------------------------
    fake.send_message(
        GENERAL2_CHANNEL_ID,
        MODERATOR_ID,
        &format!("hey <@&{MODERATOR2_ROLE_ID}>, not <@&{MODERATOR_ROLE_ID}>"),
    );
    let Seen::Message {
        guild,
        channel,
        member_roles,
        mention_roles,
        ..
    } = next_seen(
        &rx,
        WAIT,
        |s| matches!(s, Seen::Message { content, .. } if content.starts_with("hey")),
    )
    else {
        unreachable!()
    };
    assert_eq!((guild, channel), (Some(GUILD2_ID), GENERAL2_CHANNEL_ID));
    assert_eq!(member_roles, Some(vec![MODERATOR2_ROLE_ID]));
    assert_eq!(
        mention_roles,
        vec![MODERATOR2_ROLE_ID],
        "only the guild's own roles"
    );

    // The bot's reply there: recorded, answered, echoed with the second guild.
    fake.send_message(GENERAL2_CHANNEL_ID, MEMBER_ID, "ping");
    let pong = fake
        .wait_for(
            |r| r.is("POST", &format!("/channels/{GENERAL2_CHANNEL_ID}/messages")),
            WAIT,
        )
        .expect("the pong in the second guild");
    assert_eq!((pong.status, pong.content()), (200, Some("pong")));
    assert_eq!(
        pong.response.as_ref().map(|r| r["channel_id"].clone()),
        Some(json!(GENERAL2_CHANNEL_ID.to_string()))
    );
    let Seen::Message {
        guild,
        member_roles,
        ..
    } = next_seen(
        &rx,
        WAIT,
        |s| matches!(s, Seen::Message { author, content, .. } if *author == BOT_ID && content == "pong"),
    )
    else {
        unreachable!()
    };
    assert_eq!(guild, Some(GUILD2_ID));
    assert_eq!(member_roles, Some(vec![BOT2_ROLE_ID]));

    // --- INTERACTION_CREATE in the second guild ---------------------------------------------
    let iid = fake.send_slash_command(
        MODERATOR_ID,
        GENERAL2_CHANNEL_ID,
        "scan",
        json!({ "target": "alice" }),
    );
    let Seen::Command {
        guild,
        channel,
        member_roles,
        member_perms,
        channel_perms,
        app_perms,
        owners,
        ..
    } = next_seen(&rx, WAIT, |s| matches!(s, Seen::Command { .. }))
    else {
        unreachable!()
    };
    assert_eq!((guild, channel), (Some(GUILD2_ID), GENERAL2_CHANNEL_ID));
    assert_eq!(member_roles, Some(vec![MODERATOR2_ROLE_ID]));
    assert_eq!(
        member_perms.map(|p| p.bits()),
        Some(fake.channel_permissions(GENERAL2_CHANNEL_ID, MODERATOR_ID))
    );
    assert!(member_perms.is_some_and(|p| p.moderate_members()));
    assert_eq!(channel_perms, member_perms);
    assert!(app_perms.is_some_and(|p| p.send_messages() && p.attach_files()));
    assert_eq!(owners, vec![Some(GUILD2_ID)]);
    let answers = fake.wait_for_count(|r| r.path.contains(&format!("/{iid}/")), 1, WAIT);
    assert_eq!(answers.first().map(|r| r.status), Some(204));

    // A slash command in the read-only channel: the bot may not send there, the member may.
    fake.send_slash_command(MEMBER_ID, READONLY_CHANNEL_ID, "health", Value::Null);
    let Seen::Command {
        guild,
        member_perms,
        app_perms,
        owners,
        ..
    } = next_seen(
        &rx,
        WAIT,
        |s| matches!(s, Seen::Command { channel, .. } if *channel == READONLY_CHANNEL_ID),
    )
    else {
        unreachable!()
    };
    assert_eq!(guild, Some(GUILD_ID));
    assert_eq!(owners, vec![Some(GUILD_ID)]);
    let app_perms = app_perms.expect("app_permissions");
    assert!(
        !app_perms.send_messages() && app_perms.view_channel(),
        "{app_perms:?}"
    );
    assert!(member_perms.is_some_and(|p| p.send_messages()));

    // --- REST on the second guild -----------------------------------------------------------
    let http = HttpBuilder::new(BOT_TOKEN)
        .proxy(fake.base_url())
        .ratelimiter_disabled(true)
        .application_id(ApplicationId::new(APPLICATION_ID))
        .build();
    rt.block_on(async {
        let g2 = GuildId::new(GUILD2_ID);
        let member = http
            .get_member(g2, UserId::new(MODERATOR_ID))
            .await
            .expect("member of the second guild");
        assert_eq!(
            member.roles.iter().map(|r| r.get()).collect::<Vec<_>>(),
            vec![MODERATOR2_ROLE_ID]
        );
        assert_eq!(member.guild_id, g2);
        let guild = http.get_guild(g2).await.expect("second guild");
        assert_eq!(
            (guild.name.as_str(), guild.owner_id.get()),
            (GUILD2_NAME, OWNER_ID)
        );
        let roles = g2.roles(&http).await.expect("roles");
        assert_eq!(
            roles
                .get(&RoleId::new(MODERATOR2_ROLE_ID))
                .map(|r| r.permissions.bits()),
            Some(MODERATOR_PERMISSIONS)
        );
        assert_eq!(roles.len(), 3);
        let channels = g2.channels(&http).await.expect("channels");
        assert_eq!(
            sorted(channels.keys().map(|c| c.get()).collect()),
            sorted(vec![GENERAL2_CHANNEL_ID, MOD_LOG2_CHANNEL_ID])
        );
        let general2 = ChannelId::new(GENERAL2_CHANNEL_ID)
            .to_channel(&http)
            .await
            .expect("GET /channels/{general2}")
            .guild()
            .expect("a guild channel");
        assert_eq!(general2.guild_id, g2);
        let readonly = ChannelId::new(READONLY_CHANNEL_ID)
            .to_channel(&http)
            .await
            .expect("GET /channels/{announcements}")
            .guild()
            .expect("a guild channel");
        assert_eq!(readonly.guild_id.get(), GUILD_ID);
        assert_eq!(readonly.permission_overwrites.len(), 1);
        assert!(matches!(
            readonly.permission_overwrites[0].kind,
            PermissionOverwriteType::Role(r) if r.get() == BOT_ROLE_ID
        ));
        assert_eq!(
            readonly.permission_overwrites[0].deny,
            Permissions::SEND_MESSAGES
        );
        let sent = ChannelId::new(MOD_LOG2_CHANNEL_ID)
            .say(&http, "audit entry")
            .await
            .expect("post in the second guild's mod-log");
        assert_eq!(sent.channel_id.get(), MOD_LOG2_CHANNEL_ID);
        g2.set_commands(&http, vec![CreateCommand::new("scan").description("Scan")])
            .await
            .expect("guild commands in the second guild");
        // A guild the bot is not in.
        let err = http
            .get_member(GuildId::new(1234), UserId::new(MODERATOR_ID))
            .await
            .expect_err("unknown guild");
        assert!(err.to_string().contains("Unknown Guild"), "{err}");
    });
    let posted = fake.messages_posted(MOD_LOG2_CHANNEL_ID);
    assert_eq!(posted.len(), 1);
    assert_eq!(
        (posted[0].status, posted[0].content()),
        (200, Some("audit entry"))
    );
    assert_eq!(fake.registered_guild_commands(GUILD2_ID).len(), 1);
    assert!(fake.registered_guild_commands(GUILD_ID).is_empty());
    // Nothing of the second guild landed in the first.
    assert!(fake.messages_posted(GENERAL_CHANNEL_ID).is_empty());
    assert!(fake.messages_posted(MOD_LOG_CHANNEL_ID).is_empty());

    rt.block_on(manager.shutdown_all());
    let unexpected = fake.unexpected_requests();
    assert_eq!(unexpected.len(), 1, "{unexpected:#?}");
    assert_eq!(
        unexpected[0].route,
        format!("/guilds/1234/members/{MODERATOR_ID}")
    );
    assert_eq!(unexpected[0].status, 404);
    assert_eq!(
        unexpected[0].response.as_ref().map(|r| r["code"].clone()),
        Some(json!(10004))
    );
    assert!(
        fake.spec_violations().is_empty(),
        "{:#?}",
        fake.spec_violations()
    );
    assert!(fake.model_errors().is_empty(), "{:#?}", fake.model_errors());
    rt.shutdown_timeout(Duration::from_secs(1));
}

/// With two shards the guilds are on different shards (`(guild_id >> 22) % 2`): each shard's
/// READY lists its own guild and gets its GUILD_CREATE, and the second guild's events arrive on
/// shard 1.
#[test]
fn second_guild_on_its_own_shard() {
    assert_eq!((GUILD_ID >> 22) % 2, 0);
    assert_eq!((GUILD2_ID >> 22) % 2, 1);
    let fake = FakeDiscord::start();
    let rt = runtime();
    let (rx, manager) = start_client_sharded(&fake, &rt, Some(2));
    // serenity waits 5 s between identifies.
    assert!(fake.wait_ready(Duration::from_secs(10)));
    assert!(fake.wait_guild_ready(GUILD2_ID, Duration::from_secs(20)));
    let (readies, creates) = startup_events(&rx, 2, 2);
    let mut readies: Vec<(u32, Vec<u64>)> = readies
        .into_iter()
        .filter_map(|s| match s {
            Seen::Ready { shard, guilds, .. } => Some((shard, guilds)),
            _ => None,
        })
        .collect();
    readies.sort();
    let shards: Vec<(u64, u32)> = creates
        .iter()
        .filter_map(|s| match s {
            Seen::GuildCreate { id, shard, .. } => Some((*id, *shard)),
            _ => None,
        })
        .collect();
    assert_eq!(readies, vec![(0, vec![GUILD_ID]), (1, vec![GUILD2_ID])]);
    assert_eq!(shards, vec![(GUILD_ID, 0), (GUILD2_ID, 1)]);
    let identified: Vec<_> = fake.identifies().iter().map(|i| i.shard).collect();
    assert_eq!(identified, vec![Some((0, 2)), Some((1, 2))]);

    fake.send_message(GENERAL2_CHANNEL_ID, MEMBER_ID, "ping");
    let Seen::Message { guild, shard, .. } = next_seen(
        &rx,
        WAIT,
        |s| matches!(s, Seen::Message { content, .. } if content == "ping"),
    ) else {
        unreachable!()
    };
    assert_eq!((guild, shard), (Some(GUILD2_ID), 1));
    assert!(
        fake.wait_for(
            |r| r.is("POST", &format!("/channels/{GENERAL2_CHANNEL_ID}/messages")),
            WAIT
        )
        .is_some()
    );
    fake.send_message(GENERAL_CHANNEL_ID, MEMBER_ID, "hello");
    let Seen::Message { guild, shard, .. } = next_seen(
        &rx,
        WAIT,
        |s| matches!(s, Seen::Message { content, .. } if content == "hello"),
    ) else {
        unreachable!()
    };
    assert_eq!((guild, shard), (Some(GUILD_ID), 0));
    let iid = fake.send_slash_command(
        MODERATOR_ID,
        GENERAL2_CHANNEL_ID,
        "scan",
        json!({ "target": "alice" }),
    );
    let Seen::Command { guild, shard, .. } =
        next_seen(&rx, WAIT, |s| matches!(s, Seen::Command { .. }))
    else {
        unreachable!()
    };
    assert_eq!((guild, shard), (Some(GUILD2_ID), 1));
    assert!(fake.wait_until(WAIT, || fake.interaction_requests(iid).len() == 3));

    rt.block_on(manager.shutdown_all());
    fake.assert_clean();
    rt.shutdown_timeout(Duration::from_secs(1));
}

/// The fake's self-check flags a payload serenity would drop; DM slash commands arrive; a
/// non-resumable INVALID_SESSION and a 4000 close are handled as Discord would.
#[test]
fn self_check_dm_commands_and_session_invalidation() {
    let fake = FakeDiscord::start();
    let rt = runtime();
    let (rx, manager) = start_client(&fake, &rt);
    assert!(fake.wait_ready(Duration::from_secs(10)));

    fake.send_dm_slash_command(MEMBER_ID, "health", Value::Null);
    let Seen::Command {
        guild,
        user,
        member_perms,
        ..
    } = next_seen(&rx, WAIT, |s| matches!(s, Seen::Command { .. }))
    else {
        unreachable!()
    };
    assert_eq!((guild, user, member_perms), (None, MEMBER_ID, None));

    assert!(fake.model_errors().is_empty(), "{:#?}", fake.model_errors());
    fake.dispatch(
        "MESSAGE_CREATE",
        json!({ "id": "1", "content": "incomplete" }),
    );
    let errors = fake.model_errors();
    assert!(
        errors
            .iter()
            .any(|e| e.contains("MESSAGE_CREATE") && e.contains("missing field")),
        "{errors:#?}"
    );

    // Non-resumable invalid session: serenity identifies again.
    fake.invalidate_session(false);
    assert!(
        fake.wait_until(Duration::from_secs(10), || fake.identify_count() == 2
            && fake.is_ready()),
        "no re-identify after INVALID_SESSION(false)"
    );
    next_seen(&rx, WAIT, |s| matches!(s, Seen::Ready { .. }));
    // A 4000 close: serenity resumes.
    fake.close_gateway(4000);
    assert!(
        fake.wait_until(Duration::from_secs(10), || fake.resume_count() == 1
            && fake.is_ready()),
        "no resume after close 4000"
    );
    fake.send_message(GENERAL_CHANNEL_ID, MEMBER_ID, "ping");
    assert!(
        fake.wait_for(|r| r.content() == Some("pong"), WAIT)
            .is_some()
    );
    assert!(fake.unexpected_requests().is_empty());
    assert!(
        fake.spec_violations().is_empty(),
        "{:#?}",
        fake.spec_violations()
    );

    rt.block_on(manager.shutdown_all());
    rt.shutdown_timeout(Duration::from_secs(1));
}

/// `members_as_discord_sends`: without GUILD_PRESENCES only the bot's member is cached, and
/// other members are fetched over REST.
#[test]
fn members_as_discord_sends_them() {
    let fake = FakeDiscord::start_with(FakeDiscordConfig {
        members_as_discord_sends: true,
        ..FakeDiscordConfig::default()
    });
    let rt = runtime();
    let (rx, manager) = start_client(&fake, &rt);
    let Seen::GuildCreate { members, .. } = next_seen(&rx, Duration::from_secs(10), |s| {
        matches!(s, Seen::GuildCreate { .. })
    }) else {
        unreachable!()
    };
    assert_eq!(members, 1, "only the bot's own member");
    let http = HttpBuilder::new(BOT_TOKEN)
        .proxy(fake.base_url())
        .ratelimiter_disabled(true)
        .build();
    let member = rt
        .block_on(GuildId::new(GUILD_ID).member(&http, UserId::new(MEMBER_ID)))
        .expect("member over REST");
    assert_eq!(member.user.name, MEMBER_USERNAME);
    assert!(
        fake.requests()
            .iter()
            .any(|r| r.is("GET", &format!("/guilds/{GUILD_ID}/members/{MEMBER_ID}")))
    );
    fake.assert_clean();
    rt.block_on(manager.shutdown_all());
    rt.shutdown_timeout(Duration::from_secs(1));
}

/// A client built the wrong way (token not the expected one) is refused at IDENTIFY with 4004,
/// which serenity reports as an error from `start()`.
#[test]
fn wrong_token_is_refused_at_identify() {
    let fake = FakeDiscord::start_with(FakeDiscordConfig {
        expected_token: Some(BOT_TOKEN.to_string()),
        ..FakeDiscordConfig::default()
    });
    let rt = runtime();
    let (tx, _rx) = channel();
    let http = HttpBuilder::new("not-the-token")
        .proxy(fake.base_url())
        .ratelimiter_disabled(true)
        .build();
    let result = rt.block_on(async {
        let mut client = ClientBuilder::new_with_http(http, intents())
            .event_handler(Handler { tx })
            .await
            .expect("build client");
        tokio::time::timeout(Duration::from_secs(10), client.start()).await
    });
    assert!(
        matches!(result, Ok(Err(_))),
        "start() should fail: {result:?}"
    );
    assert_eq!(fake.identify_count(), 1);
    assert!(!fake.is_ready());
    rt.shutdown_timeout(Duration::from_secs(1));
}

/// Faults, unexpected requests and the fixture payloads, through serenity's Http alone.
#[test]
fn rest_faults_and_unexpected_requests() {
    let fake = FakeDiscord::start();
    let rt = runtime();
    let http = HttpBuilder::new(BOT_TOKEN)
        .proxy(fake.base_url())
        .ratelimiter_disabled(true)
        .build();
    rt.block_on(async {
        fake.fail_next("GET", "/users/@me", 500, 1);
        assert!(http.get_current_user().await.is_err());
        let me = http.get_current_user().await.expect("second call passes");
        assert_eq!(me.id.get(), BOT_ID);

        fake.rate_limit_next("POST", "/channels/*/messages", 2.5, 1);
        let err = ChannelId::new(GENERAL_CHANNEL_ID)
            .say(&http, "hi")
            .await
            .expect_err("429");
        assert!(err.to_string().contains("rate limited"), "{err}");
        ChannelId::new(GENERAL_CHANNEL_ID)
            .say(&http, "hi")
            .await
            .expect("then it passes");

        let app = http.get_current_application_info().await.expect("app info");
        assert_eq!(app.id.get(), APPLICATION_ID);
        assert_eq!(app.owner.map(|o| o.id.get()), Some(OWNER_ID));
        let member = http
            .get_member(GuildId::new(GUILD_ID), UserId::new(MODERATOR_ID))
            .await
            .expect("member");
        assert_eq!(
            member.roles.iter().map(|r| r.get()).collect::<Vec<_>>(),
            vec![MODERATOR_ROLE_ID]
        );
        let guild = http.get_guild(GuildId::new(GUILD_ID)).await.expect("guild");
        assert_eq!(guild.owner_id.get(), OWNER_ID);
        let user = http.get_user(UserId::new(MEMBER_ID)).await.expect("user");
        assert_eq!(user.name, MEMBER_USERNAME);
        assert!(
            http.get_user(UserId::new(42)).await.is_err(),
            "unknown user is 404"
        );

        // Not the fake's guild: unexpected.
        assert!(http.get_guild(GuildId::new(1234)).await.is_err());

        // Uploads above axum's 2 MB default parse; above Discord's limit they are refused.
        let big = vec![b'x'; 3 * 1024 * 1024];
        let sent = ChannelId::new(MOD_LOG_CHANNEL_ID)
            .send_message(
                &http,
                CreateMessage::new().add_file(CreateAttachment::bytes(big.clone(), "big.csv")),
            )
            .await
            .expect("3 MiB upload");
        assert_eq!(sent.attachments[0].size as usize, big.len());
        let too_big = vec![b'x'; 10 * 1024 * 1024 + 1];
        let err = ChannelId::new(MOD_LOG_CHANNEL_ID)
            .send_message(
                &http,
                CreateMessage::new().add_file(CreateAttachment::bytes(too_big, "huge.csv")),
            )
            .await
            .expect_err("413");
        assert!(err.to_string().contains("too large"), "{err}");
        // Discord's 50006.
        assert!(
            ChannelId::new(MOD_LOG_CHANNEL_ID)
                .say(&http, "")
                .await
                .is_err()
        );
    });
    let uploads = fake.messages_posted(MOD_LOG_CHANNEL_ID);
    assert_eq!(
        uploads.iter().map(|r| r.status).collect::<Vec<_>>(),
        vec![200, 413, 400]
    );
    assert_eq!(uploads[0].files()[0].data.len(), 3 * 1024 * 1024);
    let unexpected = fake.unexpected_requests();
    assert_eq!(unexpected.len(), 1, "{unexpected:#?}");
    assert_eq!(unexpected[0].route, "/guilds/1234");
    let statuses: Vec<(String, u16, bool)> = fake
        .requests()
        .iter()
        .map(|r| (format!("{} {}", r.method, r.route), r.status, r.faulted))
        .take(4)
        .collect();
    assert_eq!(
        statuses,
        vec![
            ("GET /users/@me".into(), 500, true),
            ("GET /users/@me".into(), 200, false),
            (
                format!("POST /channels/{GENERAL_CHANNEL_ID}/messages"),
                429,
                true
            ),
            (
                format!("POST /channels/{GENERAL_CHANNEL_ID}/messages"),
                200,
                false
            ),
        ]
    );
    assert!(
        fake.spec_violations().is_empty(),
        "{:#?}",
        fake.spec_violations()
    );
    assert!(fake.model_errors().is_empty(), "{:#?}", fake.model_errors());
    rt.shutdown_timeout(Duration::from_secs(1));
}

#[test]
fn fixtures_are_plausible() {
    assert_eq!(
        snowflake_created_at(MODERATOR_ID),
        "2017-05-02T18:45:00.000000+00:00"
    );
    assert_eq!(
        snowflake_created_at(MEMBER_ID),
        "2021-08-19T07:05:00.000000+00:00"
    );
    assert_eq!(
        snowflake_created_at(GUILD_ID),
        "2019-03-14T09:30:00.000000+00:00"
    );
    assert_eq!(EVERYONE_ROLE_ID, GUILD_ID);
    assert_eq!(EVERYONE_PERMISSIONS & perms::MODERATE_MEMBERS, 0);
    assert_ne!(MODERATOR_PERMISSIONS & perms::MODERATE_MEMBERS, 0);

    let fake = FakeDiscord::start_with(FakeDiscordConfig {
        extra_members: 20,
        ..FakeDiscordConfig::default()
    });
    let extras = fake.extra_member_ids();
    assert_eq!(extras.len(), 20);
    assert_eq!(fake.username(extras[0]).as_deref(), Some("member01"));
    assert_eq!(fake.member_ids().len(), 25);
    let created: Vec<u64> = extras.iter().map(|id| snowflake_unix_ms(*id)).collect();
    assert!(created.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(fake.member_permissions(OWNER_ID), perms::ALL);
    assert_eq!(fake.member_permissions(MEMBER_ID), EVERYONE_PERMISSIONS);
    let g = fake.guild_create_json();
    let ev: serenity::model::event::GuildCreateEvent =
        serde_json::from_value(g).expect("GUILD_CREATE deserializes");
    assert_eq!(ev.guild.members.len(), 25);
    assert_eq!(ev.guild.channels.len(), 3);
}

/// The second guild's and the read-only channel's fixtures: distinct ids, each guild's payload
/// free of the other's ids, the overwrite exactly as Discord sends it, and the fake's permission
/// computation equal to serenity's for every member in every channel of both guilds.
#[test]
fn two_guild_fixtures() {
    let ids = [
        GUILD_ID,
        MODERATOR_ROLE_ID,
        BOT_ROLE_ID,
        GENERAL_CHANNEL_ID,
        MOD_LOG_CHANNEL_ID,
        READONLY_CHANNEL_ID,
        GUILD2_ID,
        MODERATOR2_ROLE_ID,
        BOT2_ROLE_ID,
        GENERAL2_CHANNEL_ID,
        MOD_LOG2_CHANNEL_ID,
        BOT_ID,
        OWNER_ID,
        ADMIN_ID,
        MODERATOR_ID,
        MEMBER_ID,
    ];
    let mut unique = ids.to_vec();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "distinct ids");
    assert_eq!(EVERYONE2_ROLE_ID, GUILD2_ID);
    assert_eq!(
        snowflake_created_at(GUILD2_ID),
        "2020-06-01T12:00:00.123000+00:00"
    );

    let fake = FakeDiscord::start_with(FakeDiscordConfig {
        extra_members: 3,
        extra_members_moderators: true,
        ..FakeDiscordConfig::default()
    });
    assert_eq!(fake.guild_ids(), vec![GUILD_ID, GUILD2_ID]);
    assert_eq!(fake.channel_guild(GENERAL2_CHANNEL_ID), Some(GUILD2_ID));
    assert_eq!(fake.channel_guild(READONLY_CHANNEL_ID), Some(GUILD_ID));
    assert_eq!(
        fake.guild_channel_ids(GUILD2_ID),
        vec![GENERAL2_CHANNEL_ID, MOD_LOG2_CHANNEL_ID]
    );
    let extra = fake.extra_member_ids()[0];
    assert_eq!(fake.member_roles(GUILD_ID, extra), vec![MODERATOR_ROLE_ID]);
    assert_eq!(
        fake.member_roles(GUILD2_ID, extra),
        vec![MODERATOR2_ROLE_ID]
    );
    assert_eq!(fake.member_roles(GUILD2_ID, BOT_ID), vec![BOT2_ROLE_ID]);
    assert_eq!(
        fake.joined_at_in(GUILD2_ID, MODERATOR_ID).as_deref(),
        Some(MODERATOR_JOINED2_AT)
    );
    assert_eq!(
        fake.member_permissions_in(GUILD2_ID, MODERATOR_ID),
        fake.member_permissions(MODERATOR_ID)
    );
    assert_eq!(
        fake.channel_permissions(READONLY_CHANNEL_ID, BOT_ID) & perms::SEND_MESSAGES,
        0
    );
    assert_ne!(
        fake.channel_permissions(READONLY_CHANNEL_ID, MEMBER_ID) & perms::SEND_MESSAGES,
        0
    );

    let g1 = fake.guild_create_json();
    let g2 = fake.guild_create_json_for(GUILD2_ID);
    let readonly = g1["channels"]
        .as_array()
        .and_then(|cs| {
            cs.iter()
                .find(|c| c["id"] == json!(READONLY_CHANNEL_ID.to_string()))
        })
        .expect("the read-only channel");
    assert_eq!(readonly["name"], json!(READONLY_CHANNEL_NAME));
    assert_eq!(
        readonly["permission_overwrites"],
        json!([{ "id": BOT_ROLE_ID.to_string(), "type": 0, "allow": "0", "deny": "2048" }])
    );
    // Each guild's payload names none of the other's ids.
    let (t1, t2) = (g1.to_string(), g2.to_string());
    for id in [
        GUILD2_ID,
        MODERATOR2_ROLE_ID,
        BOT2_ROLE_ID,
        GENERAL2_CHANNEL_ID,
        MOD_LOG2_CHANNEL_ID,
    ] {
        assert!(!t1.contains(&id.to_string()), "{id} in the first guild");
    }
    for id in [
        GUILD_ID,
        MODERATOR_ROLE_ID,
        BOT_ROLE_ID,
        GENERAL_CHANNEL_ID,
        MOD_LOG_CHANNEL_ID,
        READONLY_CHANNEL_ID,
    ] {
        assert!(!t2.contains(&id.to_string()), "{id} in the second guild");
    }

    for g in [g1, g2] {
        let ev: serenity::model::event::GuildCreateEvent =
            serde_json::from_value(g).expect("GUILD_CREATE deserializes");
        let guild = ev.guild;
        assert_eq!(guild.members.len(), 8);
        for channel in guild.channels.values() {
            for member in guild.members.values() {
                let theirs = guild.user_permissions_in(channel, member).bits();
                let ours = fake.channel_permissions(channel.id.get(), member.user.id.get());
                assert_eq!(
                    theirs,
                    ours & Permissions::all().bits(),
                    "{} in {}",
                    member.user.name,
                    channel.name
                );
            }
        }
    }
}

// -------------------------------------------------------------------------------------------
// The spec validator
// -------------------------------------------------------------------------------------------

mod spec {
    use super::fake_discord::spec::*;
    use super::*;

    #[test]
    fn route_prefixes_are_stripped() {
        assert_eq!(
            route_of("/api/v10/channels/1/messages?x=1"),
            "/channels/1/messages"
        );
        assert_eq!(route_of("/api/channels/1"), "/channels/1");
        assert_eq!(route_of("/channels/1"), "/channels/1");
        assert_eq!(route_of("/api/v10"), "/");
    }

    #[test]
    fn templates_prefer_literal_segments() {
        assert_eq!(
            operation_template("PATCH", "/api/v10/webhooks/1/tok/messages/@original").as_deref(),
            Some("/webhooks/{webhook_id}/{webhook_token}/messages/@original")
        );
        assert_eq!(
            operation_template("PATCH", "/api/v10/webhooks/1/tok/messages/99").as_deref(),
            Some("/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}")
        );
        assert_eq!(
            operation_template("GET", "/api/v10/users/@me").as_deref(),
            Some("/users/@me")
        );
        assert_eq!(
            operation_template("POST", "/api/v10/channels/5/messages").as_deref(),
            Some("/channels/{channel_id}/messages")
        );
    }

    #[test]
    fn valid_message_create_passes() {
        let body = json!({
            "content": "pong",
            "tts": false,
            "embeds": [{
                "title": "Results for alice",
                "description": "3 hits",
                "color": 3447003,
                "fields": [{ "name": "Sites", "value": "[GitHub](https://github.com/alice)", "inline": false }],
                "footer": { "text": "account-scanner" }
            }],
            "allowed_mentions": { "parse": [], "users": [], "roles": [], "replied_user": false },
            "message_reference": { "message_id": "1200000000000000000", "fail_if_not_exists": false },
            "attachments": [{ "id": 0, "filename": "alice.csv" }, { "id": "1", "filename": "alice.json" }]
        });
        assert_eq!(
            validate("POST", "/api/v10/channels/123/messages", &body),
            Ok(())
        );
    }

    #[test]
    fn content_as_a_number_fails() {
        let errors = validate(
            "POST",
            "/api/v10/channels/123/messages",
            &json!({ "content": 42 }),
        )
        .expect_err("content must be a string");
        assert!(errors.iter().any(|e| e.contains("/content")), "{errors:?}");
    }

    #[test]
    fn bogus_allowed_mentions_parse_fails() {
        let body = json!({ "content": "hi", "allowed_mentions": { "parse": ["everybody"] } });
        let errors = validate("POST", "/api/v10/channels/123/messages", &body)
            .expect_err("'everybody' is not an allowed mention type");
        assert!(
            errors.iter().any(|e| e.contains("allowed_mentions")),
            "{errors:?}"
        );
    }

    #[test]
    fn attachment_ids_relaxed_to_integers_only() {
        let path = "/api/v10/channels/1/messages/2";
        assert_eq!(
            validate("PATCH", path, &json!({ "attachments": [{ "id": 3 }] })),
            Ok(())
        );
        assert!(validate("PATCH", path, &json!({ "attachments": [{ "id": -1 }] })).is_err());
        assert!(validate("PATCH", path, &json!({ "attachments": [{ "id": 1.5 }] })).is_err());
        assert!(validate("PATCH", path, &json!({ "attachments": [{ "id": "x" }] })).is_err());
    }

    #[test]
    fn permission_strings_relaxed() {
        let cmds = |perm: Value| {
            json!([{
                "name": "scan",
                "description": "Scan a username",
                "type": 1,
                "default_member_permissions": perm,
                "options": [{ "type": 3, "name": "target", "description": "who", "required": true }]
            }])
        };
        let path = "/api/v10/applications/1/guilds/2/commands";
        assert_eq!(validate("PUT", path, &cmds(json!("1099511627776"))), Ok(()));
        assert_eq!(
            validate("PUT", path, &cmds(json!(1_099_511_627_776_u64))),
            Ok(())
        );
        assert_eq!(validate("PUT", path, &cmds(Value::Null)), Ok(()));
        assert!(validate("PUT", path, &cmds(json!("moderate"))).is_err());
    }

    #[test]
    fn interaction_callbacks() {
        let path = "/api/v10/interactions/1/tok/callback";
        assert_eq!(validate("POST", path, &json!({ "type": 5 })), Ok(()));
        let message =
            json!({ "type": 4, "data": { "content": "hi", "allowed_mentions": { "parse": [] } } });
        assert_eq!(validate("POST", path, &message), Ok(()));
        assert!(validate("POST", path, &json!({ "type": 42 })).is_err());
    }

    #[test]
    fn unknown_routes_and_unexpected_bodies_are_violations() {
        assert!(validate("POST", "/api/v10/nope", &json!({})).is_err());
        assert!(validate("GET", "/api/v10/users/@me", &json!({})).is_err());
    }

    #[test]
    fn discord_limits() {
        let long = "x".repeat(2001);
        let v = fake_discord::limit_violations(
            "POST",
            "/channels/1/messages",
            &json!({ "content": long }),
        );
        assert_eq!(v.len(), 1, "{v:?}");
        let fields: Vec<Value> = (0..26)
            .map(|i| json!({ "name": format!("f{i}"), "value": "v" }))
            .collect();
        let v = fake_discord::limit_violations(
            "POST",
            "/interactions/1/t/callback",
            &json!({ "type": 4, "data": { "embeds": [{ "title": "t", "fields": fields }] } }),
        );
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(
            fake_discord::limit_violations(
                "GET",
                "/channels/1/messages",
                &json!({ "content": "x".repeat(3000) })
            )
            .is_empty()
        );
        // Components: duplicated custom_ids, a button without one, a link button with one.
        let button = |id: &str| json!({ "type": 2, "style": 1, "custom_id": id, "label": "b" });
        let rows = json!([{ "type": 1, "components": [
            button("a"),
            button("a"),
            { "type": 2, "style": 1, "label": "no id" },
            { "type": 2, "style": 5, "label": "link", "custom_id": "l", "url": "https://x" },
        ] }]);
        let v = fake_discord::limit_violations(
            "PATCH",
            "/channels/1/messages/2",
            &json!({ "components": rows }),
        );
        assert_eq!(v.len(), 3, "{v:?}");
        let v = fake_discord::limit_violations(
            "POST",
            "/interactions/1/t/callback",
            &json!({ "type": 7, "data": { "components": [{ "type": 1, "components": [button("a"), button("a")] }] } }),
        );
        assert_eq!(v.len(), 1, "{v:?}");
        let ok = json!({ "components": [{ "type": 1, "components": [
            button("a"),
            { "type": 2, "style": 5, "label": "link", "url": "https://x" },
        ] }] });
        assert!(fake_discord::limit_violations("POST", "/channels/1/messages", &ok).is_empty());
        assert_eq!(
            validate(
                "POST",
                "/api/v10/interactions/1/t/callback",
                &json!({ "type": 6 })
            ),
            Ok(())
        );
        assert_eq!(
            validate(
                "POST",
                "/api/v10/interactions/1/t/callback",
                &json!({ "type": 7, "data": { "content": "c", "components": [{ "type": 1, "components": [button("a")] }] } })
            ),
            Ok(())
        );
    }
}

// -------------------------------------------------------------------------------------------
// poise 0.7 on top: what the bot itself is built with
// -------------------------------------------------------------------------------------------

type PoiseError = Box<dyn std::error::Error + Send + Sync>;

/// Scan a username
#[poise::command(
    prefix_command,
    slash_command,
    guild_only,
    required_permissions = "MODERATE_MEMBERS",
    default_member_permissions = "MODERATE_MEMBERS"
)]
async fn scan(
    ctx: poise::Context<'_, (), PoiseError>,
    #[description = "Username or member"] target: String,
) -> Result<(), PoiseError> {
    ctx.defer().await?;
    ctx.say(format!("scanning {target}")).await?;
    Ok(())
}

/// poise's startup calls, guild command registration, prefix permission checks from the cache
/// (a plain member is refused with poise's default text) and a slash command answered with
/// defer + follow-up, all within the spec.
#[test]
fn poise_framework_against_the_fake() {
    let fake = FakeDiscord::start();
    let rt = runtime();
    let http = HttpBuilder::new(BOT_TOKEN)
        .proxy(fake.base_url())
        .ratelimiter_disabled(true)
        .build();
    let framework = poise::Framework::builder()
        .options(poise::FrameworkOptions {
            commands: vec![scan()],
            prefix_options: poise::PrefixFrameworkOptions {
                prefix: Some("!".into()),
                ..Default::default()
            },
            allowed_mentions: Some(serenity::all::CreateAllowedMentions::new()),
            ..Default::default()
        })
        .setup(|ctx, _ready, framework| {
            Box::pin(async move {
                poise::builtins::register_in_guild(
                    ctx,
                    &framework.options().commands,
                    GuildId::new(GUILD_ID),
                )
                .await?;
                Ok(())
            })
        })
        .build();
    let mut client = rt
        .block_on(async {
            ClientBuilder::new_with_http(http, intents())
                .framework(framework)
                .await
        })
        .expect("build poise client");
    let manager = client.shard_manager.clone();
    rt.spawn(async move { client.start().await });
    assert!(fake.wait_ready(Duration::from_secs(10)));
    let put = fake
        .wait_for(
            |r| {
                r.is(
                    "PUT",
                    &format!("/applications/{APPLICATION_ID}/guilds/{GUILD_ID}/commands"),
                )
            },
            WAIT,
        )
        .expect("guild commands registered");
    assert_eq!(
        put.payload()
            .and_then(|p| p.pointer("/0/default_member_permissions")),
        Some(&json!("1099511627776"))
    );
    assert_eq!(fake.registered_guild_commands(GUILD_ID).len(), 1);

    let messages = format!("/channels/{GENERAL_CHANNEL_ID}/messages");
    fake.send_message(GENERAL_CHANNEL_ID, MODERATOR_ID, "!scan alice");
    let ok = fake
        .wait_for(|r| r.is("POST", &messages), WAIT)
        .expect("moderator's scan answered");
    assert_eq!(ok.content(), Some("scanning alice"));
    assert_eq!(
        ok.payload()
            .and_then(|p| p.pointer("/allowed_mentions/parse")),
        Some(&json!([]))
    );

    fake.send_message(GENERAL_CHANNEL_ID, MEMBER_ID, "!scan alice");
    let refused = fake.wait_for_count(|r| r.is("POST", &messages), 2, WAIT);
    assert_eq!(
        refused.get(1).and_then(|r| r.content()),
        Some("You're lacking permissions for `!scan`: Moderate Members")
    );

    let iid = fake.send_slash_command(
        MODERATOR_ID,
        GENERAL_CHANNEL_ID,
        "scan",
        json!({ "target": "alice" }),
    );
    let answers = fake.wait_for_count(
        |r| r.route.starts_with("/interactions/") || r.route.starts_with("/webhooks/"),
        2,
        WAIT,
    );
    assert_eq!(answers.len(), 2, "{answers:#?}");
    assert!(answers[0].is("POST", &format!("/interactions/{iid}/*/callback")));
    assert!(answers[1].is("POST", &format!("/webhooks/{APPLICATION_ID}/*")));
    assert_eq!(answers[1].content(), Some("scanning alice"));

    rt.block_on(manager.shutdown_all());
    fake.assert_clean();
    let startup: Vec<String> = fake
        .requests()
        .iter()
        .take(3)
        .map(|r| format!("{} {}", r.method, r.route))
        .collect();
    eprintln!("poise startup calls: {startup:?}");
    assert!(startup.contains(&"GET /oauth2/applications/@me".to_string()));
    rt.shutdown_timeout(Duration::from_secs(1));
}

/// Buttons at the wire level: the components the bot posts are stored (with Discord's
/// component `id`s) and served back in `message`; a press is an INTERACTION_CREATE that
/// serenity deserializes as a `ComponentInteraction` with the `custom_id`, the message and its
/// buttons, and the presser's per-channel permissions; callback 7 replaces the message's content
/// and components (an edit, echoed as MESSAGE_UPDATE); callback 6 makes `@original` the
/// button's message, so its PATCH edits that message, and a follow-up works; callback 4 with
/// flags 64 is an ephemeral new message. Unknown and disabled buttons cannot be pressed.
#[test]
fn buttons_at_the_wire_level() {
    let fake = FakeDiscord::start();
    let rt = runtime();
    let (rx, manager) = start_client(&fake, &rt);
    assert!(fake.wait_ready(Duration::from_secs(10)));

    // --- The bot posts a message with buttons -----------------------------------------------
    fake.send_message(GENERAL_CHANNEL_ID, MEMBER_ID, "buttons");
    let messages = format!("/channels/{GENERAL_CHANNEL_ID}/messages");
    let post = fake
        .wait_for(|r| r.is("POST", &messages), WAIT)
        .expect("the buttons message");
    assert_eq!(post.status, 200);
    assert_eq!(
        post.custom_ids(),
        vec![BUTTON_UPDATE, BUTTON_DEFER, BUTTON_NEW, BUTTON_OFF]
    );
    assert_eq!(post.components().len(), 1, "one action row");
    let mid = post.message_id().expect("message id");
    let stored = fake.message_components(mid).expect("components stored");
    assert_eq!(stored[0]["type"], json!(1));
    assert_eq!(stored[0]["id"], json!(1), "Discord numbers components");
    assert_eq!(
        stored[0]["components"][0]["custom_id"],
        json!(BUTTON_UPDATE)
    );
    assert_eq!(stored[0]["components"][0]["id"], json!(2));
    assert_eq!(stored[0]["components"][3]["disabled"], json!(true));
    // What the bot got back deserializes with its buttons.
    let answered: Message = serde_json::from_value(post.response.clone().unwrap()).unwrap();
    assert_eq!(custom_ids_of(&answered).len(), 4);

    // --- 7 UPDATE_MESSAGE ---------------------------------------------------------------------
    let press = fake.press_button(MODERATOR_ID, mid, BUTTON_UPDATE);
    let d = fake.interaction_payload(press).expect("payload");
    assert_eq!(d["type"], json!(3));
    assert_eq!(d["data"]["component_type"], json!(2));
    assert_eq!(d["message"]["id"], json!(mid.to_string()));
    assert!(d["message"].get("guild_id").is_none(), "as REST answers it");
    let Interaction::Component(c) = serde_json::from_value::<Interaction>(d.clone()).unwrap()
    else {
        panic!("not a component interaction: {d:#}")
    };
    assert_eq!(c.data.custom_id, BUTTON_UPDATE);
    assert!(matches!(
        c.data.kind,
        serenity::all::ComponentInteractionDataKind::Button
    ));
    assert_eq!(c.message.id.get(), mid);
    assert_eq!(c.message.content, "scan of alice done");
    assert_eq!(c.user.id.get(), MODERATOR_ID, "user from member");
    assert_eq!(c.guild_id, Some(GuildId::new(GUILD_ID)));
    assert_eq!(
        c.member
            .as_ref()
            .and_then(|m| m.permissions)
            .map(|p| p.bits()),
        Some(fake.channel_permissions(GENERAL_CHANNEL_ID, MODERATOR_ID))
    );
    assert_eq!(
        c.app_permissions.map(|p| p.bits()),
        Some(fake.channel_permissions(GENERAL_CHANNEL_ID, BOT_ID))
    );
    assert_eq!(
        c.channel.as_ref().map(|ch| ch.id.get()),
        Some(GENERAL_CHANNEL_ID)
    );
    assert!(!c.token.is_empty() && c.attachment_size_limit > 0 && c.version == 1);
    let Seen::Component {
        custom_id,
        message,
        message_custom_ids,
        user,
        guild,
        channel,
        member_perms,
        app_perms,
    } = next_seen(&rx, WAIT, |s| matches!(s, Seen::Component { .. }))
    else {
        unreachable!()
    };
    assert_eq!(
        (custom_id.as_str(), message, user, guild, channel),
        (
            BUTTON_UPDATE,
            mid,
            MODERATOR_ID,
            Some(GUILD_ID),
            GENERAL_CHANNEL_ID
        )
    );
    assert_eq!(message_custom_ids.len(), 4);
    assert!(member_perms.is_some_and(|p| p.moderate_members()));
    assert!(app_perms.is_some_and(|p| p.send_messages()));
    let callback = fake
        .wait_for(
            |r| r.is("POST", &format!("/interactions/{press}/*/callback")),
            WAIT,
        )
        .expect("callback 7");
    assert_eq!(callback.status, 204);
    assert_eq!(callback.payload().unwrap()["type"], json!(7));
    assert_eq!(callback.custom_ids(), vec![BUTTON_DONE]);
    assert_eq!(fake.interaction_callback_type(press), Some(7));
    assert_eq!(fake.interaction_original(press), Some(mid));
    let delay = fake.interaction_ack_delay(press).expect("ack delay");
    assert!(delay < Duration::from_secs(3), "{delay:?}");
    let after = fake.message(mid).unwrap();
    assert_eq!(after["content"], json!("rescanned alice"));
    assert!(after["edited_timestamp"].is_string(), "an edit");
    let components = fake.message_components(mid).unwrap();
    assert_eq!(components.as_array().map(Vec::len), Some(1));
    assert_eq!(
        components[0]["components"].as_array().map(Vec::len),
        Some(1)
    );
    assert_eq!(
        components[0]["components"][0]["custom_id"],
        json!(BUTTON_DONE)
    );
    // The old buttons are gone: a press now sees only the new one.
    let press_done = fake.press_button(MEMBER_ID, mid, BUTTON_DONE);
    let d = fake.interaction_payload(press_done).unwrap();
    assert_eq!(
        d["message"]["components"][0]["components"][0]["custom_id"],
        json!(BUTTON_DONE)
    );
    // (the handler answers unknown ids with an ephemeral message)
    fake.wait_for(
        |r| r.is("POST", &format!("/interactions/{press_done}/*/callback")),
        WAIT,
    )
    .expect("callback for the new button");
    let pressed_old = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        fake.press_button(MEMBER_ID, mid, BUTTON_UPDATE)
    }));
    assert!(pressed_old.is_err(), "a replaced button cannot be pressed");

    // --- 6 DEFERRED_UPDATE_MESSAGE, PATCH @original, follow-up --------------------------------
    fake.send_message(GENERAL_CHANNEL_ID, MEMBER_ID, "buttons");
    let posts = fake.wait_for_count(|r| r.is("POST", &messages), 2, WAIT);
    let mid2 = posts[1].message_id().unwrap();
    let press = fake.press_button(MEMBER_ID, mid2, BUTTON_DEFER);
    let answers = fake.wait_for_count(
        |r| {
            r.route.starts_with(&format!("/interactions/{press}/"))
                || (r.route.starts_with("/webhooks/")
                    && fake
                        .interaction_token(press)
                        .is_some_and(|t| r.route.contains(&t)))
        },
        3,
        WAIT,
    );
    assert_eq!(answers.len(), 3, "{answers:#?}");
    assert_eq!(answers[0].payload().unwrap()["type"], json!(6));
    assert_eq!(answers[0].status, 204);
    assert!(answers[1].is(
        "PATCH",
        &format!("/webhooks/{APPLICATION_ID}/*/messages/@original")
    ));
    assert_eq!(answers[1].status, 200);
    assert_eq!(
        answers[1].message_id(),
        Some(mid2),
        "@original is the button's message"
    );
    assert!(answers[2].is("POST", &format!("/webhooks/{APPLICATION_ID}/*")));
    assert_eq!(answers[2].status, 200);
    assert_eq!(fake.interaction_requests(press).len(), 3);
    let edited = fake.message(mid2).unwrap();
    assert_eq!(edited["content"], json!("details of alice"));
    assert_eq!(
        fake.message_components(mid2).unwrap()[0]["components"]
            .as_array()
            .map(Vec::len),
        Some(4),
        "an edit without `components` keeps them"
    );
    let followup: Message = serde_json::from_value(answers[2].response.clone().unwrap()).unwrap();
    assert_eq!(followup.content, "details follow");
    match followup.interaction_metadata.as_deref() {
        Some(MessageInteractionMetadata::Component(m)) => {
            assert_eq!(m.interacted_message_id.get(), mid2);
            assert_eq!(m.user.id.get(), MEMBER_ID);
        }
        other => panic!("follow-up metadata: {other:?}"),
    }

    // --- 4 CHANNEL_MESSAGE_WITH_SOURCE, ephemeral ---------------------------------------------
    let press = fake.press_button(MEMBER_ID, mid2, BUTTON_NEW);
    let callback = fake
        .wait_for(
            |r| r.is("POST", &format!("/interactions/{press}/*/callback")),
            WAIT,
        )
        .expect("callback 4");
    assert_eq!(callback.status, 204);
    assert_eq!(callback.payload().unwrap()["type"], json!(4));
    assert_eq!(callback.content(), Some("only you see this"));
    let new = fake.interaction_original(press).expect("a new message");
    assert_ne!(new, mid2);
    let new = fake.message(new).unwrap();
    assert_eq!(new["flags"], json!(64));
    assert_eq!(new["interaction_metadata"]["type"], json!(3));

    // A disabled button cannot be pressed.
    let pressed_off = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        fake.press_button(MEMBER_ID, mid2, BUTTON_OFF)
    }));
    assert!(pressed_off.is_err(), "a disabled button cannot be pressed");

    rt.block_on(manager.shutdown_all());
    fake.assert_clean();
    rt.shutdown_timeout(Duration::from_secs(1));
}

/// A user command (context menu on a user) for poise.
#[poise::command(context_menu_command = "Scan account", guild_only)]
async fn scan_user(
    ctx: poise::Context<'_, (), PoiseError>,
    user: serenity::all::User,
) -> Result<(), PoiseError> {
    ctx.say(format!("scanning user {}", user.name)).await?;
    Ok(())
}

/// A message command (context menu on a message) for poise.
#[poise::command(context_menu_command = "Scan author", guild_only)]
async fn scan_message(
    ctx: poise::Context<'_, (), PoiseError>,
    msg: Message,
) -> Result<(), PoiseError> {
    ctx.defer_ephemeral().await?;
    ctx.say(format!("scanning author of {:?}", msg.content))
        .await?;
    Ok(())
}

/// Context-menu commands at the wire level, through poise: registered in the same PUT as the
/// slash command (`type` 2 and 3, their own ids); a user command and a message command are
/// INTERACTION_CREATE type 2 with `data.type` 2 / 3, the registered `data.id`, `data.target_id`
/// and the target in `data.resolved` (users + members without `user`, with `permissions`; the
/// full message), which serenity deserializes as `CommandInteraction`s whose `data.target()`
/// resolves; poise runs them and answers (callback 4; callback 5 + follow-up, ephemeral), and
/// the ack delay is recorded.
#[test]
fn context_menu_commands_at_the_wire_level() {
    let fake = FakeDiscord::start();
    let rt = runtime();
    let http = HttpBuilder::new(BOT_TOKEN)
        .proxy(fake.base_url())
        .ratelimiter_disabled(true)
        .build();
    let framework = poise::Framework::builder()
        .options(poise::FrameworkOptions {
            commands: vec![scan(), scan_user(), scan_message()],
            allowed_mentions: Some(serenity::all::CreateAllowedMentions::new()),
            ..Default::default()
        })
        .setup(|ctx, _ready, framework| {
            Box::pin(async move {
                poise::builtins::register_in_guild(
                    ctx,
                    &framework.options().commands,
                    GuildId::new(GUILD_ID),
                )
                .await?;
                Ok(())
            })
        })
        .build();
    let mut client = rt
        .block_on(async {
            ClientBuilder::new_with_http(http, intents())
                .framework(framework)
                .await
        })
        .expect("build poise client");
    let manager = client.shard_manager.clone();
    rt.spawn(async move { client.start().await });
    assert!(fake.wait_ready(Duration::from_secs(10)));
    let put = fake
        .wait_for(
            |r| {
                r.is(
                    "PUT",
                    &format!("/applications/{APPLICATION_ID}/guilds/{GUILD_ID}/commands"),
                )
            },
            WAIT,
        )
        .expect("guild commands registered");
    let types: Vec<(String, u64)> = put
        .payload()
        .and_then(Value::as_array)
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["type"].as_u64().unwrap_or(1),
            )
        })
        .collect();
    assert_eq!(
        types,
        vec![
            ("scan".to_string(), 1),
            ("Scan account".to_string(), 2),
            ("Scan author".to_string(), 3)
        ]
    );
    let registered = fake.registered_guild_commands(GUILD_ID);
    let id_of = |name: &str| -> String {
        registered
            .iter()
            .find(|c| c["name"] == json!(name))
            .and_then(|c| c["id"].as_str())
            .unwrap_or_else(|| panic!("{name} not registered: {registered:#?}"))
            .to_string()
    };

    // --- User command ---------------------------------------------------------------------
    let iid = fake.send_user_command(MODERATOR_ID, GENERAL_CHANNEL_ID, "Scan account", MEMBER_ID);
    let d = fake.interaction_payload(iid).expect("payload");
    assert_eq!(
        (d["type"].clone(), d["data"]["type"].clone()),
        (json!(2), json!(2))
    );
    assert_eq!(d["data"]["id"], json!(id_of("Scan account")));
    assert_eq!(d["data"]["target_id"], json!(MEMBER_ID.to_string()));
    let member = &d["data"]["resolved"]["members"][MEMBER_ID.to_string()];
    assert!(
        member.get("user").is_none(),
        "resolved members carry no user"
    );
    assert_eq!(
        member["permissions"],
        json!(
            fake.channel_permissions(GENERAL_CHANNEL_ID, MEMBER_ID)
                .to_string()
        )
    );
    let Interaction::Command(c) = serde_json::from_value::<Interaction>(d.clone()).unwrap() else {
        panic!("not a command: {d:#}")
    };
    assert_eq!(c.data.kind, CommandType::User);
    assert_eq!(c.data.name, "Scan account");
    assert_eq!(c.user.id.get(), MODERATOR_ID);
    assert!(
        c.member
            .as_ref()
            .and_then(|m| m.permissions)
            .is_some_and(|p| p.moderate_members())
    );
    match c.data.target() {
        Some(ResolvedTarget::User(u, Some(m))) => {
            assert_eq!(u.id.get(), MEMBER_ID);
            assert_eq!(u.name, MEMBER_USERNAME);
            assert!(m.permissions.is_some());
        }
        other => panic!("user target: {other:?}"),
    }
    let callback = fake
        .wait_for(
            |r| r.is("POST", &format!("/interactions/{iid}/*/callback")),
            WAIT,
        )
        .expect("poise answered the user command");
    assert_eq!(callback.status, 204);
    assert_eq!(callback.payload().unwrap()["type"], json!(4));
    assert_eq!(callback.content(), Some("scanning user alice"));
    let delay = fake.interaction_ack_delay(iid).expect("ack delay");
    assert!(delay < Duration::from_secs(3), "{delay:?}");
    let response = fake
        .message(fake.interaction_original(iid).unwrap())
        .unwrap();
    assert_eq!(response["type"], json!(23), "CONTEXT_MENU_COMMAND");
    assert_eq!(
        response["interaction_metadata"]["target_user"]["id"],
        json!(MEMBER_ID.to_string())
    );

    // --- Message command --------------------------------------------------------------------
    let target = fake.send_message(GENERAL_CHANNEL_ID, MEMBER_ID, "hello from alice");
    let iid = fake.send_message_command(ADMIN_ID, GENERAL_CHANNEL_ID, "Scan author", target);
    let d = fake.interaction_payload(iid).expect("payload");
    assert_eq!(
        (d["type"].clone(), d["data"]["type"].clone()),
        (json!(2), json!(3))
    );
    assert_eq!(d["data"]["id"], json!(id_of("Scan author")));
    assert_eq!(d["data"]["target_id"], json!(target.to_string()));
    let Interaction::Command(c) = serde_json::from_value::<Interaction>(d.clone()).unwrap() else {
        panic!("not a command: {d:#}")
    };
    assert_eq!(c.data.kind, CommandType::Message);
    match c.data.target() {
        Some(ResolvedTarget::Message(m)) => {
            assert_eq!(m.id.get(), target);
            assert_eq!(m.content, "hello from alice");
            assert_eq!(m.author.id.get(), MEMBER_ID);
        }
        other => panic!("message target: {other:?}"),
    }
    let answers = fake.wait_for_count(
        |r| {
            r.route.starts_with(&format!("/interactions/{iid}/"))
                || (r.route.starts_with("/webhooks/")
                    && fake
                        .interaction_token(iid)
                        .is_some_and(|t| r.route.contains(&t)))
        },
        2,
        WAIT,
    );
    assert_eq!(answers.len(), 2, "{answers:#?}");
    assert_eq!(answers[0].payload().unwrap()["type"], json!(5));
    assert_eq!(answers[0].payload().unwrap()["data"]["flags"], json!(64));
    assert_eq!(
        answers[1].content(),
        Some("scanning author of \"hello from alice\"")
    );
    assert_eq!(fake.interaction_callback_type(iid), Some(5));
    assert!(fake.interaction_ack_delay(iid).is_some());
    // A bot message can be the target too.
    let bot_msg = answers[1].message_id().unwrap();
    let bot_target =
        fake.send_message_command(ADMIN_ID, GENERAL_CHANNEL_ID, "Scan author", bot_msg);
    let d = fake.interaction_payload(bot_target).unwrap();
    assert_eq!(
        d["data"]["resolved"]["messages"][bot_msg.to_string()]["author"]["id"],
        json!(BOT_ID.to_string())
    );
    fake.wait_for(
        |r| r.is("POST", &format!("/interactions/{bot_target}/*/callback")),
        WAIT,
    )
    .expect("answered");

    rt.block_on(manager.shutdown_all());
    fake.assert_clean();
    rt.shutdown_timeout(Duration::from_secs(1));
}

const NEWBIE: &str = "newbie01";
const FRESH: &str = "fresh.face";
const FRESH_AVATAR: &str = "a_0123456789abcdef0123456789abcdef";

/// A fake with two joiners: `newbie01` (2 days old, default avatar) and `fresh.face` (3 hours
/// old, an animated custom avatar).
fn fake_with_joiners() -> FakeDiscord {
    FakeDiscord::start_with(FakeDiscordConfig {
        joiners: vec![
            FakeJoiner::aged(NEWBIE, Duration::from_secs(2 * 86_400)),
            FakeJoiner::aged(FRESH, Duration::from_secs(3 * 3_600)).with_avatar(FRESH_AVATAR),
        ],
        ..FakeDiscordConfig::default()
    })
}

fn now_unix_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

/// The status and Discord error code (if any) of the recorded `GET /guilds/{g}/members/{u}`
/// answers, in order.
fn member_gets(fake: &FakeDiscord, guild_id: u64, user_id: u64) -> Vec<(u16, Option<Value>)> {
    fake.requests()
        .iter()
        .filter(|r| r.is("GET", &format!("/guilds/{guild_id}/members/{user_id}")))
        .map(|r| {
            let code = r.response.as_ref().and_then(|v| v.get("code").cloned());
            (r.status, code)
        })
        .collect()
}

/// Joiners through serenity (which identifies with GUILD_MEMBERS): not members before they
/// join (not in GUILD_CREATE, its `member_count` or the member list; GET member 404 Unknown
/// Member), then GUILD_MEMBER_ADD with the user (id a snowflake of the account's creation,
/// username, avatar), the guild and `joined_at` of now, and REST serves the new member.
#[test]
fn members_join_with_the_guild_members_intent() {
    let fake = fake_with_joiners();
    let (newbie, fresh) = (fake.joiner_id(NEWBIE), fake.joiner_id(FRESH));
    // Ids: snowflakes of the creation time.
    let created_ago = |id: u64| now_unix_s() - (snowflake_unix_ms(id) / 1000) as i64;
    assert!((2 * 86_400..2 * 86_400 + 60).contains(&created_ago(newbie)));
    assert!((3 * 3_600..3 * 3_600 + 60).contains(&created_ago(fresh)));
    assert!(
        !fake.member_ids().contains(&newbie),
        "joiners are not members"
    );
    assert_eq!(fake.member_ids().len(), 5);
    assert_eq!(
        fake.user_json(newbie).map(|u| u["avatar"].clone()),
        Some(Value::Null)
    );
    assert_eq!(
        fake.user_json(fresh).map(|u| u["avatar"].clone()),
        Some(json!(FRESH_AVATAR))
    );

    let rt = runtime();
    let (rx, manager) = start_client(&fake, &rt);
    assert!(fake.wait_ready(Duration::from_secs(10)));
    let (_, creates) = startup_events(&rx, 1, 2);
    for c in &creates {
        let Seen::GuildCreate { members, .. } = c else {
            unreachable!()
        };
        assert_eq!(*members, 5, "no joiner in GUILD_CREATE");
    }
    assert_eq!(fake.guild_create_json()["member_count"], json!(5));

    let http = HttpBuilder::new(BOT_TOKEN)
        .proxy(fake.base_url())
        .ratelimiter_disabled(true)
        .build();
    let g1 = GuildId::new(GUILD_ID);
    let member_list = |http: &serenity::http::Http| {
        rt.block_on(g1.members(http, Some(1000), None))
            .expect("member list")
            .iter()
            .map(|m| m.user.id.get())
            .collect::<Vec<_>>()
    };
    let err = rt
        .block_on(g1.member(&http, UserId::new(newbie)))
        .expect_err("not a member yet");
    assert!(err.to_string().contains("Unknown Member"), "{err}");
    assert_eq!(
        member_gets(&fake, GUILD_ID, newbie),
        vec![(404, Some(json!(10007)))]
    );
    assert!(!member_list(&http).contains(&newbie));

    // --- newbie01 joins the first guild -----------------------------------------------------
    assert_eq!(fake.join_member(GUILD_ID, NEWBIE), Some(newbie));
    let Seen::MemberAdd {
        user,
        name,
        guild,
        joined_at,
        avatar,
        roles,
        bot,
    } = next_seen(&rx, WAIT, |s| matches!(s, Seen::MemberAdd { .. }))
    else {
        unreachable!()
    };
    assert_eq!((user, name.as_str(), guild), (newbie, NEWBIE, GUILD_ID));
    let joined_at = joined_at.expect("joined_at");
    assert!(
        (now_unix_s() - joined_at).abs() <= 5,
        "joined_at {joined_at}"
    );
    assert_eq!((avatar, roles, bot), (None, vec![], false));

    // REST now serves the member, with the same joined_at; the other guild still does not.
    let member = rt
        .block_on(g1.member(&http, UserId::new(newbie)))
        .expect("a member now");
    assert_eq!(member.user.name, NEWBIE);
    assert_eq!(
        member.joined_at.map(|t| t.unix_timestamp()),
        Some(joined_at)
    );
    assert_eq!(
        member_gets(&fake, GUILD_ID, newbie),
        vec![(404, Some(json!(10007))), (200, None)]
    );
    let joined = fake.joined_at_in(GUILD_ID, newbie).expect("joined_at_in");
    assert_eq!(
        chrono::DateTime::parse_from_rfc3339(&joined).map(|t| t.timestamp()),
        Ok(joined_at)
    );
    assert!(member_list(&http).contains(&newbie));
    assert_eq!(fake.guild_create_json()["member_count"], json!(6));
    assert_eq!(
        fake.guild_create_json_for(GUILD2_ID)["member_count"],
        json!(5)
    );
    assert!(
        rt.block_on(GuildId::new(GUILD2_ID).member(&http, UserId::new(newbie)))
            .is_err()
    );

    // --- fresh.face joins the second guild: the custom avatar -------------------------------
    assert_eq!(fake.join_member(GUILD2_ID, FRESH), Some(fresh));
    let Seen::MemberAdd {
        user,
        guild,
        avatar,
        ..
    } = next_seen(&rx, WAIT, |s| matches!(s, Seen::MemberAdd { .. }))
    else {
        unreachable!()
    };
    assert_eq!((user, guild), (fresh, GUILD2_ID));
    assert_eq!(avatar.as_deref(), Some(FRESH_AVATAR));
    assert_eq!(fake.member_add_count(), 2);

    // Joining twice is a test bug.
    let twice = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        fake.join_member(GUILD_ID, NEWBIE)
    }));
    assert!(twice.is_err(), "a second join of the same guild panics");
    assert_eq!(fake.member_add_count(), 2);

    rt.block_on(manager.shutdown_all());
    fake.assert_clean();
    rt.shutdown_timeout(Duration::from_secs(1));
}

/// A bare gateway client over a plain TCP socket (a handshake and unfragmented frames, as the
/// fake sends them): sees every frame the session gets, in order, which serenity's concurrent
/// handlers do not show.
struct RawGateway {
    reader: std::io::BufReader<std::net::TcpStream>,
    writer: std::net::TcpStream,
}

impl RawGateway {
    /// Connects, reads HELLO, IDENTIFYs with `intents` and reads READY and one GUILD_CREATE
    /// per guild.
    fn identify(fake: &FakeDiscord, intents: u64) -> RawGateway {
        use std::io::{BufRead, Write};
        let url = fake.gateway_url();
        let host = url
            .strip_prefix("ws://")
            .and_then(|rest| rest.split('/').next())
            .expect("ws:// URL")
            .to_string();
        let stream = std::net::TcpStream::connect(&host).expect("connect to the gateway");
        stream.set_read_timeout(Some(WAIT)).expect("read timeout");
        let mut writer = stream.try_clone().expect("clone socket");
        write!(
            writer,
            "GET /gateway?v=10&encoding=json HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\n\r\n"
        )
        .expect("send the handshake");
        let mut reader = std::io::BufReader::new(stream);
        let mut status = String::new();
        reader.read_line(&mut status).expect("handshake answer");
        assert!(status.contains(" 101 "), "{status}");
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).expect("handshake headers");
            if line == "\r\n" {
                break;
            }
        }
        let mut gw = RawGateway { reader, writer };
        assert_eq!(gw.next_frame()["op"], json!(10), "HELLO");
        gw.send(&json!({ "op": 2, "d": {
            "token": BOT_TOKEN,
            "intents": intents,
            "properties": { "os": "linux", "browser": "raw", "device": "raw" },
        }}));
        assert_eq!(gw.next_frame()["t"], json!("READY"));
        for _ in fake.guild_ids() {
            assert_eq!(gw.next_frame()["t"], json!("GUILD_CREATE"));
        }
        gw
    }

    fn send(&mut self, payload: &Value) {
        use std::io::Write;
        let data = payload.to_string().into_bytes();
        let mask = [0x5a, 0x17, 0xc3, 0x08];
        let mut frame = vec![0x81];
        match data.len() {
            n if n < 126 => frame.push(0x80 | n as u8),
            n if n <= 0xffff => {
                frame.push(0x80 | 126);
                frame.extend((n as u16).to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend((n as u64).to_be_bytes());
            }
        }
        frame.extend(mask);
        frame.extend(data.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.writer.write_all(&frame).expect("send a frame");
    }

    /// The next text frame, parsed (pings and pongs skipped; a close frame panics).
    fn next_frame(&mut self) -> Value {
        use std::io::Read;
        loop {
            let mut head = [0u8; 2];
            self.reader
                .read_exact(&mut head)
                .expect("a frame within 5 s");
            let len = match head[1] & 0x7f {
                126 => {
                    let mut b = [0u8; 2];
                    self.reader.read_exact(&mut b).expect("length");
                    u64::from(u16::from_be_bytes(b))
                }
                127 => {
                    let mut b = [0u8; 8];
                    self.reader.read_exact(&mut b).expect("length");
                    u64::from_be_bytes(b)
                }
                n => u64::from(n),
            };
            let mut body = vec![0u8; len as usize];
            self.reader.read_exact(&mut body).expect("frame body");
            match head[0] & 0x0f {
                1 => {
                    assert!(head[0] & 0x80 != 0, "the fake sends unfragmented frames");
                    return serde_json::from_slice(&body).expect("a JSON frame");
                }
                8 => panic!("gateway closed: {body:?}"),
                _ => continue,
            }
        }
    }
}

/// Without the GUILD_MEMBERS intent the member still joins (REST serves them) but no
/// GUILD_MEMBER_ADD reaches the session: the next frame after the join is the MESSAGE_CREATE
/// dispatched after it, with the very next sequence number.
#[test]
fn no_member_add_without_the_guild_members_intent() {
    let fake = fake_with_joiners();
    let newbie = fake.joiner_id(NEWBIE);
    // GUILDS | GUILD_MESSAGES | MESSAGE_CONTENT.
    let mut gw = RawGateway::identify(&fake, 1 | (1 << 9) | (1 << 15));
    let seq = fake.sequence();

    assert_eq!(fake.join_member(GUILD_ID, NEWBIE), None);
    fake.send_message(GENERAL_CHANNEL_ID, newbie, "hello, I just joined");
    let frame = gw.next_frame();
    assert_eq!(frame["t"], json!("MESSAGE_CREATE"), "{frame}");
    assert_eq!(frame["s"], json!(seq + 1));
    assert_eq!(frame["d"]["content"], json!("hello, I just joined"));
    assert_eq!(frame["d"]["author"]["id"], json!(newbie.to_string()));
    assert_eq!(fake.member_add_count(), 0);

    // The membership happened all the same.
    assert!(fake.joined_at_in(GUILD_ID, newbie).is_some());
    assert_eq!(fake.guild_create_json()["member_count"], json!(6));
    let rt = runtime();
    let http = HttpBuilder::new(BOT_TOKEN)
        .proxy(fake.base_url())
        .ratelimiter_disabled(true)
        .build();
    let member = rt
        .block_on(GuildId::new(GUILD_ID).member(&http, UserId::new(newbie)))
        .expect("a member");
    assert_eq!(member.user.id.get(), newbie);
    fake.assert_clean();

    // The fake's model check covers GUILD_MEMBER_ADD: no `guild_id` (serenity silently makes it
    // guild 1) and an avatar that is not a hash (serenity drops the event) are both reported.
    let mut bad = fake.guild_create_json()["members"][0].clone();
    fake.dispatch_in_guild(Some(GUILD_ID), "GUILD_MEMBER_ADD", bad.clone());
    bad["guild_id"] = json!(GUILD_ID.to_string());
    bad["user"]["avatar"] = json!("not-a-hash");
    fake.dispatch_in_guild(Some(GUILD_ID), "GUILD_MEMBER_ADD", bad);
    let errors = fake.model_errors();
    assert_eq!(errors.len(), 3, "{errors:#?}");
    assert!(
        errors[0].contains("serenity reads guild_id 1 from Null"),
        "{errors:#?}"
    );
    assert!(errors[1].contains("Invalid length 10"), "{errors:#?}");
    assert!(errors[2].contains("Event::Unknown"), "{errors:#?}");
    rt.shutdown_timeout(Duration::from_secs(1));
}
