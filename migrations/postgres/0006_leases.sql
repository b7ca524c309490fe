-- Several lab hosts may share one database. A running run names the host
-- executing it (its name and boot id) and holds a lease that host renews;
-- a cancel asked on another host is a flag the executing host reads when it
-- renews. Runs from before have no host: they are this host's.
ALTER TABLE runs ADD COLUMN lab_host TEXT;
ALTER TABLE runs ADD COLUMN lease_expires_at BIGINT;
ALTER TABLE runs ADD COLUMN cancel_requested BOOLEAN NOT NULL DEFAULT FALSE;
