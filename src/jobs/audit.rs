//! The audit trail's entries: who scanned whom, refusals, shutdowns. Always logged (target
//! `audit`); a face may also post them (the bot, to `LOG_CHANNEL_ID`).

#[derive(Debug, Clone)]
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
        command: String,
        why: String,
    },
    Shutdown {
        by: String,
    },
}

/// Writes the entry to the log (target `audit`).
pub fn log(entry: &Entry) {
    match entry {
        Entry::Scan {
            requester,
            channel,
            guild,
            target,
            mode,
            scan_id,
            hits,
            unverified,
            partial,
            failed,
            duration_ms,
        } => tracing::info!(
            target: "audit",
            requester,
            channel,
            guild,
            %target,
            %mode,
            scan_id = %scan_id,
            hits,
            unverified,
            partial,
            failed,
            duration_ms,
            "scan"
        ),
        Entry::Refused {
            user,
            channel,
            command,
            why,
        } => tracing::warn!(target: "audit", user, channel, %command, %why, "refused"),
        Entry::Shutdown { by } => tracing::warn!(target: "audit", %by, "shutdown"),
    }
}
