-- Accounts of a shared lab. Passwords are argon2 hashes (PHC strings); a
-- user the single-sign-on proxy names has none. API tokens are stored as
-- SHA-256 hashes of the token, which is shown once. The activity log says
-- who did what, when and from where. Runs name who cancelled them.
-- Sessions live in the table tower-sessions' SQLite store makes.
CREATE TABLE users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    password_hash TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE api_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    last_used_at INTEGER
);

CREATE TABLE activity (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL DEFAULT ''
);
CREATE INDEX activity_by_time ON activity (at);

ALTER TABLE runs ADD COLUMN cancelled_by TEXT;
