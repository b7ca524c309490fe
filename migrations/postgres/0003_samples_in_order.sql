-- Samples read in the order of a scenario's ticks: an index in that order,
-- which also keeps a tick's samples from being written twice.
DELETE FROM samples a USING samples b
    WHERE a.ctid < b.ctid AND a.scenario_id = b.scenario_id AND a.elapsed_ms = b.elapsed_ms
      AND a.process = b.process AND a.pid = b.pid;
CREATE UNIQUE INDEX samples_in_order ON samples(scenario_id, elapsed_ms, process, pid);
DROP INDEX samples_scenario;
