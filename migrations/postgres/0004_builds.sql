-- Runs measure one mite build or several, each scenario once or several
-- times: a scenario says which build (index into the run's builds) and
-- which repeat it was. A run keeps its provenance (JSON: builds, machine,
-- target, scenario source), and a label may have a baseline run.
ALTER TABLE scenarios ADD COLUMN build_index BIGINT NOT NULL DEFAULT 0;
ALTER TABLE scenarios ADD COLUMN repeat_index BIGINT NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN provenance TEXT;
CREATE TABLE baselines (
    label TEXT PRIMARY KEY,
    run_id BIGINT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    marked_at BIGINT NOT NULL
);
