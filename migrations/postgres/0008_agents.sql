-- Lab agents: what executes runs. Each registers its machine and ports and
-- renews a heartbeat every few seconds; the pages list them. A run may ask
-- for one agent by name (comparisons want the same machine); NULL: any.
CREATE TABLE agents (
    name TEXT PRIMARY KEY,
    host_id TEXT NOT NULL,
    hostname TEXT NOT NULL,
    pid BIGINT NOT NULL,
    cores BIGINT NOT NULL,
    cpu_model TEXT NOT NULL,
    builds TEXT NOT NULL,
    ports TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL,
    current_run BIGINT,
    stopped_at BIGINT
);

ALTER TABLE runs ADD COLUMN wanted_agent TEXT;
