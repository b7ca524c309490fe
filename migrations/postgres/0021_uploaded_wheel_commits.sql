-- The commit an uploaded wheel was built from, as the CI job that uploaded
-- it says (`mite-perf ci check`, `bisect`): its hash, committer time (Unix
-- seconds) and parents, space-separated. They place the wheel's runs in a
-- trend's commit order. Wheels uploaded without them keep NULLs.
ALTER TABLE uploaded_wheels ADD COLUMN git_commit TEXT;
ALTER TABLE uploaded_wheels ADD COLUMN git_commit_time BIGINT;
ALTER TABLE uploaded_wheels ADD COLUMN git_parents TEXT;
