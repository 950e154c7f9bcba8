-- The join screen (issue 16): a server's screening channel, what counts as a new account, and
-- automatic scans of new accounts with an hourly cap. NULL: off / the default.
ALTER TABLE guild_settings ADD COLUMN screen_channel_id BIGINT;
ALTER TABLE guild_settings ADD COLUMN new_account_days BIGINT;
ALTER TABLE guild_settings ADD COLUMN auto_scan BIGINT;
ALTER TABLE guild_settings ADD COLUMN auto_scan_cap BIGINT;
