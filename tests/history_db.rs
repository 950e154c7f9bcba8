//! The database layer on both engines (SQLite file, real PostgreSQL): history and its scopes,
//! "what changed", settings, the audit trail, forget, retention, the start-up check, concurrent
//! writers, backup taken while scans are written, and restore's checks.

mod support;

use std::path::Path;
use std::time::Duration;

use account_scanner::config::{DatabaseTarget, parse_database_url};
use account_scanner::db::audit::AuditRecord;
use account_scanner::db::backup::{Restored, restore};
use account_scanner::db::scans::{Place, Scope, TargetKey};
use account_scanner::db::{Db, GuildSettings};
use account_scanner::jobs::history;
use account_scanner::model::{Previous, ScanMode, ScanReport, SiteStatus};
use account_scanner::store::ReportStore;
use support::postgres::{ENGINES, Engine, database_url};

const GUILD_A: u64 = 1_111_111_111_111_111_111;
const GUILD_B: u64 = 2_222_222_222_222_222_222;

/// The golden report with real values in place of the redacted ones.
fn report(scan_id: &str, username: &str, finished: chrono::DateTime<chrono::Utc>) -> ScanReport {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/report.json"),
    )
    .expect("golden report");
    let mut v: serde_json::Value = serde_json::from_str(&text).expect("json");
    v["scan_id"] = scan_id.into();
    v["request"]["username"] = username.into();
    v["started_at"] = (finished - chrono::Duration::seconds(5))
        .to_rfc3339()
        .into();
    v["finished_at"] = finished.to_rfc3339().into();
    v["duration_ms"] = 5000.into();
    for section in ["sherlock", "reddit"] {
        if v[section]["duration_ms"].is_string() {
            v[section]["duration_ms"] = 1000.into();
        }
    }
    fn fix(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, x) in m.iter_mut() {
                    if x == "<redacted>" {
                        *x = if k.ends_with("_ms") || k.ends_with("_s") {
                            1.into()
                        } else if k.ends_with("_at") || k.ends_with("_utc") {
                            "2026-01-01T00:00:00Z".into()
                        } else {
                            "x".into()
                        };
                    } else {
                        fix(x);
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(fix),
            _ => {}
        }
    }
    fix(&mut v);
    serde_json::from_value(v).expect("a ScanReport")
}

fn place(guild: Option<u64>, requester: u64) -> Place {
    Place {
        guild,
        channel: guild.map(|g| g + 1),
        requester: Some(requester),
        requester_name: Some(format!("mod{requester}")),
    }
}

/// Runs `test` with an open database of `engine` and a report store beside it.
fn with_db<F, Fut>(engine: Engine, test: F)
where
    F: FnOnce(Db, ReportStore, DatabaseTarget) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let dir = tempfile::tempdir().expect("tempdir");
    let (url, _pg) = database_url(engine, dir.path());
    let target = parse_database_url(&url, dir.path()).expect("url");
    let store = ReportStore::open(dir.path().join("scans")).expect("store");
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(async {
            let db = Db::open(&target).await.expect("open");
            test(db, store, target).await;
        });
}

async fn save_and_index(db: &Db, store: &ReportStore, place: &Place, report: &ScanReport) {
    let saved = store.save(report).expect("save");
    db.record_scan(place, report, &saved).await.expect("record");
}

#[test]
fn history_is_per_server_newest_first_and_says_what_changed() {
    for engine in ENGINES {
        with_db(engine, |db, store, _| async move {
            let t0 = chrono::Utc::now() - chrono::Duration::days(21);
            let first = report("scan0001", "alice", t0);
            save_and_index(&db, &store, &place(Some(GUILD_A), 7), &first).await;

            let key = TargetKey::username("ALICE");
            let earlier = db
                .latest(Scope::Guild(GUILD_A), &key)
                .await
                .expect("latest")
                .expect("the first scan");
            assert_eq!(earlier.scan_id, "scan0001", "{engine:?}");
            assert_eq!(earlier.requested_by, Some(7));

            // The second scan finds one more site and loses one.
            let mut second = report("scan0002", "alice", chrono::Utc::now());
            let hits: Vec<String> = second
                .sherlock
                .sites
                .iter()
                .filter(|s| s.is_hit())
                .map(|s| s.site.clone())
                .collect();
            assert!(!hits.is_empty(), "the golden report has hits");
            let lost = hits[0].clone();
            for s in &mut second.sherlock.sites {
                if s.site == lost {
                    s.status = SiteStatus::Available;
                }
            }
            let gained = second
                .sherlock
                .sites
                .iter_mut()
                .find(|s| !s.is_hit() && s.site != lost)
                .map(|s| {
                    s.status = SiteStatus::Claimed;
                    s.unreliable = false;
                    s.site.clone()
                })
                .expect("a site to gain");
            let previous = Previous::between(&earlier, &second);
            assert_eq!(previous.sites_added, vec![gained.clone()], "{engine:?}");
            assert_eq!(previous.sites_removed, vec![lost.clone()], "{engine:?}");
            assert!(previous.sites_compared);
            second.previous = Some(previous);
            save_and_index(&db, &store, &place(Some(GUILD_A), 8), &second).await;
            // The report of record carries the comparison.
            let written: serde_json::Value = serde_json::from_slice(
                &std::fs::read(
                    store.dir().join(
                        db.history(Scope::Guild(GUILD_A), &key, 1, 0)
                            .await
                            .expect("h")
                            .entries[0]
                            .files[0]
                            .clone(),
                    ),
                )
                .expect("read"),
            )
            .expect("json");
            assert_eq!(written["previous"]["scan_id"], "scan0001");
            assert_eq!(written["previous"]["sites_added"][0], gained.as_str());

            // Another server scans the same name.
            save_and_index(
                &db,
                &store,
                &place(Some(GUILD_B), 9),
                &report("scan0003", "alice", chrono::Utc::now()),
            )
            .await;

            let a = db
                .history(Scope::Guild(GUILD_A), &key, 10, 0)
                .await
                .expect("history");
            assert_eq!(a.total, 2, "{engine:?}");
            let ids: Vec<_> = a.entries.iter().map(|e| e.scan_id.as_str()).collect();
            assert_eq!(ids, ["scan0002", "scan0001"], "newest first ({engine:?})");
            assert_eq!(a.entries[0].requester_name.as_deref(), Some("mod8"));
            assert!(
                a.entries[0]
                    .sites
                    .as_ref()
                    .is_some_and(|s| s.contains(&gained))
            );
            let b = db
                .history(Scope::Guild(GUILD_B), &key, 10, 0)
                .await
                .expect("history");
            assert_eq!(
                b.entries
                    .iter()
                    .map(|e| e.scan_id.as_str())
                    .collect::<Vec<_>>(),
                ["scan0003"]
            );
            assert_eq!(
                db.history(Scope::Guild(42), &key, 10, 0)
                    .await
                    .expect("h")
                    .total,
                0
            );
            assert_eq!(
                db.history(Scope::CommandLine, &key, 10, 0)
                    .await
                    .expect("h")
                    .total,
                0
            );
            assert_eq!(
                db.history(Scope::All, &key, 10, 0).await.expect("h").total,
                3,
                "the operator sees all"
            );
            // Pages.
            let page2 = db
                .history(Scope::Guild(GUILD_A), &key, 1, 1)
                .await
                .expect("page 2");
            assert_eq!(page2.total, 2);
            assert_eq!(page2.entries[0].scan_id, "scan0001");
            // A member is found by id too.
            let by_member = TargetKey {
                username: "someone-else".into(),
                member: Some(5),
            };
            assert_eq!(
                db.history(Scope::Guild(GUILD_A), &by_member, 10, 0)
                    .await
                    .expect("h")
                    .total,
                0
            );
            db.close().await;
        });
    }
}

#[test]
fn settings_and_the_audit_trail_are_per_server() {
    for engine in ENGINES {
        with_db(engine, |db, _, _| async move {
            assert_eq!(
                db.guild_settings(GUILD_A).await.expect("read"),
                GuildSettings::default()
            );
            let own = GuildSettings {
                log_channel: Some(123),
                toxicity_threshold: Some(0.8),
                default_mode: Some(ScanMode::Sherlock),
                cooldown_s: Some(10),
                scan_channels: Some(vec![5, 6]),
                screen_channel: Some(9),
                new_account_days: Some(14),
                auto_scan: Some(true),
                auto_scan_cap: Some(3),
            };
            db.save_guild_settings(GUILD_A, &own, 7)
                .await
                .expect("save");
            assert_eq!(
                db.guild_settings(GUILD_A).await.expect("read"),
                own,
                "{engine:?}"
            );
            assert_eq!(
                db.guild_settings(GUILD_B).await.expect("read"),
                GuildSettings::default()
            );
            let changed = GuildSettings {
                toxicity_threshold: None,
                ..own.clone()
            };
            db.save_guild_settings(GUILD_A, &changed, 7)
                .await
                .expect("save again");
            assert_eq!(db.guild_settings(GUILD_A).await.expect("read"), changed);

            for (guild, action) in [
                (Some(GUILD_A), "settings"),
                (Some(GUILD_B), "scan"),
                (None, "shutdown"),
            ] {
                db.record_audit(&AuditRecord {
                    at: chrono::Utc::now(),
                    guild,
                    channel: Some(1),
                    user: Some(2),
                    action: action.into(),
                    target: None,
                    detail: serde_json::json!({"k": action}),
                })
                .await
                .expect("audit");
            }
            let a = db.audit_trail(Some(GUILD_A), 10).await.expect("trail");
            assert_eq!(a.len(), 1, "{engine:?}");
            assert_eq!(a[0].action, "settings");
            assert_eq!(a[0].detail["k"], "settings");
            assert_eq!(db.audit_trail(None, 10).await.expect("all").len(), 3);
            db.close().await;
        });
    }
}

#[test]
fn forget_and_retention_remove_files_then_rows_and_the_startup_check_marks_lost_files() {
    for engine in ENGINES {
        with_db(engine, |db, store, _| async move {
            let old = chrono::Utc::now() - chrono::Duration::days(40);
            for (i, (guild, name, at)) in [
                (GUILD_A, "alice", chrono::Utc::now()),
                (GUILD_A, "alice", chrono::Utc::now()),
                (GUILD_B, "alice", chrono::Utc::now()),
                (GUILD_A, "bob", old),
                (GUILD_A, "carol", chrono::Utc::now()),
            ]
            .into_iter()
            .enumerate()
            {
                save_and_index(
                    &db,
                    &store,
                    &place(Some(guild), 7),
                    &report(&format!("scan{i:04}"), name, at),
                )
                .await;
            }
            let files_before = std::fs::read_dir(store.dir()).expect("dir").count();

            let gone = history::forget(&db, &store, GUILD_A, &TargetKey::username("alice"))
                .await
                .expect("forget");
            assert_eq!(gone.scans, 2, "{engine:?}");
            assert!(gone.files >= 2);
            let key = TargetKey::username("alice");
            assert_eq!(
                db.history(Scope::Guild(GUILD_A), &key, 10, 0)
                    .await
                    .expect("h")
                    .total,
                0
            );
            assert_eq!(
                db.history(Scope::Guild(GUILD_B), &key, 10, 0)
                    .await
                    .expect("h")
                    .total,
                1,
                "the other server's scan stays"
            );
            assert_eq!(
                std::fs::read_dir(store.dir()).expect("dir").count(),
                files_before - gone.files
            );

            let gone = history::apply_retention(&db, &store, Duration::from_secs(30 * 86_400))
                .await
                .expect("retention");
            assert_eq!(gone.scans, 1, "bob's 40-day-old scan ({engine:?})");
            assert_eq!(db.count_scans().await.expect("count"), 2);

            // carol's JSON report disappears behind the database's back.
            let carol = db
                .history(Scope::Guild(GUILD_A), &TargetKey::username("carol"), 1, 0)
                .await
                .expect("h")
                .entries[0]
                .clone();
            std::fs::remove_file(store.dir().join(&carol.files[0])).expect("rm");
            let found = history::reconcile(&db, &store).await.expect("reconcile");
            assert_eq!(
                found.files_missing,
                vec![carol.scan_id.clone()],
                "{engine:?}"
            );
            let carol = db
                .history(Scope::Guild(GUILD_A), &TargetKey::username("carol"), 1, 0)
                .await
                .expect("h")
                .entries[0]
                .clone();
            assert!(!carol.files_present, "kept as history, marked");
            db.close().await;
        });
    }
}

#[test]
fn concurrent_writers_never_see_a_locked_database() {
    for engine in ENGINES {
        with_db(engine, |db, store, _| async move {
            let db = std::sync::Arc::new(db);
            let mut tasks = Vec::new();
            for i in 0..40 {
                let (db, store) = (db.clone(), store.clone());
                tasks.push(tokio::spawn(async move {
                    let r = report(&format!("c{i:05}"), "alice", chrono::Utc::now());
                    let saved = store.save(&r).expect("save");
                    db.record_scan(&place(Some(GUILD_A), i), &r, &saved).await?;
                    db.record_audit(&AuditRecord {
                        at: chrono::Utc::now(),
                        guild: Some(GUILD_A),
                        channel: None,
                        user: Some(i),
                        action: "scan".into(),
                        target: None,
                        detail: serde_json::json!({}),
                    })
                    .await?;
                    db.save_guild_settings(
                        GUILD_A,
                        &GuildSettings {
                            cooldown_s: Some(i),
                            ..Default::default()
                        },
                        i,
                    )
                    .await
                }));
            }
            for t in tasks {
                t.await
                    .expect("task")
                    .unwrap_or_else(|e| panic!("{engine:?}: {e}"));
            }
            assert_eq!(db.count_scans().await.expect("count"), 40);
            assert_eq!(db.integrity_check().await.expect("check"), "ok");
            db.close().await;
        });
    }
}

/// Scan `b{i}` of alice in guild A.
async fn save_numbered(db: &Db, store: &ReportStore, i: u32) {
    let r = report(&format!("b{i:04}"), "alice", chrono::Utc::now());
    save_and_index(db, store, &place(Some(GUILD_A), 1), &r).await;
}

#[test]
fn a_backup_taken_while_scans_are_written_restores_every_scan_finished_before_it() {
    with_db(Engine::Sqlite, |db, store, _| async move {
        for i in 0..30 {
            save_numbered(&db, &store, i).await;
        }
        let db = std::sync::Arc::new(db);
        let writer = {
            let (db, store) = (db.clone(), store.clone());
            tokio::spawn(async move {
                for i in 30..130 {
                    save_numbered(&db, &store, i).await;
                }
            })
        };
        let out = tempfile::tempdir().expect("tempdir");
        let file = out.path().join("backup.db");
        let in_backup = db.backup(&file).await.expect("backup");
        writer.await.expect("writer");
        assert!(
            in_backup >= 30,
            "every scan finished before the backup: {in_backup}"
        );
        // The destination is never overwritten.
        let again = db.backup(&file).await.expect_err("exists");
        assert!(again.to_string().contains("already exists"), "{again}");

        // Into a fresh scans directory, no bot running.
        let fresh = tempfile::tempdir().expect("tempdir");
        let target = DatabaseTarget::Sqlite(fresh.path().join("scans/.account-scanner.db"));
        let restored = restore(&target, &file).await.expect("restore");
        assert_eq!(restored, Restored::InPlace { scans: in_backup });
        let back = Db::open(&target).await.expect("open restored");
        assert_eq!(back.integrity_check().await.expect("check"), "ok");
        let page = back
            .history(Scope::Guild(GUILD_A), &TargetKey::username("alice"), 500, 0)
            .await
            .expect("h");
        assert_eq!(page.total, in_backup);
        let ids: std::collections::HashSet<_> =
            page.entries.iter().map(|e| e.scan_id.clone()).collect();
        for i in 0..30 {
            assert!(
                ids.contains(&format!("b{i:04}")),
                "b{i:04} finished before the backup began"
            );
        }
        back.close().await;
        db.close().await;
    });
}

#[test]
fn restore_checks_the_file_and_changes_nothing_when_it_is_not_a_database() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = DatabaseTarget::Sqlite(dir.path().join(".account-scanner.db"));
        let db = Db::open(&target).await.expect("open");
        db.save_guild_settings(
            GUILD_A,
            &GuildSettings {
                cooldown_s: Some(3),
                ..Default::default()
            },
            1,
        )
        .await
        .expect("save");
        db.close().await;
        let before = std::fs::read(dir.path().join(".account-scanner.db")).expect("read");

        let junk = dir.path().join("junk.db");
        std::fs::write(
            &junk,
            b"this is not a database, just text that is long enough to look like a header",
        )
        .expect("write");
        let e = restore(&target, &junk).await.expect_err("refused");
        assert!(e.to_string().contains("cannot be restored"), "{e}");
        assert!(e.to_string().contains("nothing was changed"), "{e}");

        // An SQLite database, but not ours.
        let other = dir.path().join("other.db");
        {
            let t = DatabaseTarget::Sqlite(other.clone());
            let url = format!("sqlite://{}?mode=rwc", other.display());
            let _ = t;
            sqlx::any::install_default_drivers();
            let pool = sqlx::AnyPool::connect(&url).await.expect("connect");
            sqlx::query("CREATE TABLE t (x INTEGER)")
                .execute(&pool)
                .await
                .expect("create");
            pool.close().await;
        }
        let e = restore(&target, &other).await.expect_err("refused");
        assert!(
            e.to_string().contains("not an account-scanner database"),
            "{e}"
        );

        let missing = restore(&target, &dir.path().join("nope.db"))
            .await
            .expect_err("missing");
        assert!(missing.to_string().contains("is not a file"), "{missing}");

        assert_eq!(
            std::fs::read(dir.path().join(".account-scanner.db")).expect("read"),
            before,
            "unchanged"
        );
        let db = Db::open(&target).await.expect("open");
        assert_eq!(
            db.guild_settings(GUILD_A).await.expect("read").cooldown_s,
            Some(3)
        );
        db.close().await;
    });
}

#[test]
fn postgres_backup_and_restore_point_to_pg_dump() {
    with_db(Engine::Postgres, |db, _, target| async move {
        let out = tempfile::tempdir().expect("tempdir");
        let e = db
            .backup(&out.path().join("x.db"))
            .await
            .expect_err("refused");
        assert!(e.to_string().contains("pg_dump"), "{e}");
        let file = out.path().join("y.db");
        std::fs::write(&file, b"x").expect("write");
        let e = restore(&target, &file).await.expect_err("refused");
        assert!(e.to_string().contains("pg_restore"), "{e}");
        // The URL (which may hold a password) is never shown.
        assert_eq!(target.describe(), "PostgreSQL");
        db.close().await;
    });
}
