-- Read-only links to one run, for people without an account: the link's
-- secret is kept as its SHA-256 only; a link ends at its expiry or when
-- revoked.
CREATE TABLE share_links (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX share_links_by_run ON share_links (run_id);
