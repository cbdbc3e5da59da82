-- The identity surfaces beyond go_ws_sh: profile fields other APIs expose (alist, seed 004),
-- TOTP two-factor, role details, token metadata (seed 002) and SSH public keys (seed 001).

ALTER TABLE users ADD COLUMN base_path        TEXT    NOT NULL DEFAULT '/';
ALTER TABLE users ADD COLUMN alist_permission INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN sso_id           TEXT    NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN nickname         TEXT    NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN email            TEXT    NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN phone            TEXT    NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN avatar           TEXT    NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN sex              TEXT    NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN remark           TEXT    NOT NULL DEFAULT '';
-- The base32 TOTP secret while two-factor authentication is on.
ALTER TABLE users ADD COLUMN otp_secret       TEXT;
-- The last TOTP time step accepted: a code is good once.
ALTER TABLE users ADD COLUMN otp_last_step    INTEGER NOT NULL DEFAULT 0;

ALTER TABLE roles ADD COLUMN sort     INTEGER NOT NULL DEFAULT 0;
ALTER TABLE roles ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;
ALTER TABLE roles ADD COLUMN remark   TEXT    NOT NULL DEFAULT '';
UPDATE roles SET sort = id;

-- NULL for go_ws_sh's tokens; seed 002's appKey otherwise.
ALTER TABLE access_tokens ADD COLUMN app_key TEXT;
ALTER TABLE access_tokens ADD COLUMN title   TEXT    NOT NULL DEFAULT '';
ALTER TABLE access_tokens ADD COLUMN tags    TEXT    NOT NULL DEFAULT '';
ALTER TABLE access_tokens ADD COLUMN enabled INTEGER NOT NULL DEFAULT 1;
CREATE INDEX access_tokens_app ON access_tokens (app_key, user_id);

CREATE TABLE ssh_keys (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title        TEXT    NOT NULL,
    -- OpenSSH one-line form
    public_key   TEXT    NOT NULL,
    -- SHA256:… as ssh-keygen -l prints it
    fingerprint  TEXT    NOT NULL,
    added_at     INTEGER NOT NULL,
    last_used_at INTEGER,
    UNIQUE (user_id, fingerprint)
);
