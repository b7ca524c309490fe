-- Samples kept in the order they are read in (a scenario's, tick by tick):
-- whole runs read without sorting, a tick's samples written once.
CREATE TABLE samples_in_order (
    scenario_id INTEGER NOT NULL REFERENCES scenarios(id) ON DELETE CASCADE,
    process TEXT NOT NULL,
    pid INTEGER NOT NULL,
    at_ms INTEGER NOT NULL,
    elapsed_ms INTEGER NOT NULL,
    cpu REAL NOT NULL,
    mem INTEGER NOT NULL,
    requests INTEGER,
    requests_in_interval INTEGER,
    PRIMARY KEY (scenario_id, elapsed_ms, process, pid)
) WITHOUT ROWID;
INSERT OR IGNORE INTO samples_in_order
    SELECT scenario_id, process, pid, at_ms, elapsed_ms, cpu, mem, requests, requests_in_interval
    FROM samples;
DROP TABLE samples;
ALTER TABLE samples_in_order RENAME TO samples;
