-- Uploading a build is a right of its own, which no role brings: a wheel
-- is code every agent will run. Only tokens made with it
-- (`mite-perf token create … --may-upload`, for CI) carry it.
ALTER TABLE api_tokens ADD COLUMN may_upload BOOLEAN NOT NULL DEFAULT FALSE;
-- When an uploaded wheel was last uploaded or named by a launch (unix ms):
-- `serve` deletes wheels unused for its --upload-retention (30 days by
-- default), never one a queued or running run names.
ALTER TABLE uploaded_wheels ADD COLUMN last_used_at BIGINT NOT NULL DEFAULT 0;
UPDATE uploaded_wheels SET last_used_at = uploaded_at;
