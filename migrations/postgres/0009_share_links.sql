-- Read-only links to one run, for people without an account: the link's
-- secret is kept as its SHA-256 only; a link ends at its expiry or when
-- revoked.
CREATE TABLE share_links (
    id BIGSERIAL PRIMARY KEY,
    run_id BIGINT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX share_links_by_run ON share_links (run_id);
