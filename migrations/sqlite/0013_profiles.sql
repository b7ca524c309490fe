-- Profiles of mite's processes: per scenario and profiled process, the
-- folded stacks py-spy sampled ("frame;frame;frame count" lines), at what
-- rate, how many, how py-spy reached the process, and why it holds fewer
-- than asked (or none).
CREATE TABLE profiles (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    scenario_id INTEGER NOT NULL REFERENCES scenarios(id) ON DELETE CASCADE,
    process TEXT NOT NULL,
    pid INTEGER NOT NULL,
    rate INTEGER NOT NULL,
    samples INTEGER NOT NULL,
    mode TEXT NOT NULL,
    problem TEXT,
    folded TEXT NOT NULL
);
CREATE INDEX profiles_by_scenario ON profiles (scenario_id);
