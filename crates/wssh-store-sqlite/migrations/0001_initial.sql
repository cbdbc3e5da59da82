-- The identity core and the session templates.
-- Times are whole seconds since the Unix epoch, UTC.

CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    username      TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    disabled      INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

CREATE TABLE roles (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    key        TEXT    NOT NULL UNIQUE,
    name       TEXT    NOT NULL,
    built_in   INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE role_permissions (
    role_id    INTEGER NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    permission TEXT    NOT NULL,
    PRIMARY KEY (role_id, permission)
);

CREATE TABLE user_roles (
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role_id INTEGER NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, role_id)
);
CREATE INDEX user_roles_role ON user_roles (role_id);

CREATE TABLE access_tokens (
    identifier  TEXT    PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    description TEXT    NOT NULL DEFAULT '',
    secret_hash TEXT    NOT NULL UNIQUE,
    -- space-separated permission names, or NULL for "all of the owner's"
    permissions TEXT,
    expires_at  INTEGER,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX access_tokens_user ON access_tokens (user_id);

CREATE TABLE sessions (
    name       TEXT    PRIMARY KEY,
    cmd        TEXT    NOT NULL,
    -- a JSON array of strings
    args       TEXT    NOT NULL DEFAULT '[]',
    dir        TEXT    NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

INSERT INTO roles (key, name, built_in, created_at, updated_at) VALUES
    ('admin', 'Administrator', 1, CAST(strftime('%s', 'now') AS INTEGER), CAST(strftime('%s', 'now') AS INTEGER)),
    ('user',  'User',          1, CAST(strftime('%s', 'now') AS INTEGER), CAST(strftime('%s', 'now') AS INTEGER)),
    ('guest', 'Guest',         1, CAST(strftime('%s', 'now') AS INTEGER), CAST(strftime('%s', 'now') AS INTEGER));

INSERT INTO role_permissions (role_id, permission)
SELECT roles.id, granted.permission
FROM roles
JOIN (
    SELECT 'admin' AS role, 'sessions:read' AS permission
    UNION ALL SELECT 'admin', 'sessions:write'
    UNION ALL SELECT 'admin', 'sessions:connect'
    UNION ALL SELECT 'admin', 'tokens:read'
    UNION ALL SELECT 'admin', 'tokens:write'
    UNION ALL SELECT 'admin', 'users:read'
    UNION ALL SELECT 'admin', 'users:write'
    UNION ALL SELECT 'admin', 'roles:read'
    UNION ALL SELECT 'admin', 'roles:write'
    UNION ALL SELECT 'user',  'sessions:read'
    UNION ALL SELECT 'user',  'sessions:connect'
    UNION ALL SELECT 'user',  'tokens:read'
    UNION ALL SELECT 'user',  'tokens:write'
) AS granted ON granted.role = roles.key;
