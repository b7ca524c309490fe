-- The agent executing a run is named by its agent id (name, boot and PID
-- namespace), which the column held already under its first name.
ALTER TABLE runs RENAME COLUMN lab_host TO agent_id;
