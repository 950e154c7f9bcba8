//! The audit trail's entries: who scanned whom, refusals, shutdowns, settings changes and
//! deletions. Always logged (target `audit`) and kept in the database; a face may also post
//! them (the bot, to the server's log channel and the operator's `LOG_CHANNEL_ID`).

use serde_json::json;

use crate::db::Db;
use crate::db::audit::AuditRecord;

#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    Scan {
        requester: u64,
        channel: u64,
        guild: Option<u64>,
        target: String,
        mode: String,
        scan_id: String,
        hits: usize,
        unverified: usize,
        partial: bool,
        failed: bool,
        duration_ms: u64,
    },
    Refused {
        user: u64,
        channel: u64,
        guild: Option<u64>,
        command: String,
        why: String,
    },
    Shutdown {
        by: String,
        guild: Option<u64>,
    },
    Settings {
        user: u64,
        channel: u64,
        guild: u64,
        setting: String,
        old: String,
        new: String,
    },
    Forget {
        user: u64,
        channel: u64,
        guild: u64,
        target: String,
        scans: usize,
        files: usize,
    },
}

impl Entry {
    /// The server the entry belongs to (`None`: the process, e.g. a signal).
    pub fn guild(&self) -> Option<u64> {
        match self {
            Entry::Scan { guild, .. }
            | Entry::Refused { guild, .. }
            | Entry::Shutdown { guild, .. } => *guild,
            Entry::Settings { guild, .. } | Entry::Forget { guild, .. } => Some(*guild),
        }
    }

    /// The row the database keeps.
    pub fn record(&self) -> AuditRecord {
        let now = chrono::Utc::now();
        let row = |channel: Option<u64>,
                   user: Option<u64>,
                   action: &str,
                   target: Option<&str>,
                   detail| {
            AuditRecord {
                at: now,
                guild: self.guild(),
                channel,
                user,
                action: action.to_string(),
                target: target.map(str::to_string),
                detail,
            }
        };
        match self {
            Entry::Scan {
                requester,
                channel,
                target,
                mode,
                scan_id,
                hits,
                unverified,
                partial,
                failed,
                duration_ms,
                ..
            } => row(
                Some(*channel),
                Some(*requester),
                "scan",
                Some(target),
                json!({"mode": mode, "scan_id": scan_id, "hits": hits, "unverified": unverified,
                       "partial": partial, "failed": failed, "duration_ms": duration_ms}),
            ),
            Entry::Refused {
                user,
                channel,
                command,
                why,
                ..
            } => row(
                Some(*channel),
                Some(*user),
                "refused",
                None,
                json!({"command": command, "why": why}),
            ),
            Entry::Shutdown { by, .. } => row(None, None, "shutdown", None, json!({"by": by})),
            Entry::Settings {
                user,
                channel,
                setting,
                old,
                new,
                ..
            } => row(
                Some(*channel),
                Some(*user),
                "settings",
                None,
                json!({"setting": setting, "old": old, "new": new}),
            ),
            Entry::Forget {
                user,
                channel,
                target,
                scans,
                files,
                ..
            } => row(
                Some(*channel),
                Some(*user),
                "forget",
                Some(target),
                json!({"scans": scans, "files": files}),
            ),
        }
    }
}

/// Writes the entry to the log (target `audit`).
pub fn log(entry: &Entry) {
    let record = entry.record();
    match entry {
        Entry::Refused { .. } | Entry::Shutdown { .. } => tracing::warn!(
            target: "audit",
            action = %record.action,
            guild = record.guild,
            channel = record.channel,
            user = record.user,
            detail = %record.detail,
            "audit"
        ),
        _ => tracing::info!(
            target: "audit",
            action = %record.action,
            guild = record.guild,
            channel = record.channel,
            user = record.user,
            target = record.target.as_deref(),
            detail = %record.detail,
            "audit"
        ),
    }
}

/// Logs the entry and keeps it in the database; a database failure is logged (with a reference)
/// and shown by `health`, never raised: the audit must not stop what it records.
pub async fn keep(db: Option<&Db>, entry: &Entry) {
    log(entry);
    let Some(db) = db else { return };
    // Not waited for longer than a scan waits for the database: a refusal during an outage is
    // shown at once, not after the pool's timeout.
    let why = match tokio::time::timeout(crate::db::ANSWER_WITHIN, db.record_audit(&entry.record()))
        .await
    {
        Ok(Ok(())) => return db.note_success(),
        Ok(Err(e)) => e.to_string(),
        Err(_) => format!("no answer within {} s", crate::db::ANSWER_WITHIN.as_secs()),
    };
    let reference = super::scan::reference_id();
    tracing::error!(error = %why, reference = %reference, "audit entry not saved in the database");
    db.note_failure(&reference);
}
