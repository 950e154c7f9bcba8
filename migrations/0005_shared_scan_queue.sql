-- One scan queue for every machine (issue 17). With PostgreSQL a scan request is a row here;
-- workers on any machine claim the oldest with FOR UPDATE SKIP LOCKED and hold a lease they
-- renew while the scan runs. A machine that dies loses its lease and another worker takes the
-- job over. Unused on SQLite (one machine queues in process). Times are microseconds of the
-- database's clock.
CREATE TABLE scan_jobs (
    job_key          TEXT PRIMARY KEY,  -- the Discord message or interaction that asked: a
                                        -- request delivered twice is one job
    priority         INTEGER NOT NULL,  -- 0 a moderator's scan, 1 the join screen's automatic
    enqueued_us      BIGINT NOT NULL,
    state            TEXT NOT NULL,     -- queued, running, posting, done, failed
    guild_id         BIGINT,
    channel_id       BIGINT NOT NULL,
    target           TEXT NOT NULL,     -- lowercased username, and member id: the in-flight key
    request          TEXT NOT NULL,     -- JSON: what to scan, for whom
    reply            TEXT NOT NULL,     -- JSON: where the acknowledgement and the result go
    lease_owner      TEXT,
    lease_until_us   BIGINT,
    attempts         INTEGER NOT NULL,
    deadline_us      BIGINT NOT NULL,   -- a job whose machine died after this is failed, not retried
    leader_key       TEXT,              -- set: the same target was already in flight in this
                                        -- server; this job gets that job's result
    scan_id          TEXT,
    result           TEXT,              -- the report JSON once scanned: a takeover posts it
    finished_us      BIGINT
);
CREATE INDEX scan_jobs_line ON scan_jobs (state, priority, enqueued_us);
CREATE INDEX scan_jobs_leader ON scan_jobs (leader_key);

-- The workers every machine runs, seen through their heartbeat: `health` lists the live ones and
-- the place in line counts their free slots.
CREATE TABLE scan_workers (
    worker_id   TEXT PRIMARY KEY,
    machine     TEXT NOT NULL,
    kind        TEXT NOT NULL,          -- bot (with shards) or worker (no gateway)
    shards      TEXT NOT NULL,
    slots       INTEGER NOT NULL,
    started_us  BIGINT NOT NULL,
    seen_us     BIGINT NOT NULL
);

-- With PostgreSQL the report JSON is kept with its history row: report files stay on the machine
-- that wrote them, and `history … files` on another machine attaches the database's copy.
-- NULL on SQLite (one machine: the files are beside the database).
ALTER TABLE scans ADD COLUMN report_json TEXT;

-- The control probe's results (sites that claim any username), shared by every machine with
-- PostgreSQL so one probe per site list and Sherlock version serves them all. Unused on SQLite
-- (the cache is a file in the scans directory).
CREATE TABLE control_results (
    cache_key   TEXT PRIMARY KEY,
    result      TEXT NOT NULL,          -- JSON, as the file cache holds it
    checked_us  BIGINT NOT NULL         -- when the probe ran (the result's own time, UTC)
);
