-- Tokens belong to the user who made them (NULL: made on the command line
-- by the lab's operator) and may expire (NULL: never). A token acts with
-- at most its owner's role, and dies with its owner's account.
ALTER TABLE api_tokens ADD COLUMN owner TEXT;
ALTER TABLE api_tokens ADD COLUMN expires_at INTEGER;
CREATE INDEX api_tokens_by_owner ON api_tokens (owner);
