-- A finished scenario's chart overview (the options of its charts, as JSON),
-- kept so its page never reads every sample again.
ALTER TABLE scenarios ADD COLUMN overview TEXT;
