-- Live shells (issue 14): administrators may watch and take part in every user's shells.
INSERT OR IGNORE INTO role_permissions (role_id, permission)
SELECT id, 'shells:observe' FROM roles WHERE key = 'admin'
UNION ALL SELECT id, 'shells:control' FROM roles WHERE key = 'admin';
