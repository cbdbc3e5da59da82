-- Least privilege for shells (issue 18): a session template may name the OS account its
-- program runs as; NULL runs it as the server's own account. Administrators may open shells on
-- such templates (`shells:run_as_any`); other roles get it only when granted.
ALTER TABLE sessions ADD COLUMN run_as TEXT;
INSERT OR IGNORE INTO role_permissions (role_id, permission)
    SELECT id, 'shells:run_as_any' FROM roles WHERE key = 'admin' AND built_in = 1;
