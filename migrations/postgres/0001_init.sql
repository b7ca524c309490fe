-- mite perf lab schema (PostgreSQL). Times are unix epoch milliseconds.
CREATE TABLE runs (
    id BIGSERIAL PRIMARY KEY,
    label TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    started_at BIGINT,
    ended_at BIGINT,
    params TEXT NOT NULL,
    output_dir TEXT,
    mite_version TEXT,
    python_version TEXT,
    host TEXT,
    cores BIGINT,
    lab_pid BIGINT,
    error TEXT
);

CREATE TABLE scenarios (
    id BIGSERIAL PRIMARY KEY,
    run_id BIGINT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    position BIGINT NOT NULL,
    name TEXT NOT NULL,
    concurrency BIGINT NOT NULL,
    duration_ms BIGINT NOT NULL,
    spawn_rate BIGINT NOT NULL,
    interval_ms BIGINT NOT NULL,
    status TEXT NOT NULL,
    started_at BIGINT,
    ended_at BIGINT,
    error TEXT,
    error_log TEXT,
    -- Set when the scenario ends: requests served, and its figures as JSON.
    total_requests BIGINT,
    figures TEXT
);
CREATE INDEX scenarios_run ON scenarios(run_id, position);
CREATE INDEX runs_status ON runs(status, id);

CREATE TABLE processes (
    id BIGSERIAL PRIMARY KEY,
    scenario_id BIGINT NOT NULL REFERENCES scenarios(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    pid BIGINT NOT NULL,
    start_ticks BIGINT NOT NULL,
    command TEXT NOT NULL,
    log_path TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    ended_at BIGINT,
    exit_status TEXT
);
CREATE INDEX processes_open ON processes(ended_at);

CREATE TABLE samples (
    scenario_id BIGINT NOT NULL REFERENCES scenarios(id) ON DELETE CASCADE,
    process TEXT NOT NULL,
    pid BIGINT NOT NULL,
    at_ms BIGINT NOT NULL,
    elapsed_ms BIGINT NOT NULL,
    cpu DOUBLE PRECISION NOT NULL,
    mem BIGINT NOT NULL,
    requests BIGINT,
    requests_in_interval BIGINT
);
CREATE INDEX samples_scenario ON samples(scenario_id, elapsed_ms);
