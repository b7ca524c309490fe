-- What a run is doing before its first scenario starts (installing a mite
-- build), for its page to show; cleared once it starts.
ALTER TABLE runs ADD COLUMN stage TEXT;
