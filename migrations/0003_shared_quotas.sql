-- Shared API quotas (issue 17): with PostgreSQL, every machine paces one API key through one row,
-- a GCRA state updated atomically. Keyed by the API's name and a hash of the credential, never
-- the credential. Times are microseconds of the database's clock, so machines' clocks don't
-- matter. Unused on SQLite (one machine paces in process).
CREATE TABLE api_quotas (
    quota_key        TEXT PRIMARY KEY,
    tat_us           BIGINT NOT NULL,   -- the theoretical arrival time of the next request
    paused_until_us  BIGINT NOT NULL,   -- Retry-After / X-Ratelimit-Reset: nobody sends before
    granted_to       TEXT               -- the token of the request that took the last slot
);
