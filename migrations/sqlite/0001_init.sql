-- mite perf lab schema (SQLite). Times are unix epoch milliseconds.
CREATE TABLE runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    label TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    started_at INTEGER,
    ended_at INTEGER,
    params TEXT NOT NULL,
    output_dir TEXT,
    mite_version TEXT,
    python_version TEXT,
    host TEXT,
    cores INTEGER,
    lab_pid INTEGER,
    error TEXT
);

CREATE TABLE scenarios (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    name TEXT NOT NULL,
    concurrency INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL,
    spawn_rate INTEGER NOT NULL,
    interval_ms INTEGER NOT NULL,
    status TEXT NOT NULL,
    started_at INTEGER,
    ended_at INTEGER,
    error TEXT,
    error_log TEXT,
    -- Set when the scenario ends: requests served, and its figures as JSON.
    total_requests INTEGER,
    figures TEXT
);
CREATE INDEX scenarios_run ON scenarios(run_id, position);
CREATE INDEX runs_status ON runs(status, id);

CREATE TABLE processes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    scenario_id INTEGER NOT NULL REFERENCES scenarios(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    pid INTEGER NOT NULL,
    start_ticks INTEGER NOT NULL,
    command TEXT NOT NULL,
    log_path TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    ended_at INTEGER,
    exit_status TEXT
);
CREATE INDEX processes_open ON processes(ended_at);

CREATE TABLE samples (
    scenario_id INTEGER NOT NULL REFERENCES scenarios(id) ON DELETE CASCADE,
    process TEXT NOT NULL,
    pid INTEGER NOT NULL,
    at_ms INTEGER NOT NULL,
    elapsed_ms INTEGER NOT NULL,
    cpu REAL NOT NULL,
    mem INTEGER NOT NULL,
    requests INTEGER,
    requests_in_interval INTEGER
);
CREATE INDEX samples_scenario ON samples(scenario_id, elapsed_ms);
