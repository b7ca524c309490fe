-- mite's own account of each scenario, read from its message bus: per
-- transaction and second, responses, errors (status >= 400), exceptions,
-- ended transactions and latency percentiles (ms); per transaction over the
-- scenario, the same; errors by kind; the controller's required against
-- actual concurrency; and what the bus carried and dropped.
CREATE TABLE bus_intervals (
    scenario_id BIGINT NOT NULL REFERENCES scenarios(id) ON DELETE CASCADE,
    txn TEXT NOT NULL,
    elapsed_ms BIGINT NOT NULL,
    at_ms BIGINT NOT NULL,
    requests BIGINT NOT NULL,
    errors BIGINT NOT NULL,
    exceptions BIGINT NOT NULL,
    transactions BIGINT NOT NULL,
    p50_ms DOUBLE PRECISION,
    p90_ms DOUBLE PRECISION,
    p99_ms DOUBLE PRECISION,
    max_ms DOUBLE PRECISION,
    PRIMARY KEY (scenario_id, elapsed_ms, txn)
);

CREATE TABLE bus_totals (
    scenario_id BIGINT NOT NULL REFERENCES scenarios(id) ON DELETE CASCADE,
    txn TEXT NOT NULL,
    requests BIGINT NOT NULL,
    errors BIGINT NOT NULL,
    exceptions BIGINT NOT NULL,
    transactions BIGINT NOT NULL,
    p50_ms DOUBLE PRECISION,
    p90_ms DOUBLE PRECISION,
    p99_ms DOUBLE PRECISION,
    max_ms DOUBLE PRECISION,
    mean_ms DOUBLE PRECISION,
    PRIMARY KEY (scenario_id, txn)
);

CREATE TABLE bus_errors (
    scenario_id BIGINT NOT NULL REFERENCES scenarios(id) ON DELETE CASCADE,
    txn TEXT NOT NULL,
    kind TEXT NOT NULL,
    count BIGINT NOT NULL,
    example TEXT NOT NULL,
    PRIMARY KEY (scenario_id, txn, kind)
);

CREATE TABLE bus_concurrency (
    scenario_id BIGINT NOT NULL REFERENCES scenarios(id) ON DELETE CASCADE,
    elapsed_ms BIGINT NOT NULL,
    at_ms BIGINT NOT NULL,
    required BIGINT NOT NULL,
    actual BIGINT NOT NULL,
    runners BIGINT NOT NULL,
    PRIMARY KEY (scenario_id, elapsed_ms)
);

ALTER TABLE scenarios ADD COLUMN bus_messages BIGINT;
ALTER TABLE scenarios ADD COLUMN bus_undecodable BIGINT;
ALTER TABLE scenarios ADD COLUMN bus_journeys BIGINT;
-- Dropped by mite's duplicator (its "buffer full" lines): for the lab's
-- reader (messages the lab missed) and for the collector.
ALTER TABLE scenarios ADD COLUMN bus_missed BIGINT;
ALTER TABLE scenarios ADD COLUMN collector_dropped BIGINT;
-- The controller's reports while its volume model ran, and those with
-- fewer journeys running than required.
ALTER TABLE scenarios ADD COLUMN bus_reports BIGINT;
ALTER TABLE scenarios ADD COLUMN bus_reports_short BIGINT;
-- The lab's bus reader's own CPU time over the scenario (ms).
ALTER TABLE scenarios ADD COLUMN bus_reader_cpu_ms BIGINT;
