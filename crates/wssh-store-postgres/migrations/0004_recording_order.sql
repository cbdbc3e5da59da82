-- Recordings that start within the same millisecond are listed newest first by the order they
-- were stored in, as SQLite's rowid orders them.
ALTER TABLE recordings ADD COLUMN seq BIGSERIAL;
