-- Accounts of a shared lab. Passwords are argon2 hashes (PHC strings); a
-- user the single-sign-on proxy names has none. API tokens are stored as
-- SHA-256 hashes of the token, which is shown once. The activity log says
-- who did what, when and from where. Runs name who cancelled them.
-- Sessions live in the table tower-sessions' PostgreSQL store makes.
CREATE TABLE users (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    password_hash TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE api_tokens (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT
);

CREATE TABLE activity (
    id BIGSERIAL PRIMARY KEY,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL DEFAULT ''
);
CREATE INDEX activity_by_time ON activity (at);

ALTER TABLE runs ADD COLUMN cancelled_by TEXT;
