-- mite's own account of each scenario, read from its message bus: per
-- transaction and second, responses, errors (status >= 400), exceptions,
-- ended transactions and latency percentiles (ms); per transaction over the
-- scenario, the same; errors by kind; the controller's required against
-- actual concurrency; and what the bus carried and dropped.
CREATE TABLE bus_intervals (
    scenario_id INTEGER NOT NULL REFERENCES scenarios(id) ON DELETE CASCADE,
    txn TEXT NOT NULL,
    elapsed_ms INTEGER NOT NULL,
    at_ms INTEGER NOT NULL,
    requests INTEGER NOT NULL,
    errors INTEGER NOT NULL,
    exceptions INTEGER NOT NULL,
    transactions INTEGER NOT NULL,
    p50_ms REAL,
    p90_ms REAL,
    p99_ms REAL,
    max_ms REAL,
    PRIMARY KEY (scenario_id, elapsed_ms, txn)
);

CREATE TABLE bus_totals (
    scenario_id INTEGER NOT NULL REFERENCES scenarios(id) ON DELETE CASCADE,
    txn TEXT NOT NULL,
    requests INTEGER NOT NULL,
    errors INTEGER NOT NULL,
    exceptions INTEGER NOT NULL,
    transactions INTEGER NOT NULL,
    p50_ms REAL,
    p90_ms REAL,
    p99_ms REAL,
    max_ms REAL,
    mean_ms REAL,
    PRIMARY KEY (scenario_id, txn)
);

CREATE TABLE bus_errors (
    scenario_id INTEGER NOT NULL REFERENCES scenarios(id) ON DELETE CASCADE,
    txn TEXT NOT NULL,
    kind TEXT NOT NULL,
    count INTEGER NOT NULL,
    example TEXT NOT NULL,
    PRIMARY KEY (scenario_id, txn, kind)
);

CREATE TABLE bus_concurrency (
    scenario_id INTEGER NOT NULL REFERENCES scenarios(id) ON DELETE CASCADE,
    elapsed_ms INTEGER NOT NULL,
    at_ms INTEGER NOT NULL,
    required INTEGER NOT NULL,
    actual INTEGER NOT NULL,
    runners INTEGER NOT NULL,
    PRIMARY KEY (scenario_id, elapsed_ms)
);

ALTER TABLE scenarios ADD COLUMN bus_messages INTEGER;
ALTER TABLE scenarios ADD COLUMN bus_undecodable INTEGER;
ALTER TABLE scenarios ADD COLUMN bus_journeys INTEGER;
-- Dropped by mite's duplicator (its "buffer full" lines): for the lab's
-- reader (messages the lab missed) and for the collector.
ALTER TABLE scenarios ADD COLUMN bus_missed INTEGER;
ALTER TABLE scenarios ADD COLUMN collector_dropped INTEGER;
-- The controller's reports while its volume model ran, and those with
-- fewer journeys running than required.
ALTER TABLE scenarios ADD COLUMN bus_reports INTEGER;
ALTER TABLE scenarios ADD COLUMN bus_reports_short INTEGER;
-- The lab's bus reader's own CPU time over the scenario (ms).
ALTER TABLE scenarios ADD COLUMN bus_reader_cpu_ms INTEGER;
