-- mite wheels uploaded by CI jobs (`mite-perf ci check`), kept by their
-- SHA-256 so that every agent, on any host, installs exactly those bytes.
-- Only labs started with --allow-uploaded-builds take or run them.
CREATE TABLE uploaded_wheels (
    sha256 TEXT PRIMARY KEY,
    file_name TEXT NOT NULL,
    size INTEGER NOT NULL,
    content BLOB NOT NULL,
    uploaded_by TEXT NOT NULL,
    uploaded_at INTEGER NOT NULL
);
