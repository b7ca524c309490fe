-- Profiles of mite's processes: per scenario and profiled process, the
-- folded stacks py-spy sampled ("frame;frame;frame count" lines), at what
-- rate, how many, how py-spy reached the process, and why it holds fewer
-- than asked (or none).
CREATE TABLE profiles (
    id BIGSERIAL PRIMARY KEY,
    scenario_id BIGINT NOT NULL REFERENCES scenarios(id) ON DELETE CASCADE,
    process TEXT NOT NULL,
    pid BIGINT NOT NULL,
    rate BIGINT NOT NULL,
    samples BIGINT NOT NULL,
    mode TEXT NOT NULL,
    problem TEXT,
    folded TEXT NOT NULL
);
CREATE INDEX profiles_by_scenario ON profiles (scenario_id);
