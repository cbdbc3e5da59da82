-- Logins with short-lived access JWTs and rotating refresh tokens (seed 004), and the
-- server's own settings (the JWT signing key).

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
);

-- One row per login (a refresh-token family). Access JWTs carry the login id, so ending the
-- login ends them too.
CREATE TABLE logins (
    id           TEXT    PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- hex SHA-256 of the current refresh token
    refresh_hash TEXT    NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    revoked      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX logins_user ON logins (user_id);

-- Refresh tokens already rotated away: presenting one again is theft.
CREATE TABLE retired_refresh_tokens (
    refresh_hash TEXT PRIMARY KEY,
    login_id     TEXT NOT NULL REFERENCES logins (id) ON DELETE CASCADE
);
