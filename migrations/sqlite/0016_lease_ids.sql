-- Each lease an agent takes on a run has an id of its own: every write
-- the agent makes for the run carries it, so that once the lease is lost
-- (another agent marked the run interrupted) nothing more is stored, even
-- by an agent sharing the lost one's name.
ALTER TABLE runs ADD COLUMN lease_id TEXT;
