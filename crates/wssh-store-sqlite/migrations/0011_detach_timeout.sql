-- Live shells (issue 14): a session template may set how long its shells outlive their last
-- client, in seconds; NULL takes the server's `shell_detach_timeout_seconds`.
ALTER TABLE sessions ADD COLUMN detach_timeout_seconds INTEGER;
