-- Recording (issue 15): a session template may be marked recorded (`record`). As SQLite's 0012.
ALTER TABLE sessions ADD COLUMN record BOOLEAN NOT NULL DEFAULT FALSE;
