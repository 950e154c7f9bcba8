-- Scan history, the audit trail and per-server settings (issue 15).
-- Portable SQL: the same file runs on SQLite and PostgreSQL. Discord ids are BIGINT (snowflakes
-- fit in 63 bits), times are Unix milliseconds, flags are 0/1, lists are JSON text.

-- One row per scan whose report files were written (files first, then this row).
CREATE TABLE scans (
    scan_id         TEXT PRIMARY KEY,
    guild_id        BIGINT,           -- NULL: the command line (the operator)
    channel_id      BIGINT,
    requester_id    BIGINT,
    requester_name  TEXT,
    target          TEXT NOT NULL,    -- the username as scanned
    target_key      TEXT NOT NULL,    -- lowercased, for lookups
    member_id       BIGINT,           -- the server member, when the target was a mention
    mode            TEXT NOT NULL,
    started_at      BIGINT NOT NULL,
    finished_at     BIGINT NOT NULL,
    outcome         TEXT NOT NULL,    -- completed | partial | failed
    hits            BIGINT NOT NULL,
    unverified      BIGINT NOT NULL,
    sites           TEXT,             -- JSON array of verified hits; NULL when Sherlock did not run
    reddit_status   TEXT,
    reddit_karma    BIGINT,
    reddit_created  BIGINT,
    reddit_items    BIGINT,
    mean_toxicity   DOUBLE PRECISION,
    max_toxicity    DOUBLE PRECISION,
    at_or_above     BIGINT,
    scorer          TEXT,
    json_file       TEXT NOT NULL,    -- file names inside the scans directory
    sherlock_csv    TEXT,
    reddit_csv      TEXT,
    files_present   BIGINT NOT NULL DEFAULT 1   -- 0: the start-up check found its files gone
);
CREATE INDEX scans_by_target ON scans (guild_id, target_key, finished_at);
CREATE INDEX scans_by_member ON scans (guild_id, member_id, finished_at);
CREATE INDEX scans_by_time ON scans (finished_at);

-- Every scan, refusal, permission denial, shutdown, settings change and deletion.
CREATE TABLE audit (
    id          TEXT PRIMARY KEY,
    at          BIGINT NOT NULL,
    guild_id    BIGINT,               -- NULL: not tied to a server (a signal, the command line)
    channel_id  BIGINT,
    user_id     BIGINT,
    action      TEXT NOT NULL,        -- scan | refused | shutdown | settings | forget | retention
    target      TEXT,
    detail      TEXT NOT NULL         -- JSON
);
CREATE INDEX audit_by_guild ON audit (guild_id, at);

-- What a server changed from the environment's defaults; NULL: the default.
CREATE TABLE guild_settings (
    guild_id            BIGINT PRIMARY KEY,
    log_channel_id      BIGINT,
    toxicity_threshold  DOUBLE PRECISION,
    default_mode        TEXT,
    cooldown_s          BIGINT,
    scan_channels       TEXT,         -- JSON array of channel ids; NULL: any channel
    updated_at          BIGINT NOT NULL,
    updated_by          BIGINT
);
