-- The audit log (issue 15): one row per security-relevant event, appended and never changed.
-- `data` is the event as JSON (wssh-domain's `AuditEvent`); the other columns are what queries
-- filter on. The triggers refuse every UPDATE and DELETE, so no code path (and no API) can
-- rewrite history; only an operator with the database file can.
CREATE TABLE audit_events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms      INTEGER NOT NULL, -- milliseconds since the Unix epoch
    kind       TEXT    NOT NULL,
    actor_id   INTEGER,          -- no foreign key: the row outlives the user
    actor_name TEXT,
    actor      TEXT,             -- the actor as JSON (id, name, how it authenticated), if any
    subject    TEXT,             -- the user the event is about, by name, if any
    data       TEXT    NOT NULL
);
CREATE INDEX audit_events_by_time ON audit_events (at_ms);
CREATE INDEX audit_events_by_kind ON audit_events (kind, at_ms);
CREATE INDEX audit_events_by_actor ON audit_events (actor_name, at_ms);
CREATE INDEX audit_events_by_subject ON audit_events (subject, at_ms);

CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;

-- Administrators hold every permission, the two new ones included.
INSERT INTO role_permissions (role_id, permission)
    SELECT id, 'audit:read' FROM roles WHERE key = 'admin' AND built_in = 1;
INSERT INTO role_permissions (role_id, permission)
    SELECT id, 'recordings:read' FROM roles WHERE key = 'admin' AND built_in = 1;
