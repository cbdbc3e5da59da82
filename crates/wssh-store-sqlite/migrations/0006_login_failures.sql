-- The login throttle (wssh-auth's `throttle`): one row per failed password login, by account
-- name and client address (IPv4, or an IPv6 /64; "-" when unknown), kept for at most an hour.
-- Shared by every server on the database, so the limits hold across nodes.
CREATE TABLE login_failures (
    account   TEXT    NOT NULL,
    address   TEXT    NOT NULL,
    failed_at INTEGER NOT NULL -- milliseconds since the Unix epoch
);
CREATE INDEX login_failures_by_account ON login_failures (account, failed_at);
CREATE INDEX login_failures_by_address ON login_failures (address, failed_at);
CREATE INDEX login_failures_by_time ON login_failures (failed_at);

-- Addresses an account signed in from successfully, which the account-wide cap lets through.
CREATE TABLE login_known_addresses (
    account      TEXT    NOT NULL,
    address      TEXT    NOT NULL,
    succeeded_at INTEGER NOT NULL, -- milliseconds since the Unix epoch
    PRIMARY KEY (account, address)
);
