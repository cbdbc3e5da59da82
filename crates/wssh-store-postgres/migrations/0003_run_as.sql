-- Least privilege for shells (issue 18): the OS account a session template's program runs as
-- (NULL: the server's own), and `shells:run_as_any` for administrators. As SQLite's 0010.
ALTER TABLE sessions ADD COLUMN run_as TEXT;
INSERT INTO role_permissions (role_id, permission)
    SELECT id, 'shells:run_as_any' FROM roles WHERE key = 'admin' AND built_in
    ON CONFLICT DO NOTHING;
