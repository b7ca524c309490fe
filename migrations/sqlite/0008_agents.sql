-- Lab agents: what executes runs. Each registers its machine and ports and
-- renews a heartbeat every few seconds; the pages list them. A run may ask
-- for one agent by name (comparisons want the same machine); NULL: any.
CREATE TABLE agents (
    name TEXT PRIMARY KEY,
    host_id TEXT NOT NULL,
    hostname TEXT NOT NULL,
    pid INTEGER NOT NULL,
    cores INTEGER NOT NULL,
    cpu_model TEXT NOT NULL,
    builds TEXT NOT NULL,
    ports TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL,
    current_run INTEGER,
    stopped_at INTEGER
);

ALTER TABLE runs ADD COLUMN wanted_agent TEXT;
