-- Recording (issue 15): a session template may be marked recorded (`record`); its shells are
-- then recorded even when the server does not record every shell. 0 leaves them unrecorded.
ALTER TABLE sessions ADD COLUMN record INTEGER NOT NULL DEFAULT 0;
