-- The scenario library: what each agent found in its --scenario-dir
-- folders (replaced whole each time it looks). `shapes` is JSON: the
-- required journeys per second of the volume models, per concurrency.
CREATE TABLE library_scenarios (
    agent TEXT NOT NULL,
    spec TEXT NOT NULL,
    doc TEXT NOT NULL,
    function_doc TEXT NOT NULL,
    shapes TEXT NOT NULL,
    problem TEXT,
    found_at BIGINT NOT NULL,
    PRIMARY KEY (agent, spec)
);
