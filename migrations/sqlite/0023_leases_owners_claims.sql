-- Each agent's own lease, kept with its heartbeat: whether an agent still
-- holds its name is judged by its lease, on the database's clock, never by
-- the lease of a newcomer that wants the name (FAULTS.md 53). NULL: an
-- agent from before, judged as before.
ALTER TABLE agents ADD COLUMN lease_ms INTEGER;

-- A label is owned by accounts: owners that are no longer an account (a
-- user removed, a token revoked) lose their labels, so an account made
-- again under that name inherits nothing (FAULTS.md 54).
DELETE FROM label_owners
WHERE owner NOT IN (SELECT name FROM users)
  AND owner NOT IN (SELECT 'token:' || name FROM api_tokens);

-- Uploaders whose claimed commits an admin left out of every trend: each
-- point of theirs is kept and shown, never fitted (FAULTS.md 55).
CREATE TABLE trend_claimant_exclusions (
    claimant TEXT PRIMARY KEY,
    excluded_by TEXT NOT NULL,
    excluded_at INTEGER NOT NULL
);
