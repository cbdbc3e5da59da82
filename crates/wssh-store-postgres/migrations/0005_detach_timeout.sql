-- Live shells (issue 14): a session template's own detach timeout in seconds (NULL: the
-- server's `shell_detach_timeout_seconds`). As SQLite's 0011.
ALTER TABLE sessions ADD COLUMN detach_timeout_seconds BIGINT;
