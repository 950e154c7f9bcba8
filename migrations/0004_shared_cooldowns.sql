-- Shared cooldowns (issue 17): with PostgreSQL a moderator's cooldown holds on whichever machine
-- runs the server's shard next (a deploy, a machine that died). Per server and user, as in
-- process; times in microseconds of the database's clock. Unused on SQLite.
CREATE TABLE cooldowns (
    guild_id   BIGINT NOT NULL,       -- 0: not in a server
    user_id    BIGINT NOT NULL,
    until_us   BIGINT NOT NULL,
    PRIMARY KEY (guild_id, user_id)
);
