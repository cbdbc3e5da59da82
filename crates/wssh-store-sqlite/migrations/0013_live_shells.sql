-- The cluster's registry of live shells: each node's heartbeat and its shells (issue 16).
-- Rows live only while their node does; `wssh db copy` does not copy them.
CREATE TABLE cluster_nodes (
    id        TEXT PRIMARY KEY,
    url       TEXT NOT NULL,
    last_seen INTEGER NOT NULL
);

CREATE TABLE live_shells (
    id             TEXT PRIMARY KEY,
    node           TEXT NOT NULL,
    owner          TEXT NOT NULL,
    owner_id       INTEGER NOT NULL,
    session        TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    cols           INTEGER NOT NULL,
    rows           INTEGER NOT NULL,
    output_bytes   INTEGER NOT NULL,
    clients        TEXT NOT NULL,
    detached_since INTEGER,
    end_requested  INTEGER NOT NULL DEFAULT 0
);

CREATE INDEX live_shells_node ON live_shells (node);
