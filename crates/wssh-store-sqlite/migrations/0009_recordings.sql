-- Shell recordings (issue 15): the catalogue of the asciicast files in the recordings folder.
CREATE TABLE recordings (
    id            TEXT    PRIMARY KEY, -- the recorded shell's id
    file          TEXT    NOT NULL,    -- the file's name in the recordings folder
    session       TEXT    NOT NULL,
    owner         TEXT    NOT NULL,
    owner_id      INTEGER NOT NULL,    -- no foreign key: the recording outlives the user
    cols          INTEGER NOT NULL,
    rows          INTEGER NOT NULL,
    started_at    INTEGER NOT NULL,
    ended_at      INTEGER,
    exit_status   INTEGER,
    output_bytes  INTEGER NOT NULL DEFAULT 0,
    dropped_bytes INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX recordings_by_time ON recordings (started_at);
CREATE INDEX recordings_by_owner ON recordings (owner, started_at);
CREATE INDEX recordings_by_session ON recordings (session, started_at);
